"""A webhook receiver that verifies siyu's signature, refuses replays and de-duplicates."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from ...channels.webhook_signing import KEY_HEADER, ReplayStore, WebhookVerifier
from ...errors import CallbackRejected
from ._server import FakeHttpServer, Request, Response, json_response

__all__ = ["WebhookReceiver"]


class WebhookReceiver(FakeHttpServer):
    """Accepts signed webhooks the way a careful receiver does.

    ``secret``: one key, or several (newest first) while rotating. ``now``: a
    clock returning Unix seconds or an aware ``datetime`` (default: real time).
    ``received`` holds verified payloads, one per ``Idempotency-Key`` (a retry
    of a delivered key is answered 200 and not stored again); ``rejected``
    counts refused requests (answered 401: bad signature, stale, replayed);
    ``rejections`` lists their codes.
    """

    def __init__(
        self,
        secret: str | Sequence[str] = "whsec",
        *,
        tolerance: float = 300,
        now: Callable[[], float | datetime] | None = None,
        replay_store: ReplayStore | None = None,
        allow_v1: bool = False,
    ) -> None:
        super().__init__()
        self.verifier = WebhookVerifier(
            secret, tolerance=tolerance, replay_store=replay_store, clock=now, allow_v1=allow_v1
        )
        self.received: dict[str, dict[str, Any]] = {}
        self.rejections: list[str] = []

    @property
    def rejected(self) -> int:
        return len(self.rejections)

    def respond(self, request: Request) -> Response:
        try:
            payload = self.verifier.verify(request.body, request.headers)
        except CallbackRejected as exc:
            self.rejections.append(str(exc.code))
            return json_response({"error": str(exc), "code": exc.code}, 401)
        self.received.setdefault(request.headers.get(KEY_HEADER.lower(), ""), payload)
        return json_response({"ok": True})
