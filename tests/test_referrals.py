"""The referral graph: binding rules, queries, merges, and the forest invariants."""

from __future__ import annotations

from datetime import timedelta
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import siyu
from fission_fixtures import *  # noqa: F403 (the clock and ws fixtures)
from fission_fixtures import START
from siyu.errors import (
    AlreadyBound,
    CampaignClosed,
    NotFound,
    NotNewUser,
    ReferralCycle,
    SelfInvite,
    UnknownInviteCode,
    ValidationError,
)
from siyu.events import Event, OrderLineInfo, OrderRecorded, ReferralBound
from siyu.models.referrals import Reward, ValidInvite
from siyu.testing import FakeClock


def users(ws: siyu.Workspace, n: int) -> list[int]:
    return ws.users.add_many([{} for _ in range(n)])


def test_codes_are_stable_per_inviter_campaign_and_state(ws: siyu.Workspace) -> None:
    a, b = users(ws, 2)
    one = ws.referrals.invite_code(a, campaign="spring", channel_state="poster_a")
    assert len(one) == 8 and one.isalnum()
    assert ws.referrals.invite_code(a, campaign="spring", channel_state="poster_b") != one
    assert ws.referrals.invite_code(b, campaign="spring", channel_state="poster_a") != one
    info = ws.referrals.code_info(one.lower())
    assert (info.inviter_id, info.campaign, info.channel_state) == (a, "spring", "poster_a")
    with pytest.raises(UnknownInviteCode, match="typo"):
        ws.referrals.code_info("ZZZZZZZZ")
    with pytest.raises(ValidationError):
        ws.referrals.invite_code(a, channel_state="x" * 31)


def test_closed_campaigns_refuse_and_change_nothing(ws: siyu.Workspace, clock: FakeClock) -> None:
    a, b = users(ws, 2)
    ws.referrals.campaign("spring", starts_at=START, ends_at=START + timedelta(days=10))
    code = ws.referrals.invite_code(a, campaign="spring")
    clock.advance(days=10)
    with pytest.raises(CampaignClosed, match="ended"):
        ws.referrals.bind(b, code)
    with pytest.raises(CampaignClosed):
        ws.referrals.invite_code(b, campaign="spring")
    assert ws.referrals.inviter_of(b) is None
    ws.referrals.campaign("summer", starts_at=START + timedelta(days=30))
    with pytest.raises(CampaignClosed, match="starts"):
        ws.referrals.invite_code(a, campaign="summer")
    with pytest.raises(ValidationError):
        ws.referrals.campaign("bad", starts_at=START, ends_at=START)


def test_bind_arguments(ws: siyu.Workspace) -> None:
    a, b = users(ws, 2)
    code = ws.referrals.invite_code(a)
    with pytest.raises(ValidationError):
        ws.referrals.bind(b)
    with pytest.raises(ValidationError):
        ws.referrals.bind(b, code, inviter_id=a)
    with pytest.raises(ValidationError, match="come from the code"):
        ws.referrals.bind(b, code, campaign="x")
    with pytest.raises(NotFound):
        ws.referrals.bind(b, inviter_id=999)
    with pytest.raises(NotFound):
        ws.referrals.bind(999, code)
    with pytest.raises(SelfInvite):
        ws.referrals.bind(a, code)
    assert ws.referrals.binding(b) is None


def test_same_inviter_again_is_idempotent_and_events_are_emitted(ws: siyu.Workspace) -> None:
    seen: list[Event] = []
    ws.subscribe(seen.append)
    a, b = users(ws, 2)
    first = ws.referrals.bind(b, inviter_id=a)
    assert ws.referrals.bind(b, inviter_id=a) == first
    bound = [e for e in seen if isinstance(e, ReferralBound)]
    assert len(bound) == 1 and bound[0].invitee_id == b and bound[0].via == "direct"
    assert ws.referrals.history(b)[0].new_inviter_id == a


