"""Provider delivery receipts recorded against campaign delivery records.

A ``sent`` record means the channel **accepted** the message. A receipt
(:class:`siyu.channels.Receipt`, parsed by ``channel.parse_receipts`` or built
by hand) says what happened next, and is matched to the record by the
provider message id the send stored (``Delivery.provider_id``) among the
campaigns on the receipt's channel.

The rule, the same in whatever order receipts arrive:

* a record keeps at most one receipt; the first one is stored;
* a repeat (same status) changes nothing, whatever its code says;
* ``delivered`` replaces an earlier ``failed`` (the phone got it: carriers
  report an intermediate failure and then deliver on a retry); a ``failed``
  after ``delivered`` is ignored.

So a record ends ``delivered`` if any of its receipts said so, else
``failed``. A receipt never changes the record's ``status``: the message was
sent, counts against the contact budget and can still earn a conversion.

Where one id covers several records (an Alibaba ``SendSms`` call to many
numbers returns one ``BizId``; a WeCom mass message one ``msgid``), the
receipt's ``recipient`` picks the record: by the masked address kept on it,
then by the user holding that address. Receipts that match nothing are
returned in :attr:`ReceiptReport.unmatched` and nothing is stored for them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from ..channels.receipts import Receipt, ReceiptStatus
from ..errors import SiyuError, ValidationError
from ..events import ReceiptsRecorded
from ..identities import mask, normalize
from ..storage.contracts.campaigns import DeliveryRow, ReceiptRow
from .gates import ADDRESS_KIND
from .models import ReceiptReport, UnmatchedReceipt

if TYPE_CHECKING:
    from .._uow import UnitOfWork
    from ..storage.base import Transaction

__all__ = ["ReceiptRecorder"]


class ReceiptRecorder:
    """Records provider receipts (``ws.campaigns.record_receipts``), by the rules above."""

    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow

    def record(self, receipts: Iterable[Receipt]) -> ReceiptReport:
        if isinstance(receipts, Receipt):
            receipts = [receipts]
        if isinstance(receipts, str | bytes | Mapping) or not isinstance(receipts, Iterable):
            raise ValidationError(
                f"record_receipts takes a list of siyu.channels.Receipt objects, got {type(receipts).__name__}; "
                "parse a provider payload with channel.parse_receipts(payload)"
            )
        batch = list(receipts)
        for item in batch:
            if not isinstance(item, Receipt):
                raise ValidationError(
                    f"record_receipts takes siyu.channels.Receipt objects, got {type(item).__name__}; "
                    "parse a provider payload with channel.parse_receipts(payload)"
                )
        now = self._uow.now()
        unmatched: list[UnmatchedReceipt] = []
        with self._uow.write() as tx:
            found: dict[tuple[str, str], list[DeliveryRow]] = {}
            for channel in sorted({r.channel for r in batch}):
                ids = [r.message_id for r in batch if r.channel == channel]
                for row in tx.campaigns.by_provider_ids(channel, ids):
                    found.setdefault((channel, str(row.provider_id)), []).append(row)
            matched: list[tuple[Receipt, DeliveryRow]] = []
            for receipt in batch:
                pick = _pick(tx, receipt, found.get((receipt.channel, receipt.message_id), []))
                if isinstance(pick, str):
                    unmatched.append(UnmatchedReceipt(receipt=receipt, reason=pick))
                else:
                    matched.append((receipt, pick))
            stored = tx.campaigns.receipts([d.id for _, d in matched])
            changed: dict[int, tuple[ReceiptRow, int]] = {}
            recorded = unchanged = 0
            for receipt, row in matched:
                before = changed[row.id][0] if row.id in changed else stored.get(row.id)
                if before is not None and not (
                    before.status == ReceiptStatus.FAILED and receipt.status is ReceiptStatus.DELIVERED
                ):
                    unchanged += 1
                    continue
                recorded += 1
                changed[row.id] = (
                    ReceiptRow(
                        delivery_id=row.id, campaign_id=row.campaign_id, status=str(receipt.status),
                        code=receipt.code, detail=receipt.detail or None, reported_at=receipt.reported_at,
                        recorded_at=now,
                    ),
                    row.user_id,
                )
            tx.campaigns.put_receipts([r for r, _ in changed.values()])
            events: dict[tuple[int, str], list[tuple[int, int]]] = {}
            for rid, (receipt_row, uid) in sorted(changed.items()):
                events.setdefault((receipt_row.campaign_id, receipt_row.status), []).append((rid, uid))
            for (campaign_id, status), pairs in events.items():
                tx.emit(ReceiptsRecorded(
                    at=now, campaign_id=campaign_id, status=status,
                    delivery_ids=tuple(d for d, _ in pairs), user_ids=tuple(u for _, u in pairs),
                ))
        return ReceiptReport(
            recorded=recorded, unchanged=unchanged, unmatched=tuple(unmatched), delivery_ids=tuple(sorted(changed))
        )


def _pick(tx: Transaction, receipt: Receipt, rows: list[DeliveryRow]) -> DeliveryRow | str:
    """The one record a receipt is about, or why there is none."""
    if not rows:
        return "unknown_id"
    if receipt.recipient is None:
        return rows[0] if len(rows) == 1 else "ambiguous"
    kind = ADDRESS_KIND.get(rows[0].channel)
    shown = receipt.recipient if kind is None else mask(kind, receipt.recipient)
    same = [d for d in rows if d.recipient == shown]
    if len(rows) == 1 and rows[0].recipient is None:
        return rows[0]  # the address was erased (PIPL); the id alone identifies it
    if len(same) == 1:
        return same[0]
    if not same:
        return "recipient_mismatch"
    if kind is not None:
        # Two addresses with the same mask in one provider call: ask who holds this one.
        try:
            value, scope = normalize(kind, receipt.recipient)
            owner = tx.users.find_identity(kind, scope, value)
        except SiyuError:
            owner = None
        mine = [d for d in same if d.user_id == owner]
        if len(mine) == 1:
            return mine[0]
    return "ambiguous"
