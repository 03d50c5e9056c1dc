"""The lifecycle stage machine and ws.events tracking."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import siyu
from siyu.errors import NotFound, ValidationError
from siyu.events import Event, LifecycleChanged, OrderLineInfo, OrderRecorded
from siyu.services.lifecycle import STAGES, next_stage
from siyu.testing import FakeClock, log_events


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2026, 11, 22, 2, 0, tzinfo=UTC))


@pytest.fixture(params=["memory", "sqlite"])
def ws(request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock) -> Iterator[siyu.Workspace]:
    url = "memory://" if request.param == "memory" else f"sqlite:///{tmp_path / 'life.db'}"
    with siyu.connect(url, clock=clock) as workspace:
        yield workspace


def _stages(ws: siyu.Workspace, uid: int) -> list[str]:
    return [c.to_stage for c in ws.lifecycle.history(uid)]


def test_main_path(ws: siyu.Workspace, clock: FakeClock) -> None:
    changes: list[Event] = []
    ws.subscribe(lambda e: changes.append(e) if isinstance(e, LifecycleChanged) else None)
    u = ws.users.add().id
    assert ws.lifecycle.stage(u) is None
    assert ws.lifecycle.sweep() == {"new": 1}
    assert ws.lifecycle.stage(u) == "new"
    assert ws.events.track(u, "page_view", key="pv:1") is True
    assert ws.events.track(u, "page_view", key="pv:1") is False
    assert ws.lifecycle.stage(u) == "interacted"
    ws.events.track(u, "message_received")
    assert ws.lifecycle.stage(u) == "interacted"
    ws.events.track(u, "added_to_cart")
    assert ws.lifecycle.stage(u) == "intent"
    assert ws.lifecycle.record_order(u, 10) == "customer"
    assert ws.lifecycle.record_order(u, 10) is None  # the same order again changes nothing
    assert ws.lifecycle.record_order(u, 11) == "repeat"
    assert _stages(ws, u) == ["new", "interacted", "intent", "customer", "repeat"]
    assert [(c.from_stage, c.to_stage) for c in changes if isinstance(c, LifecycleChanged)][-1] == (
        "customer", "repeat")
    assert ws.tags.of(u) == {"lifecycle/repeat"}
    assert ws.segments.users("tag:lifecycle/repeat") == [u]
    assert ws.tags.history(u)[-1].by == "lifecycle"


def test_dormant_recalled_lost(ws: siyu.Workspace, clock: FakeClock) -> None:
    a, b, c = ws.users.add_many([{}, {}, {}])
    assert ws.lifecycle.sweep() == {"new": 3}
    ws.events.track(a, "page_view")
    clock.advance(days=20)
    ws.events.track(b, "page_view")
    clock.advance(days=11)
    assert ws.lifecycle.sweep() == {"dormant": 2}  # a (31 idle days) and c (never active, created 31 days ago)
    assert ws.lifecycle.stage(b) == "interacted"
    assert ws.lifecycle.sweep() == {}
    ws.events.track(a, "message_received")
    assert ws.lifecycle.stage(a) == "recalled"
    # an old event imported late does not recall anyone
    ws.events.track(c, "page_view", at=clock.now - timedelta(days=25))
    assert ws.lifecycle.stage(c) == "dormant"
    assert ws.lifecycle.mark_lost(b, "del_follow_user") is True
    assert ws.lifecycle.mark_lost(b, "del_follow_user") is False
    assert ws.lifecycle.history(b)[-1].reason == "lost:del_follow_user"
    ws.events.track(b, "added_to_cart")
    assert ws.lifecycle.stage(b) == "recalled"
    ws.events.track(b, "added_to_cart")
    assert ws.lifecycle.stage(b) == "intent"
    counts = ws.lifecycle.counts()
    assert list(counts)[: len(STAGES)] == list(STAGES)
    assert (counts["recalled"], counts["dormant"], counts["intent"]) == (1, 1, 1)


def test_dormancy_is_configurable(ws: siyu.Workspace, clock: FakeClock) -> None:
    u = ws.users.add().id
    ws.events.track(u, "page_view")
    ws.lifecycle.configure(dormant_after_days=7, intent_events=["asked_price"])
    clock.advance(days=8)
    assert ws.lifecycle.sweep() == {"dormant": 1}
    ws.events.track(u, "asked_price")
    ws.events.track(u, "asked_price")
    assert ws.lifecycle.stage(u) == "intent"
    assert ws.lifecycle.settings() == {"dormant_after_days": 7, "intent_events": ["asked_price"]}
    with pytest.raises(ValidationError):
        ws.lifecycle.configure(dormant_after_days=0)


def test_orders_from_the_commerce_event(ws: siyu.Workspace, clock: FakeClock) -> None:
    u = ws.users.add().id
    event = OrderRecorded(at=clock.now, order_id=7, user_id=u, total_fen=9900,
                          lines=(OrderLineInfo(sku="A", qty=1, paid_fen=9900, role="profit"),),
                          channel=None, paid_at=clock.now)
    log_events(ws, [event])
    log_events(ws, [event])
    assert ws.lifecycle.stage(u) == "customer"
    assert ws.users.get(u).last_active_at == clock.now
    assert ws.observer_errors == []


def test_events_tracking(ws: siyu.Workspace, clock: FakeClock) -> None:
    a, b = ws.users.add_many([{}, {}])
    n = ws.events.track_many([
        {"user_id": a, "kind": "page_view", "at": clock.now - timedelta(hours=3), "properties": {"url": "/p/1"}},
        {"user_id": a, "kind": "page_view", "key": "k1"},
        {"user_id": b, "kind": "live_watched", "key": "k1"},  # same key: skipped
    ])
    assert n == 2
    assert [e.kind for e in ws.events.of(a)] == ["page_view", "page_view"]
    assert ws.events.of(a)[-1].properties == {"url": "/p/1"}
    assert ws.users.get(a).last_active_at == clock.now
    assert ws.users.get(b).last_active_at is None
    assert ws.segments.users("days_since(last_active) <= 0") == [a]
    for bad in [{"user_id": a, "kind": "Page View"}, {"user_id": a, "kind": "x", "at": clock.now + timedelta(days=2)},
                {"user_id": a, "kind": "x", "at": datetime(2026, 1, 1)}, {"user_id": a, "kind": "x", "extra": 1},
                {"user_id": a, "kind": "x", "properties": {"f": object()}}]:
        with pytest.raises(ValidationError):
            ws.events.track_many([{"user_id": b, "kind": "ok"}, bad])
    with pytest.raises(NotFound):
        ws.events.track(999, "page_view")
    assert ws.events.of(b) == []  # the failed batches changed nothing


def test_merge_moves_history_and_events(ws: siyu.Workspace) -> None:
    a, b = ws.users.add_many([{}, {}])
    ws.events.track(b, "page_view")
    merge = ws.users.merge(keep=a, drop=b)
    assert [e.kind for e in ws.events.of(a)] == ["page_view"]
    assert "interacted" in _stages(ws, a)
    ws.users.unmerge(merge.id)
    assert ws.events.of(a) == [] and _stages(ws, b) == ["interacted"]


def test_next_stage_table() -> None:
    assert next_stage(None, "created") == "new"
    assert next_stage("new", "created") is None
    assert next_stage("customer", "interaction") is None
    assert next_stage("customer", "intent") is None
    assert next_stage("repeat", "order") is None
    assert next_stage("lost", "dormant") is None
    assert next_stage("dormant", "order") == "customer"
    with pytest.raises(ValueError):
        next_stage("new", "bogus")