def test_a_second_inviter_is_refused_with_the_binding_in_force(ws: siyu.Workspace) -> None:
    a, b, x = users(ws, 3)
    code_b = ws.referrals.invite_code(b, campaign="spring")
    first = ws.referrals.bind(x, ws.referrals.invite_code(a, campaign="spring"))
    seen: list[Event] = []
    ws.subscribe(seen.append)
    with pytest.raises(AlreadyBound, match=f"already bound to inviter {a}.*rebind") as refused:
        ws.referrals.bind(x, code_b)
    assert refused.value.binding == first and refused.value.inviter_id == a
    with pytest.raises(AlreadyBound):
        ws.referrals.bind(x, inviter_id=b)
    assert ws.referrals.binding(x) == first and len(ws.referrals.history(x)) == 1 and not seen
    # The same inviter through another of their codes is the idempotent case: the first binding stands.
    assert ws.referrals.bind(x, ws.referrals.invite_code(a, campaign="summer")) == first


def test_protection_window_lets_a_later_binding_take_over(ws: siyu.Workspace, clock: FakeClock) -> None:
    a, b, x = users(ws, 3)
    ws.referrals.configure(protection=timedelta(days=7))
    ws.referrals.bind(x, inviter_id=a)
    clock.advance(days=6)
    with pytest.raises(AlreadyBound, match="until") as held:
        ws.referrals.bind(x, inviter_id=b)
    assert held.value.inviter_id == a and ws.referrals.inviter_of(x) == a
    clock.advance(days=2)
    taken = ws.referrals.bind(x, inviter_id=b)
    assert (taken.inviter_id, taken.via) == (b, "takeover")
    assert [(h.old_inviter_id, h.new_inviter_id) for h in ws.referrals.history(x)] == [(None, a), (a, b)]
    ws.tags.apply(x, "lifecycle/customer")  # a customer by now: a takeover is still allowed
    clock.advance(days=8)
    assert ws.referrals.bind(x, inviter_id=a).via == "takeover"
    with pytest.raises(ValidationError):
        ws.referrals.configure(protection=timedelta(0))
    assert ws.referrals.configure(protection=None).protection is None


def test_new_user_rule_uses_orders_and_tags(ws: siyu.Workspace) -> None:
    a, buyer, tagged = users(ws, 3)
    ws.referrals.siyu_on_event(OrderRecorded(
        at=ws.now(), order_id=1, user_id=buyer, total_fen=100,
        lines=(OrderLineInfo(sku="x", qty=1, paid_fen=100, role="profit"),), channel=None, paid_at=ws.now()))
    ws.tags.apply(tagged, "lifecycle/customer")
    for uid in (buyer, tagged):
        with pytest.raises(NotNewUser, match="require_new=False"):
            ws.referrals.bind(uid, inviter_id=a)
    ws.referrals.configure(customer_tags=["vip/gold"])
    assert ws.referrals.bind(tagged, inviter_id=a).inviter_id == a
    ws.referrals.configure(require_new=False)
    assert ws.referrals.bind(buyer, inviter_id=a).inviter_id == a


def test_source_attribution_is_filled_only_when_empty(ws: siyu.Workspace) -> None:
    a = users(ws, 1)[0]
    fresh = ws.users.add().id
    known = ws.users.add(source="douyin_live", campaign="live1").id
    code = ws.referrals.invite_code(a, campaign="spring", channel_state="poster_a")
    ws.referrals.bind(fresh, code)
    ws.referrals.bind(known, code)
    got = ws.users.get(fresh)
    assert (got.source, got.source_campaign, got.source_state) == ("referral", "spring", "poster_a")
    assert ws.users.get(known).source_campaign == "live1"


