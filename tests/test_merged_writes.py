"""A merged-away user accepts no writes: every write API that takes a user id
refuses it with :class:`~siyu.errors.UserMerged` and changes nothing.

Found by difference, so new write APIs are covered: a call that writes for an
active user must refuse the same call for a merged-away one.
"""

from __future__ import annotations

import inspect
from decimal import Decimal
from typing import Any

import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, given, settings

import siyu
from siyu.errors import LegalHold, SiyuError, UserMerged
from siyu.testing import FakeClock, RecordingChannel
from sweep_support import METHODS, SEED, SIGNATURES, START, USER_PARAMS, digest, resolve, seeded, valid_values

#: Audit entries: reading a merged-away record is allowed (it is the person's data
#: too) and so is recording what was done with it.
AUDITED_READS = {"privacy.export", "privacy.log"}

WITH_USERS = [
    name for name in METHODS
    if name not in AUDITED_READS and any(p in USER_PARAMS for p in SIGNATURES[name].parameters)
]


def _call(name: str, user: int) -> tuple[bool, bool, BaseException | None]:
    """Call ``name`` with ``user`` for every user parameter and valid values elsewhere;
    return (succeeded, storage changed, error)."""
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    for param in SIGNATURES[name].parameters.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        if param.name in USER_PARAMS:
            value: Any = user
        elif param.default is not inspect.Parameter.empty:
            continue
        else:
            value = valid_values(param.name)[0]
        if param.kind is param.KEYWORD_ONLY:
            kwargs[param.name] = value
        else:
            args.append(value)
    with seeded(FakeClock(START)) as ws:
        before = digest(ws)
        try:
            resolve(ws, name)(*args, **kwargs)
        except SiyuError as exc:
            assert digest(ws) == before
            return False, False, exc
        return True, digest(ws) != before, None


@pytest.mark.parametrize("name", WITH_USERS)
def test_a_merged_away_user_accepts_no_writes(name: str) -> None:
    seeded(FakeClock(START)).close()
    merged = SEED.users[3]
    if not any(all(_call(name, active)[:2]) for active in SEED.users[:3]):
        # A read (or a call these values make a no-op): it may answer for a merged-away user,
        # but must not write for them.
        assert not _call(name, merged)[1], f"{name} wrote for merged-away user {merged}"
        return
    ok, _, error = _call(name, merged)
    assert not ok and isinstance(error, UserMerged), f"{name} accepted merged-away user {merged}: {error!r}"
    assert error.merged_into == SEED.users[2] and str(merged) in str(error)


# -- unmerge is total ---------------------------------------------------------------------------------


def test_the_reported_case_tag_after_merge_then_unmerge(ws: siyu.Workspace) -> None:
    a, b = ws.users.add().id, ws.users.add().id
    ws.tags.apply(b, "interest/yoga")
    merge = ws.users.merge(keep=a, drop=b)
    with pytest.raises(UserMerged) as caught:
        ws.tags.apply(b, "interest/yoga")
    assert caught.value.user_id == b and caught.value.merged_into == a
    assert f"user {b} was merged into user {a}" in str(caught.value)
    ws.users.unmerge(merge.id)
    assert ws.tags.of(b) == {"interest/yoga"} and ws.tags.of(a) == set()


def test_both_held_the_tag_before_the_merge(ws: siyu.Workspace) -> None:
    a, b = ws.users.add().id, ws.users.add().id
    ws.tags.apply_many([a, b], "interest/yoga")
    merge = ws.users.merge(keep=a, drop=b)
    ws.users.unmerge(merge.id)
    assert ws.tags.of(a) == ws.tags.of(b) == {"interest/yoga"}


def test_unmerge_keeps_what_an_older_siyu_wrote_to_the_merged_away_user(ws: siyu.Workspace) -> None:
    """Databases written before merged-away users refused writes may hold tags on them."""
    ws.tags.define_group("stage", exclusive=True)
    a, b = ws.users.add().id, ws.users.add().id
    ws.tags.apply(b, "interest/yoga")
    ws.tags.apply(b, "stage/new")
    merge = ws.users.merge(keep=a, drop=b)
    with ws.write() as tx:  # what the old tags.apply_many did: no status check
        yoga, vip = ws.tags.define("interest/yoga"), ws.tags.define("stage/vip")
        ids = {f"{g}/{n}": t for t, g, n in tx.tags.tags()}
        tx.tags.apply([(b, ids[yoga]), (b, ids[vip])], ws.now(), "api")
    ws.users.unmerge(merge.id)
    assert ws.tags.of(b) == {"interest/yoga", "stage/vip"}  # the later exclusive tag wins


