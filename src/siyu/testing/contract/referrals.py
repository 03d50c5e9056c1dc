"""Contract: the referral graph and what grows on it (任务宝, 拼团, 分销)."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

import siyu
from siyu.errors import (
    AlreadyBound,
    AlreadyJoined,
    GroupBuyFull,
    NotNewUser,
    ReferralCycle,
    SelfInvite,
    SiyuError,
    UnknownInviteCode,
)
from siyu.events import EventTracked, OrderLineInfo, OrderRecorded, OrderRefunded
from siyu.models.referrals import Reward
from siyu.storage.base import Capability

from .base import ContractBase


def _order(ws: siyu.Workspace, order_id: int, user_id: int, fen: int, role: str = "profit") -> OrderRecorded:
    now = ws.now()
    return OrderRecorded(at=now, order_id=order_id, user_id=user_id, total_fen=fen,
                         lines=(OrderLineInfo(sku="sku", qty=1, paid_fen=fen, role=role),), channel=None, paid_at=now)


class ReferralsContract(ContractBase):
    def test_bind_and_query(self, ws: siyu.Workspace) -> None:
        a, b, c, d = (ws.users.add().id for _ in range(4))
        code = ws.referrals.invite_code(a, campaign="spring", channel_state="poster_a")
        assert ws.referrals.invite_code(a, campaign="spring", channel_state="poster_a") == code
        bound = ws.referrals.bind(b, code)
        assert (bound.inviter_id, bound.campaign, bound.channel_state) == (a, "spring", "poster_a")
        ws.referrals.bind(c, inviter_id=b)
        ws.referrals.bind(d, inviter_id=b)
        assert ws.referrals.inviter_of(c) == b
        assert ws.referrals.invitees(a) == [b]
        assert ws.referrals.invitees(a, depth=2) == [b, c, d]
        assert ws.referrals.invitees(a, depth=None) == [b, c, d]
        assert ws.referrals.downline_size(a) == 3
        assert ws.referrals.downline_size(a, depth=1) == 1
        assert ws.referrals.upline(d, levels=2) == [b, a]
        assert ws.referrals.leaderboard(top=1) == [(b, 2)]
        assert ws.users.get(b).source_campaign == "spring"

    def test_refusals_change_nothing(self, ws: siyu.Workspace) -> None:
        a, b, c = (ws.users.add().id for _ in range(3))
        ws.referrals.bind(b, inviter_id=a)
        ws.referrals.bind(c, inviter_id=b)
        with pytest.raises(UnknownInviteCode):
            ws.referrals.bind(c, "NOSUCHCD")
        with pytest.raises(SelfInvite):
            ws.referrals.bind(a, inviter_id=a)
        with pytest.raises(ReferralCycle):
            ws.referrals.bind(a, inviter_id=c)
        assert ws.referrals.inviter_of(a) is None
        assert ws.referrals.downline_size(a) == 2

    def test_first_binding_wins_and_rebind_is_recorded(self, ws: siyu.Workspace, clock: Any) -> None:
        a, b, x = (ws.users.add().id for _ in range(3))
        ws.referrals.bind(x, inviter_id=a)
        with pytest.raises(AlreadyBound):
            ws.referrals.bind(x, inviter_id=b)
        assert ws.referrals.inviter_of(x) == a
        ws.referrals.rebind(x, inviter_id=b, reason="support ticket 12")
        assert ws.referrals.inviter_of(x) == b
        assert [h.reason for h in ws.referrals.history(x)] == ["direct", "rebind: support ticket 12"]
        assert (ws.referrals.downline_size(a), ws.referrals.downline_size(b)) == (0, 1)

    def test_edges_follow_merges_and_imports(self, ws: siyu.Workspace) -> None:
        root, keep, drop, c1, c2, other = (ws.users.add().id for _ in range(6))
        assert ws.referrals.import_bindings([(drop, root), (c1, drop), (c2, drop)]) == 3
        assert ws.referrals.downline_size(root) == 3
        record = ws.users.merge(keep=keep, drop=drop)
        assert (ws.referrals.inviter_of(keep), ws.referrals.invitees(keep)) == (root, [c1, c2])
        assert ws.referrals.upline(c2, levels=None) == [keep, root]
        ws.users.unmerge(record.id)
        assert ws.referrals.invitees(drop) == [c1, c2] and ws.referrals.inviter_of(keep) is None
        with pytest.raises(ReferralCycle):
            ws.referrals.import_bindings([(other, c1), (root, other)])
        assert ws.referrals.downline_size(root) == 3

    def test_fission_data_follows_merges(self, ws: siyu.Workspace, clock: Any) -> None:
        root, keep, drop, buyer = (ws.users.add().id for _ in range(4))
        task = ws.referrals.tasks.create("t", campaign="c", stages=[(1, Reward.of_points(5))],
                                         deadline=clock.now + timedelta(days=7))
        ws.referrals.bind(buyer, ws.referrals.invite_code(drop, campaign="c"))
        ws.referrals.bind(drop, inviter_id=root)
        ws.referrals.siyu_on_event(_order(ws, 1, buyer, 10_000))
        ws.products.add("TEA", "Oolong", price="9.90", cost="0.50", role="activity")
        group = ws.referrals.group_buys.open(drop, sku="TEA", size=2, price="1")
        record = ws.users.merge(keep=keep, drop=drop)
        assert [e.distributor_id for e in ws.referrals.commissions.of_order(1)] == [keep, root]
        assert [g.user_id for g in ws.referrals.tasks.grants(task.id)] == [keep]
        assert ws.referrals.group_buys.get(group.id).leader_id == keep
        ws.users.unmerge(record.id)
        assert [e.distributor_id for e in ws.referrals.commissions.of_order(1)] == [drop, root]
        assert [g.user_id for g in ws.referrals.tasks.grants(task.id)] == [drop]
        assert [m.user_id for m in ws.referrals.group_buys.get(group.id).members] == [drop]

    def test_existing_customer_is_not_new(self, ws: siyu.Workspace) -> None:
        a, b = ws.users.add().id, ws.users.add().id
        ws.tags.apply(b, "lifecycle/customer")
        with pytest.raises(NotNewUser):
            ws.referrals.bind(b, inviter_id=a)
        assert ws.referrals.inviter_of(b) is None

    def test_task_reward_once(self, ws: siyu.Workspace, clock: Any) -> None:
        a = ws.users.add().id
        task = ws.referrals.tasks.create("t", campaign="spring", stages=[(2, Reward.of_points(50))],
                                         deadline=clock.now + timedelta(days=7))
        code = ws.referrals.invite_code(a, campaign="spring")
        for _ in range(3):
            ws.referrals.bind(ws.users.add().id, code)
        ws.referrals.tasks.evaluate(task.id)
        ws.referrals.tasks.evaluate(task.id)
        assert ws.points.balance(a) == 50
        assert [g.stage for g in ws.referrals.tasks.grants(task.id)] == [1]

    def test_commissions_once_and_reversed(self, ws: siyu.Workspace) -> None:
        a, b, c = (ws.users.add().id for _ in range(3))
        ws.referrals.bind(b, inviter_id=a)
        ws.referrals.bind(c, inviter_id=b)
        event = _order(ws, 1, c, 10_000)
        ws.referrals.siyu_on_event(event)
        ws.referrals.siyu_on_event(event)
        assert [(e.distributor_id, e.level, str(e.amount)) for e in ws.referrals.commissions.of_order(1)] == [
            (b, 1, "10.00"), (a, 2, "5.00")]
        refund = OrderRefunded(at=ws.now(), order_id=1, refund_id=9, user_id=c, amount_fen=10_000,
                               order_total_fen=10_000, lines=event.lines, full=True)
        ws.referrals.siyu_on_event(refund)
        ws.referrals.siyu_on_event(refund)
        assert {e.status for e in ws.referrals.commissions.of_order(1)} == {"voided"}
        assert sum(e.amount for e in ws.referrals.commissions.of_order(1)) == 0

    def test_a_batch_delivered_twice_changes_nothing(self, ws: siyu.Workspace) -> None:
        a, b, loner = (ws.users.add().id for _ in range(3))
        ws.referrals.bind(b, inviter_id=a)
        first, again = _order(ws, 1, loner, 5_000), _order(ws, 2, b, 10_000)
        later = _order(ws, 3, loner, 7_000)
        tracked = EventTracked(at=ws.now(), user_id=loner, kind="first_login", event_id=1, key=None)
        batch = [first, again, tracked, first, later]  # an order repeated inside the batch counts once
        for _ in range(2):
            ws.referrals.siyu_on_events(batch, ws)
        with ws.read() as tx:
            assert tx.referrals.customers([loner, b]) == {loner: first.paid_at, b: again.paid_at}
            assert {u: len(p) for u, p in tx.referrals.purchases([loner, b]).items()} == {loner: 2, b: 1}
            assert tx.referrals.actions([loner], "first_login") == {loner: tracked.at}
            assert tx.referrals.bound([a, b, loner]) == {b}
        assert [(e.distributor_id, str(e.amount)) for e in ws.referrals.commissions.of_order(2)] == [(a, "10.00")]
        assert ws.referrals.commissions.of_order(1) == []

    def test_group_buy_never_overfills(self, connect: Callable[..., siyu.Workspace], caps: frozenset[str]) -> None:
        if Capability.MULTI_PROCESS not in caps:
            pytest.skip("needs several connections to one database")
        ws = connect()
        leader = ws.users.add().id
        joiners = [ws.users.add().id for _ in range(8)]
        ws.products.add("tea", "Oolong", price="9.90", cost="5", role="activity")
        group = ws.referrals.group_buys.open(leader, sku="tea", size=3, price="9.90")
        outcomes: list[str] = []
        lock = threading.Lock()

        def join(uid: int) -> None:
            other = connect()
            try:
                other.referrals.group_buys.join(group.id, uid)
                result = "joined"
            except GroupBuyFull:
                result = "full"
            except SiyuError as exc:  # pragma: no cover - reported below
                result = repr(exc)
            with lock:
                outcomes.append(result)

        threads = [threading.Thread(target=join, args=(uid,)) for uid in joiners]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        final = ws.referrals.group_buys.get(group.id)
        assert len(final.members) == 3 and final.status == "completed"
        assert sorted(outcomes) == ["full"] * 6 + ["joined"] * 2
        with pytest.raises(AlreadyJoined):
            ws.referrals.group_buys.join(group.id, leader)

    def test_concurrent_binds_keep_a_forest(
        self, connect: Callable[..., siyu.Workspace], caps: frozenset[str]
    ) -> None:
        if Capability.MULTI_PROCESS not in caps:
            pytest.skip("needs several connections to one database")
        ws = connect()
        ids = ws.users.add_many([{} for _ in range(12)])
        failures: list[BaseException] = []

        def worker(seed: int) -> None:
            rng = random.Random(seed)
            mine = connect()
            for _ in range(20):
                invitee, inviter = rng.sample(ids, 2)
                try:
                    if rng.random() < 0.7:
                        mine.referrals.bind(invitee, inviter_id=inviter)
                    else:
                        mine.referrals.rebind(invitee, inviter_id=inviter, reason=f"worker {seed}")
                except (AlreadyBound, ReferralCycle):
                    pass
                except BaseException as exc:  # pragma: no cover - reported below
                    failures.append(exc)

        threads = [threading.Thread(target=worker, args=(seed,)) for seed in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert failures == []
        parent = {u: p for u in ids if (p := ws.referrals.inviter_of(u)) is not None}
        for u in ids:
            chain: list[int] = []
            node = u
            while node in parent and len(chain) <= len(ids):
                node = parent[node]
                chain.append(node)
            assert u not in chain and len(chain) < len(ids)  # a forest: every chain ends at a root
            assert ws.referrals.upline(u, levels=None) == chain
            below = {v for v in ids if u in ws.referrals.upline(v, levels=None)}
            assert ws.referrals.downline_size(u) == len(below)
