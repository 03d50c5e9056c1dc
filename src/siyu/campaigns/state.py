"""A campaign's status and state, and the transitions allowed between statuses.

The status says where a campaign is in its life (:class:`CampaignStatus`);
the state (:class:`CampaignState`) what it has done so far: the pilot, the
decision, the launched phase, the audience cursor, the schedule, a pause.
Every status change is checked by :func:`check_transition` against
:data:`TRANSITIONS`, the one table of what may follow what.

A pause sits on top of the status it interrupted and gives it back when it
ends (``Pause.resume_to``), so a rate-limited triggered or recurring campaign
keeps listening, and a paused pilot is still a pilot.

The state is stored as a JSON object whose keys siyu has always used
(``"pilot"``, ``"winner"``, ``"rest"``, ``"cursor:<occurrence>"`` ...);
:func:`load_state` and :func:`dump_state` are the only code that reads or
writes that object, so campaigns stored by earlier versions load as they are.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Any

import attrs

from ..errors import InvalidTransition, StorageError

__all__ = [
    "TRANSITIONS",
    "CampaignState",
    "CampaignStatus",
    "Decided",
    "HoldoutInfo",
    "Launch",
    "Pause",
    "Phase",
    "PilotInfo",
    "allowed",
    "check_transition",
    "dump_state",
    "load_state",
]


class CampaignStatus(enum.StrEnum):
    """Where a campaign is in its life (stored and compared as its string value)."""

    #: Created; nothing assigned or sent.
    DRAFT = "draft"
    #: Has a start time (or is armed for it) and waits for it.
    SCHEDULED = "scheduled"
    #: Pilot users assigned; waiting for results.
    PILOTING = "piloting"
    #: The pilot's winner is recorded; waiting for the roll-out.
    DECIDED = "decided"
    #: A send or roll-out is in progress.
    RUNNING = "running"
    #: Stopped until a time (rate limit, throttle); gives back the status it interrupted.
    PAUSED = "paused"
    #: Listens for its trigger or its next occurrence (triggered and recurring campaigns).
    ACTIVE = "active"
    #: Everyone it was launched to has a delivery record.
    DONE = "done"
    #: Stopped for good: nothing more is claimed.
    CANCELLED = "cancelled"


S = CampaignStatus


def _cursors(value: Mapping[str, int]) -> Mapping[str, int]:
    return MappingProxyType(dict(value))


def _extra(value: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(value))

#: Which statuses may follow each status. Staying in the same status is always allowed.
TRANSITIONS: Mapping[CampaignStatus, frozenset[CampaignStatus]] = MappingProxyType({
    S.DRAFT: frozenset({S.PILOTING, S.SCHEDULED, S.RUNNING, S.ACTIVE, S.CANCELLED}),
    S.SCHEDULED: frozenset({S.PILOTING, S.RUNNING, S.ACTIVE, S.PAUSED, S.CANCELLED}),
    S.PILOTING: frozenset({S.DECIDED, S.SCHEDULED, S.RUNNING, S.ACTIVE, S.PAUSED, S.CANCELLED}),
    S.DECIDED: frozenset({S.SCHEDULED, S.RUNNING, S.ACTIVE, S.PAUSED, S.CANCELLED}),
    S.RUNNING: frozenset({S.PILOTING, S.DECIDED, S.ACTIVE, S.PAUSED, S.DONE, S.CANCELLED}),
    S.PAUSED: frozenset({S.SCHEDULED, S.PILOTING, S.DECIDED, S.RUNNING, S.ACTIVE, S.DONE, S.CANCELLED}),
    S.ACTIVE: frozenset({S.RUNNING, S.PAUSED, S.CANCELLED}),
    S.DONE: frozenset({S.RUNNING, S.CANCELLED}),
    S.CANCELLED: frozenset(),
})

#: What to do instead, per status a transition was refused from.
_ADVICE: Mapping[CampaignStatus, str] = MappingProxyType({
    S.DRAFT: "pilot it (ws.campaigns.pilot({id})) or send it (ws.campaigns.send({id})) first",
    S.SCHEDULED: "it starts at its time (ws.campaigns.run_due()); pilot or send it (ws.campaigns.send({id})) first",
    S.PILOTING: "decide it (ws.campaigns.decide({id})) or roll it out (ws.campaigns.rollout({id}))",
    S.DECIDED: "roll it out (ws.campaigns.rollout({id}))",
    S.CANCELLED: "a cancelled campaign sends nothing more; create a new campaign (ws.campaigns.create)",
    S.DONE: "it has finished; see ws.campaigns.results({id}), or create a new campaign "
    "(records settled by ws.campaigns.resolve as not sent make it run again)",
    S.PAUSED: "it continues by itself when the pause ends (ws.campaigns.resume({id}) or run_due)",
    S.RUNNING: "let it finish (ws.campaigns.resume({id})) or stop it (ws.campaigns.cancel({id}))",
    S.ACTIVE: "it keeps listening for its trigger or next occurrence; stop it with ws.campaigns.cancel({id})",
})


def allowed(current: CampaignStatus, to: CampaignStatus) -> bool:
    """Whether ``to`` may follow ``current`` (the same status always may)."""
    return to is current or to in TRANSITIONS[current]


def check_transition(current: CampaignStatus, to: CampaignStatus, *, campaign: str, campaign_id: int) -> None:
    """Refuse a status change the table does not allow, saying what to do instead.

    Raises :class:`~siyu.errors.InvalidTransition`.
    """
    if allowed(current, to):
        return
    advice = _ADVICE[current].format(id=campaign_id)
    raise InvalidTransition(
        f"campaign {campaign!r} is {current.value} and cannot become {to.value}; {advice}",
        status=current.value, to=to.value,
    )


class Phase(enum.StrEnum):
    """The launch a campaign is in."""

    PILOT = "pilot"
    SEND = "send"
    ROLLOUT = "rollout"


@attrs.frozen(kw_only=True)
class PilotInfo:
    """How the pilot was drawn."""

    fraction: float
    seed: int
    users: int
    holdout: bool
    at: datetime


@attrs.frozen(kw_only=True)
class HoldoutInfo:
    """The holdout a send set aside (``send(holdout=0.1)``)."""

    fraction: float
    seed: int
    users: int
    at: datetime


@attrs.frozen(kw_only=True)
class Decided:
    """How the winner was chosen."""

    test: str
    reason: str
    at: datetime


@attrs.frozen(kw_only=True)
class Launch:
    """What a send or roll-out sends to the audience beyond the pilot.

    ``occurrence`` is the round open now (``""`` for a one-off send, an ISO
    time for a recurring campaign's round, ``None`` until its first round opens).
    """

    variant: str
    phase: Phase
    occurrence: str | None = ""


@attrs.frozen(kw_only=True)
class Pause:
    """A pause: until when, why, and the status to give back when it ends."""

    until: datetime
    reason: str
    #: ``None`` for pauses stored by earlier versions: they resume as ``running``.
    resume_to: CampaignStatus | None = None


@attrs.frozen(kw_only=True)
class CampaignState:
    """What a campaign has done so far."""

    #: The latest launch: the pilot, a send or a roll-out.
    phase: Phase | None = None
    pilot: PilotInfo | None = None
    holdout: HoldoutInfo | None = None
    winner: str | None = None
    decision: Decided | None = None
    launch: Launch | None = None
    #: A scheduled campaign was sent (``send``/``rollout``) and goes out at its time.
    armed: bool = False
    #: The next start or occurrence of a scheduled campaign.
    next_run_at: datetime | None = None
    pause: Pause | None = None
    #: Per occurrence, the highest user id claimed so far from the audience.
    cursors: Mapping[str, int] = attrs.field(factory=dict, converter=_cursors)
    #: Keys written by another siyu version: not read, written back as they were.
    extra: Mapping[str, Any] = attrs.field(factory=dict, converter=_extra)

    def with_cursor(self, occurrence: str, user_id: int) -> CampaignState:
        return attrs.evolve(self, cursors={**self.cursors, occurrence: user_id})

    def resumes_to(self) -> CampaignStatus:
        """The status a pause gives back when it ends."""
        if self.pause is None or self.pause.resume_to is None:
            return CampaignStatus.RUNNING
        return self.pause.resume_to


# -- the storage edge ------------------------------------------------------------------------------------------

_CURSOR = "cursor:"
_KNOWN = frozenset({"phase", "pilot", "holdout", "winner", "decision", "rest", "armed", "next_run_at",
                    "paused_until", "pause_reason", "paused_from"})


def _time(value: Any) -> datetime | None:
    return None if not value else datetime.fromisoformat(str(value))


def _load_parts(raw: Mapping[str, Any]) -> dict[str, Any]:
    parts: dict[str, Any] = {}
    if raw.get("phase"):
        parts["phase"] = Phase(raw["phase"])
    if raw.get("pilot"):
        p = raw["pilot"]
        parts["pilot"] = PilotInfo(fraction=float(p["fraction"]), seed=int(p["seed"]), users=int(p["users"]),
                                   holdout=bool(p.get("holdout", False)), at=datetime.fromisoformat(p["at"]))
    if raw.get("holdout"):
        h = raw["holdout"]
        parts["holdout"] = HoldoutInfo(fraction=float(h["fraction"]), seed=int(h["seed"]), users=int(h["users"]),
                                       at=datetime.fromisoformat(h["at"]))
    if raw.get("decision"):
        d = raw["decision"]
        parts["decision"] = Decided(test=str(d["test"]), reason=str(d["reason"]), at=datetime.fromisoformat(d["at"]))
    if raw.get("rest") is not None:
        r = raw["rest"]
        occurrence = r.get("occurrence", "")
        parts["launch"] = Launch(variant=str(r["variant"]), phase=Phase(r["phase"]),
                                 occurrence=None if occurrence is None else str(occurrence))
    until = _time(raw.get("paused_until"))
    if until is not None:
        came_from = raw.get("paused_from")
        parts["pause"] = Pause(until=until, reason=str(raw.get("pause_reason") or ""),
                               resume_to=None if not came_from else CampaignStatus(came_from))
    return parts


def load_state(raw: Mapping[str, Any]) -> CampaignState:
    """The typed state of a stored state object (any version's)."""
    try:
        return CampaignState(
            **_load_parts(raw),
            winner=None if not raw.get("winner") else str(raw["winner"]),
            armed=bool(raw.get("armed", False)),
            next_run_at=_time(raw.get("next_run_at")),
            cursors={k[len(_CURSOR):]: int(v) for k, v in raw.items() if k.startswith(_CURSOR)},
            extra={k: v for k, v in raw.items() if k not in _KNOWN and not k.startswith(_CURSOR)},
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise StorageError(
            f"a stored campaign state cannot be read ({type(exc).__name__}: {exc}): {dict(raw)!r}; "
            "it was changed outside siyu or by a newer version"
        ) from None


def dump_state(state: CampaignState) -> dict[str, Any]:
    """The state object to store: the keys every siyu version reads."""
    out: dict[str, Any] = dict(state.extra)
    if state.phase is not None:
        out["phase"] = state.phase.value
    if state.pilot is not None:
        p = state.pilot
        out["pilot"] = {"fraction": p.fraction, "seed": p.seed, "at": p.at.isoformat(), "users": p.users,
                        "holdout": p.holdout}
    if state.holdout is not None:
        h = state.holdout
        out["holdout"] = {"fraction": h.fraction, "seed": h.seed, "users": h.users, "at": h.at.isoformat()}
    if state.winner is not None:
        out["winner"] = state.winner
    if state.decision is not None:
        d = state.decision
        out["decision"] = {"test": d.test, "reason": d.reason, "at": d.at.isoformat()}
    if state.launch is not None:
        r = state.launch
        out["rest"] = {"variant": r.variant, "phase": r.phase.value, "occurrence": r.occurrence}
    if state.armed:
        out["armed"] = True
    if state.next_run_at is not None:
        out["next_run_at"] = state.next_run_at.isoformat()
    if state.pause is not None:
        out["paused_until"] = state.pause.until.isoformat()
        out["pause_reason"] = state.pause.reason
        if state.pause.resume_to is not None:
            out["paused_from"] = state.pause.resume_to.value
    for occurrence, user_id in state.cursors.items():
        out[_CURSOR + occurrence] = user_id
    return out
