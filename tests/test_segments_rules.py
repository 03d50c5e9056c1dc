"""Rule-based tags (ws.tags.rules) and engine consistency around transactions."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import siyu
from siyu.errors import NotFound, SegmentReferenceError, SegmentSyntaxError, ValidationError
from siyu.testing import FakeClock


@pytest.fixture(params=["memory", "sqlite"])
def ws(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[siyu.Workspace]:
    url = "memory://" if request.param == "memory" else f"sqlite:///{tmp_path / 'rules.db'}"
    with siyu.connect(url, clock=FakeClock(datetime(2026, 11, 22, tzinfo=UTC))) as workspace:
        yield workspace


def test_rule_keeps_tag_equal_to_segment(ws: siyu.Workspace) -> None:
    ids = ws.users.add_many([{"attributes": {"age": age}} for age in (10, 20, 30, 40)])
    ws.tags.rules.add("age/adult", "attr.age >= 18")
    diff = ws.tags.rules.run()
    assert diff["age/adult"].applied == tuple(ids[1:]) and diff["age/adult"].removed == ()
    assert ws.tags.rules.run()["age/adult"].changed is False
    ws.tags.rules.auto = False
    ws.users.update(ids[1], attributes={"age": 17})
    ws.users.update(ids[0], attributes={"age": 18})
    diff = ws.tags.rules.run("age/adult")
    assert (diff["age/adult"].applied, diff["age/adult"].removed) == ((ids[0],), (ids[1],))
    assert ws.tags.users("age/adult") == [ids[0], ids[2], ids[3]]
    assert {h.by for h in ws.tags.history(ids[1])} == {"rule:age/adult"}


def test_rules_rerun_after_relevant_changes(ws: siyu.Workspace) -> None:
    ids = ws.users.add_many([{}, {}, {}])
    ws.tags.rules.add("value/points_rich", "points >= 100")
    ws.tags.rules.run()
    ws.points.earn(ids[0], 150, reason="x", key="k1")
    assert ws.tags.users("value/points_rich") == [ids[0]]  # re-run by the PointsEarned event
    ws.points.spend(ids[0], 100, reason="y", key="k2")
    assert ws.tags.users("value/points_rich") == []
    ws.tags.define("interest/a")
    ws.tags.define("interest/b")
    ws.tags.rules.add("interest/both", "tag:interest/a and tag:interest/b")
    ws.tags.apply(ids[1], "interest/a")
    ws.tags.apply(ids[1], "interest/b")
    assert ws.tags.users("interest/both") == [ids[1]]


def test_money_rule_with_a_registered_metric(ws: siyu.Workspace) -> None:
    ids = ws.users.add_many([{}, {}, {}])
    spend = {ids[0]: Decimal("499.99"), ids[1]: Decimal("500.00"), ids[2]: Decimal("1200")}
    ws.segments.register_metric("test_spend", lambda tx, now: spend, counters=("test_orders",))
    ws.tags.rules.add("value/high", "test_spend >= 500", group_exclusive=True)
    ws.tags.rules.add("value/low", "test_spend < 500 or test_spend >= 1000")
    diff = ws.tags.rules.run()
    # value is exclusive: ids[2] matches both rules and keeps the tag of the rule added first
    assert ws.tags.users("value/high") == [ids[1], ids[2]]
    assert ws.tags.users("value/low") == [ids[0]]
    assert diff["value/low"].applied == (ids[0],)
    assert not any(d.changed for d in ws.tags.rules.run().values())


def test_invalid_rules_are_rejected_at_add(ws: siyu.Workspace) -> None:
    ws.tags.define("a/x")
    with pytest.raises(SegmentSyntaxError):
        ws.tags.rules.add("a/y", "tag:a/x and (")
    with pytest.raises(SegmentReferenceError):
        ws.tags.rules.add("a/y", "tag:a/nope")
    with pytest.raises(SegmentReferenceError, match="its own tag"):
        ws.tags.rules.add("a/x", "not tag:a/x")
    ws.tags.rules.add("a/y", "not tag:a/x")
    with pytest.raises(SegmentReferenceError, match="its own tag"):
        ws.tags.rules.add("a/x", "tag:a/y")
    ws.segments.save("ys", "tag:a/y")
    with pytest.raises(SegmentReferenceError, match="its own tag"):
        ws.tags.rules.add("a/x", "segment:ys")
    with pytest.raises(ValidationError):
        ws.tags.rules.add("a/" + "z" * 31, "tag:a/x")
    ws.tags.rules.add("a/w", "segment:ys")
    with pytest.raises(ValidationError, match="rule"):
        ws.segments.delete("ys")
    assert [r.tag for r in ws.tags.rules.list()] == ["a/y", "a/w"]
    assert ws.tags.rules.remove("a/w") is True
    with pytest.raises(NotFound):
        ws.tags.rules.get("a/w")
    with pytest.raises(NotFound):
        ws.tags.rules.run("a/w")


def test_time_based_rule(ws: siyu.Workspace) -> None:
    clock: Any = ws.clock
    u = ws.users.add().id
    ws.events.track(u, "page_view")
    ws.tags.rules.add("activity/recent", "days_since(last_active) <= 7")
    ws.tags.rules.run()
    assert ws.tags.users("activity/recent") == [u]
    clock.advance(days=8)
    assert ws.tags.rules.run()["activity/recent"].removed == (u,)


def test_rolled_back_writes_do_not_poison_the_cache(ws: siyu.Workspace) -> None:
    ids = ws.users.add_many([{}, {}])
    ws.tags.apply(ids[0], "x/a")
    assert ws.segments.count("tag:x/a") == 1
    with pytest.raises(RuntimeError), ws.write():
        ws.tags.apply(ids[1], "x/a")
        assert ws.segments.count("tag:x/a") == 2  # the transaction sees its own write
        raise RuntimeError("roll back")
    assert ws.segments.count("tag:x/a") == 1
    ws.tags.apply(ids[1], "x/b")
    assert ws.segments.users("tag:x/a or tag:x/b") == ids


def test_snapshot_inside_a_campaign_transaction(ws: siyu.Workspace) -> None:
    ids = ws.users.add_many([{}, {}, {}])
    ws.tags.apply_many(ids[:2], "x/a")
    with ws.write():
        snap = ws.segments.snapshot("a", expression="tag:x/a", key="c1")
    assert ws.segments.get_snapshot(snap.id).users() == ids[:2]
    assert snap.created_at == ws.now()