def test_a_campaign_round_run_while_merged_does_not_block_unmerge(ws: siyu.Workspace) -> None:
    rec = ws.channels.install(RecordingChannel())
    ids = ws.users.add_many([{} for _ in range(20)])
    for uid in ids:
        ws.users.consent(uid, purpose="marketing", channel=rec.name)
    ws.campaigns.create("x", channel=rec.name, template="hi", audience=ids, variants={"A": {}, "B": {}})
    ws.campaigns.pilot("x", fraction=0.3, holdout=False)
    piloted = {d.user_id for d in ws.campaigns.deliveries("x")}
    drop = min(piloted)
    keep = min(set(ids) - piloted)
    merge = ws.users.merge(keep=keep, drop=drop)
    ws.campaigns.rollout("x", variant="A")  # drop is skipped as inactive in the roll-out
    ws.users.unmerge(merge.id)
    mine = {d.user_id: (d.phase, d.status) for d in ws.campaigns.deliveries("x") if d.user_id in (keep, drop)}
    assert mine == {drop: ("pilot", "sent")}  # keep was never sent anything; the next resume reaches them


OPS = st.lists(
    st.tuples(
        # Merges and tags weigh more: the clashes need a write before and after a merge.
        st.sampled_from(["tag", "tag", "stage", "earn", "spend", "coupon", "order", "track", "suppress", "merge",
                         "merge", "unmerge", "legacy_tag", "legacy_earn", "pilot", "rollout"]),
        st.integers(0, 2),
        st.integers(0, 2),
    ),
    max_size=20,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=OPS)
def test_unmerge_always_succeeds_newest_first(ops: list[tuple[str, int, int]]) -> None:
    """Whatever happened since, undoing merges newest first never fails."""
    with siyu.connect("memory://", clock=FakeClock(START)) as ws:
        rec = ws.channels.install(RecordingChannel())
        ws.tags.define_group("stage", exclusive=True)
        ws.products.add("sku1", "Tea", price=Decimal("10"), cost=Decimal("1"))
        ws.coupons.create("c1", amount=Decimal("1"), per_user_limit=None)
        users = ws.users.add_many([{} for _ in range(3)])
        for uid in users:
            ws.users.consent(uid, purpose="marketing", channel=rec.name)
        ws.campaigns.create("x", channel=rec.name, template="hi", audience=users, variants={"A": {}, "B": {}})
        merges: list[int] = []
        for n, (op, i, j) in enumerate(ops):
            u, v = users[i], users[j]
            try:
                if op == "tag":
                    ws.tags.apply(u, "interest/yoga")
                elif op == "stage":
                    ws.tags.apply(u, f"stage/s{j}")
                elif op == "earn":
                    ws.points.earn(u, 10, reason="r", key=f"e{n}")
                elif op == "spend":
                    ws.points.spend(u, 3, reason="r", key=f"s{n}")
                elif op == "coupon":
                    ws.coupons.issue("c1", u)
                elif op == "order":
                    ws.orders.record(u, [{"sku": "sku1", "qty": 1}], key=f"o{n}")
                elif op == "track":
                    ws.events.track(u, "page_view", properties={"n": n})
                elif op == "suppress":
                    ws.campaigns.suppress(u, channel="*")
                elif op == "merge":
                    merges.append(ws.users.merge(keep=u, drop=v).id)
                elif op == "unmerge" and merges:
                    ws.users.unmerge(merges.pop())
                elif op in ("legacy_tag", "legacy_earn"):
                    with ws.write() as tx:  # a write an older siyu let through to a merged-away user
                        if op == "legacy_tag":
                            tag = ws.tags.define(f"stage/s{j}")
                            tag_id = {f"{g}/{n_}": t for t, g, n_ in tx.tags.tags()}[tag]
                            if not tx.tags.held([(u, tag_id)]):
                                tx.tags.apply([(u, tag_id)], ws.now(), "api")
                        else:
                            from siyu.storage.contracts import NewEntry

                            tx.points.append([NewEntry(user_id=u, kind="earn", amount=5, reason="legacy",
                                                       at=ws.now(), key=f"l{n}", fingerprint="legacy")])
                elif op == "pilot":
                    ws.campaigns.pilot("x", fraction=0.5, holdout=False)
                elif op == "rollout":
                    ws.campaigns.rollout("x", variant="A")
            except SiyuError:
                pass
        for merge_id in reversed(merges):
            ws.users.unmerge(merge_id)
        assert ws.users.count() == 3


def test_a_hold_placed_before_a_merge_still_blocks_erasure(ws: siyu.Workspace) -> None:
    a, b = ws.users.add(phone="13800138000").id, ws.users.add(phone="13900139000").id
    hold = ws.privacy.hold(b, reason="court order")
    ws.users.merge(keep=a, drop=b)
    with pytest.raises(LegalHold, match=f"user {b} is under legal hold"):
        ws.privacy.erase(a)
    with pytest.raises(UserMerged, match=f"erase user {a}"):
        ws.privacy.erase(b)
    ws.privacy.release_hold(hold.id)
    ws.privacy.erase(a)
    assert ws.users.find(phone="13900139000") is None
