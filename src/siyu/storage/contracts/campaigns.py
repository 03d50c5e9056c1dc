"""What campaigns keep: definitions, delivery records, conversions, suppressions.

A delivery record exists per ``(campaign, user, occurrence)`` and is written
*before* a message leaves, so a rerun or a crash never sends twice. Instants
are aware ``datetime``; the audience is a serialized Roaring bitmap.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import attrs

__all__ = ["CampaignRow", "CampaignStore", "DeliveryRow", "NewDelivery", "ReceiptRow"]


@attrs.frozen(kw_only=True)
class CampaignRow:
    """A stored campaign. ``config`` and ``state`` are JSON-able dicts owned by the service."""

    id: int
    name: str
    channel: str
    consent_channel: str
    template: str
    variants: dict[str, dict[str, Any]]
    goal: str | None
    attribution_us: int
    purpose: str
    non_personalized: bool
    status: str
    config: dict[str, Any]
    audience: bytes | None
    audience_count: int
    created_at: datetime
    state: dict[str, Any]


@attrs.frozen(kw_only=True)
class NewDelivery:
    """A delivery record to insert."""

    user_id: int
    variant: str
    phase: str
    status: str
    occurrence: str = ""
    reason: str | None = None
    due_at: datetime | None = None
    claimed_at: datetime | None = None
    completed_at: datetime | None = None
    idem_key: str | None = None
    recipient: str | None = None


@attrs.frozen(kw_only=True)
class DeliveryRow:
    """A stored delivery record."""

    id: int
    campaign_id: int
    user_id: int
    occurrence: str
    variant: str
    phase: str
    status: str
    reason: str | None
    channel: str
    purpose: str
    due_at: datetime | None
    claimed_at: datetime | None
    completed_at: datetime | None
    attempts: int
    idem_key: str | None
    recipient: str | None
    provider_id: str | None
    code: str | None
    detail: str | None
    #: Who holds a ``pending`` claim (see :mod:`siyu.storage.holders`); ``None`` on records
    #: claimed by a siyu that did not record it.
    holder: str | None = None


@attrs.frozen(kw_only=True)
class ReceiptRow:
    """A provider's delivery receipt for one delivery record: ``status`` is
    ``delivered`` or ``failed``; ``reported_at`` the provider's time (may be unknown)."""

    delivery_id: int
    campaign_id: int
    status: str
    code: str | None
    detail: str | None
    reported_at: datetime | None
    recorded_at: datetime


