"""Points that expire at the end of next year, swept by a nightly job.

Run: python examples/points_expiry.py
"""

from datetime import UTC, datetime, timedelta

from dateutil.relativedelta import relativedelta

import siyu
from siyu.testing import FakeClock

# A clock we can move: the script runs a year and a half in a blink.
clock = FakeClock(datetime(2026, 3, 15, 2, 0, tzinfo=UTC))

with siyu.connect("memory://", clock=clock, tz="Asia/Shanghai") as ws:
    member = ws.users.add(phone="13800138000", source="offline_store")

    # "Points expire at the end of the year after they were earned" (a common rule),
    # computed in the business time zone so the boundary is midnight in Shanghai.
    local_now = ws.now().astimezone(ws.tz)
    end_of_next_year = (local_now + relativedelta(years=1, month=12, day=31)).replace(
        hour=23, minute=59, second=59, microsecond=0
    )
    ws.points.earn(member.id, 300, reason="purchase", key="order:1001", expires_at=end_of_next_year)
    ws.points.spend(member.id, 100, reason="coupon_exchange", key="exchange:1")
    print("balance after spending:", ws.points.balance(member.id))

    # A week before expiry, the reminder list shows who is about to lose points.
    clock.set(end_of_next_year - relativedelta(days=5))
    soon = ws.points.expiring(within=timedelta(days=7))
    print("expiring within 7 days:", [(lot.user_id, lot.remaining) for lot in soon])

    # After the boundary the balance is 0 at once; the sweep writes the ledger entries.
    clock.set(end_of_next_year + relativedelta(seconds=1))
    print("balance after expiry:", ws.points.balance(member.id))
    swept = ws.points.expire_due()
    print("expired entries:", [(e.user_id, e.amount) for e in swept])
    assert ws.points.balance(member.id) == 0
