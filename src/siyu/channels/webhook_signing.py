"""Signing and verifying siyu webhooks: the sender's headers and the receiver's check.

Signature ``v2`` covers the timestamp, a per-request nonce, the
``Idempotency-Key`` and the body, so none of them can be changed or replayed
under a different key::

    X-Siyu-Timestamp: 1732320000
    X-Siyu-Nonce: 3f9c…                       (random, new for every request)
    Idempotency-Key: order-1                  (the message key; same on retries)
    X-Siyu-Signature: v2=<hex HMAC-SHA256(secret,
        "v2\\n<timestamp>\\n<nonce>\\n<idempotency key>\\n" + body)>

A receiver keeps a :class:`ReplayStore` of the signatures it accepted for as
long as their timestamp is inside the window, so a captured request replayed
within the window is refused. Several secrets may be configured at once for a
rotation: the sender signs with the newest, the receiver accepts any of them.
"""

from __future__ import annotations

import hashlib
import heapq
import hmac
import json
import math
import re
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from ..errors import CallbackRejected, ValidationError

__all__ = [
    "KEY_HEADER",
    "NONCE_HEADER",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "MemoryReplayStore",
    "ReplayStore",
    "WebhookVerifier",
    "header_safe_key",
    "sign",
    "sign_v1",
    "signed_headers",
    "verify",
]

SIGNATURE_HEADER = "X-Siyu-Signature"
TIMESTAMP_HEADER = "X-Siyu-Timestamp"
NONCE_HEADER = "X-Siyu-Nonce"
KEY_HEADER = "Idempotency-Key"

# ASCII digits only: str.isdigit() also accepts "²" and other Unicode digits,
# which int() then refuses. Twelve digits reach the year 33658.
_STAMP = re.compile(r"[0-9]{1,12}")
# Visible ASCII is what an HTTP header carries unchanged (no spaces to trim,
# no line breaks, nothing an HTTP library would re-encode).
_TOKEN = re.compile(r"[\x21-\x7e]{1,200}")
_SIGNATURE = re.compile(r"(v1|v2)=([0-9a-f]{64})")


def header_safe_key(key: str) -> str:
    """``key`` itself when an HTTP header can carry it unchanged (1-200 visible
    ASCII characters), else ``"sha256:" +`` a digest of it, so any message key
    (Chinese text, spaces, line breaks) gives a stable ``Idempotency-Key``."""
    if _TOKEN.fullmatch(key):
        return key
    return "sha256:" + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def _mac(secret: str, data: bytes) -> str:
    return hmac.new(secret.encode("utf-8", "surrogatepass"), data, hashlib.sha256).hexdigest()


def sign(secret: str, timestamp: int, body: bytes, *, nonce: str, key: str) -> str:
    """The ``X-Siyu-Signature`` value (``v2=<hex>``) of ``body`` sent at ``timestamp``
    with this ``nonce`` and ``Idempotency-Key``."""
    head = f"v2\n{timestamp}\n{nonce}\n{key}\n".encode()
    return "v2=" + _mac(secret, head + body)


def sign_v1(secret: str, timestamp: int, body: bytes) -> str:
    """The legacy ``v1=<hex>`` signature (timestamp and body only), which older
    siyu versions send; :func:`verify` accepts it only with ``allow_v1=True``."""
    return "v1=" + _mac(secret, str(timestamp).encode("ascii") + b"." + body)


def signed_headers(
    secret: str, body: bytes, *, key: str, timestamp: int | None = None, nonce: str | None = None
) -> dict[str, str]:
    """The four signing headers for ``body``: timestamp (now unless given), a
    fresh nonce (unless given), ``Idempotency-Key`` (made header-safe) and the signature."""
    stamp = int(time.time()) if timestamp is None else int(timestamp)
    nonce = nonce or uuid.uuid4().hex
    safe = header_safe_key(key)
    return {
        TIMESTAMP_HEADER: str(stamp),
        NONCE_HEADER: nonce,
        KEY_HEADER: safe,
        SIGNATURE_HEADER: sign(secret, stamp, body, nonce=nonce, key=safe),
    }


# -- replay store -----------------------------------------------------------------------


