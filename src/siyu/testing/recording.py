"""RecordingChannel: a channel that records instead of sending, with scripted outcomes."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from ..channels.base import Channel, DeliveryResult, Limits, Message, Option, Status

__all__ = ["RecordingChannel"]


class RecordingChannel(Channel):
    """A test double for any channel.

    ``sent`` lists every message delivered (in order); ``calls`` the batches
    as the channel received them. Script outcomes with :meth:`script`
    (``script(Status.RATE_LIMITED, code="45009", retry_after=60)`` applies to
    the next message) or ``outcome=lambda message: DeliveryResult(...) | None``.
    ``limits`` and ``name`` can be set per instance, so it can stand in for a
    real channel::

        rec = ws.channels.install(RecordingChannel(name="sms_aliyun"))
        ws.channels.get("sms_aliyun").send([...])   # recorded, not sent
        assert rec.sent[0].recipient == "+8613800138000"
    """

    name: ClassVar[str] = "recording"
    consent_channel: ClassVar[str] = "recording"
    limits: ClassVar[Limits] = Limits(max_recipients_per_call=1000, max_attachments=100)
    options: ClassVar[dict[str, Option]] = {
        "outcome": Option(env=False, doc="callable(message) -> DeliveryResult | None"),
    }

    def __init__(
        self,
        *,
        name: str | None = None,
        consent_channel: str | None = None,
        limits: Limits | None = None,
        **config: Any,
    ) -> None:
        if name is not None:
            self.name = name  # type: ignore[misc]
        if consent_channel is not None:
            self.consent_channel = consent_channel  # type: ignore[misc]
        super().__init__(limits=limits, **config)
        self.sent: list[Message] = []
        self.calls: list[list[Message]] = []
        self.results: list[DeliveryResult] = []
        self._script: deque[tuple[Status, dict[str, Any]]] = deque()

    @classmethod
    def env_name(cls, option: str) -> str:
        return f"SIYU_RECORDING_{option.upper()}"

    def script(self, status: Status | str, *, times: int = 1, **fields: Any) -> None:
        """Make the next ``times`` messages end with ``status`` (and ``code``, ``retry_after`` ...)."""
        for _ in range(times):
            self._script.append((Status(status), fields))

    def _deliver(self, messages: Sequence[Message]) -> list[DeliveryResult]:
        self.calls.append(list(messages))
        outcome: Callable[[Message], DeliveryResult | None] | None = self.config["outcome"]
        results = []
        for message in messages:
            result = outcome(message) if outcome is not None else None
            if result is None and self._script:
                status, fields = self._script.popleft()
                result = DeliveryResult(message, status, **fields)
            if result is None:
                result = DeliveryResult(message, Status.SENT, provider_id=f"rec-{len(self.sent) + 1}")
            if result.status is Status.SENT:
                self.sent.append(message)
            results.append(result)
        self.results.extend(results)
        return results

    def texts(self) -> list[str]:
        """The rendered text of every sent message."""
        return [self.render(m) for m in self.sent]