class CampaignStore(abc.ABC):
    """Per-workspace campaign storage."""

    # -- campaigns -----------------------------------------------------------------
    @abc.abstractmethod
    def add(self, row: CampaignRow) -> int:
        """Store a new campaign (``row.id`` is ignored); return its id."""

    @abc.abstractmethod
    def get(self, campaign_id: int) -> CampaignRow | None: ...

    @abc.abstractmethod
    def by_name(self, name: str) -> CampaignRow | None: ...

    @abc.abstractmethod
    def all(self) -> list[CampaignRow]:
        """Every campaign, oldest first."""

    @abc.abstractmethod
    def update(self, campaign_id: int, *, status: str | None = None, state: dict[str, Any] | None = None) -> None:
        """Change a campaign's status and/or replace its state dict."""

    # -- deliveries ------------------------------------------------------------------
    @abc.abstractmethod
    def add_deliveries(
        self, campaign_id: int, channel: str, purpose: str, rows: Sequence[NewDelivery], at: datetime
    ) -> list[int]:
        """Insert delivery records; return their ids in order. A second record for the
        same ``(campaign, user, occurrence)`` must fail (the store's unique guard)."""

    @abc.abstractmethod
    def add_pending(
        self, campaign_id: int, channel: str, purpose: str, phase: str, occurrence: str,
        rows: Sequence[tuple[int, str, str | None, str | None]], at: datetime, holder: str | None = None,
    ) -> list[int]:
        """Bulk-insert claimed (``pending``) records: ``(user_id, variant, idem_key,
        recipient)`` with ``claimed_at = at``, one attempt and ``holder``; return their ids.
        Same unique guard as :meth:`add_deliveries`."""

    @abc.abstractmethod
    def mark_sent(self, rows: Sequence[tuple[int, str | None]], at: datetime) -> None:
        """Complete ``pending`` records as ``sent``: ``(delivery_id, provider_id)``."""

    @abc.abstractmethod
    def existing_users(self, campaign_id: int, occurrence: str = "") -> list[int]:
        """Users that already have a record in this campaign occurrence."""

    @abc.abstractmethod
    def has_delivery(self, campaign_id: int, user_id: int, occurrence: str) -> bool: ...

    @abc.abstractmethod
    def due(
        self, campaign_id: int, now: datetime, limit: int, status: str = "queued", reason: str | None = None,
    ) -> list[DeliveryRow]:
        """Records in ``status`` (default ``queued``; and ``reason`` when given) with
        ``due_at`` at or before ``now``, oldest first."""

    @abc.abstractmethod
    def pending(self, campaign_id: int, claimed_before: datetime | None = None) -> list[DeliveryRow]:
        """``pending`` records (optionally only those claimed before an instant)."""

    @abc.abstractmethod
    def next_due(self, campaign_id: int, status: str = "queued", reason: str | None = None) -> datetime | None:
        """The earliest ``due_at`` of a record in ``status`` (and ``reason`` when
        given), or ``None``."""

    @abc.abstractmethod
    def set_status(self, updates: Sequence[tuple[int, dict[str, Any]]], only_from: str | None = None) -> None:
        """Update records in bulk: ``(delivery_id, {column: value})``. Columns:
        ``status``, ``reason``, ``due_at``, ``claimed_at``, ``completed_at``,
        ``attempts``, ``recipient``, ``provider_id``, ``code``, ``detail``,
        ``idem_key``, ``variant``, ``holder``. With ``only_from``, only records currently in
        that status change (a completion never overwrites a recovery)."""

    @abc.abstractmethod
    def records(self, delivery_ids: Sequence[int]) -> list[DeliveryRow]:
        """The delivery records with these ids (any campaign), by id; missing ids are left out."""

    @abc.abstractmethod
    def deliveries(
        self, campaign_id: int, *, user_id: int | None = None, status: str | None = None, after_id: int = 0,
        limit: int = 1000,
    ) -> list[DeliveryRow]:
        """Records of a campaign by id, filtered."""

    @abc.abstractmethod
    def counts(self, campaign_id: int, phase: str | None = None) -> dict[tuple[str, str], int]:
        """``(variant, status) -> count`` for a campaign (one phase if given)."""

    @abc.abstractmethod
    def reasons(self, campaign_id: int) -> dict[str, int]:
        """``reason -> count`` of ``skipped`` records."""

    # -- provider receipts ---------------------------------------------------------------
    @abc.abstractmethod
    def by_provider_ids(self, channel: str, provider_ids: Sequence[str]) -> list[DeliveryRow]:
        """``sent`` records of campaigns on channel ``channel`` (the channel name, e.g.
        ``"sms_aliyun"``) whose ``provider_id`` is one of ``provider_ids``, by id.
        Several records may share one id (a provider call to many recipients)."""

    @abc.abstractmethod
    def receipts(self, delivery_ids: Sequence[int]) -> dict[int, ReceiptRow]:
        """The stored receipt of each of these records that has one."""

    @abc.abstractmethod
    def put_receipts(self, rows: Sequence[ReceiptRow]) -> None:
        """Store receipts, replacing a record's earlier receipt (the service decides
        whether a receipt may replace another)."""

    @abc.abstractmethod
    def receipt_counts(self, campaign_id: int, phase: str | None = None) -> dict[tuple[str, str], int]:
        """``(variant, receipt status) -> count`` for a campaign (one phase if given)."""

    # -- touches: budget, caps, attribution ----------------------------------------------
    @abc.abstractmethod
    def touches(
        self, since: datetime, *, purpose: str | None = "marketing", user_ids: Iterable[int] | None = None
    ) -> list[tuple[int, datetime, str]]:
        """``(user_id, claimed_at, channel)`` of records that count as contact
        (``pending``, ``sent``, ``unknown``) claimed at or after ``since``
        (only for ``user_ids`` when given)."""

    @abc.abstractmethod
    def last_touch(self, user_id: int, at: datetime, goal: str) -> DeliveryRow | None:
        """The latest record of a campaign with this ``goal`` that touched the user
        (``sent``, or ``holdout``) with ``claimed_at`` in ``[at - that campaign's
        attribution window, at]``."""

    # -- conversions ---------------------------------------------------------------------
    @abc.abstractmethod
    def add_conversion(
        self, delivery: DeliveryRow, goal: str, ref: str | None, value: int, at: datetime
    ) -> bool:
        """Record a conversion for a delivery; ``False`` if it already has one."""

    @abc.abstractmethod
    def conversions(self, campaign_id: int, phase: str | None = None) -> dict[str, tuple[int, int]]:
        """``variant -> (conversions, value)`` (of deliveries in ``phase`` when given)."""

    @abc.abstractmethod
    def move_user(self, drop: int, keep: int) -> list[int]:
        """Reassign ``drop``'s delivery records (and their conversions) to ``keep``, except
        where ``keep`` has a record for the same campaign and occurrence; return the ids moved."""

    @abc.abstractmethod
    def restore_user(self, delivery_ids: Sequence[int], drop: int) -> None:
        """Give moved records (and their conversions) back to ``drop``.

        While merged away, ``drop`` may have got a record of its own for the same
        campaign round (a round skips it as ``inactive``). That placeholder gives way
        to the real record coming back; any other record of ``drop``'s stays, and the
        moved one stays with ``keep``, as :meth:`move_user` leaves a clash where it is."""

    # -- audience facts read in bulk ----------------------------------------------------
    @abc.abstractmethod
    def consented(
        self, purpose: str, channel: str, user_ids: Iterable[int] | None = None
    ) -> list[int]:
        """Users whose latest consent record for ``purpose`` on ``channel`` or ``"*"``
        (by ``at``, then insertion order) grants it, ascending (only among ``user_ids`` when given)."""

    @abc.abstractmethod
    def credited(self, channel: str, template: str, kind: str, user_ids: Iterable[int]) -> list[int]:
        """Users among ``user_ids`` whose first identity of ``kind`` (the address a
        campaign sends to, e.g. their first ``wechat_openid``) holds at least one
        one-time subscription credit for ``template`` on ``channel``, ascending:
        the mini-program credit gate, for a whole audience at once."""

    @abc.abstractmethod
    def inactive_users(self) -> tuple[list[int], int]:
        """``(ids of users that exist but are not active, the highest user id)``:
        with both, a whole audience is checked without listing every user."""

    @abc.abstractmethod
    def suppress(self, user_id: int, channel: str, reason: str, at: datetime) -> None: ...

    @abc.abstractmethod
    def unsuppress(self, user_id: int, channel: str) -> bool: ...

    @abc.abstractmethod
    def suppressed(self, channel: str, also: Sequence[str] = ()) -> list[int]:
        """Users on the campaign suppression list for ``channel`` or ``"*"`` (or one of
        the entries ``also`` names: channel names that stand for the medium)."""

    @abc.abstractmethod
    def attributes(self, user_ids: Iterable[int]) -> dict[int, dict[str, Any]]:
        """Profile attributes of the given users (missing users left out)."""

    @abc.abstractmethod
    def attribute_values(self, name: str) -> dict[int, Any]:
        """``user_id -> value`` of one attribute for every active user that has it."""

    @abc.abstractmethod
    def active_users(self, user_ids: Iterable[int]) -> list[int]:
        """The subset of ``user_ids`` that are active (not merged away), ascending."""

    # -- settings --------------------------------------------------------------------------
    @abc.abstractmethod
    def setting(self, name: str) -> str | None: ...

    @abc.abstractmethod
    def set_setting(self, name: str, value: str) -> None: ...
