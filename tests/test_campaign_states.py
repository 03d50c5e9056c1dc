"""Campaign statuses: the transitions table is the only way a status changes, every
move it does not list is refused with storage unchanged, and a pause gives back
the status it interrupted."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, rule

import siyu
from siyu.campaigns import TRANSITIONS, CampaignStatus, Trigger
from siyu.campaigns.records import find, save
from siyu.campaigns.state import (
    CampaignState,
    Decided,
    HoldoutInfo,
    Launch,
    Pause,
    Phase,
    PilotInfo,
    dump_state,
    load_state,
)
from siyu.channels import Status
from siyu.errors import Conflict, InvalidTransition, SiyuError
from siyu.storage.sql.campaigns import SqlCampaignStore
from siyu.testing import FakeClock, RecordingChannel

S = CampaignStatus
DISALLOWED = [(a, b) for a in S for b in S if a is not b and b not in TRANSITIONS[a]]


def users(ws: siyu.Workspace, n: int) -> list[int]:
    ids = ws.users.add_many([{} for _ in range(n)])
    for uid in ids:
        ws.users.consent(uid, purpose="marketing", channel="recording")
    return ids


@pytest.fixture
def rec(ws: siyu.Workspace) -> RecordingChannel:
    channel = ws.channels.install(RecordingChannel())
    assert isinstance(channel, RecordingChannel)
    return channel


def snapshot(ws: siyu.Workspace, campaign_id: int) -> tuple[Any, ...]:
    with ws.read() as tx:
        row = tx.campaigns.get(campaign_id)
        deliveries = tx.campaigns.deliveries(campaign_id, user_id=None, status=None, after_id=0, limit=100_000)
    return row, deliveries


def force(ws: siyu.Workspace, campaign_id: int, status: CampaignStatus) -> None:
    with ws.write() as tx:
        tx.campaigns.update(campaign_id, status=status.value)


# -- the table -------------------------------------------------------------------------------------------------


def test_the_table_names_every_status_and_cancelled_is_final() -> None:
    assert set(TRANSITIONS) == set(S)
    assert TRANSITIONS[S.CANCELLED] == frozenset()
    assert all(S.CANCELLED in TRANSITIONS[s] for s in S if s is not S.CANCELLED)
    reached = {S.DRAFT, S.SCHEDULED, S.ACTIVE}  # what create makes
    while True:
        more = reached | {t for s in reached for t in TRANSITIONS[s]}
        if more == reached:
            break
        reached = more
    assert reached == set(S)


@pytest.mark.parametrize(("current", "to"), DISALLOWED, ids=[f"{a}->{b}" for a, b in DISALLOWED])
def test_every_move_the_table_does_not_list_is_refused_and_nothing_is_written(
    ws: siyu.Workspace, rec: RecordingChannel, current: CampaignStatus, to: CampaignStatus
) -> None:
    c = ws.campaigns.create("c", audience=users(ws, 3), channel="recording", template="hi")
    force(ws, c.id, current)
    before = snapshot(ws, c.id)
    # The refusal itself writes nothing: the transaction around it commits.
    with ws.write() as tx, pytest.raises(InvalidTransition) as refused:
        save(tx, find(tx, c.id), status=to, state=CampaignState(winner="A"))
    assert refused.value.status == current and refused.value.to == to
    assert f"is {current.value}" in str(refused.value) and "ws.campaigns." in str(refused.value)
    assert snapshot(ws, c.id) == before


def test_a_cancelled_campaign_cannot_be_piloted_sent_or_rolled_out(ws: siyu.Workspace, rec: RecordingChannel) -> None:
    ab = ws.campaigns.create("ab", audience=users(ws, 40), channel="recording", template="hi",
                             variants={"A": {}, "B": {}})
    ws.campaigns.pilot(ab.id, fraction=0.5)
    ws.campaigns.cancel(ab.id)
    one = ws.campaigns.create("one", audience=users(ws, 4), channel="recording", template="hi")
    ws.campaigns.cancel(one.id)
    sent = len(rec.sent)
    for campaign, call in ((ab.id, lambda i: ws.campaigns.rollout(i, variant="A")),
                           (one.id, ws.campaigns.send), (one.id, ws.campaigns.pilot)):
        before = snapshot(ws, campaign)
        with pytest.raises(InvalidTransition, match=r"is cancelled.*create a new campaign"):
            call(campaign)
        assert snapshot(ws, campaign) == before
    assert ws.campaigns.resume(ab.id).done and len(rec.sent) == sent
    assert ws.campaigns.get(ab.id).status == "cancelled" and ws.campaigns.cancel(ab.id).status == "cancelled"


def test_a_pilot_comes_before_any_send(ws: siyu.Workspace, rec: RecordingChannel) -> None:
    ids = users(ws, 40)
    paused = ws.campaigns.create("p", audience=ids, channel="recording", template="hi", variants={"A": {}, "B": {}})
    rec.script(Status.RATE_LIMITED, code="45009", retry_after=60, times=40)
    ws.campaigns.send(paused.id, variant="A")
    done = ws.campaigns.create("d", audience=ids, channel="recording", template="hi", variants={"A": {}, "B": {}})
    ws.campaigns.send(done.id, variant="A")
    for c, says in ((paused, r"was already launched \(send\); a pilot must come before any send"),
                    (done, r"is done and cannot become piloting; .*ws\.campaigns\.results")):
        before = snapshot(ws, c.id)
        with pytest.raises(InvalidTransition, match=says):
            ws.campaigns.pilot(c.id, fraction=0.5)
        assert snapshot(ws, c.id) == before


def test_a_scheduled_send_once_armed_takes_no_pilot(ws: siyu.Workspace, rec: RecordingChannel) -> None:
    c = ws.campaigns.create("c", audience=users(ws, 10), channel="recording", template="hi",
                            schedule=ws.now() + timedelta(hours=1))
    ws.campaigns.send(c.id, holdout=0.2)
    before = snapshot(ws, c.id)
    with pytest.raises(InvalidTransition, match=r"was already launched \(send\); a pilot must come before any send"):
        ws.campaigns.pilot(c.id, fraction=0.5, send=False)
    assert snapshot(ws, c.id) == before


# -- pauses give back what they interrupted ----------------------------------------------------------------------


def test_a_rate_limited_triggered_campaign_keeps_listening(
    ws: siyu.Workspace, rec: RecordingChannel, clock: FakeClock
) -> None:
    ws.campaigns.create("welcome", channel="recording", template="hi", purpose="transactional",
                        trigger=Trigger(event="UserCreated"))
    rec.script(Status.RATE_LIMITED, code="45009", retry_after=120)
    first = ws.users.add()
    assert ws.campaigns.get("welcome").status == "paused"
    during = ws.users.add()  # queued while paused
    clock.advance(seconds=121)
    ws.campaigns.run_due()
    assert ws.campaigns.get("welcome").status == "active"
    after = ws.users.add()
    assert sorted(m.user_id for m in rec.sent) == [first.id, during.id, after.id]


def test_a_rate_limited_recurring_campaign_runs_its_next_occurrence(
    ws: siyu.Workspace, rec: RecordingChannel, clock: FakeClock
) -> None:
    ids = users(ws, 4)
    ws.campaigns.create("daily", audience=ids, channel="recording", template="hi",
                        schedule="FREQ=DAILY;BYHOUR=10;BYMINUTE=0")
    ws.campaigns.send("daily")
    clock.advance(hours=18, minutes=30)  # 10:30 tomorrow in Shanghai: the first round is due
    rec.script(Status.RATE_LIMITED, code="45009", retry_after=120)
    ws.campaigns.run_due()
    assert ws.campaigns.get("daily").status == "paused"
    clock.advance(minutes=3)
    ws.campaigns.run_due()
    assert ws.campaigns.get("daily").status == "active"
    clock.advance(days=1)
    ws.campaigns.run_due()
    assert Counter(m.user_id for m in rec.sent) == {uid: 2 for uid in ids}


def test_deciding_a_rolled_out_recurring_campaign_keeps_it_recurring(
    ws: siyu.Workspace, rec: RecordingChannel, clock: FakeClock
) -> None:
    ids = users(ws, 60)
    c = ws.campaigns.create("daily", audience=ids, channel="recording", template="hi", goal="order",
                            variants={"A": {}, "B": {}}, schedule="FREQ=DAILY;BYHOUR=10;BYMINUTE=0")
    ws.campaigns.pilot(c.id, fraction=0.5, holdout=False)
    ws.campaigns.rollout(c.id, variant="A")
    for d in ws.campaigns.deliveries(c.id, status="sent"):
        if d.variant == "A":
            ws.campaigns.convert(d.user_id, "order")
    assert ws.campaigns.decide(c.id, min_sample=5).winner == "A"
    assert ws.campaigns.get(c.id).status == "active"
    clock.advance(hours=18, minutes=30)
    ws.campaigns.run_due()
    assert ws.campaigns.get(c.id).status == "active" and len(rec.sent) > 30


def test_a_pause_after_a_cancel_does_not_bring_the_campaign_back(ws: siyu.Workspace, clock: FakeClock) -> None:
    def outcome(message: Any) -> Any:
        ws.campaigns.cancel("c")  # cancelled while the provider call is under way, then rate-limited
        return None

    rec = ws.channels.install(RecordingChannel(outcome=outcome))
    assert isinstance(rec, RecordingChannel)
    rec.script(Status.RATE_LIMITED, code="45009", retry_after=60, times=3)
    ws.campaigns.send(ws.campaigns.create("c", audience=users(ws, 3), channel="recording", template="hi").id)
    assert ws.campaigns.get("c").status == "cancelled"
    clock.advance(minutes=5)
    assert ws.campaigns.run_due() == [] and ws.campaigns.resume("c").done and rec.sent == []


# -- the stored form ------------------------------------------------------------------------------------------------

instants = st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2040, 1, 1), timezones=st.just(UTC))
small = st.text("abcAB0_:", min_size=1, max_size=8)
states = st.builds(
    CampaignState,
    phase=st.none() | st.sampled_from(Phase),
    pilot=st.none() | st.builds(PilotInfo, fraction=st.floats(0.01, 0.99), seed=st.integers(0, 2**31),
                                users=st.integers(0, 10**6), holdout=st.booleans(), at=instants),
    holdout=st.none() | st.builds(HoldoutInfo, fraction=st.floats(0.01, 0.99), seed=st.integers(0, 2**31),
                                  users=st.integers(1, 10**6), at=instants),
    winner=st.none() | small,
    decision=st.none() | st.builds(Decided, test=small, reason=st.text(max_size=20), at=instants),
    launch=st.none() | st.builds(Launch, variant=small, phase=st.sampled_from(Phase),
                                 occurrence=st.none() | st.just("") | small),
    armed=st.booleans(),
    next_run_at=st.none() | instants,
    pause=st.none() | st.builds(Pause, until=instants, reason=small,
                                resume_to=st.none() | st.sampled_from(S)),
    cursors=st.dictionaries(st.just("") | small, st.integers(0, 2**32 - 1), max_size=3),
    extra=st.dictionaries(st.sampled_from(["later_key", "x"]), st.integers(), max_size=2),
)


@settings(max_examples=200, deadline=None)
@given(states)
def test_state_survives_the_stored_form(state: CampaignState) -> None:
    assert load_state(dump_state(state)) == state


def test_state_stored_by_earlier_versions_loads() -> None:
    state = load_state({
        "rest": {"variant": "A", "phase": "send", "occurrence": ""}, "phase": "send", "cursor:": 17,
        "pilot": {"fraction": 0.1, "seed": 5, "at": "2026-11-22T16:00:00+08:00", "users": 30, "holdout": True},
        "winner": "A", "decision": {"test": "z-test", "reason": "A wins", "at": "2026-11-23T10:00:00+08:00"},
        "paused_until": "2026-11-23T11:00:00+08:00", "pause_reason": "rate_limited", "next_run_at": None,
    })
    assert state.launch == Launch(variant="A", phase=Phase.SEND, occurrence="")
    assert state.cursors == {"": 17} and state.winner == "A" and state.pilot is not None and state.pilot.holdout
    assert state.pause is not None and state.pause.resume_to is None and state.resumes_to() is S.RUNNING
    assert state.next_run_at is None and dict(state.extra) == {}


def test_an_unreadable_state_is_a_storage_error() -> None:
    with pytest.raises(siyu.errors.StorageError, match="cannot be read"):
        load_state({"rest": {"phase": "send"}})


# -- only the table's moves happen, whatever is called in whatever order ------------------------------------------


class CampaignLives(RuleBasedStateMachine):
    """Random create/pilot/decide/rollout/send/resume/cancel/run_due sequences, with rate
    limits and time passing: every status written is a move the table allows, a pause
    is stored exactly while the status is paused, and a cancelled campaign sends nothing."""

    campaigns = Bundle("campaigns")

    def __init__(self) -> None:
        super().__init__()
        self.moves: list[tuple[int, str, str]] = []
        self._update = SqlCampaignStore.update
        moves, original = self.moves, self._update

        def update(store: SqlCampaignStore, campaign_id: int, *, status: str | None = None,
                   state: dict[str, Any] | None = None) -> None:
            if status is not None:
                before = store.get(campaign_id)
                assert before is not None
                moves.append((campaign_id, before.status, status))
            original(store, campaign_id, status=status, state=state)

        SqlCampaignStore.update = update  # type: ignore[method-assign]
        self.clock = FakeClock(datetime(2026, 11, 22, 2, 0, tzinfo=UTC))
        self.ws = siyu.connect("memory://", clock=self.clock)
        channel = self.ws.channels.install(RecordingChannel())
        assert isinstance(channel, RecordingChannel)
        self.rec = channel
        self.ids = users(self.ws, 24)
        self.cancelled_at: dict[int, int] = {}
        self.count = 0

    def teardown(self) -> None:
        SqlCampaignStore.update = self._update  # type: ignore[method-assign]
        self.ws.close()

    def sent_for(self, campaign_id: int) -> int:
        return sum(1 for m in self.rec.sent if (m.key or "").startswith(f"campaign:{campaign_id}:"))

    def call(self, fn: Any, *args: Any, **kwargs: Any) -> None:
        try:
            fn(*args, **kwargs)
        except SiyuError:
            pass  # refusals are fine; any other exception fails the test

    @rule(target=campaigns, kind=st.sampled_from(["one", "ab", "at", "daily", "trigger"]))
    def create(self, kind: str) -> int:
        self.count += 1
        args: dict[str, Any] = {"audience": self.ids, "goal": "order"}
        if kind == "ab":
            args["variants"] = {"A": {}, "B": {}}
        elif kind == "at":
            args["schedule"] = self.clock.now + timedelta(hours=1)
        elif kind == "daily":
            args.update(schedule="FREQ=DAILY;BYHOUR=10;BYMINUTE=0", variants={"A": {}, "B": {}})
        elif kind == "trigger":
            args = {"trigger": Trigger(event="UserCreated"), "purpose": "transactional"}
        return self.ws.campaigns.create(f"c{self.count}", channel="recording", template="hi", **args).id

    @rule(c=campaigns, send=st.booleans())
    def pilot(self, c: int, send: bool) -> None:
        self.call(self.ws.campaigns.pilot, c, fraction=0.5, send=send)

    @rule(c=campaigns)
    def decide(self, c: int) -> None:
        for d in self.ws.campaigns.deliveries(c, status="sent"):
            if d.variant == "A":
                self.call(self.ws.campaigns.convert, d.user_id, "order")
        self.call(self.ws.campaigns.decide, c, min_sample=3)

    @rule(c=campaigns, variant=st.sampled_from([None, "A"]))
    def rollout(self, c: int, variant: str | None) -> None:
        self.call(self.ws.campaigns.rollout, c, variant=variant)

    @rule(c=campaigns, holdout=st.sampled_from([0.0, 0.2]))
    def send(self, c: int, holdout: float) -> None:
        self.call(self.ws.campaigns.send, c, holdout=holdout, variant="A")

    @rule(c=campaigns)
    def resume(self, c: int) -> None:
        self.call(self.ws.campaigns.resume, c)

    @rule(c=campaigns)
    def cancel(self, c: int) -> None:
        self.ws.campaigns.cancel(c)
        self.cancelled_at.setdefault(c, self.sent_for(c))

    @rule()
    def run_due(self) -> None:
        self.ws.campaigns.run_due()

    @rule()
    def new_user(self) -> None:
        self.ws.users.add()

    @rule(minutes=st.sampled_from([1, 5, 90, 24 * 60]))
    def wait(self, minutes: int) -> None:
        self.clock.advance(minutes=minutes)

    @rule(times=st.integers(1, 3))
    def rate_limit(self, times: int) -> None:
        self.rec.script(Status.RATE_LIMITED, code="45009", retry_after=60, times=times)

    @invariant()
    def only_the_tables_moves_happen(self) -> None:
        assert [m for m in self.moves if CampaignStatus(m[2]) not in TRANSITIONS[CampaignStatus(m[1])]] == []

    @invariant()
    def a_pause_is_stored_exactly_while_paused(self) -> None:
        with self.ws.read() as tx:
            for row in tx.campaigns.all():
                c = find(tx, row.id)
                assert (c.status is S.PAUSED) == (c.state.pause is not None), (c.status, c.state)

    @invariant()
    def a_cancelled_campaign_sends_nothing_more(self) -> None:
        for c, sent in self.cancelled_at.items():
            assert self.sent_for(c) == sent
            assert self.ws.campaigns.get(c).status == "cancelled"


TestCampaignLives = CampaignLives.TestCase
TestCampaignLives.settings = settings(
    max_examples=40, stateful_step_count=25, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


def test_decide_records_the_winner_under_a_pause(ws: siyu.Workspace, rec: RecordingChannel, clock: FakeClock) -> None:
    c = ws.campaigns.create("c", audience=users(ws, 40), channel="recording", template="hi", goal="order",
                            variants={"A": {}, "B": {}})
    ws.campaigns.pilot(c.id, fraction=0.5, holdout=False)
    for d in ws.campaigns.deliveries(c.id, status="sent"):
        if d.variant == "A":
            ws.campaigns.convert(d.user_id, "order")
    with ws.write() as tx:  # paused by a rate limit meanwhile
        current = find(tx, c.id)
        save(tx, current, status=S.PAUSED, state=attrs.evolve(
            current.state, pause=Pause(until=clock.now + timedelta(minutes=1), reason="rate_limited",
                                       resume_to=S.PILOTING)))
    assert ws.campaigns.decide(c.id, min_sample=3).winner == "A"
    assert ws.campaigns.get(c.id).status == "paused"
    clock.advance(minutes=2)
    ws.campaigns.resume(c.id)
    assert ws.campaigns.get(c.id).status == "decided"
    with pytest.raises(Conflict):
        ws.campaigns.pilot(c.id)
