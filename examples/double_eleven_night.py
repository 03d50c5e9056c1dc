"""A 双11 evening in a tea shop: a flash sale, a bargain and a lucky draw.

Run: python examples/double_eleven_night.py
"""

from datetime import UTC, datetime, timedelta

import siyu
from siyu.testing import FakeClock

# 20:00 in Shanghai on 11 November.
clock = FakeClock(datetime(2026, 11, 11, 12, 0, tzinfo=UTC))

with siyu.connect("memory://", clock=clock, tz="Asia/Shanghai") as ws:
    ws.products.add("TEA", "Oolong gift box", price="128", cost="52", role="activity")
    ws.products.add("POT", "Clay teapot", price="199", cost="60", role="activity")
    members = [ws.users.add(phone=f"+8613800138{n:03d}").id for n in range(12)]

    # 秒杀: 5 boxes at 69 yuan for two hours, one per person; unpaid checkouts wait 15 minutes.
    sale = ws.flash_sales.create(sku="TEA", price="69", stock=5, starts_at=clock.now,
                                 ends_at=clock.now + timedelta(hours=2), per_user=1)
    held = []
    for n, uid in enumerate(members[:8]):
        try:
            held.append(ws.flash_sales.reserve(sale.id, uid, key=f"checkout-{n}"))
        except siyu.errors.SoldOut:
            print(f"member {uid}: sold out")
    for res in held[:3]:
        ws.flash_sales.pay(res.id)
    clock.advance(timedelta(minutes=15))
    print("released unpaid holds:", ws.flash_sales.release_due())
    late = ws.flash_sales.reserve(sale.id, members[6], key="checkout-late")
    ws.flash_sales.pay(late.id)
    sale = ws.flash_sales.get(sale.id)
    print(f"flash sale: {sale.stock} left, {sale.reserved} held, {sale.sold} sold")
    assert sale.stock + sale.reserved + sale.sold == 5

    # 砍价: three friends' help takes the teapot from 199 to 99.
    bargain = ws.bargains.create(sku="POT", floor="99", helpers=3, stock=10, starts_at=clock.now,
                                 ends_at=clock.now + timedelta(days=1))
    attempt = ws.bargains.start(bargain.id, members[0])
    for friend in members[9:12]:
        cut = ws.bargains.help(attempt.id, friend).cut_fen
        print(f"friend {friend} cut {cut / 100:.2f} yuan")
    order = ws.bargains.buy(attempt.id)
    print("bargain bought at", order.total)

    # 抽奖: published odds, a committed seed, revealed at the end and checked.
    ws.points.earn(members[1], 50, reason="welcome", key="welcome-1")
    draw = ws.draws.create(
        "Lucky draw",
        prizes=[{"name": "未中奖", "kind": "miss", "weight": 70},
                {"name": "20 points", "kind": "points", "weight": 30, "points": 20, "value": "0.20"}],
        starts_at=clock.now, ends_at=clock.now + timedelta(hours=4), cost_points=10, per_user_day=3, pity=3,
        rules={"organizer": "Leaf & Cup Tea Co.", "contact": "400-000-0000", "participation": "10 points a draw",
               "claim": "credited at once", "delivery": "to the member account", "forfeit": "none",
               "terms": "points never expire"},
    )
    draw = ws.draws.publish(draw.id)
    for n in range(3):
        record = ws.draws.draw(draw.id, members[1], key=f"tap-{n}")
        print("draw", record.seq, "->", draw.prizes[record.prize].name)
    clock.advance(timedelta(hours=4))
    ws.draws.reveal(draw.id)
    print("every draw re-computes from the revealed seed:", ws.draws.verify(draw.id).ok)

    print(ws.activities.report())
