"""The segment engine on real storage: naive equivalence, algebra laws, caches, snapshots."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import siyu
from siyu.errors import NotFound, SegmentReferenceError, ValidationError
from siyu.segments import to_text
from siyu.segments.ast import And, Attr, Compare, DaysSince, Has, Metric, Node, Not, Or, Source, Tag
from siyu.testing import FakeClock

TAGS = [("interest", "running"), ("interest", "yoga"), ("兴趣", "瑜伽"), ("value", "high"), ("default", "churned")]
CITIES = ["上海", "北京", "深圳"]
SOURCES = ["douyin_live", "wecom", "xhs"]


@pytest.fixture(params=["memory", "sqlite"])
def ws(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[siyu.Workspace]:
    url = "memory://" if request.param == "memory" else f"sqlite:///{tmp_path / 'seg.db'}"
    clock = FakeClock(datetime(2026, 11, 22, 4, 0, tzinfo=UTC))
    with siyu.connect(url, clock=clock) as workspace:
        _populate(workspace, clock, random.Random(7))
        yield workspace


def _populate(ws: siyu.Workspace, clock: FakeClock, rng: random.Random, n: int = 60) -> None:
    rows: list[dict[str, Any]] = []
    for i in range(n):
        attributes: dict[str, Any] = {}
        if rng.random() < 0.8:
            attributes["city"] = rng.choice(CITIES)
        if rng.random() < 0.7:
            attributes["age"] = rng.randint(16, 60)
        if rng.random() < 0.3:
            attributes["vip"] = rng.random() < 0.5
        row: dict[str, Any] = {"attributes": attributes, "created_at": clock.now - timedelta(days=rng.randint(0, 90))}
        if rng.random() < 0.7:
            row["source"] = rng.choice(SOURCES)
        if rng.random() < 0.4:
            row["phone"] = f"1380013{i:04d}"
        rows.append(row)
    ids = ws.users.add_many(rows)
    for group, name in TAGS:
        ws.tags.apply_many([u for u in ids if rng.random() < 0.4], f"{group}/{name}")
    for u in ids:
        if rng.random() < 0.5:
            ws.points.earn(u, rng.randint(1, 300), reason="seed", key=f"seed:{u}")
    with ws.write() as tx:
        for u in ids:
            if rng.random() < 0.6:
                tx.activity.touch({u: clock.now - timedelta(days=rng.randint(0, 60), hours=rng.randint(0, 23))})
        tx.meta.bump("activity")
    ws.users.merge(keep=ids[0], drop=ids[1])


# -- a naive evaluator over the public API ------------------------------------------------------
def _facts(ws: siyu.Workspace) -> dict[int, dict[str, Any]]:
    facts = {}
    for uid in ws.users.ids():
        user = ws.users.get(uid)
        facts[uid] = {
            "tags": ws.tags.of(uid),
            "attributes": user.attributes,
            "source": user.source,
            "kinds": {i.kind for i in user.identities},
            "points": ws.points.balance(uid),
            "last_active": user.last_active_at,
            "first_seen": user.created_at,
        }
    return facts


def _cmp(value: Any, op: str, literal: Any) -> bool:
    if value is None:
        return False
    if op == "in":
        return any(_cmp(value, "=", one) for one in literal)
    number = (int, float, Decimal)
    same = (isinstance(value, bool) and isinstance(literal, bool)) or (
        isinstance(value, number) and not isinstance(value, bool)
        and isinstance(literal, number) and not isinstance(literal, bool)
    ) or (isinstance(value, str) and isinstance(literal, str))
    if op == "!=":
        return not (same and value == literal)
    if not same:
        return False
    return {"=": value == literal, "<": value < literal, "<=": value <= literal, ">": value > literal,
            ">=": value >= literal}[op]


def naive(node: Node, f: dict[str, Any], now: datetime, tz: Any) -> bool:
    if isinstance(node, Tag):
        return node.full in f["tags"]
    if isinstance(node, Not):
        return not naive(node.item, f, now, tz)
    if isinstance(node, And):
        return all(naive(i, f, now, tz) for i in node.items)
    if isinstance(node, Or):
        return any(naive(i, f, now, tz) for i in node.items)
    if isinstance(node, Has):
        return node.kind in f["kinds"]
    assert isinstance(node, Compare)
    operand = node.operand
    if isinstance(operand, Attr):
        value = f["attributes"].get(operand.key)
    elif isinstance(operand, Source):
        value = f["source"]
    elif isinstance(operand, DaysSince):
        when = f[operand.name]
        value = None if when is None else (now.astimezone(tz).date() - when.astimezone(tz).date()).days
    else:
        assert isinstance(operand, Metric)
        value = f[operand.name]
    return _cmp(value, node.op, node.value)


_atoms = st.one_of(
    st.sampled_from([Tag(g, n) for g, n in TAGS]),
    st.builds(Compare, st.just(Attr("city")), st.sampled_from(["=", "!="]), st.sampled_from([*CITIES, 5])),
    st.builds(Compare, st.just(Attr("city")), st.just("in"), st.lists(st.sampled_from(CITIES), min_size=1,
                                                                        max_size=2).map(tuple)),
    st.builds(Compare, st.just(Attr("age")), st.sampled_from(["=", "!=", "<", "<=", ">", ">="]),
              st.one_of(st.integers(10, 65), st.just(Decimal("30.5")), st.just("30"))),
    st.builds(Compare, st.just(Attr("vip")), st.sampled_from(["=", "!="]), st.booleans()),
    st.builds(Compare, st.just(Source()), st.sampled_from(["=", "!="]), st.sampled_from(SOURCES)),
    st.builds(Compare, st.just(Metric("points")), st.sampled_from(["=", "<", "<=", ">", ">=", "!="]),
              st.one_of(st.integers(0, 300), st.just(Decimal("99.5")))),
    st.builds(Compare, st.sampled_from([DaysSince("last_active"), DaysSince("first_seen")]),
              st.sampled_from(["=", "<", "<=", ">", ">=", "!="]), st.integers(-1, 70)),
    st.just(Has("phone")),
    st.just(Has("email")),
)
exprs = st.recursive(
    _atoms,
    lambda inner: st.one_of(
        st.builds(Not, inner),
        st.builds(And, st.lists(inner, min_size=2, max_size=3).map(tuple)),
        st.builds(Or, st.lists(inner, min_size=2, max_size=3).map(tuple)),
    ),
    max_leaves=6,
)
_settings = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@_settings
@given(expr=exprs)
def test_engine_equals_naive_evaluation(ws: siyu.Workspace, expr: Node) -> None:
    facts = getattr(ws, "_test_facts", None)
    if facts is None:
        facts = _facts(ws)
        ws._test_facts = facts  # type: ignore[attr-defined]
    text = to_text(expr)
    expected = sorted(u for u, f in facts.items() if naive(expr, f, ws.now(), ws.tz))
    assert ws.segments.users(text) == expected
    assert ws.segments.count(text) == len(expected)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(a=exprs, b=exprs, c=exprs)
def test_boolean_algebra_laws(ws: siyu.Workspace, a: Node, b: Node, c: Node) -> None:
    def users(node: Node) -> list[int]:
        return ws.segments.users(to_text(node))

    assert users(Not(And((a, b)))) == users(Or((Not(a), Not(b))))
    assert users(Not(Or((a, b)))) == users(And((Not(a), Not(b))))
    assert users(And((a, Or((b, c))))) == users(Or((And((a, b)), And((a, c)))))
    assert users(Or((a, And((b, c))))) == users(And((Or((a, b)), Or((a, c)))))
    assert users(And((a, Not(a)))) == []
    assert users(Or((a, Not(a)))) == ws.users.ids()
    assert users(Not(Not(a))) == users(a)


def test_caches_follow_every_write(ws: siyu.Workspace) -> None:
    ids = ws.users.ids()
    before = ws.segments.count("tag:interest/running")
    holder = ws.tags.users("interest/running")[0]
    ws.tags.remove(holder, "interest/running")
    assert ws.segments.count("tag:interest/running") == before - 1
    new = ws.users.add(attributes={"city": "杭州"}, source="wecom")
    assert ws.segments.users('attr.city = "杭州"') == [new.id]
    ws.tags.apply(new.id, "interest/running")
    assert new.id in ws.segments.users("tag:interest/running")
    ws.points.earn(new.id, 1000, reason="x", key="big")
    assert ws.segments.users("points >= 1000") == [new.id]
    ws.users.update(ids[5], attributes={"city": "杭州"})
    assert ws.segments.users('attr.city = "杭州"') == sorted([new.id, ids[5]])
    ws.tags.define("fresh/empty")
    assert ws.segments.count("tag:fresh/empty") == 0


def test_another_process_sees_changes(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    with siyu.connect(url) as one, siyu.connect(url) as two:
        ids = one.users.add_many([{} for _ in range(5)])
        one.tags.apply_many(ids[:3], "x/a")
        assert two.segments.count("tag:x/a") == 3
        one.tags.apply_many(ids, "x/a")
        one.tags.remove(ids[0], "x/a")
        assert two.segments.users("tag:x/a") == ids[1:]
        one.users.merge(keep=ids[1], drop=ids[2])
        assert two.segments.users("tag:x/a") == [ids[1], ids[3], ids[4]]
        assert two.segments.count("not tag:x/a") == 1


def test_unknown_names_are_errors(ws: siyu.Workspace) -> None:
    for bad in ["tag:nope/never", "segment:nope", "attr.shoe_size > 40", "shoe_count >= 2", "has(fax)",
                'points >= "100"', "last_active = 3", "days_since(points) < 3"]:
        with pytest.raises(SegmentReferenceError):
            ws.segments.count(bad)


def test_saved_segments_and_cycles(ws: siyu.Workspace) -> None:
    ws.segments.save("sh", 'attr.city = "上海"')
    ws.segments.save("sh_runners", "segment:sh and tag:interest/running")
    assert ws.segments.count("segment:sh_runners") == ws.segments.count(
        'attr.city = "上海" and tag:interest/running')
    with pytest.raises(SegmentReferenceError, match="itself"):
        ws.segments.save("sh", "segment:sh_runners or tag:value/high")
    with pytest.raises(SegmentReferenceError):
        ws.segments.save("broken", "tag:nope/x")
    with pytest.raises(ValidationError):
        ws.segments.save("has space", "tag:value/high")
    with pytest.raises(ValidationError):
        ws.segments.delete("sh")
    assert [s.name for s in ws.segments.list()] == ["sh", "sh_runners"]
    assert ws.segments.get("sh_runners").expression == 'segment:sh and tag:interest/running'
    with pytest.raises(NotFound):
        ws.segments.get("nope")


def test_snapshots_are_frozen_stored_and_listable(ws: siyu.Workspace) -> None:
    ws.segments.save("runners", "tag:interest/running")
    snap = ws.segments.snapshot("runners", key="camp:1")
    assert snap.users() == ws.segments.users("tag:interest/running")
    again = ws.segments.snapshot("runners", key="camp:1")
    assert again.id == snap.id and again.users() == snap.users()
    for uid in snap.users()[:3]:
        ws.tags.remove(uid, "interest/running")
    ws.segments.save("runners", "tag:interest/yoga")
    stored = ws.segments.get_snapshot(snap.id)
    assert stored.users() == snap.users() and stored.resolved == "tag:interest/running"
    adhoc = ws.segments.snapshot("adhoc", expression="segment:runners and has(phone)")
    assert adhoc.resolved == "tag:interest/yoga and has(phone)"
    assert [(s["id"], s["count"]) for s in ws.segments.snapshots()] == [(snap.id, len(snap)), (adhoc.id, len(adhoc))]
    assert ws.segments.snapshots("adhoc")[0]["expression"] == "segment:runners and has(phone)"
    with pytest.raises(NotFound):
        ws.segments.snapshot("not_saved")


def test_explain_counts_each_clause(ws: siyu.Workspace) -> None:
    text = 'tag:interest/running and attr.city = "上海" and not tag:value/high'
    explanation = ws.segments.explain(text)
    assert explanation.count == ws.segments.count(text)
    first, second, third = explanation.children
    assert first.count == first.running == ws.segments.count("tag:interest/running")
    assert second.running == ws.segments.count('tag:interest/running and attr.city = "上海"')
    assert third.running == explanation.count
    assert "上海" in str(explanation)


def test_register_metric_extension_point(ws: siyu.Workspace) -> None:
    calls: list[int] = []
    ids = ws.users.ids()

    def spend(tx: Any, now: datetime) -> dict[int, Decimal]:
        calls.append(1)
        return {u: Decimal(i * 100) for i, u in enumerate(ids[:10])}

    def test_last_order(tx: Any, now: datetime) -> dict[int, datetime | None]:
        return {ids[0]: now - timedelta(days=3), ids[2]: now - timedelta(days=40), ids[3]: None}

    ws.segments.register_metric("test_spend", spend, counters=("test_orders",))
    ws.segments.register_metric("test_last_order", test_last_order, counters=("test_orders",))
    ws.segments.register_metric("test.r", lambda tx, now: {ids[0]: 5}, counters=("test_rfm",))
    assert ws.segments.users("test_spend >= 500") == ids[5:10]
    assert ws.segments.users("test_spend >= 500.00 and test_spend < 700") == ids[5:7]
    assert ws.segments.users("days_since(test_last_order) <= 30") == [ids[0]]
    assert ws.segments.users("days_since(test_last_order) > 30") == [ids[2]]
    assert ws.segments.users("test.r = 5") == [ids[0]]
    ws.segments.count("test_spend > 1")
    assert len(calls) == 1  # cached until the counter moves
    with ws.write() as tx:
        tx.meta.bump("test_orders")
    ws.segments.count("test_spend > 1")
    assert len(calls) == 2
    with pytest.raises(ValidationError):
        ws.segments.register_metric("test_spend", spend)
    with pytest.raises(ValidationError):
        ws.segments.register_metric("has spaces", spend)
    with pytest.raises(SegmentReferenceError, match="point in time"):
        ws.segments.count("test_last_order < 3")
    assert {"points", "last_active", "first_seen", "test_spend"} <= set(ws.segments.metrics())


def test_days_since_uses_business_days() -> None:
    # 23:30 in Shanghai on the 21st is 15:30 UTC; at 00:10 on the 22nd it is one day ago.
    clock = FakeClock(datetime(2026, 11, 21, 16, 10, tzinfo=UTC))
    with siyu.connect("memory://", clock=clock, tz="Asia/Shanghai") as ws:
        user = ws.users.add(created_at=datetime(2026, 11, 21, 15, 30, tzinfo=UTC))
        assert ws.segments.users("days_since(first_seen) = 1") == [user.id]
        assert ws.segments.users("days_since(first_seen) = 0") == []
    with siyu.connect("memory://", clock=clock, tz="UTC") as ws:
        ws.users.add(created_at=datetime(2026, 11, 21, 15, 30, tzinfo=UTC))
        assert ws.segments.count("days_since(first_seen) = 0") == 1


def test_points_metric_follows_expiry() -> None:
    clock = FakeClock(datetime(2026, 11, 22, tzinfo=UTC))
    with siyu.connect("memory://", clock=clock) as ws:
        user = ws.users.add()
        ws.points.earn(user.id, 100, reason="x", key="a", expires_at=clock.now + timedelta(days=1))
        assert ws.segments.users("points >= 100") == [user.id]
        clock.advance(days=2)
        assert ws.segments.users("points = 0") == [user.id]


def test_results_are_copies(ws: siyu.Workspace) -> None:
    bitmap = ws.segments.bitmap("tag:interest/running")
    bitmap.clear()
    assert ws.segments.count("tag:interest/running") > 0




def test_bitmaps_are_written_back_and_checked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sqlite3

    from siyu.segments import engine
    from siyu.storage.sql.segments import SqlSegmentStore

    monkeypatch.setattr(engine, "_WRITE_BACK_MIN", 1)
    monkeypatch.setattr(engine, "_WRITE_BACK_AFTER", 1)
    url = f"sqlite:///{tmp_path / 'wb.db'}"
    with siyu.connect(url) as ws:
        ids = ws.users.add_many([{} for _ in range(6)])
        ws.tags.apply_many(ids[:4], "x/a")
        assert ws.segments.count("tag:x/a") == 4  # built from rows, then written back
        ws.tags.remove(ids[0], "x/a")  # after the stored copy: replayed from the history

    def no_rows(self: SqlSegmentStore) -> Any:
        raise AssertionError("the stored bitmaps should have been used")

    with monkeypatch.context() as patch:
        patch.setattr(SqlSegmentStore, "tag_holders", no_rows)
        with siyu.connect(url) as ws:
            assert ws.segments.users("tag:x/a") == ids[1:4]
    # rows written behind siyu's back: the totals disagree and the engine rebuilds from rows
    db = sqlite3.connect(tmp_path / "wb.db")
    with db:
        db.execute("INSERT INTO user_tags (user_id, tag_id, applied_at, applied_by) "
                   "SELECT ?, id, 0, 'sql' FROM tags WHERE name = 'a'", (ids[5],))
    db.close()
    with siyu.connect(url) as ws:
        assert ws.segments.users("tag:x/a") == [*ids[1:4], ids[5]]


_noise = st.lists(st.sampled_from([
    "tag:interest/running", "tag:value/high", "tag:nope/x", "segment:none", "attr.city", "attr.age", "attr.zz",
    "source", "points", "days_since(last_active)", "days_since(points)", "last_active", "has(phone)", "has(fax)",
    "=", "!=", "<", ">=", " in ", "(", ")", ",", " and ", " or ", " not ", '"上海"', "30", "-1.5", "true", "x",
]), max_size=10).map(" ".join)


@_settings
@given(text=_noise)
def test_any_expression_counts_or_raises_segment_syntax_error(ws: siyu.Workspace, text: str) -> None:
    from siyu.errors import SegmentSyntaxError

    try:
        ws.segments.count(text)
    except SegmentSyntaxError:
        pass


_ops = st.lists(
    st.tuples(
        st.sampled_from(["apply", "remove", "city", "earn", "track", "add"]),
        st.integers(0, 59),
        st.sampled_from([f"{g}/{n}" for g, n in TAGS]),
    ),
    min_size=1,
    max_size=8,
)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=_ops, probe=st.lists(exprs, min_size=1, max_size=3))
def test_engine_stays_equal_to_naive_after_any_writes(ws: siyu.Workspace, ops: list[Any], probe: list[Node]) -> None:
    ids = ws.users.ids()
    for step, (op, index, tag) in enumerate(ops):
        uid = ids[index % len(ids)]
        if op == "apply":
            ws.tags.apply(uid, tag)
        elif op == "remove":
            ws.tags.remove(uid, tag)
        elif op == "city":
            ws.users.update(uid, attributes={"city": CITIES[index % 3]})
        elif op == "earn":
            ws.points.earn(uid, 50, reason="p", key=f"p:{uid}:{step}:{random.random()}")
        elif op == "track":
            ws.events.track(uid, "page_view")
        else:
            ws.users.add(attributes={"city": "上海"})
        for expr in probe:
            ws.segments.count(to_text(expr))  # refresh caches between writes
    facts = _facts(ws)
    for expr in probe:
        expected = sorted(u for u, f in facts.items() if naive(expr, f, ws.now(), ws.tz))
        assert ws.segments.users(to_text(expr)) == expected


def test_tags_load_on_first_use_and_partial_copies_are_reused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from siyu.segments import engine
    from siyu.storage.sql.segments import SqlSegmentStore

    monkeypatch.setattr(engine, "_WRITE_BACK_MIN", 1)
    monkeypatch.setattr(engine, "_WRITE_BACK_AFTER", 1)
    url = f"sqlite:///{tmp_path / 'lazy.db'}"
    read: list[int] = []
    original = SqlSegmentStore.tag_holders

    def spy(self: SqlSegmentStore, tag_id: int) -> Any:
        read.append(tag_id)
        return original(self, tag_id)

    monkeypatch.setattr(SqlSegmentStore, "tag_holders", spy)
    with siyu.connect(url) as ws:
        ids = ws.users.add_many([{} for _ in range(5)])
        for name, members in (("a", ids[:2]), ("b", ids[1:4]), ("c", ids[4:])):
            ws.tags.apply_many(members, f"x/{name}")
        tag_id = {t: i for i, t in enumerate(ws.tags.names(), start=1)}
        assert ws.segments.users("tag:x/a") == ids[:2]
        assert read == [tag_id["x/a"]]  # only the tag the query names
        ws.tags.apply(ids[4], "x/b")  # b is not loaded: nothing to replay
        assert ws.segments.users("tag:x/b") == ids[1:5]
    read.clear()
    with siyu.connect(url) as ws:
        assert ws.segments.users("tag:x/a or tag:x/b") == ids  # both from the stored copy
        assert read == []
        assert ws.segments.users("tag:x/c") == ids[4:]
        assert read == [tag_id["x/c"]]
        ws.segments.preload()
    read.clear()
    with siyu.connect(url) as ws:
        ws.segments.preload()
        assert read == [] and ws.segments.count("tag:x/a or tag:x/b or tag:x/c") == 5
