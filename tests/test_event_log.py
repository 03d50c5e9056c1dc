"""The durable event log: appended with the change, read by consumers with checkpoints."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import siyu
from siyu.errors import NotFound, ValidationError
from siyu.events import OrderRecorded, PointsEarned, UserCreated
from siyu.testing import FakeClock

POSTGRES_URL = os.environ.get("SIYU_TEST_POSTGRES_URL")


def test_every_event_of_a_write_is_logged_with_its_position_type_and_data(ws: siyu.Workspace) -> None:
    u = ws.users.add(phone="13800138000")
    ws.points.earn(u.id, 5, reason="signup", key="k1")
    logged = ws.event_log.read()
    assert [(e.position, e.type) for e in logged] == [(1, "UserCreated"), (2, "PointsEarned")]
    earned = logged[1]
    assert earned.data == {"user_id": u.id, "entry_id": earned.data["entry_id"], "amount": 5, "reason": "signup",
                           "key": "k1"}
    assert earned.occurred_at == ws.now() and earned.schema_version == 1 and earned.user_id == u.id
    assert earned.cloud_type == "siyu.points.earned"
    assert earned.event() == PointsEarned(at=ws.now(), user_id=u.id, entry_id=earned.data["entry_id"], amount=5,
                                          reason="signup", key="k1")
    # One call, one correlation id; another call, another.
    assert logged[0].correlation_id != logged[1].correlation_id


def test_a_failed_write_logs_nothing(ws: siyu.Workspace) -> None:
    with pytest.raises(siyu.errors.IdentityConflict):
        ws.users.add_many([{"phone": "13800138000"}, {"phone": "13800138000"}])
    assert ws.event_log.read() == []
    assert ws.event_log.head() == 0


def test_read_filters_by_type_position_and_limit(ws: siyu.Workspace) -> None:
    ids = ws.users.add_many([{} for _ in range(5)])
    ws.tags.apply_many(ids, "vip")
    assert [e.data["user_id"] for e in ws.event_log.read(types=[UserCreated])] == ids
    assert len(ws.event_log.read(types=["TagApplied"], limit=2)) == 2
    tail = ws.event_log.read(after=7)
    assert [e.position for e in tail] == [8, 9, 10] and {e.type for e in tail} == {"TagApplied"}
    for bad in ({"after": -1}, {"limit": 0}, {"types": [int]}, {"after": "3"}):
        with pytest.raises(ValidationError):
            ws.event_log.read(**bad)  # type: ignore[arg-type]


def test_correlation_ids_follow_the_call_and_the_reactions_it_causes(ws: siyu.Workspace) -> None:
    class Welcomer:
        @siyu.hookimpl
        @siyu.observes(UserCreated)
        def siyu_on_event(self, event: Any, workspace: siyu.Workspace) -> None:
            workspace.tags.apply(event.user_id, "welcomed")

    ws.pm.register(Welcomer())
    with ws.correlate("req-42"):
        u = ws.users.add()
    created, applied = ws.event_log.read()
    assert (created.type, applied.type) == ("UserCreated", "TagApplied")
    assert created.correlation_id == applied.correlation_id == "req-42"
    assert applied.data == {"user_id": u.id, "tag": "default/welcomed", "by": "api"}


def test_every_consumer_has_a_checkpoint_that_follows_the_log(ws: siyu.Workspace) -> None:
    ws.users.add_many([{} for _ in range(3)])
    status = {c.name: c for c in ws.event_log.consumers()}
    assert {"siyu.lifecycle", "siyu.referrals", "siyu.tag_rules", "siyu.privacy.audit", "siyu.campaigns"} <= set(status)
    assert all(c.position == 3 and c.lag == 0 and not c.parked and c.error is None for c in status.values())


class Flaky:
    """Fails on every event of user 2 until ``healed``."""

    def __init__(self) -> None:
        self.seen: list[int] = []
        self.healed = False

    @siyu.hookimpl
    @siyu.observes(UserCreated)
    def siyu_on_event(self, event: Any) -> None:
        if event.user_id == 2 and not self.healed:
            raise RuntimeError("cannot handle user 2")
        self.seen.append(event.user_id)


def _status(ws: siyu.Workspace, suffix: str) -> siyu.eventlog.ConsumerStatus:
    return next(c for c in ws.event_log.consumers() if c.name.endswith(suffix))


def test_a_consumer_failing_on_one_event_stops_there_and_is_parked_after_retries(ws: siyu.Workspace) -> None:
    flaky = Flaky()
    ws.pm.register(flaky)
    ws.users.add_many([{}, {}, {}])
    assert flaky.seen == [1]  # in order: nothing after the failing event
    first = _status(ws, "Flaky")
    assert (first.position, first.failed_position, first.attempts, first.parked) == (1, 2, 1, False)
    for attempt in range(2, 6):  # every later write retries it
        ws.tags.apply(1, f"t{attempt}")
        assert _status(ws, "Flaky").attempts == attempt
    parked = _status(ws, "Flaky")
    assert parked.parked and parked.error == "RuntimeError: cannot handle user 2" and parked.lag > 0
    ws.tags.apply(1, "more")
    assert _status(ws, "Flaky").attempts == 5  # parked: no more automatic retries
    flaky.healed = True
    ws.event_log.retry(parked.name)
    assert ws.event_log.deliver() > 0
    assert flaky.seen == [1, 2, 3]
    done = _status(ws, "Flaky")
    assert (done.lag, done.parked, done.error, done.attempts) == (0, False, None, 0)


def test_skip_moves_a_consumer_past_the_event_it_fails_on(ws: siyu.Workspace) -> None:
    flaky = Flaky()
    ws.pm.register(flaky)
    ws.users.add_many([{}, {}, {}])
    name = _status(ws, "Flaky").name
    with pytest.raises(NotFound, match="known: "):
        ws.event_log.skip("no.such.consumer")
    ws.event_log.skip(name)
    ws.event_log.deliver()
    assert flaky.seen == [1, 3]
    with pytest.raises(ValidationError, match="no failed event"):
        ws.event_log.skip(name)


def test_replay_rewinds_one_consumer(ws: siyu.Workspace) -> None:
    seen: list[int] = []
    ws.subscribe(lambda e: seen.append(e.user_id) if isinstance(e, UserCreated) else None, name="audit-copy")
    ws.users.add_many([{}, {}, {}])
    status = ws.event_log.replay("audit-copy", 2)
    assert status.position == 1 and status.lag == 2
    ws.event_log.deliver()
    assert seen == [1, 2, 3, 2, 3]
    assert {c.name: c.position for c in ws.event_log.consumers()}["siyu.lifecycle"] == 3  # others untouched


def test_a_consumer_writes_commit_with_its_checkpoint_or_not_at_all(ws: siyu.Workspace) -> None:
    class HalfWay:
        calls = 0

        @siyu.hookimpl
        @siyu.observes(UserCreated)
        def siyu_on_events(self, events: Any, workspace: siyu.Workspace) -> None:
            HalfWay.calls += 1
            for e in events:
                workspace.tags.apply(e.user_id, "touched")
                if e.user_id == 3:
                    raise RuntimeError("boom")

    ws.pm.register(HalfWay())
    ids = ws.users.add_many([{} for _ in range(4)])
    # The batch failed as a whole and was retried one event at a time: users before the
    # failing one keep their tag (committed with the checkpoint at 2), the rest has none.
    assert [ws.tags.of(uid) for uid in ids] == [{"default/touched"}] * 2 + [set(), set()]
    status = _status(ws, "HalfWay")
    assert (status.position, status.failed_position) == (2, 3)


def test_erasing_a_person_redacts_their_free_text_in_the_log(ws: siyu.Workspace) -> None:
    a, b = ws.users.add_many([{}, {}])
    ws.points.earn(a, 10, reason="birthday of 张三 13800138000", key="wx:张三")
    ws.points.earn(b, 10, reason="signup", key="b1")
    ws.privacy.erase(a)
    earned = {e.data["user_id"]: e for e in ws.event_log.read(types=[PointsEarned])}
    assert earned[a].redacted and earned[a].data["reason"] == "[erased]" and earned[a].data["key"] == "[erased]"
    assert earned[a].data["amount"] == 10  # amounts stay, like the ledger
    assert not earned[b].redacted and earned[b].data["reason"] == "signup"


def test_prune_deletes_delivered_events_past_retention_and_archives_them(
    ws: siyu.Workspace, clock: FakeClock, tmp_path: Path
) -> None:
    ws.users.add_many([{}, {}])
    clock.advance(days=40)
    ws.users.add()
    assert ws.event_log.prune() == 0  # no retention configured: keep everything
    with pytest.raises(ValidationError):
        ws.event_log.configure(retention=timedelta(hours=1))
    assert ws.event_log.configure(retention=timedelta(days=30)) == {"retention_days": 30}
    archive = tmp_path / "events.jsonl"
    assert ws.event_log.prune(archive=archive) == 2
    assert [json.loads(line)["position"] for line in archive.read_text().splitlines()] == [1, 2]
    assert [e.position for e in ws.event_log.read()] == [3]
    ws.users.add()  # positions go on after pruning
    assert [e.position for e in ws.event_log.read()] == [3, 4]


def test_prune_keeps_what_a_lagging_consumer_has_not_read(ws: siyu.Workspace, clock: FakeClock) -> None:
    flaky = Flaky()
    ws.pm.register(flaky)
    ws.users.add_many([{}, {}, {}])
    clock.advance(days=60)
    assert ws.event_log.prune(older_than=timedelta(days=1)) == 1  # only position 1: Flaky still needs 2


def test_subscribers_without_a_name_see_events_from_now_on(ws: siyu.Workspace) -> None:
    ws.users.add()
    seen: list[str] = []
    ws.subscribe(lambda e: seen.append(type(e).__name__))
    ws.users.add()
    assert seen == ["UserCreated"]
    with pytest.raises(ValidationError):
        ws.subscribe(print, name=" ")


def test_worker_mode_only_appends(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shop.db'}"
    with siyu.connect(url, delivery="worker") as web:
        u = web.users.add().id
        web.tags.define("default/x")
        web.tags.rules.add("vip/any", "tag:default/x")
        web.tags.apply(u, "x")
        assert web.tags.of(u) == {"default/x"}  # the rule has not run: nobody delivered
        assert {c.name: c.lag for c in web.event_log.consumers()}["siyu.tag_rules"] == web.event_log.head() == 2
    with siyu.connect(url, delivery="worker") as worker:
        assert worker.event_log.deliver() > 0
        assert worker.tags.of(u) == {"default/x", "vip/any"}
    with pytest.raises(ValidationError, match="delivery"):
        siyu.connect("memory://", delivery="later")


# -- a real crash between a write's commit and its consumers ------------------------------------------------
class _KillOnOrder:
    """Dies (SIGKILL) the moment an order reaches the consumers: after the order committed,
    inside the transaction that would have saved the consumers' effects."""

    @siyu.hookimpl
    @siyu.observes(OrderRecorded)
    def siyu_on_event(self, event: Any) -> None:
        os.kill(os.getpid(), signal.SIGKILL)