@runtime_checkable
class ReplayStore(Protocol):
    """Where a receiver remembers the signatures it accepted.

    ``add`` must be atomic across every process that verifies webhooks for the
    same endpoint: record ``token`` until ``expires_at`` (Unix seconds) and
    return ``True``, or return ``False`` when ``token`` is already held (a
    replay). ``now`` is the verifier's clock, for stores that count a TTL.
    A Redis store is ``SET token 1 NX EXAT expires_at``; a SQL store is an
    ``INSERT`` into a table with a primary key on ``token`` (a unique
    violation means ``False``) plus a periodic ``DELETE … WHERE expires_at < now``.
    """

    def add(self, token: str, *, expires_at: float, now: float) -> bool: ...


class MemoryReplayStore:
    """A :class:`ReplayStore` in this process's memory (one receiver process).

    Entries are dropped once expired, so it holds at most the requests of one
    replay window."""

    def __init__(self) -> None:
        self._expiry: dict[str, float] = {}
        self._heap: list[tuple[float, str]] = []
        self._lock = threading.Lock()

    def add(self, token: str, *, expires_at: float, now: float) -> bool:
        with self._lock:
            while self._heap and self._heap[0][0] < now:
                expiry, old = heapq.heappop(self._heap)
                if self._expiry.get(old) == expiry:
                    del self._expiry[old]
            held = self._expiry.get(token)
            if held is not None and held >= now:
                return False
            self._expiry[token] = expires_at
            heapq.heappush(self._heap, (expires_at, token))
            return True

    def __len__(self) -> int:
        with self._lock:
            return len(self._expiry)


# -- verification -----------------------------------------------------------------------


def _secret_list(secret: Any) -> list[str]:
    secrets = [secret] if isinstance(secret, str) else secret
    if (
        not isinstance(secrets, Sequence)
        or isinstance(secrets, (bytes, bytearray))
        or not secrets
        or not all(isinstance(s, str) and s for s in secrets)
    ):
        raise ValidationError(
            "webhook secret must be a non-empty string, or a non-empty list of them (newest first) during a "
            f"rotation; got {type(secret).__name__}"
        )
    return list(secrets)


def _number(name: str, value: Any, *, minimum: float | None = None) -> float:
    try:
        number = float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else math.nan
    except OverflowError:  # an int beyond float range
        number = math.nan
    if not math.isfinite(number):
        raise ValidationError(f"{name} must be a finite number of seconds, got {str(value)[:40]}")
    if minimum is not None and number < minimum:
        raise ValidationError(f"{name} must be at least {minimum:g}, got {number:g}")
    return number


def _reject(text: str, code: str) -> CallbackRejected:
    return CallbackRejected(f"{text}; refuse this webhook (answer HTTP 401) and do not act on it", code=code)


def _header(headers: Mapping[str, Any], name: str) -> str:
    value = headers.get(name.lower(), "")
    if not isinstance(value, str):
        raise _reject(f"webhook header {name} is not text", "malformed")
    return value.strip()


