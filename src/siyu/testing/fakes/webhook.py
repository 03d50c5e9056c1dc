"""A webhook receiver that verifies siyu's signature and de-duplicates."""

from __future__ import annotations

import time
from typing import Any

from ...channels.webhook import verify
from ...errors import CallbackRejected
from ._server import FakeHttpServer, Request, Response, json_response

__all__ = ["WebhookReceiver"]


class WebhookReceiver(FakeHttpServer):
    """Accepts signed webhooks; ``received`` holds verified payloads, one per
    ``Idempotency-Key``; ``rejected`` counts refused ones (answered 401)."""

    def __init__(self, secret: str = "whsec", *, tolerance: int = 300, now: Any = None) -> None:
        super().__init__()
        self.secret = secret
        self.tolerance = tolerance
        self.now = now or time.time
        self.received: dict[str, dict[str, Any]] = {}
        self.rejected = 0

    def respond(self, request: Request) -> Response:
        try:
            payload = verify(self.secret, request.body, request.headers, now=self.now(), tolerance=self.tolerance)
        except CallbackRejected as exc:
            self.rejected += 1
            return json_response({"error": str(exc)}, 401)
        key = request.headers.get("idempotency-key", "")
        self.received.setdefault(key, payload)
        return json_response({"ok": True})