def _record_and_die(url: str, buyer: int) -> None:
    with siyu.connect(url, plugins=[_KillOnOrder()]) as ws:
        ws.orders.record(buyer, [{"sku": "TEA", "qty": 1}], key="order-1")


def test_effects_of_an_order_survive_a_kill_between_commit_and_consumers(url: str) -> None:
    with siyu.connect(url) as ws:
        ws.products.add("TEA", "tea", price="100", cost="30", role="profit")
        inviter, buyer = ws.users.add_many([{}, {}])
        ws.referrals.bind(buyer, inviter_id=inviter)
    child = multiprocessing.get_context("spawn").Process(target=_record_and_die, args=(url, buyer))
    child.start()
    child.join(60)
    assert child.exitcode == -signal.SIGKILL
    with siyu.connect(url) as ws:  # connecting catches up on what the dead process left
        [order] = ws.orders.of(buyer)
        [commission] = ws.referrals.commissions.of_order(order.id)
        assert (commission.distributor_id, commission.amount) == (inviter, Decimal("10.00"))
        assert ws.lifecycle.stage(buyer) == "customer"
        status = ws.event_log.consumers()
        assert all(c.lag == 0 for c in status if c.declared)
        [gone] = [c for c in status if not c.declared]  # the killer: known to the database, not to this process
        assert gone.name.endswith("_KillOnOrder") and gone.lag > 0
        # Delivering again changes nothing: the effects are there once.
        ws.event_log.replay("siyu.referrals", 1)
        ws.event_log.replay("siyu.lifecycle", 1)
        ws.event_log.deliver()
        assert len(ws.referrals.commissions.of_order(order.id)) == 1
        assert [c.to_stage for c in ws.lifecycle.history(buyer)] == ["customer"]


