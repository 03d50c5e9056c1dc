"""``outbox``: store messages in the workspace instead of sending them.

The default channel of ``siyu demo`` and of dry runs: a campaign "sent"
through the outbox can be inspected (``channel.messages()``) and exported.
Messages with the same idempotency ``key`` are stored once. The bulk path
(:meth:`OutboxChannel.send` with many messages) writes in one transaction
per ``batch`` messages with ``executemany``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import ClassVar

from ..storage.contracts.channels import OutboxRow
from .base import Channel, DeliveryResult, Limits, Message, Option, Status

__all__ = ["OutboxChannel"]

_DUPLICATE = "duplicate key: stored once"
#: One encoder for every row (json.dumps with options builds a new one per call).
_encode = json.JSONEncoder(ensure_ascii=False, sort_keys=True).encode


class OutboxChannel(Channel):
    """Stores messages in the workspace (table ``channel_outbox``).

    ``label`` (default ``"outbox"``) is stored with each message, so a dry run
    of an SMS campaign can use ``label="sms_aliyun"`` and be told apart.
    """

    name: ClassVar[str] = "outbox"
    accepts_idempotency_key: ClassVar[bool] = True
    consent_channel: ClassVar[str] = "outbox"
    limits: ClassVar[Limits] = Limits(max_recipients_per_call=10_000, max_attachments=100)
    options: ClassVar[dict[str, Option]] = {
        "label": Option(default="outbox", doc="stored as the message's channel"),
    }

    def _deliver(self, messages: Sequence[Message]) -> list[DeliveryResult]:
        ws = self._require_workspace("storing messages")
        label = str(self.config["label"])
        keys = [m.key for m in messages if m.key is not None]
        with ws.write() as tx:
            # Known keys first, so a rerun of a big campaign skips rendering what is stored.
            known = tx.channels.outbox_find_keys(label, keys) if keys else {}
            fresh = [m for m in messages if m.key is None or m.key not in known]
            rows = [
                (
                    label,
                    m.recipient,
                    m.user_id,
                    self.render(m),
                    m.template,
                    _encode(dict(m.variables)) if m.variables else "{}",
                    m.purpose,
                    m.key,
                )
                for m in fresh
            ]
            stored = iter(tx.channels.outbox_add(rows, ws.now()))
        results = []
        for m in messages:
            if m.key is not None and m.key in known:
                rid, created = known[m.key], False
            else:
                rid, created = next(stored)
            results.append(
                DeliveryResult(m, Status.SENT, provider_id=str(rid), detail="" if created else _DUPLICATE)
            )
        return results

    def messages(self, *, after_id: int = 0, limit: int = 1000) -> list[OutboxRow]:
        """Stored messages of this outbox label, oldest first."""
        ws = self._require_workspace("reading the outbox")
        with ws.read() as tx:
            return tx.channels.outbox_list(channel=str(self.config["label"]), after_id=after_id, limit=limit)

    def iter_messages(self, *, batch: int = 10_000) -> Iterator[OutboxRow]:
        """Every stored message, streamed in pages."""
        after = 0
        while True:
            page = self.messages(after_id=after, limit=batch)
            if not page:
                return
            yield from page
            after = page[-1].id

    def count(self) -> int:
        ws = self._require_workspace("reading the outbox")
        with ws.read() as tx:
            return tx.channels.outbox_count(channel=str(self.config["label"]))

    def clear(self) -> int:
        """Delete this label's stored messages; return how many."""
        ws = self._require_workspace("clearing the outbox")
        with ws.write() as tx:
            return tx.channels.outbox_clear(channel=str(self.config["label"]))
