"""Reversing an earn after its earner was merged away takes the points from
whoever holds them now, following the merges."""

from __future__ import annotations

from datetime import UTC, datetime

import siyu
from siyu.testing import FakeClock

START = datetime(2026, 5, 1, tzinfo=UTC)


def _shop() -> siyu.Workspace:
    ws = siyu.connect("memory://", clock=FakeClock(START))
    ws.products.add("TEA", "Tea", price="100", cost="20", role="profit")
    return ws


def test_refund_after_a_merge_reverses_the_points_the_keeper_holds() -> None:
    with _shop() as ws:
        keep, drop = ws.users.add().id, ws.users.add().id
        order = ws.orders.record(drop, [{"sku": "TEA", "qty": 1}])
        assert order.points == 100
        merge = ws.users.merge(keep=keep, drop=drop)
        refund = ws.orders.refund(order.id, key="r1")
        assert (refund.points_reversed, refund.points_shortfall) == (100, 0)
        assert ws.points.balance(keep) == 0
        [reversal] = [e for e in ws.points.history(keep) if e.kind == "reverse"]
        assert reversal.amount == -100
        ws.users.unmerge(merge.id)  # nothing is left of the moved lot to give back
        assert (ws.points.balance(keep), ws.points.balance(drop)) == (0, 0)


def test_reversal_follows_a_chain_of_merges_and_spares_other_lots() -> None:
    with _shop() as ws:
        a, b, c = (ws.users.add().id for _ in range(3))
        ws.points.earn(c, 500, reason="welcome", key="c0")
        order = ws.orders.record(a, [{"sku": "TEA", "qty": 1}])
        ws.users.merge(keep=b, drop=a)
        ws.users.merge(keep=c, drop=b)
        assert ws.points.balance(c) == 600
        refund = ws.orders.refund(order.id, "50", key="r1")
        assert (refund.points_reversed, refund.points_shortfall) == (50, 0)
        assert ws.points.balance(c) == 550
        # Taken from the lot the order's points travelled in, not from c's own 500.
        lots = {lot.amount: lot.remaining for lot in ws.points.lots(c)}
        assert lots == {500: 500, 100: 50}


def test_a_spend_reversed_after_a_merge_returns_the_points_to_the_keeper() -> None:
    with _shop() as ws:
        keep, drop = ws.users.add().id, ws.users.add().id
        ws.points.earn(drop, 300, reason="welcome", key="d0")
        spend = ws.points.spend(drop, 120, reason="redeem", key="d1")
        ws.users.merge(keep=keep, drop=drop)
        assert ws.points.balance(keep) == 180
        ws.points.reverse(spend.id, key="d2")
        assert (ws.points.balance(keep), ws.points.balance(drop)) == (300, 0)


def test_unmerge_takes_back_points_a_reversed_spend_returned_while_merged() -> None:
    with _shop() as ws:
        keep, drop = ws.users.add().id, ws.users.add().id
        ws.points.earn(drop, 100, reason="welcome", key="d0")
        spend = ws.points.spend(drop, 40, reason="redeem", key="d1")
        merge = ws.users.merge(keep=keep, drop=drop)
        ws.points.reverse(spend.id, key="d2")
        assert (ws.points.balance(keep), ws.points.balance(drop)) == (100, 0)
        ws.users.unmerge(merge.id)
        assert (ws.points.balance(keep), ws.points.balance(drop)) == (0, 100)


def test_points_returned_along_a_chain_of_merges_go_back_one_unmerge_at_a_time() -> None:
    with _shop() as ws:
        a, b, c = (ws.users.add().id for _ in range(3))
        ws.points.earn(a, 100, reason="welcome", key="a0")
        spend = ws.points.spend(a, 40, reason="redeem", key="a1")
        first = ws.users.merge(keep=b, drop=a)
        second = ws.users.merge(keep=c, drop=b)
        ws.points.reverse(spend.id, key="a2")
        assert [ws.points.balance(u) for u in (a, b, c)] == [0, 0, 100]
        ws.users.unmerge(second.id)
        assert [ws.points.balance(u) for u in (a, b, c)] == [0, 100, 0]
        ws.users.unmerge(first.id)
        assert [ws.points.balance(u) for u in (a, b, c)] == [100, 0, 0]


def test_chained_merges_undone_newest_first_give_every_user_their_points_back() -> None:
    with _shop() as ws:
        a, b, c = (ws.users.add().id for _ in range(3))
        for uid, amount in ((a, 100), (b, 20), (c, 3)):
            ws.points.earn(uid, amount, reason="welcome", key=f"w{uid}")
        first = ws.users.merge(keep=b, drop=a)
        second = ws.users.merge(keep=c, drop=b)
        assert [ws.points.balance(u) for u in (a, b, c)] == [0, 0, 123]
        ws.users.unmerge(second.id)
        assert [ws.points.balance(u) for u in (a, b, c)] == [0, 120, 3]
        ws.users.unmerge(first.id)
        assert [ws.points.balance(u) for u in (a, b, c)] == [100, 20, 3]
