"""The activity rollup behind cohort retention stays equal to the raw rows.

Random shops (hypothesis) with events and orders at any minute, full and
partial refunds, merges and unmerges, on memory, SQLite and PostgreSQL:

- the rollup siyu maintained write by write equals the one ``reindex()``
  derives from the raw rows afterwards;
- the cohort matrix read through the rollup equals the one computed from
  the raw rows, for day, week and month periods, in time zones on the
  quarter hour (Shanghai, Kathmandu at +5:45, New York with DST) and with a
  running period cut mid-slot;
- boundaries off the quarter hour, and a stale rollup, fall back to the raw
  rows and still give the same answer.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import siyu
from siyu._clock import to_us
from siyu.analytics._time import buckets
from siyu.storage.sql.activity_slots import EVENTS, ORDERS, SLOT_US, STALE_KEY, ActivitySlots
from siyu.testing import FakeClock

T0 = datetime(2026, 3, 1, 0, 0, tzinfo=ZoneInfo("UTC"))
SPAN_MIN = 60 * 24 * 70  # ten weeks of minutes
END = T0 + timedelta(minutes=SPAN_MIN + 1)
POSTGRES_URL = os.environ.get("SIYU_TEST_POSTGRES_URL")

minutes = st.integers(0, SPAN_MIN)
operations = st.lists(
    st.one_of(
        st.tuples(st.just("event"), st.integers(0, 7), minutes),
        st.tuples(st.just("order"), st.integers(0, 7), minutes, st.sampled_from(["none", "full", "part"])),
        st.tuples(st.just("merge"), st.integers(0, 7), st.integers(0, 7)),
        st.tuples(st.just("unmerge"), st.integers(0, 3)),
    ),
    max_size=25,
)
users = st.lists(minutes, min_size=2, max_size=8)


@pytest.fixture(scope="module", params=["memory", "sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> Iterator[str]:
    if request.param == "memory":
        yield "memory://"
    elif request.param == "sqlite":
        folder = tempfile.mkdtemp()
        yield folder
        shutil.rmtree(folder, ignore_errors=True)
    else:
        if not POSTGRES_URL:
            pytest.skip("PostgreSQL tests need SIYU_TEST_POSTGRES_URL (eval \"$(bash .ci/postgres.sh)\")")
        from siyu.testing.postgres import drop_schema, with_schema

        url = with_schema(POSTGRES_URL, f"t_{uuid.uuid4().hex[:16]}")
        yield url
        drop_schema(url)


def _open(backend: str) -> siyu.Workspace:
    clock = FakeClock(END)
    if backend == "memory://":
        return siyu.connect(backend, clock=clock)
    if backend.startswith("postgresql"):
        from siyu.testing.postgres import empty_schema

        empty_schema(backend)
        return siyu.connect(backend, clock=clock)
    return siyu.connect(f"sqlite:///{tempfile.mkdtemp(dir=backend)}/shop.db", clock=clock)


def build(ws: siyu.Workspace, created: list[int], ops: list[tuple[Any, ...]]) -> None:
    ws.products.add("TEA", "Tea", price="10", cost="2", role="profit")
    ids = ws.users.add_many([{"created_at": T0 + timedelta(minutes=m)} for m in created])
    merges: list[int] = []

    def live(index: int) -> int | None:
        uid = ids[index % len(ids)]
        return None if ws.users.get(uid).status == "merged" else uid

    for n, op in enumerate(ops):
        kind = op[0]
        if kind == "event" and (uid := live(op[1])) is not None:
            ws.events.track(uid, "page_view", at=T0 + timedelta(minutes=op[2]))
        elif kind == "order" and (uid := live(op[1])) is not None:
            order = ws.orders.record(uid, [{"sku": "TEA", "qty": 1}], paid_at=T0 + timedelta(minutes=op[2]))
            if op[3] == "full":
                ws.orders.refund(order.id, key=f"r{n}")
            elif op[3] == "part":
                ws.orders.refund(order.id, "5", key=f"r{n}")
        elif kind == "merge":
            keep, drop = ids[op[1] % len(ids)], ids[op[2] % len(ids)]
            active = {u.id for u in (ws.users.get(keep), ws.users.get(drop)) if u.status != "merged"}
            if keep != drop and active == {keep, drop}:
                merges.append(ws.users.merge(keep=keep, drop=drop).id)
        elif kind == "unmerge" and merges:
            merge_id = merges[op[1] % len(merges)]
            try:
                ws.users.unmerge(merge_id)
            except siyu.errors.ValidationError:
                continue  # refused as designed (e.g. its keep was merged away since): state unchanged
            merges.remove(merge_id)


def rollup_rows(ws: siyu.Workspace) -> dict[tuple[str, int], bytes]:
    from pyroaring import BitMap

    with ws.read() as tx:
        return {
            (str(source), int(slot)): bytes(BitMap.deserialize(bytes(blob)).serialize())
            for source, slot, blob in tx.execute("SELECT source, slot, users FROM analytics_slots")  # type: ignore[attr-defined]
        }


def both_ways(ws: siyu.Workspace, bounds: list[int], metric: str) -> tuple[Any, Any]:
    with ws.read() as tx:
        raw = (tx.analytics.cohort_sizes(bounds), tx.analytics.cohort_activity(bounds, metric))
        return raw, tx.analytics.cohort_matrix(bounds, metric)


def bounds_for(period: str, zone: tzinfo, until: datetime) -> list[int]:
    edges = [to_us(b) for b in buckets(T0, until, period, zone)]
    edges[-1] = min(edges[-1], to_us(until))
    return edges if edges[-1] > edges[-2] else edges[:-1]


ZONES = [ZoneInfo("Asia/Shanghai"), ZoneInfo("Asia/Kathmandu"), ZoneInfo("America/New_York"), ZoneInfo("UTC")]


@example(created=[0, 0], ops=[("event", 1, 30), ("order", 1, 40, "none"), ("merge", 0, 1), ("unmerge", 0)],
         zone=ZONES[0], period="week", metric="active", cut=SPAN_MIN)
@example(created=[0, 0, 0], ops=[("event", 0, 30), ("merge", 1, 0), ("merge", 2, 1), ("unmerge", 0), ("unmerge", 1)],
         zone=ZONES[0], period="week", metric="active", cut=SPAN_MIN)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(created=users, ops=operations, zone=st.sampled_from(ZONES),
       period=st.sampled_from(["day", "week", "month"]), metric=st.sampled_from(["active", "ordered"]),
       cut=st.integers(1, SPAN_MIN))
def test_rollup_equals_raw_rows(backend: str, created: list[int], ops: list[tuple[Any, ...]], zone: tzinfo,
                                period: str, metric: str, cut: int) -> None:
    ws = _open(backend)
    with ws:
        build(ws, created, ops)
        maintained = rollup_rows(ws)
        ws.analytics.reindex()
        assert rollup_rows(ws) == maintained

        until = T0 + timedelta(minutes=cut, seconds=17)  # the running period ends mid-slot
        bounds = bounds_for(period, zone, until)
        with ws.read() as tx:
            sources = (EVENTS, ORDERS) if metric == "active" else (ORDERS,)
            assert ActivitySlots(tx).active(sources, bounds) is not None  # type: ignore[arg-type]
        raw, fast = both_ways(ws, bounds, metric)
        assert fast == raw


def test_off_quarter_hour_and_stale_fall_back(backend: str) -> None:
    ws = _open(backend)
    with ws:
        build(ws, [0, 50, 3000], [("event", 0, 70), ("order", 1, 4000, "none"), ("event", 2, 9000)])
        odd = timezone(timedelta(minutes=7))  # local midnight is not on a UTC quarter hour
        bounds = bounds_for("day", odd, END)
        with ws.read() as tx:
            assert ActivitySlots(tx).active((EVENTS,), bounds) is None  # type: ignore[arg-type]
        raw, fast = both_ways(ws, bounds, "active")
        assert fast == raw and raw[1]

        with ws.write() as tx:
            tx.meta.set(STALE_KEY, "test")
        bounds = bounds_for("week", ZoneInfo("Asia/Shanghai"), END)
        with ws.read() as tx:
            assert ActivitySlots(tx).active((EVENTS,), bounds) is None  # type: ignore[arg-type]
        raw, fast = both_ways(ws, bounds, "active")
        assert fast == raw
        ws.analytics.reindex()
        with ws.read() as tx:
            assert ActivitySlots(tx).is_current()  # type: ignore[arg-type]
            assert ActivitySlots(tx).active((EVENTS,), bounds) is not None  # type: ignore[arg-type]


def test_upgrade_of_a_database_with_rows_marks_the_rollup_stale(tmp_path: Any) -> None:
    """A database written before the rollup existed: reports read raw rows until reindex()."""
    path = tmp_path / "old.db"
    clock = FakeClock(END)
    with siyu.connect(f"sqlite:///{path}", clock=clock, tz="UTC") as ws:
        uid = ws.users.add(created_at=T0).id
        ws.events.track(uid, "page_view", at=T0 + timedelta(days=3))  # the next week
    # Roll the analytics component back to before the rollup, as an older siyu left it.
    db = sqlite3.connect(path)
    db.execute("DROP TABLE analytics_slots")
    db.execute("UPDATE siyu_schema SET version = 2 WHERE component = 'analytics'")
    db.commit()
    db.close()
    with siyu.connect(f"sqlite:///{path}", clock=clock, tz="UTC") as ws:
        with ws.read() as tx:
            assert not ActivitySlots(tx).is_current()  # type: ignore[arg-type]
        stale = ws.analytics.cohorts("week", since=T0, until=END)
        ws.analytics.reindex()
        assert ws.analytics.cohorts("week", since=T0, until=END) == stale
        assert stale.retained[0][1] == 1


def test_new_database_starts_current_and_slot_is_fifteen_minutes(ws: siyu.Workspace) -> None:
    assert SLOT_US == 900_000_000
    with ws.read() as tx:
        assert ActivitySlots(tx).is_current()  # type: ignore[arg-type]


def test_user_ids_beyond_32_bits_read_raw_rows(tmp_path: Any) -> None:
    path = tmp_path / "wide.db"
    clock = FakeClock(END)
    with siyu.connect(f"sqlite:///{path}", clock=clock, tz="UTC") as ws:
        ws.users.add(created_at=T0)
    db = sqlite3.connect(path)  # an id no bitmap holds, written around siyu
    db.execute("INSERT INTO users (id, created_at, attributes, status) VALUES (?, ?, '{}', 'active')",
               (2**32 + 5, to_us(T0)))
    db.commit()
    db.close()
    with siyu.connect(f"sqlite:///{path}", clock=clock, tz="UTC") as ws:
        big = 2**32 + 5
        ws.events.track(big, "page_view", at=T0 + timedelta(days=3))
        with ws.read() as tx:
            assert not ActivitySlots(tx).is_current()  # type: ignore[arg-type]
        report = ws.analytics.cohorts("week", since=T0, until=END)
        assert report.sizes[0] == 2 and report.retained[0][1] == 1
