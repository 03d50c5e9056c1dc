"""What the campaign API returns: campaigns, previews, results, decisions."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import attrs

from ..channels.base import Purpose
from ..channels.receipts import Receipt, ReceiptStatus
from .gates import Gate
from .state import CampaignStatus, Phase

__all__ = [
    "Campaign",
    "Decision",
    "Delivery",
    "DeliveryStatus",
    "GateCount",
    "Preview",
    "ReceiptReport",
    "RunReport",
    "SampleRender",
    "Trigger",
    "UnmatchedReceipt",
    "VariantResult",
    "Results",
]


@attrs.frozen(kw_only=True)
class Trigger:
    """What starts an event-triggered campaign.

    ``event`` is an event class name from :mod:`siyu.events` (``"UserCreated"``,
    ``"TagApplied"`` ...) and ``where`` the attribute values it must have
    (``{"source": "wecom_qr"}``); or ``event="points_expiring"`` with
    ``within=timedelta(days=7)`` to remind users whose points expire soon.
    Each user gets the message once per occurrence (per triggering event,
    per expiring lot).
    """

    event: str
    where: Mapping[str, Any] = attrs.field(factory=dict)
    within: timedelta | None = None


@attrs.frozen(kw_only=True)
class Campaign:
    """A stored campaign (see ``ws.campaigns.create``).

    ``status`` (a :class:`~siyu.campaigns.CampaignStatus`, compared like its
    string) is ``draft`` (created), ``scheduled`` (waiting for its start),
    ``piloting`` (pilot sent, waiting for results), ``decided``, ``running``
    (a send or roll-out in progress), ``paused`` (rate-limited or throttled;
    it gives back the status it interrupted), ``done``, ``cancelled``, or
    ``active`` (triggered and recurring campaigns, which keep listening).
    :data:`~siyu.campaigns.TRANSITIONS` says which may follow which.
    """

    id: int
    name: str
    channel: str
    template: str
    variants: Mapping[str, Mapping[str, Any]]
    goal: str | None
    attribution_window: timedelta
    purpose: Purpose
    non_personalized: bool
    status: CampaignStatus
    audience_count: int
    created_at: datetime
    schedule: str | None = None
    start_at: datetime | None = None
    throttle: int | None = None
    trigger: Trigger | None = None
    winner: str | None = None


class DeliveryStatus(enum.StrEnum):
    """Where a delivery record stands."""

    #: Waiting for its turn (due now or at ``due_at``: quiet hours, a retry, a schedule).
    QUEUED = "queued"
    #: Claimed by a run and being sent; after a crash, recovered by the next run.
    PENDING = "pending"
    #: The channel accepted it.
    SENT = "sent"
    #: The channel could not send it and gave up (``code`` and ``detail`` say why).
    FAILED = "failed"
    #: The provider refused this message (template, content, signature).
    REJECTED = "rejected"
    #: The recipient cannot receive it (unknown number, no relation, unsubscribed).
    UNAVAILABLE = "unavailable"
    #: A gate removed the user (``reason`` names the gate).
    SKIPPED = "skipped"
    #: Set aside in the pilot's or roll-out's holdout group: gets nothing, on purpose.
    HOLDOUT = "holdout"
    #: The provider may or may not have it: reconciled, or settled by a person (``ws.campaigns.resolve``).
    UNKNOWN = "unknown"


@attrs.frozen(kw_only=True)
class GateCount:
    """One gate in a preview: how many users it removed (or deferred) and who is left."""

    gate: Gate = attrs.field(converter=Gate)
    removed: int
    remaining: int
    deferred: int = 0


@attrs.frozen(kw_only=True)
class SampleRender:
    """What one user of the audience would receive from one variant."""

    variant: str
    user_id: int
    recipient: str | None
    text: str
    length: int
    length_unit: str
    limit: int | None
    problems: tuple[str, ...] = ()


@attrs.frozen(kw_only=True)
class Preview:
    """Reach after each gate, counted, and sample renders per variant.

    ``gates`` are in the order they apply; ``reach`` is who would receive the
    message now; ``deferred`` of them fall in quiet hours and would wait for
    the next window. ``str()`` renders a table.
    """

    campaign_id: int
    audience: int
    gates: tuple[GateCount, ...]
    reach: int
    deferred: int
    samples: tuple[SampleRender, ...]
    max_length: Mapping[str, int]
    at: datetime

    def removed(self, gate: str) -> int:
        for g in self.gates:
            if g.gate == gate:
                return g.removed
        raise KeyError(gate)

    def __str__(self) -> str:
        lines = [f"audience {self.audience:>12,}"]
        for g in self.gates:
            extra = f"  ({g.deferred:,} wait for the next window)" if g.deferred else ""
            lines.append(f"- {g.gate:<16} {g.removed:>10,}  -> {g.remaining:>12,}{extra}")
        lines.append(f"reach    {self.reach:>12,}")
        for s in self.samples:
            limit = f"/{s.limit}" if s.limit is not None else ""
            lines.append(f"[{s.variant}] user {s.user_id} ({s.length}{limit} {s.length_unit}): {s.text}")
        return "\n".join(lines)


@attrs.frozen(kw_only=True)
class VariantResult:
    """One arm of a campaign: what was sent and how many converted.

    ``delivered`` counts messages the channel **accepted**; of those, a
    provider receipt (``ws.campaigns.record_receipts``) says ``confirmed``
    reached the recipient and ``receipt_failed`` did not; the rest
    (``awaiting_receipt``) have no receipt (yet, or never: channels without
    receipts). ``failed`` counts records that definitely did not go out
    (failed, rejected, unavailable); ``unknown`` those whose send may or may
    not have reached the provider (siyu is asking it, or a person decides:
    ``ws.campaigns.resolve``). ``rate`` is conversions / ``exposed`` (sent for
    a variant, assigned for the holdout); ``interval`` is the 95% Wilson score
    interval of the rate.
    """

    variant: str
    assigned: int
    sent: int
    delivered: int
    skipped: int
    failed: int
    conversions: int
    value_fen: int
    rate: float
    interval: tuple[float, float]
    confirmed: int = 0
    receipt_failed: int = 0
    unknown: int = 0

    @property
    def exposed(self) -> int:
        return self.assigned if self.variant == "holdout" else self.sent

    @property
    def awaiting_receipt(self) -> int:
        """Accepted messages no receipt has settled."""
        return max(0, self.delivered - self.confirmed - self.receipt_failed)


@attrs.frozen(kw_only=True)
class Results:
    """Per-variant results (``variants["holdout"]`` is the holdout group)."""

    campaign_id: int
    phase: str | None
    variants: Mapping[str, VariantResult]
    skipped: Mapping[str, int]
    at: datetime

    def __getitem__(self, variant: str) -> VariantResult:
        return self.variants[variant]

    def __str__(self) -> str:
        lines = [f"{'variant':<10}{'sent':>8}{'deliv.':>8}{'confirm.':>9}{'conv.':>7}{'rate':>8}  95% interval"]
        for v in self.variants.values():
            lo, hi = v.interval
            lines.append(
                f"{v.variant:<10}{v.exposed:>8}{v.delivered:>8}{v.confirmed:>9}{v.conversions:>7}{v.rate:>8.2%}"
                f"  [{lo:.2%}, {hi:.2%}]"
            )
        unknown = sum(v.unknown for v in self.variants.values())
        if unknown:
            lines.append(
                f"{unknown} message(s) of unknown outcome: ws.campaigns.deliveries({self.campaign_id}, "
                "status='unknown'); settle them with ws.campaigns.resolve"
            )
        return "\n".join(lines)


@attrs.frozen(kw_only=True)
class Decision:
    """The outcome of ``ws.campaigns.decide``.

    ``winner`` is ``None`` when the data is not (yet) significant; ``test``
    names the test; ``statistic`` and ``p_value`` (z-test) or
    ``probability`` (Bayesian) are its numbers; ``threshold`` what it had to
    reach; ``reason`` says it in words.
    """

    campaign_id: int
    winner: str | None
    test: str
    reason: str
    significant: bool
    statistic: float | None = None
    p_value: float | None = None
    probability: float | None = None
    threshold: float = 0.05
    comparisons: tuple[Mapping[str, Any], ...] = ()
    at: datetime | None = None

    def __str__(self) -> str:
        return self.reason


@attrs.frozen(kw_only=True)
class Delivery:
    """One delivery record: who got (or did not get) what, and why. ``receipt`` is
    the provider's later report on a ``sent`` record (``"delivered"``,
    ``"failed"`` or ``None`` when none arrived), with its ``receipt_code`` and
    ``receipt_at`` (the provider's time)."""

    id: int
    campaign_id: int
    user_id: int
    occurrence: str
    variant: str
    #: The launch (``pilot``, ``send``, ``rollout``) or ``"trigger"`` for a triggered campaign.
    phase: str
    status: DeliveryStatus
    reason: str | None
    recipient: str | None
    claimed_at: datetime | None
    completed_at: datetime | None
    due_at: datetime | None
    attempts: int
    provider_id: str | None
    code: str | None
    detail: str | None
    receipt: ReceiptStatus | None = None
    receipt_code: str | None = None
    receipt_at: datetime | None = None

    @classmethod
    def of(cls, r: Any) -> Delivery:
        """The record as stored (a :class:`~siyu.storage.contracts.campaigns.DeliveryRow`)."""
        return cls(
            id=r.id, campaign_id=r.campaign_id, user_id=r.user_id, occurrence=r.occurrence, variant=r.variant,
            phase=_phase(r.phase), status=DeliveryStatus(r.status), reason=r.reason, recipient=r.recipient,
            claimed_at=r.claimed_at, completed_at=r.completed_at, due_at=r.due_at, attempts=r.attempts,
            provider_id=r.provider_id, code=r.code, detail=r.detail,
        )


@attrs.frozen(kw_only=True)
class UnmatchedReceipt:
    """A receipt that matched no delivery record, and why: ``unknown_id`` (no
    ``sent`` record of a campaign on that channel carries the message id),
    ``ambiguous`` (several records share the id and the receipt's recipient
    does not pick one), ``recipient_mismatch`` (the record with that id went
    to another address)."""

    receipt: Receipt
    reason: str


@attrs.frozen(kw_only=True)
class ReceiptReport:
    """What ``ws.campaigns.record_receipts`` did. ``recorded`` receipts changed a
    record (a first receipt, or ``delivered`` after ``failed``); ``unchanged``
    ones were repeats or a ``failed`` after ``delivered``; ``unmatched`` lists
    the receipts nothing was stored for. ``delivery_ids`` are the records changed."""

    recorded: int
    unchanged: int
    unmatched: tuple[UnmatchedReceipt, ...]
    delivery_ids: tuple[int, ...]


@attrs.frozen(kw_only=True)
class RunReport:
    """What one send/resume call did. ``paused_until`` is set when a rate limit,
    quiet hours or the throttle stopped it early; call ``resume`` then."""

    campaign_id: int
    claimed: int = 0
    sent: int = 0
    failed: int = 0
    skipped: int = 0
    deferred: int = 0
    unknown: int = 0
    retried: int = 0
    #: Records of unknown outcome this run settled by asking the provider (found
    #: ones are also counted in ``sent``, refused ones in ``failed``).
    reconciled: int = 0
    paused_until: datetime | None = None
    done: bool = False
    skipped_by: Mapping[str, int] = attrs.field(factory=dict)


def _phase(value: str) -> str:
    # A triggered campaign's records carry "trigger", which is no launch phase.
    return Phase(value) if value in _PHASES else value


_PHASES = frozenset(p.value for p in Phase)
