"""Fraud guards on bindings, and fission metrics."""

from __future__ import annotations

from datetime import timedelta

import pytest

import siyu
from fission_fixtures import *  # noqa: F403 (the clock and ws fixtures)
from siyu.errors import Conflict, NotFound, ValidationError
from siyu.events import OrderLineInfo, OrderRecorded
from siyu.testing import FakeClock


def test_burst_holds_bindings_which_earn_nothing_until_released(ws: siyu.Workspace, clock: FakeClock) -> None:
    ws.referrals.fraud.configure(burst=(3, timedelta(hours=1)))
    alice = ws.users.add().id
    invitees = ws.users.add_many([{} for _ in range(5)])
    for uid in invitees:
        ws.referrals.bind(uid, inviter_id=alice)
    statuses = [ws.referrals.binding(u).status for u in invitees]  # type: ignore[union-attr]
    assert statuses == ["active"] * 3 + ["held"] * 2
    held = ws.referrals.fraud.held("binding")
    assert [h.subject_id for h in held] == invitees[3:] and "burst" in held[0].reasons[0]
    assert ws.referrals.leaderboard() == [(alice, 3)]
    assert ws.referrals.inviter_of(invitees[4]) == alice  # still bound: nobody else can grab them
    ws.referrals.fraud.release(held[0].id)
    ws.referrals.fraud.reject(held[1].id, by="operator:li")
    assert ws.referrals.leaderboard() == [(alice, 4)]
    assert ws.referrals.inviter_of(invitees[4]) is None
    assert ws.referrals.history(invitees[4])[-1].reason == "fraud review rejected by operator:li"
    with pytest.raises(Conflict):
        ws.referrals.fraud.reject(held[1].id)
    with pytest.raises(NotFound):
        ws.referrals.fraud.release(999)
    clock.advance(hours=2)
    assert ws.referrals.bind(ws.users.add().id, inviter_id=alice).status == "active"


def test_shared_device_and_phone_batches(ws: siyu.Workspace) -> None:
    ws.referrals.fraud.configure(shared_device=3, phone_prefix=(9, 3), burst=None)
    alice, bob = ws.users.add().id, ws.users.add().id
    devices = [ws.users.add().id for _ in range(3)]
    for uid in devices:
        ws.referrals.bind(uid, inviter_id=alice, device="dev-1")
    assert [ws.referrals.binding(u).status for u in devices] == ["active", "active", "held"]  # type: ignore[union-attr]
    phones = [ws.users.add(phone=f"1380013800{i}").id for i in range(3)]
    for uid in phones:
        ws.referrals.bind(uid, inviter_id=bob)
    assert [ws.referrals.binding(u).status for u in phones] == ["active", "active", "held"]  # type: ignore[union-attr]
    assert "phone batch" in ws.referrals.fraud.held()[-1].reasons[0]


def test_fraud_settings_validate_and_persist(ws: siyu.Workspace, clock: FakeClock) -> None:
    with pytest.raises(ValidationError):
        ws.referrals.fraud.configure(nope=1)
    with pytest.raises(ValidationError):
        ws.referrals.fraud.configure(burst=5)
    with pytest.raises(ValidationError):
        ws.referrals.fraud.configure(inactive_share=2)
    ws.referrals.fraud.configure(burst=None, inactive_share=0.3)
    assert ws.referrals.fraud.settings().burst is None
    assert ws.referrals.fraud.settings().inactive_share == 0.3


def test_stats(ws: siyu.Workspace) -> None:
    ws.referrals.fraud.configure(burst=None)
    seeds = ws.users.add_many([{}, {}])
    codes = [ws.referrals.invite_code(s, campaign="spring", channel_state=st)
             for s, st in zip(seeds, ["poster_a", "poster_b"], strict=True)]
    ws.referrals.record_share(seeds[0], campaign="spring", channel_state="poster_a", count=10)
    ws.referrals.record_share(seeds[1], campaign="spring", channel_state="poster_b", count=10)
    for _ in range(3):
        ws.referrals.record_scan(codes[0])
    gen1 = ws.users.add_many([{} for _ in range(3)])
    for uid in gen1:
        ws.referrals.bind(uid, codes[0])
    gen2 = ws.users.add_many([{} for _ in range(2)])
    child_code = ws.referrals.invite_code(gen1[0], campaign="spring", channel_state="poster_a")
    for uid in gen2:
        ws.referrals.bind(uid, child_code)
    ws.referrals.bind(ws.users.add().id, codes[1])
    ws.referrals.siyu_on_event(OrderRecorded(
        at=ws.now(), order_id=1, user_id=gen1[1], total_fen=100,
        lines=(OrderLineInfo(sku="x", qty=1, paid_fen=100, role="profit"),), channel=None, paid_at=ws.now()))
    stats = ws.referrals.stats("spring")
    assert (stats.seed_users, stats.new_users, stats.fission_rate) == (2, 6, 3.0)
    assert stats.generations == {1: 4, 2: 2} and stats.max_depth == 2
    assert stats.invites_sent == 20
    assert stats.k_factor == pytest.approx((20 / 3) * (6 / 20))
    # Only 3 scans were recorded for poster_a's 5 bindings: the stage still counts everyone who went on to bind.
    assert (stats.funnel.sent, stats.funnel.scanned, stats.funnel.bound, stats.funnel.converted) == (20, 6, 6, 1)
    assert stats.by_channel_state["poster_a"].bound == 5 and stats.by_channel_state["poster_b"].bound == 1
    assert stats.top_inviters[0] == (seeds[0], 3)
    assert ws.referrals.stats("nothing").fission_rate == 0.0
    assert ws.referrals.stats().new_users == 6


def test_erasure_forgets_device_fingerprints(ws: siyu.Workspace) -> None:
    alice, bob = ws.users.add().id, ws.users.add().id
    ws.referrals.bind(bob, inviter_id=alice, device="fp-123")
    ws.privacy.erase(bob)
    binding = ws.referrals.binding(bob)
    assert binding is not None and binding.inviter_id == alice and binding.device is None


def test_rejecting_a_stale_binding_hold_keeps_a_later_rebind(ws: siyu.Workspace) -> None:
    ws.referrals.fraud.configure(burst=(1, timedelta(hours=1)))
    alice, bob, first, x = ws.users.add_many([{}, {}, {}, {}])
    ws.referrals.bind(first, inviter_id=alice)
    ws.referrals.bind(x, inviter_id=alice)
    [hold] = ws.referrals.fraud.held("binding")
    ws.referrals.rebind(x, inviter_id=bob, reason="support ticket: bob brought them")
    ws.referrals.fraud.reject(hold.id, by="operator:li")
    assert ws.referrals.inviter_of(x) == bob  # the operator's later correction stands
    assert ws.referrals.fraud.holds("rejected")[0].id == hold.id
