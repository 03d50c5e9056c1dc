"""The per-user facts behind the reports stay equal to the raw rows while a shop keeps changing.

Each example builds a shop, runs the reports (which builds the facts), then
applies random writes through the public API (orders, refunds, events,
identities, merges and unmerges, invitations, erasure), asking for reports
in between so the facts catch up from the event log a few changes at a time.
After every step the caught-up columns must equal columns derived afresh from
the raw rows, and the funnel and RFM must equal the straightforward SQL answer.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import siyu
from siyu._clock import to_us
from siyu.analytics.cohorts import cohort_cells
from siyu.analytics.facts import ATTRIBUTION, UserFacts
from siyu.analytics.funnel import BUILTIN_STEPS, reached
from siyu.analytics.rfm import rfm_scores
from siyu.errors import SiyuError
from siyu.testing import FakeClock

TZ = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 3, 2, tzinfo=TZ)
END = T0 + timedelta(days=60)
ORDER_COLUMNS = ("order_user", "order_paid", "order_net", "order_counted")
COLUMNS = ("created", "linked", "first_paid", "second_paid", "last_paid", "orders", "net", "invited")

user = st.integers(0, 7)
hour = st.integers(0, 24 * 59)
ops = st.lists(
    st.one_of(
        st.tuples(st.just("order"), user, hour),
        st.tuples(st.just("refund_full"), st.integers(0, 20)),
        st.tuples(st.just("refund_part"), st.integers(0, 20)),
        st.tuples(st.just("event"), user, st.sampled_from(["page_view", "added_wecom"]), hour),
        st.tuples(st.just("link"), user),
        st.tuples(st.just("merge"), user, user),
        st.tuples(st.just("unmerge"),),
        st.tuples(st.just("bind"), user, user, hour),
        st.tuples(st.just("unbind"), user),
        st.tuples(st.just("add_user"), hour),
        st.tuples(st.just("erase"), user),
        st.tuples(st.just("report"),),
    ),
    max_size=25,
)


def apply(ws: siyu.Workspace, ids: list[int], orders: list[int], merges: list[int], op: tuple[Any, ...],
          n: int) -> None:
    kind = op[0]
    if kind == "order":
        orders.append(ws.orders.record(ids[op[1]], [{"sku": "TEA", "qty": 1}], paid_at=T0 + timedelta(hours=op[2]),
                                       channel="mini").id)
    elif kind in ("refund_full", "refund_part") and orders:
        order = orders[op[1] % len(orders)]
        ws.orders.refund(order, None if kind == "refund_full" else "1", key=f"r{n}")
    elif kind == "event":
        ws.events.track(ids[op[1]], op[2], at=T0 + timedelta(hours=op[3]))
    elif kind == "link":
        ws.users.link(ids[op[1]], "wecom_external_userid", f"wm-{n}")
    elif kind == "merge" and op[1] != op[2]:
        merges.append(ws.users.merge(keep=ids[op[1]], drop=ids[op[2]]).id)
    elif kind == "unmerge" and merges:
        ws.users.unmerge(merges.pop())
    elif kind == "bind" and op[1] != op[2]:
        ws.referrals.import_bindings([{"invitee_id": ids[op[1]], "inviter_id": ids[op[2]],
                                       "bound_at": T0 + timedelta(hours=op[3])}])
    elif kind == "unbind":
        ws.referrals.unbind(ids[op[1]], reason="test")
    elif kind == "add_user":
        ids.append(ws.users.add(created_at=T0 + timedelta(hours=op[1]), source=f"s{op[1] % 3}").id)
    elif kind == "erase":
        ws.privacy.erase(ids[op[1]])
    elif kind == "report":
        ws.analytics.funnel(["first_seen", "page_view"], until=END)  # from now on the facts follow page_view
        ws.analytics.aov(by="channel", until=END)
        ws.analytics.cohorts("week", since=T0, until=END)  # from now on the facts hold the activity slots


def _rfm_rows(values: list[tuple[int, int, int, int]], until: int) -> list[tuple[Any, ...]]:
    scores = rfm_scores(values, 5)
    return [(u, *scores[u], (until - last) // 86_400_000_000, n, Decimal(net) / 100)
            for u, last, n, net in values]


def check(ws: siyu.Workspace) -> None:
    """Reports from the caught-up facts equal the SQL answers; the columns equal a fresh derivation."""
    with ws.read():  # inside a caller's read: the facts catch up without moving their checkpoint
        inside = ws.analytics.funnel(until=END)
    funnel = ws.analytics.funnel(until=END)
    assert inside.totals() == funnel.totals()
    rfm = ws.analytics.rfm(until=END)
    until = to_us(END)
    cut = END - timedelta(minutes=7)  # the last slot is cut short: read against the raw rows
    bounds = [to_us(T0 + timedelta(weeks=w)) for w in range(9)] + [to_us(cut)]
    for metric in ("active", "ordered"):
        ws.analytics.cohorts("week", metric, since=T0, until=cut)
        with ws.read() as tx:
            assert cohort_cells(tx, ws.analytics._facts, bounds, metric) == tx.analytics.cohort_matrix(bounds, metric)
    with ws.read() as tx:
        sets = [reached(tx, step, None, until) for step in BUILTIN_STEPS]
        expected = []
        current = sets[0]
        for s in sets:
            current = current & s
            expected.append(len(current))
        assert funnel.totals() == tuple(expected)
        assert rfm.scores() == rfm_scores(tx.analytics.buyer_values(until), 5)
        middle = T0 + timedelta(days=30)  # orders after it: grouped from the per-order columns
        assert list(ws.analytics.rfm(until=middle).rows) == list(_rfm_rows(tx.analytics.buyer_values(to_us(middle)),
                                                                               to_us(middle)))
        kept = ws.analytics._facts
        fresh = UserFacts()
        fresh.refresh(tx, tx.event_log.head(), kept.events)
    pairs = [(name, getattr(kept, name), getattr(fresh, name)) for name in COLUMNS]
    pairs += [(kind, kept.events[kind], fresh.events[kind]) for kind in kept.events]
    pairs += [(name, getattr(kept, name), getattr(fresh, name)) for name in ORDER_COLUMNS]
    for field in ATTRIBUTION:  # codes are assigned as values are met: compare the values
        mine, theirs = ([facts.labels[field][c] if c >= 0 else "-" for c in facts.attribution[field].tolist()]
                        for facts in (kept, fresh))
        assert mine[:len(theirs)] == theirs and set(mine[len(theirs):]) <= {"-"}, field
    assert [kept.channels[c] for c in kept.order_channel.tolist()] == [
        fresh.channels[c] for c in fresh.order_channel.tolist()]
    for name, mine, theirs in pairs:
        size = max(len(mine), len(theirs))
        pad = (-1 if name in ("last_paid", "order_user") else 0 if name in ("orders", "net", *ORDER_COLUMNS)
               else np.iinfo(np.int64).max)
        assert np.array_equal(np.pad(mine, (0, size - len(mine)), constant_values=pad),
                              np.pad(theirs, (0, size - len(theirs)), constant_values=pad)), name


POSTGRES_URL = os.environ.get("SIYU_TEST_POSTGRES_URL")


@pytest.fixture(scope="module", params=["memory", "sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> Iterator[str]:
    if request.param != "postgresql":
        yield request.param
        return
    if not POSTGRES_URL:
        pytest.skip("PostgreSQL tests need SIYU_TEST_POSTGRES_URL (eval \"$(bash .ci/postgres.sh)\")")
    from siyu.testing.postgres import drop_schema, with_schema

    url = with_schema(POSTGRES_URL, f"t_{uuid.uuid4().hex[:16]}")
    yield url
    drop_schema(url)


def _connect(backend: str) -> siyu.Workspace:
    clock = FakeClock(END)
    if backend == "memory":
        return siyu.connect("memory://", clock=clock, tz="Asia/Shanghai")
    if backend == "sqlite":
        return siyu.connect(f"sqlite:///{tempfile.mkdtemp()}/shop.db", clock=clock, tz="Asia/Shanghai")
    from siyu.testing.postgres import empty_schema

    empty_schema(backend)
    return siyu.connect(backend, clock=clock, tz="Asia/Shanghai")


@settings(max_examples=15, deadline=None)
@given(first=ops, then=ops)
def test_facts_follow_every_write(backend: str, first: list[tuple[Any, ...]], then: list[tuple[Any, ...]]) -> None:
    with _connect(backend) as ws:
        ws.products.add("TEA", "Tea", price="10", cost="2", role="profit")
        ids = [u.id for u in (ws.users.add(created_at=T0 + timedelta(hours=i)) for i in range(8))]
        orders: list[int] = []
        merges: list[int] = []
        for n, op in enumerate(first):
            try:
                apply(ws, ids, orders, merges, op, n)
            except SiyuError:
                pass  # a refused write (an already refunded order, a cycle) changes nothing
        check(ws)
        for n, op in enumerate(then, start=len(first)):
            try:
                apply(ws, ids, orders, merges, op, n)
            except SiyuError:
                pass
            if n % 5 == 0:
                check(ws)
        check(ws)


def test_facts_start_again_when_the_log_was_pruned_past_them(backend: str) -> None:
    """Pruning deletes events the facts never read: they rebuild from the raw rows rather than miss them."""
    with _connect(backend) as ws:
        ws.products.add("TEA", "Tea", price="10", cost="2", role="profit")
        buyer = ws.users.add(created_at=T0).id
        ws.orders.record(buyer, [{"sku": "TEA", "qty": 1}], paid_at=T0 + timedelta(days=1), channel="mini")
        assert len(ws.analytics.rfm(until=END).rows) == 1  # the facts are built
        other = ws.users.add(created_at=T0).id
        ws.orders.record(other, [{"sku": "TEA", "qty": 1}], paid_at=T0 + timedelta(days=2), channel="mini")
        ws.orders.record(buyer, [{"sku": "TEA", "qty": 2}], paid_at=T0 + timedelta(days=3), channel="mini")
        ws.clock.advance(timedelta(seconds=1))  # type: ignore[attr-defined]
        assert ws.event_log.prune(older_than=timedelta(0)) > 0
        rows = {row[0]: row[5] for row in ws.analytics.rfm(until=END).rows}
        assert rows == {buyer: 2, other: 1}
        with ws.read() as tx:
            assert sorted(rows.items()) == [(u, n) for u, _, n, _ in tx.analytics.buyer_values(to_us(END))]
