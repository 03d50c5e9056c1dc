"""Contract: flash-sale stock, reservations and quotas; bargain attempts and helps; draw
prizes, players and records (what every backend must keep)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

import siyu
from siyu.errors import AlreadyHelped, IdempotencyConflict, QuotaExceeded, ReservationClosed, SoldOut
from siyu.models.activities import AttemptStatus, ReservationStatus
from siyu.testing import FakeClock

from .base import ContractBase


def _sale(ws: siyu.Workspace, clock: FakeClock, stock: int, **options: Any) -> int:
    ws.products.add("TEA", "Oolong", price="128", cost="52", role="activity")
    return ws.flash_sales.create(sku="TEA", price="69", stock=stock, starts_at=clock.now,
                                 ends_at=clock.now + timedelta(hours=1), **options).id


class ActivitiesContract(ContractBase):
    def test_flash_sale_units_move_only_when_there_are_enough(self, ws: siyu.Workspace, clock: FakeClock) -> None:
        sid = _sale(ws, clock, 2, per_user=None)
        uid = ws.users.add().id
        first = ws.flash_sales.reserve(sid, uid, 2, key="a")
        with pytest.raises(SoldOut):
            ws.flash_sales.reserve(sid, uid, 1, key="b")
        order = ws.flash_sales.pay(first.id)
        sale = ws.flash_sales.get(sid)
        assert (sale.stock, sale.reserved, sale.sold) == (0, 0, 2)
        assert ws.flash_sales.reservation(first.id).order_id == order.id
        assert ws.flash_sales.reservations(user_id=uid) == [ws.flash_sales.reservation(first.id)]

    def test_flash_sale_quota_counts_per_sale_and_per_day(self, ws: siyu.Workspace, clock: FakeClock) -> None:
        sid = _sale(ws, clock, 10, per_user=2, per_user_day=1)
        uid = ws.users.add().id
        ws.flash_sales.reserve(sid, uid, key="d1")
        with pytest.raises(QuotaExceeded):
            ws.flash_sales.reserve(sid, uid, key="d1-again")
        clock.advance(timedelta(minutes=50))  # still the same business day and sale
        with pytest.raises(QuotaExceeded):
            ws.flash_sales.reserve(sid, uid, key="d1-later")
        assert ws.flash_sales.used(sid, uid) == 1

    def test_flash_sale_key_and_status_moves_happen_once(self, ws: siyu.Workspace, clock: FakeClock) -> None:
        sid = _sale(ws, clock, 3, hold=timedelta(minutes=1))
        uid, other = ws.users.add().id, ws.users.add().id
        res = ws.flash_sales.reserve(sid, uid, key="same")
        assert ws.flash_sales.reserve(sid, uid, key="same") == res
        with pytest.raises(IdempotencyConflict):
            ws.flash_sales.reserve(sid, other, key="same")
        clock.advance(timedelta(minutes=1))
        assert ws.flash_sales.release_due() == 1
        assert ws.flash_sales.release_due() == 0
        with pytest.raises(ReservationClosed):
            ws.flash_sales.pay(res.id)
        assert ws.flash_sales.reservation(res.id).status is ReservationStatus.RELEASED
        sale = ws.flash_sales.get(sid)
        assert (sale.stock, sale.reserved, sale.sold) == (3, 0, 0)
        assert ws.flash_sales.used(sid, uid) == 0

    def test_bargain_helps_are_unique_counted_and_add_up(self, ws: siyu.Workspace, clock: FakeClock) -> None:
        ws.products.add("POT", "Teapot", price="199", cost="60", role="activity")
        bargain = ws.bargains.create(sku="POT", floor="99", helpers=2, stock=1, starts_at=clock.now,
                                     ends_at=clock.now + timedelta(days=1), helps_per_helper=1)
        owner, other, h1, h2 = (ws.users.add().id for _ in range(4))
        attempt = ws.bargains.start(bargain.id, owner)
        second = ws.bargains.start(bargain.id, other)
        ws.bargains.help(attempt.id, h1)
        with pytest.raises(AlreadyHelped):
            ws.bargains.help(attempt.id, h1)
        with pytest.raises(QuotaExceeded):
            ws.bargains.help(second.id, h1)
        ws.bargains.help(attempt.id, h2)
        done = ws.bargains.attempt(attempt.id)
        assert done.status is AttemptStatus.SUCCEEDED and done.cut_fen == 10_000
        assert [h.seq for h in ws.bargains.helps(attempt.id)] == [1, 2]
        ws.bargains.buy(attempt.id)
        assert ws.bargains.get(bargain.id).stock == 0
        clock.advance(timedelta(days=1))
        assert ws.bargains.expire_due() == 1
        assert ws.bargains.attempt(second.id).status is AttemptStatus.FAILED

    def test_draw_prize_stock_players_and_records(self, ws: siyu.Workspace, clock: FakeClock) -> None:
        rules = {k: "stated" for k in ("organizer", "contact", "participation", "claim", "delivery", "forfeit",
                                        "terms")}
        draw = ws.draws.create("contract", starts_at=clock.now, ends_at=clock.now + timedelta(days=1), rules=rules,
                               per_user_day=2, prizes=[
                                   {"name": "miss", "kind": "miss", "weight": 1},
                                   {"name": "top", "kind": "points", "weight": 1000, "points": 5, "value": "1",
                                    "stock": 1}])
        ws.draws.publish(draw.id)
        uid = ws.users.add().id
        first = ws.draws.draw(draw.id, uid, key="one")
        second = ws.draws.draw(draw.id, uid, key="two")
        assert ws.draws.draw(draw.id, uid, key="one") == first
        with pytest.raises(QuotaExceeded):
            ws.draws.draw(draw.id, uid, key="three")
        assert [r.seq for r in ws.draws.records(draw.id, user_id=uid)] == [1, 2]
        assert sorted([first.prize, second.prize]) == [0, 1] and ws.draws.prizes_left(draw.id)["top"] == 0
        clock.advance(timedelta(days=1))
        ws.draws.reveal(draw.id)
        assert ws.draws.verify(draw.id).ok