def test_rebind_and_unbind(ws: siyu.Workspace) -> None:
    a, b, c, d = users(ws, 4)
    ws.referrals.bind(b, inviter_id=a)
    ws.referrals.bind(c, inviter_id=b)
    with pytest.raises(ReferralCycle):
        ws.referrals.rebind(a, inviter_id=c, reason="x")
    with pytest.raises(ValidationError):
        ws.referrals.rebind(b, inviter_id=d, reason="")
    ws.referrals.rebind(b, inviter_id=d, reason="operator fix")
    assert ws.referrals.upline(c, levels=None) == [b, d]
    assert (ws.referrals.downline_size(a), ws.referrals.downline_size(d)) == (0, 2)
    assert ws.referrals.depth(c) == 2
    assert ws.referrals.unbind(b, reason="left the program")
    assert not ws.referrals.unbind(b, reason="again")
    assert ws.referrals.downline_size(d) == 0 and ws.referrals.downline_size(b) == 1
    assert [h.reason for h in ws.referrals.history(b)] == ["direct", "rebind: operator fix", "unbind: left the program"]


def test_merge_moves_edges_and_unmerge_restores(ws: siyu.Workspace) -> None:
    root, keep, drop, child1, child2 = users(ws, 5)
    ws.referrals.bind(drop, inviter_id=root)
    ws.referrals.bind(child1, inviter_id=drop)
    ws.referrals.bind(child2, inviter_id=drop)
    record = ws.users.merge(keep=keep, drop=drop)
    assert ws.referrals.inviter_of(keep) == root
    assert ws.referrals.invitees(keep) == [child1, child2]
    assert ws.referrals.downline_size(root) == 3
    assert ws.referrals.invitees(drop) == []
    ws.users.unmerge(record.id)
    assert ws.referrals.inviter_of(keep) is None
    assert ws.referrals.inviter_of(drop) == root
    assert ws.referrals.invitees(drop) == [child1, child2]
    assert ws.referrals.downline_size(root) == 3


def test_merge_never_makes_a_cycle(ws: siyu.Workspace) -> None:
    keep, drop = users(ws, 2)
    ws.referrals.bind(keep, inviter_id=drop)  # drop invited keep
    ws.users.merge(keep=keep, drop=drop)
    assert ws.referrals.inviter_of(keep) is None
    assert ws.referrals.upline(keep, levels=None) == []


def test_queries_validate(ws: siyu.Workspace) -> None:
    (a,) = users(ws, 1)
    with pytest.raises(ValidationError):
        ws.referrals.invitees(a, depth=0)
    with pytest.raises(ValidationError):
        ws.referrals.upline(a, levels=0)
    with pytest.raises(ValidationError):
        ws.referrals.leaderboard(top=0)
    with pytest.raises(NotFound):
        ws.referrals.downline_size(12345)
    assert ws.referrals.invitees(a) == [] and ws.referrals.downline_size(a) == 0 and ws.referrals.upline(a) == []


# -- the forest invariant, against a naive model -----------------------------------------------------
N_USERS = 12

ops = st.lists(
    st.tuples(st.sampled_from(["bind", "rebind", "unbind"]), st.integers(1, N_USERS), st.integers(1, N_USERS)),
    max_size=40,
)


def _naive_downline(parent: dict[int, int], user: int) -> set[int]:
    below: set[int] = set()
    frontier = [user]
    while frontier:
        kids = [c for c, p in parent.items() if p in frontier]
        below.update(kids)
        frontier = kids
    return below


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=ops)
def test_any_sequence_of_binds_keeps_a_forest(steps: list[tuple[str, int, int]]) -> None:
    with siyu.connect("memory://", clock=FakeClock(START)) as ws:
        ws.users.add_many([{} for _ in range(N_USERS)])
        parent: dict[int, int] = {}
        for op, x, y in steps:
            before = dict(parent)
            try:
                if op == "bind":
                    ws.referrals.bind(x, inviter_id=y)
                    parent.setdefault(x, y)
                elif op == "rebind":
                    ws.referrals.rebind(x, inviter_id=y, reason="test")
                    parent[x] = y
                else:
                    ws.referrals.unbind(x, reason="test")
                    parent.pop(x, None)
            except AlreadyBound as exc:
                parent = before
                assert parent.get(x) not in (None, y) and exc.inviter_id == parent[x]
            except (SelfInvite, ReferralCycle):
                parent = before
                assert x == y or x in [y, *_chain(parent, y)]
        for u in range(1, N_USERS + 1):
            assert ws.referrals.inviter_of(u) == parent.get(u)
            chain = _chain(parent, u)
            assert u not in chain  # no cycles
            assert ws.referrals.upline(u, levels=None) == chain
            below = _naive_downline(parent, u)
            assert ws.referrals.downline_size(u) == len(below)
            assert ws.referrals.invitees(u, depth=None) == sorted(below)
            assert ws.referrals.downline_size(u, depth=1) == sum(1 for p in parent.values() if p == u)


