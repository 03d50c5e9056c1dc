"""A person settles delivery records whose outcome is unknown.

siyu never resends a message the provider may already have (see
:mod:`siyu.campaigns.reconcile`). When the provider cannot be asked, or its
records did not settle it, the record stays ``unknown`` with reason
``outcome_unknown``; a person who checked (the provider's console, the
customer) says what happened with ``ws.campaigns.resolve``.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from .._validation import MAX_ID, check_text
from ..errors import Conflict, NotFound, ValidationError
from ..events import CampaignSent
from .models import Delivery
from .records import find, save
from .state import CampaignStatus

if TYPE_CHECKING:
    from .._uow import UnitOfWork

__all__ = ["Resolver"]

#: Most records one call settles.
MAX_RECORDS = 10_000


class Resolver:
    """Settles unknown delivery records as a person says (``ws.campaigns.resolve``)."""

    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow

    def resolve(
        self, campaign: int | str, deliveries: int | Iterable[int], *, sent: bool, note: str | None = None
    ) -> builtins.list[Delivery]:
        if not isinstance(sent, bool):
            raise ValidationError(f"sent must be True or False, got {sent!r}")
        ids = _ids(deliveries)
        detail = check_text(note, "note", max_length=500) if note is not None else None
        now = self._uow.now()
        with self._uow.write() as tx:
            current = find(tx, campaign)
            row = current.row
            records = {d.id: d for d in tx.campaigns.records(ids)} if ids else {}
            missing = [i for i in ids if i not in records or records[i].campaign_id != row.id]
            if missing:
                raise NotFound(f"campaign {row.name!r} has no delivery record(s) {missing[:10]}; list them with "
                               f"ws.campaigns.deliveries({row.id}, status='unknown')")
            settled = [i for i in ids if records[i].status != "unknown"]
            if settled:
                shown = ", ".join(f"{i} ({records[i].status})" for i in settled[:10])
                raise Conflict(f"only records of unknown outcome can be resolved; {shown} are not unknown, "
                               "nothing was changed")
            if sent:
                fields: dict[str, Any] = {"status": "sent", "reason": "resolved", "completed_at": now,
                                          "due_at": None, "detail": detail or "resolved by hand: sent"}
            else:
                fields = {"status": "queued", "reason": "resolved", "due_at": now,
                          "detail": detail or "resolved by hand: not sent, sent again by the next run"}
            tx.campaigns.set_status([(i, fields) for i in ids], only_from="unknown")
            if sent:
                by_variant: dict[str, list[int]] = {}
                for i in ids:
                    by_variant.setdefault(records[i].variant, []).append(records[i].user_id)
                for variant, users in by_variant.items():
                    tx.emit(CampaignSent(at=now, campaign_id=row.id, variant=variant, user_ids=tuple(users)))
            elif current.status is CampaignStatus.DONE:
                save(tx, current, status=CampaignStatus.RUNNING)  # it has work again
            return [Delivery.of(d) for d in tx.campaigns.records(ids)]


def _ids(value: int | Iterable[int]) -> list[int]:
    items: list[Any]
    if isinstance(value, int) and not isinstance(value, bool):
        items = [value]
    elif isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise ValidationError(f"deliveries must be a delivery id or a list of them, got {type(value).__name__}")
    else:
        items = list(value)
    if len(items) > MAX_RECORDS:
        raise ValidationError(f"resolve at most {MAX_RECORDS} records per call, got {len(items)}")
    for item in items:
        if isinstance(item, bool) or not isinstance(item, int) or not 1 <= item <= MAX_ID:
            raise ValidationError(f"a delivery id is a positive integer, got {item!r}")
    return sorted(set(items))