def verify(
    secret: str | Sequence[str],
    body: bytes,
    headers: Mapping[str, str],
    *,
    now: float | None = None,
    tolerance: float = 300,
    replay_store: ReplayStore | None = None,
    allow_v1: bool = False,
) -> dict[str, Any]:
    """Check a received webhook and return its JSON payload.

    ``secret`` is the shared key, or a list of keys during a rotation (any may
    have signed). ``body`` is the raw request body; ``headers`` may use any
    capitalisation. Raises :class:`~siyu.errors.CallbackRejected` when a
    header is missing or malformed, the timestamp is more than ``tolerance``
    seconds from ``now``, the signature matches none of the secrets, the
    signature was already accepted (``replay_store``: ``code="replay"``), or
    the body is not a JSON object. A legacy ``v1`` signature (older siyu
    senders; it does not cover ``Idempotency-Key``) is refused unless
    ``allow_v1``. Wrong argument types raise :class:`~siyu.errors.ValidationError`.
    """
    secrets = _secret_list(secret)
    if not isinstance(body, (bytes, bytearray, memoryview)):
        raise ValidationError(f"body must be the raw request bytes, got {type(body).__name__}")
    raw = bytes(body)
    if not isinstance(headers, Mapping):
        raise ValidationError(f"headers must be a mapping of header names to values, got {type(headers).__name__}")
    tolerance = _number("tolerance", tolerance, minimum=0)
    current = time.time() if now is None else _number("now", now)
    if replay_store is not None and not isinstance(replay_store, ReplayStore):
        raise ValidationError("replay_store must have add(token, *, expires_at, now) -> bool (see ReplayStore)")
    lower = {k.lower(): v for k, v in headers.items() if isinstance(k, str)}

    signature, stamp = _header(lower, SIGNATURE_HEADER), _header(lower, TIMESTAMP_HEADER)
    if not signature or not stamp:
        raise _reject(f"webhook lacks the {SIGNATURE_HEADER} or {TIMESTAMP_HEADER} header", "missing")
    if not _STAMP.fullmatch(stamp):
        raise _reject(f"webhook {TIMESTAMP_HEADER} {stamp[:20]!r} is not Unix seconds in ASCII digits", "malformed")
    sent = int(stamp)
    if abs(current - sent) > tolerance:
        raise _reject(f"webhook timestamp {sent} is more than {tolerance:g}s from now: stale or replayed", "stale")
    match = _SIGNATURE.fullmatch(signature)
    if match is None:
        raise _reject(f"webhook {SIGNATURE_HEADER} is not v2=<64 hex digits>", "signature")
    if match.group(1) == "v1":
        if not allow_v1:
            raise _reject(
                "webhook carries a legacy v1 signature, which does not cover Idempotency-Key; upgrade the sender "
                "(or pass allow_v1=True while senders are being upgraded)",
                "v1",
            )
        candidates = [sign_v1(s, sent, raw) for s in secrets]
    else:
        nonce, key = _header(lower, NONCE_HEADER), _header(lower, KEY_HEADER)
        if not _TOKEN.fullmatch(nonce) or not _TOKEN.fullmatch(key):
            raise _reject(f"webhook lacks a valid {NONCE_HEADER} or {KEY_HEADER} header", "missing")
        candidates = [sign(s, sent, raw, nonce=nonce, key=key) for s in secrets]
    # Check every candidate so the time taken does not tell which secret matched.
    matched = [hmac.compare_digest(c.encode(), signature.encode()) for c in candidates]
    if not any(matched):
        raise _reject("webhook signature does not match: wrong secret, or a tampered body or header", "signature")
    try:
        payload = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise _reject("webhook body is not UTF-8 JSON", "malformed") from None
    if not isinstance(payload, dict):
        raise _reject("webhook body is not a JSON object", "malformed")
    if replay_store is not None and not replay_store.add(signature, expires_at=sent + tolerance, now=current):
        raise _reject("webhook was already accepted once (same signature): a replay", "replay")
    return payload


class WebhookVerifier:
    """A receiver's verifier: :func:`verify` with a replay store and a clock.

    ``secret``: one key, or several (newest first) while rotating.
    ``replay_store`` defaults to a :class:`MemoryReplayStore` (one process);
    several receiver processes share one store (Redis, a database table).
    ``clock`` returns Unix seconds or an aware ``datetime`` (``siyu.testing.FakeClock``).
    """

    def __init__(
        self,
        secret: str | Sequence[str],
        *,
        tolerance: float = 300,
        replay_store: ReplayStore | None = None,
        clock: Callable[[], float | datetime] | None = None,
        allow_v1: bool = False,
    ) -> None:
        self.secrets = _secret_list(secret)
        self.tolerance = _number("tolerance", tolerance, minimum=0)
        self.replay_store: ReplayStore = MemoryReplayStore() if replay_store is None else replay_store
        self.clock = clock
        self.allow_v1 = allow_v1

    def now(self) -> float:
        if self.clock is None:
            return time.time()
        value = self.clock()
        return value.timestamp() if isinstance(value, datetime) else float(value)

    def verify(self, body: bytes, headers: Mapping[str, str]) -> dict[str, Any]:
        """The payload of a genuine, first-seen webhook; see :func:`verify`."""
        return verify(
            self.secrets,
            body,
            headers,
            now=self.now(),
            tolerance=self.tolerance,
            replay_store=self.replay_store,
            allow_v1=self.allow_v1,
        )

    def __repr__(self) -> str:
        return f"<WebhookVerifier secrets=*** ({len(self.secrets)}) tolerance={self.tolerance:g}>"