def _chain(parent: dict[int, int], user: int) -> list[int]:
    chain: list[int] = []
    node = user
    while node in parent and len(chain) <= N_USERS:
        node = parent[node]
        chain.append(node)
    return chain


# -- bulk import and whole-forest counts ---------------------------------------------------------------
def test_import_bindings_keeps_the_rules(ws: siyu.Workspace) -> None:
    a, b, c, d, e = users(ws, 5)
    ws.referrals.bind(b, inviter_id=a)
    assert ws.referrals.import_bindings([(c, b), {"invitee_id": d, "inviter_id": c, "campaign": "old"}]) == 2
    assert ws.referrals.upline(d, levels=None) == [c, b, a]
    assert ws.referrals.downline_size(a) == 3 and ws.referrals.binding(d).campaign == "old"  # type: ignore[union-attr]
    assert ws.referrals.import_bindings([(c, b)]) == 0  # a repeat is skipped
    with pytest.raises(ReferralCycle):
        ws.referrals.import_bindings([(a, d)])
    with pytest.raises(ReferralCycle):
        ws.referrals.import_bindings([(a, e), (e, d)])
    with pytest.raises(SelfInvite):
        ws.referrals.import_bindings([(e, e)])
    with pytest.raises(ValidationError, match="rebind"):
        ws.referrals.import_bindings([(d, e)])
    with pytest.raises(ValidationError, match="row 1"):
        ws.referrals.import_bindings([(e, a), (e, b)])
    with pytest.raises(NotFound):
        ws.referrals.import_bindings([(e, 99)])
    assert ws.referrals.inviter_of(e) is None and ws.referrals.downline_size(a) == 3
    assert ws.referrals.history(c)[0].reason == "import"


def test_import_joins_existing_trees(ws: siyu.Workspace) -> None:
    ids = users(ws, 8)
    ws.referrals.bind(ids[1], inviter_id=ids[0])
    ws.referrals.bind(ids[3], inviter_id=ids[2])
    ws.referrals.bind(ids[4], inviter_id=ids[3])
    ws.referrals.import_bindings([(ids[2], ids[1]), (ids[5], ids[4]), (ids[6], ids[7])])
    assert ws.referrals.upline(ids[5], levels=None) == [ids[4], ids[3], ids[2], ids[1], ids[0]]
    assert ws.referrals.downline_size(ids[0]) == 5 and ws.referrals.downline_size(ids[7]) == 1
    assert ws.referrals.invitees(ids[2], depth=None) == [ids[3], ids[4], ids[5]]


@settings(max_examples=40, deadline=None)
@given(raw=st.lists(st.integers(-1, 30), min_size=1, max_size=30))
def test_forest_counts_numpy_and_pure_agree_with_naive(raw: list[int]) -> None:
    from siyu.services.fission.forest import forest_counts

    parents = [p if p < i else -1 for i, p in enumerate(raw)]  # parents before children: a forest
    parent = {i: p for i, p in enumerate(parents) if p >= 0}
    for use_numpy in (True, False):
        counts = forest_counts(parents, use_numpy=use_numpy)
        for i in range(len(parents)):
            below = _naive_downline(parent, i)
            assert counts.total[i] == len(below)
            assert counts.direct[i] == sum(1 for p in parent.values() if p == i)
            kids = [c for c, p in parent.items() if p == i]
            assert counts.within2[i] == len(kids) + sum(1 for p in parent.values() if p in kids)
            assert counts.depth[i] == len(_chain_of(parent, i))


