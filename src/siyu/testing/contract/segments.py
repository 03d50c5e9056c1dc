"""Contract: segments, snapshots, lifecycle history, tracked events, tag rules."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest

import siyu
from siyu.errors import SegmentReferenceError
from siyu.storage.base import Capability
from siyu.testing import FakeClock

from .base import ContractBase


class SegmentsContract(ContractBase):
    def test_segment_queries_follow_writes(self, ws: siyu.Workspace) -> None:
        ids = ws.users.add_many([
            {"source": "douyin_live", "attributes": {"city": "上海", "age": 30}, "phone": "13800138001"},
            {"source": "wecom", "attributes": {"city": "北京", "age": 17}},
            {"attributes": {"city": "上海"}},
        ])
        ws.tags.apply_many(ids[:2], "interest/running")
        ws.points.earn(ids[0], 120, reason="x", key="seg-contract:1")
        assert ws.segments.users('tag:interest/running and attr.city = "上海"') == [ids[0]]
        assert ws.segments.users("points >= 100 or attr.age < 18") == ids[:2]
        assert ws.segments.users('source = "wecom" or has(phone)') == ids[:2]
        assert ws.segments.count("not tag:interest/running") == 1
        ws.tags.remove(ids[0], "interest/running")
        ws.users.update(ids[2], attributes={"city": "北京"})
        assert ws.segments.users('tag:interest/running or attr.city = "北京"') == ids[1:]
        with pytest.raises(SegmentReferenceError):
            ws.segments.count("tag:interest/swimming")

    def test_changes_from_another_connection(self, connect: Callable[..., siyu.Workspace],
                                             caps: frozenset[str]) -> None:
        if Capability.MULTI_PROCESS not in caps:
            pytest.skip("the backend does not share a database between connections")
        one, two = connect(), connect()
        ids = one.users.add_many([{}, {}, {}])
        one.tags.apply_many(ids, "x/a")
        assert two.segments.count("tag:x/a") == 3
        one.tags.remove_many(ids[:2], "x/a")
        one.tags.apply(ids[0], "x/b")
        assert two.segments.users("tag:x/a or tag:x/b") == [ids[0], ids[2]]

    def test_saved_segments_and_snapshots_are_stored(self, connect: Callable[..., siyu.Workspace],
                                                     caps: frozenset[str]) -> None:
        ws = connect()
        ids = ws.users.add_many([{}, {}, {}])
        ws.tags.apply_many(ids[:2], "x/a")
        ws.segments.save("two", "tag:x/a", description="first two")
        snap = ws.segments.snapshot("two", key="contract-snap")
        ws.tags.apply(ids[2], "x/a")
        other = connect() if Capability.MULTI_PROCESS in caps else ws
        assert other.segments.get("two").description == "first two"
        assert other.segments.get_snapshot(snap.id).users() == ids[:2]
        assert other.segments.snapshot("two", key="contract-snap").id == snap.id
        assert [s["count"] for s in other.segments.snapshots("two")] == [2]
        assert other.segments.count("segment:two") == 3

    def test_lifecycle_and_events(self, ws: siyu.Workspace, clock: FakeClock) -> None:
        a, b = ws.users.add_many([{}, {}])
        assert ws.lifecycle.sweep() == {"new": 2}
        assert ws.events.track(a, "page_view", key="contract-ev:1") is True
        assert ws.events.track(a, "page_view", key="contract-ev:1") is False
        ws.events.track(b, "added_to_cart", properties={"sku": "A"})
        assert ws.lifecycle.record_order(b, 99) == "customer"
        assert ws.lifecycle.record_order(b, 99) is None
        assert [c.to_stage for c in ws.lifecycle.history(b)] == ["new", "intent", "customer"]
        assert ws.events.of(b)[0].properties == {"sku": "A"}
        clock.advance(timedelta(days=31))
        assert ws.lifecycle.sweep() == {"dormant": 2}
        assert ws.lifecycle.mark_lost(a, "del_follow_user") is True
        counts = ws.lifecycle.counts()
        assert (counts["dormant"], counts["lost"]) == (1, 1)
        assert ws.segments.users("tag:lifecycle/lost") == [a]

    def test_tag_rules(self, ws: siyu.Workspace) -> None:
        ids = ws.users.add_many([{"attributes": {"age": n}} for n in (10, 20, 30)])
        ws.tags.rules.add("age/adult", "attr.age >= 18")
        assert ws.tags.rules.run()["age/adult"].applied == tuple(ids[1:])
        ws.users.update(ids[0], attributes={"age": 40})
        assert ws.tags.users("age/adult") == ids
        assert [r.tag for r in ws.tags.rules.list()] == ["age/adult"]
