"""Privacy records: audit entries, legal holds, erasure tombstones."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import attrs


@attrs.frozen(kw_only=True)
class AuditEntry:
    """One line of the append-only audit log.

    ``actor`` is who acted (``"operator:alice"``, ``"system"``, ``"cli"``),
    ``action`` what happened (``"privacy.erase"``, ``"consent.recorded"`` ...),
    ``user_id`` whom it concerned (if anyone). ``before``/``after`` hold the
    masked old and new values of sensitive changes; ``details`` anything else.
    Personal values never appear here in clear.
    """

    id: int
    at: datetime
    actor: str
    action: str
    user_id: int | None = None
    details: dict[str, Any] = attrs.field(factory=dict)
    before: Any = None
    after: Any = None


@attrs.frozen(kw_only=True)
class LegalHoldRecord:
    """A legal hold on a user's data: erasure and processing (except storage) are blocked
    from ``placed_at`` until ``released_at``."""

    id: int
    user_id: int
    reason: str
    placed_at: datetime
    placed_by: str
    released_at: datetime | None = None
    released_by: str | None = None

    @property
    def active(self) -> bool:
        return self.released_at is None


@attrs.frozen(kw_only=True)
class Tombstone:
    """What is left after :meth:`ws.privacy.erase <siyu.services.privacy.Privacy.erase>`:
    the user id lives on under ``pseudonym`` so ledgers and aggregates stay consistent."""

    user_id: int
    pseudonym: str
    erased_at: datetime
    erased_by: str
    reason: str