def _chain_of(parent: dict[int, int], node: int) -> list[int]:
    out = []
    while node in parent:
        node = parent[node]
        out.append(node)
    return out


def test_downline_counts_from_storage(ws: siyu.Workspace) -> None:
    a, b, c, d = users(ws, 4)
    ws.referrals.import_bindings([(b, a), (c, b), (d, b)])
    counts = ws.referrals.downline_counts()
    assert [counts.of(u) for u in (a, b, c, d, 99)] == [(1, 3, 3), (2, 2, 2), (0, 0, 0), (0, 0, 0), (0, 0, 0)]
    pure = ws.referrals.downline_counts(use_numpy=False)
    assert [list(x) for x in (pure.direct, pure.within2, pure.total)] == [
        list(x) for x in (counts.direct, counts.within2, counts.total)]



@settings(max_examples=40, deadline=None)
@given(steps=st.lists(st.tuples(st.sampled_from(["bind", "rebind", "unbind", "merge", "unmerge"]),
                                st.integers(1, N_USERS), st.integers(1, N_USERS)), max_size=30))
def test_merges_keep_the_stored_forest_consistent(steps: list[tuple[str, int, int]]) -> None:
    """Whatever binds, merges and unmerges do, the stored paths and counters agree
    with the edges (no cycles, exact downline sizes, exact uplines)."""
    with siyu.connect("memory://", clock=FakeClock(START)) as ws:
        ws.users.add_many([{} for _ in range(N_USERS)])
        merges: list[int] = []
        for op, x, y in steps:
            try:
                if op == "bind":
                    ws.referrals.bind(x, inviter_id=y)
                elif op == "rebind":
                    ws.referrals.rebind(x, inviter_id=y, reason="t")
                elif op == "unbind":
                    ws.referrals.unbind(x, reason="t")
                elif op == "merge":
                    merges.append(ws.users.merge(keep=x, drop=y).id)
                elif merges:
                    ws.users.unmerge(merges.pop())
            except siyu.errors.SiyuError:
                pass
        parent = {u: p for u in range(1, N_USERS + 1) if (p := ws.referrals.inviter_of(u)) is not None}
        for u in range(1, N_USERS + 1):
            chain = _chain(parent, u)
            assert u not in chain and len(chain) < N_USERS
            assert ws.referrals.upline(u, levels=None) == chain
            assert ws.referrals.downline_size(u) == len(_naive_downline(parent, u))
            assert ws.referrals.invitees(u, depth=None) == sorted(_naive_downline(parent, u))


def test_a_merged_inviters_printed_code_binds_to_the_kept_user(ws: siyu.Workspace) -> None:
    keep, drop, fan = users(ws, 3)
    code = ws.referrals.invite_code(drop, campaign="spring")  # already on a printed poster
    record = ws.users.merge(keep=keep, drop=drop)
    bound = ws.referrals.bind(fan, code)
    assert (bound.inviter_id, bound.code, bound.campaign) == (keep, code, "spring")
    ws.users.unmerge(record.id)
    assert ws.referrals.inviter_of(fan) == keep  # a binding made while merged stays


_TABLES = {  # the referral and fission state an order can touch, in a stable order
    "referral_purchases": "order_id", "referral_customers": "user_id",
    "referral_funnel": "campaign, channel_state, stage", "referral_actions": "user_id, action",
    "fission_processed": "kind, ref", "commission_entries": "id",
    # Not points_entry_id: a batch books every order's points before the observer grants rewards.
    "invite_rewards": "id", "referral_holds": "id",
}
_COLUMNS = {"invite_rewards": "id, task_id, user_id, stage, reward, status, at"}