# -- the stored form of every event class ----------------------------------------------------------------------
def _event_classes() -> list[type[siyu.events.Event]]:
    import attrs

    return sorted((c for c in vars(siyu.events).values()
                   if isinstance(c, type) and issubclass(c, siyu.events.Event) and c is not siyu.events.Event
                   and attrs.has(c)), key=lambda c: c.__name__)


@pytest.mark.parametrize("cls", _event_classes(), ids=lambda c: c.__name__)
def test_every_event_class_survives_the_log(cls: type[siyu.events.Event]) -> None:
    """What the generated encoder writes is what the converter would, and reads back equal."""
    from datetime import UTC, datetime

    import attrs
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from siyu.eventlog import codec

    attrs.resolve_types(cls)
    aware = st.datetimes(timezones=st.just(UTC))
    times = {f.name: aware if f.type is datetime else st.none() | aware
             for f in attrs.fields(cls) if f.type in (datetime, datetime | None)}

    @settings(max_examples=25, deadline=None)
    @given(st.builds(cls, **times))
    def check(event: siyu.events.Event) -> None:
        text = codec.encode(event)
        expected = codec._converter.unstructure(event)
        del expected["at"]
        assert json.loads(text) == expected
        assert codec.decode(cls.__name__, event.at, text) == event

    check()
