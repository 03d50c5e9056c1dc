"""召回: win back customers who went quiet, with a coupon and a holdout.

Customers who bought once and then went silent for 30 days are marked
dormant (沉睡) by the daily lifecycle sweep. This script selects the dormant
buyers, sends them a comeback coupon through a campaign — here into the
workspace outbox, a dry run you can read back — and compares who came back
against a holdout group that got nothing.

Run: python examples/win_back_dormant.py
"""

import random
from datetime import UTC, datetime, timedelta

import siyu
from siyu.testing import FakeClock

clock = FakeClock(datetime(2026, 9, 1, 2, 0, tzinfo=UTC))  # 10:00 in Shanghai
rng = random.Random(7)

with siyu.connect("memory://", clock=clock) as ws:
    ws.products.add("TEA-250", "Oolong 250 g", price="128", cost="52", role="profit")
    ws.coupons.create("回归礼 满100减20", amount="20", threshold="100", valid_days=7)

    # 300 customers bought once in early September and agreed to marketing messages.
    ids = ws.users.add_many([{"phone": f"1380000{i:04d}", "source": "taobao_parcel_card"} for i in range(300)])
    with ws.write():  # one transaction for the whole batch
        for uid in ids:
            ws.users.consent(uid, purpose="marketing", channel="outbox", source="signup")
            ws.orders.record(uid, [{"sku": "TEA-250", "qty": 1}], key=f"first-{uid}")

    # A third of them keep visiting the mall; the rest go quiet.
    for _ in range(31):
        clock.advance(days=1)
        for uid in ids[:100]:
            if rng.random() < 0.2:
                ws.events.track(uid, "page_view")
    print(ws.lifecycle.sweep())  # run daily in production: {'dormant': ...}

    # The audience: dormant customers who have bought. A snapshot freezes it.
    ws.segments.save("dormant_buyers", "tag:lifecycle/dormant and orders >= 1")
    audience = ws.segments.snapshot("dormant_buyers")
    print(len(audience.user_ids), "dormant buyers")

    # Everyone in the audience gets the coupon now, so it is in their account
    # when they come back; the message tells them about it.
    comeback = ws.campaigns.create(
        "comeback_oct",
        audience=audience,
        channel="outbox",  # a dry run: messages are stored, not sent
        template="好久不见！回归礼 满100减20 已放入您的账户，7天内有效。回复TD退订",
        goal="order",
        attribution_window=timedelta(days=7),
    )
    ws.coupons.issue("回归礼 满100减20", audience, key="comeback-oct")
    # A pilot over 99 % of the audience deals it evenly between the message
    # (variant A) and a holdout that gets nothing: the holdout shows how many
    # would have come back anyway.
    report = ws.campaigns.pilot(comeback.id, fraction=0.99, seed=1, holdout=True)
    print(report.sent, "messages in the outbox")

    # Over the next days some come back and use the coupon.
    clock.advance(days=2)
    assigned = {d.user_id: d.variant for d in ws.campaigns.deliveries(comeback.id, limit=1000)}
    for uid, variant in assigned.items():
        if rng.random() < (0.25 if variant == "A" else 0.08):
            [coupon] = ws.coupons.of(uid, usable=True)
            ws.orders.record(uid, [{"sku": "TEA-250", "qty": 1}], coupon=coupon.code, key=f"back-{uid}")

    print(ws.campaigns.results(comeback.id))  # conversions: messaged vs holdout
    print(ws.lifecycle.counts())  # the buyers moved back: dormant -> repeat
    outbox = ws.channels.get("outbox")
    print(outbox.count(), "messages stored; first:", outbox.messages(limit=1)[0].text)
