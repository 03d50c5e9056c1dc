"""``ws.events``: record what users do (page views, messages, cart adds).

Each tracked event updates the user's ``last_active_at`` (what
``days_since(last_active)`` and the dormancy sweep read) and feeds the
lifecycle stage machine, in the same transaction.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from .._clock import aware
from ..errors import NotFound, ValidationError
from ..events import EventTracked
from ..models.lifecycle import TrackedEvent
from ._common import check_int, check_key, check_many, check_user_id, require_user

if TYPE_CHECKING:
    from .._uow import UnitOfWork
    from ..storage.base import Transaction
    from .lifecycle import Lifecycle

__all__ = ["EventTracking", "KNOWN_EVENTS"]

#: Common kinds (any ``snake_case`` kind is accepted; these are just the usual ones).
KNOWN_EVENTS = (
    "message_received", "page_view", "product_view", "link_clicked", "live_watched", "comment", "share",
    "added_to_cart", "checkout_started", "product_favorited", "coupon_claimed", "price_inquiry",
)
_KIND = re.compile(r"[a-z][a-z0-9_.:-]{0,63}")
#: How far in the future an event time may be (clock skew between systems).
_FUTURE_SLACK = timedelta(hours=1)


class EventTracking:
    """``ws.events``: ``track`` one event or ``track_many``; ``of(user)`` reads them back."""

    name = "events"

    def __init__(self, uow: UnitOfWork, *, lifecycle: Lifecycle) -> None:
        self._uow = uow
        self._lifecycle = lifecycle

    def _row(self, row: Mapping[str, Any], now: datetime) -> tuple[int, str, datetime, str | None, str]:
        unknown = set(row) - {"user_id", "kind", "at", "key", "properties"}
        if unknown:
            raise ValidationError(
                f"unknown field(s) {sorted(unknown)}; an event has user_id, kind, at, key, properties"
            )
        uid = check_user_id(row.get("user_id"))
        kind = row.get("kind")
        if not isinstance(kind, str) or not _KIND.fullmatch(kind):
            raise ValidationError(
                f"event kind {kind!r} must be lower-case snake_case (up to 64 characters), e.g. 'page_view'"
            )
        at = aware(row["at"], "at") if row.get("at") is not None else now
        if at > now + _FUTURE_SLACK:
            raise ValidationError(f"at={at.isoformat()} is in the future; pass when the user did it")
        key = row.get("key")
        if key is not None:
            check_key(key)
        properties = row.get("properties") or {}
        if not isinstance(properties, Mapping):
            raise ValidationError(f"properties must be a dict, got {type(properties).__name__}")
        try:
            props = json.dumps(dict(properties), ensure_ascii=False, sort_keys=True, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise ValidationError(f"properties must be JSON-serializable: {exc}") from None
        return uid, kind, at, key, props

    def track(self, user_id: int, kind: str, *, at: datetime | None = None, key: str | None = None,
              properties: Mapping[str, Any] | None = None) -> bool:
        """Record that the user did ``kind`` at ``at`` (default now). With ``key``,
        a repeat is ignored: returns ``False`` if the key was already recorded."""
        return self.track_many([{"user_id": user_id, "kind": kind, "at": at, "key": key,
                                 "properties": properties}]) == 1

    def track_many(self, rows: Iterable[Mapping[str, Any]]) -> int:
        """Record many events in one transaction (all or nothing); rows are dicts
        with ``user_id``, ``kind`` and optional ``at``, ``key``, ``properties``.
        Returns how many were new (repeated keys are skipped)."""
        now = self._uow.now()
        prepared = []
        for index, row in enumerate(check_many(rows, "rows", "[{'user_id': 1, 'kind': 'page_view'}]")):
            if not isinstance(row, Mapping):
                raise ValidationError(f"row {index}: expected a dict, got {type(row).__name__}")
            try:
                prepared.append(self._row(row, now))
            except ValidationError as exc:
                raise type(exc)(f"row {index}: {exc}") from None
        if not prepared:
            return 0
        with self._uow.write() as tx:
            ids = sorted({r[0] for r in prepared})
            # Locked before the keys are checked: a repeated key waits for its first write, then is skipped.
            missing = set(ids) - set(tx.users.statuses(ids, lock=True))
            if missing:
                raise NotFound(f"no user with id {min(missing)}; create users before tracking their events")
            seen = tx.activity.known_keys([r[3] for r in prepared if r[3] is not None])
            fresh = []
            for r in prepared:
                if r[3] is not None:
                    if r[3] in seen:
                        continue
                    seen.add(r[3])
                fresh.append(r)
            if not fresh:
                return 0
            merged = set(ids) & set(tx.segments.user_ids(active=False))
            if merged:
                require_user(tx, min(merged))  # raises NotFound naming the user it merged into
            event_ids = tx.activity.add(fresh)
            latest: dict[int, datetime] = {}
            activity: dict[int, list[tuple[str, datetime]]] = {}
            for event_id, (uid, kind, at, key, _) in zip(event_ids, fresh, strict=True):
                latest[uid] = max(latest.get(uid, at), at)
                activity.setdefault(uid, []).append((kind, at))
                tx.emit(EventTracked(at=at, user_id=uid, kind=kind, event_id=event_id, key=key))
            tx.activity.touch(latest)
            tx.meta.bump("activity")
            for events in activity.values():
                events.sort(key=lambda e: e[1])
            self._lifecycle.apply_activity(tx, activity)
        return len(fresh)

    def of(self, user_id: int, *, limit: int = 100) -> list[TrackedEvent]:
        """The user's most recent events, newest first."""
        check_int(limit, "limit", minimum=1, maximum=10_000)
        with self._uow.read() as tx:
            uid = require_user(tx, user_id, active=False)
            return tx.activity.for_user(uid, limit)

    # -- merge participant ----------------------------------------------------------------
    def merge(self, tx: Transaction, keep: int, drop: int, at: datetime) -> list[int]:
        moved = tx.activity.move_user(drop, keep)
        if moved:
            tx.meta.bump("activity")
        return moved

    def unmerge(self, tx: Transaction, keep: int, drop: int, record: list[int], at: datetime) -> None:
        tx.activity.restore_user(record, drop)
        tx.meta.bump("activity")