def _state(ws: siyu.Workspace, people: list[int]) -> dict[str, object]:
    with ws.read() as tx:
        rows: dict[str, object] = {
            table: tx.execute(f"SELECT {_COLUMNS.get(table, '*')} FROM {table} ORDER BY {order}").fetchall()  # type: ignore[attr-defined]
            for table, order in _TABLES.items()}
    rows["points"] = [ws.points.balance(u) for u in people]
    rows["funnel"] = ws.referrals.stats("spring").funnel
    return rows


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    inviters=st.lists(st.sampled_from([None, 0, 1, 2]), min_size=8, max_size=8),
    customers=st.sets(st.integers(0, 10)),
    orders=st.lists(st.tuples(st.integers(0, 10), st.sampled_from(["TEA", "SAMPLE"]), st.integers(1, 3)),
                    min_size=1, max_size=25),
    tracked=st.lists(st.tuples(st.integers(0, 10), st.sampled_from(["first_login", "wecom_added"])), max_size=6),
)
def test_a_record_many_leaves_the_referral_state_of_one_order_at_a_time(
    inviters: list[int | None], customers: set[int], orders: list[tuple[int, str, int]],
    tracked: list[tuple[int, str]],
) -> None:
    """Bound and unbound buyers, held bindings, earlier customers, repeat buyers
    and 任务宝 tasks counting purchases: the batch observer ends where recording
    the orders one by one, each event on the per-event path, does."""
    states = []
    for batch in (True, False):
        with siyu.connect("memory://", clock=FakeClock(START)) as ws:
            ws.referrals.fraud.configure(burst=(2, timedelta(hours=1)), phone_prefix=None, shared_device=None,
                                         leave_after_reward=None)
            ws.products.add("TEA", "tea", price="100", cost="30", role="profit")
            ws.products.add("SAMPLE", "sample", price="9.90", cost="5", role="traffic")
            people = users(ws, 11)
            ws.referrals.tasks.create("t", campaign="spring", stages=[(1, Reward.of_points(10)),
                                                                      (2, Reward.of_points(20))],
                                      deadline=START + timedelta(days=7), valid=ValidInvite(purchase=True))
            for n, inviter in enumerate(inviters, 3):
                if inviter is not None:
                    code = ws.referrals.invite_code(people[inviter], campaign="spring", channel_state=f"s{n % 2}")
                    ws.referrals.bind(people[n], code)
            for n in sorted(customers):
                ws.orders.record(people[n], [{"sku": "TEA", "qty": 1}], paid_at=START - timedelta(days=1))
            if tracked:
                ws.events.track_many([{"user_id": people[u], "kind": k} for u, k in tracked])
            rows = [{"user_id": people[u], "lines": [{"sku": sku, "qty": qty}], "key": f"o{i}",
                     "paid_at": START + timedelta(minutes=i)} for i, (u, sku, qty) in enumerate(orders)]
            if batch:
                ws.orders.record_many(rows)
            else:
                # One order at a time, and every event down the per-event path the bulk one replaces.
                with mock.patch("siyu.services.referrals.record_unbound", return_value=set()):
                    for row in rows:
                        ws.orders.record(**row)
            assert ws.observer_errors == []
            states.append(_state(ws, people))
    assert states[0] == states[1]


def test_a_record_many_of_unbound_buyers_skips_the_per_order_path(ws: siyu.Workspace) -> None:
    ws.products.add("TEA", "tea", price="100", cost="30", role="profit")
    a, b, *buyers = users(ws, 40)
    ws.referrals.bind(b, inviter_id=a)
    rows = [{"user_id": u, "lines": [{"sku": "TEA", "qty": 1}]} for u in buyers for _ in range(2)]
    with mock.patch("siyu.storage.sql.referrals.SqlReferralStore.add_purchase", autospec=True) as one:
        one.return_value = True
        ws.orders.record_many([*rows, {"user_id": b, "lines": [{"sku": "TEA", "qty": 1}]}])
    assert one.call_count == 1  # only the bound buyer's order went one at a time
    assert ws.observer_errors == []
    with ws.read() as tx:
        assert set(tx.referrals.customers(buyers)) == set(buyers)
    assert ws.referrals.stats().funnel.converted == 1  # b, the one bound buyer
