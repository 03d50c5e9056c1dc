"""The points ledger: entries and the lots earns create."""

from __future__ import annotations

from datetime import datetime

import attrs


@attrs.frozen(kw_only=True)
class PointsEntry:
    """One ledger line. ``amount`` is positive for earn, negative for the rest.

    ``kind`` is one of ``earn``, ``spend``, ``expire``, ``reverse``,
    ``merge_in``, ``merge_out``. ``ref_entry_id`` points at the entry a
    reversal reverses.
    """

    id: int
    user_id: int
    kind: str
    amount: int
    reason: str
    at: datetime
    key: str | None = None
    ref_entry_id: int | None = None


@attrs.frozen(kw_only=True)
class PointsLot:
    """Points created by one earn: what is left, when usable, when it expires."""

    entry_id: int
    user_id: int
    amount: int
    remaining: int
    available_at: datetime
    expires_at: datetime | None
