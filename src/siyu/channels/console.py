"""``console``: print messages (development, ``siyu demo``)."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import ClassVar, TextIO

from .base import Channel, DeliveryResult, Limits, Message, Option, Status

__all__ = ["ConsoleChannel"]


class ConsoleChannel(Channel):
    """Prints each message as one line (``→ recipient: text``) to ``stream``
    (default ``sys.stdout``). Nothing leaves the machine."""

    name: ClassVar[str] = "console"
    consent_channel: ClassVar[str] = "console"
    limits: ClassVar[Limits] = Limits(max_recipients_per_call=1000, max_attachments=100)
    options: ClassVar[dict[str, Option]] = {
        "stream": Option(env=False, doc="a text stream; default sys.stdout"),
    }

    def _deliver(self, messages: Sequence[Message]) -> list[DeliveryResult]:
        stream: TextIO = self.config["stream"] or sys.stdout
        results = []
        for message in messages:
            text = self.render(message).replace("\n", "\n  ")
            extra = f" [+{len(message.attachments)} attachment(s)]" if message.attachments else ""
            stream.write(f"→ {message.recipient}: {text}{extra}\n")
            results.append(DeliveryResult(message, Status.SENT))
        stream.flush()
        return results
