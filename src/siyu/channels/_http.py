"""HTTP plumbing shared by the HTTP channels: an httpx client with an
injectable transport, and the mapping of network failures to ChannelError."""

from __future__ import annotations

import email.utils
from datetime import UTC, datetime
from typing import Any

from ..errors import ChannelError, ValidationError


def make_client(base_url: str, *, transport: Any = None, timeout: float = 10.0) -> Any:
    """An ``httpx.Client`` on ``base_url`` (raises a helpful error if httpx is missing)."""
    try:
        import httpx
    except ImportError:  # pragma: no cover - depends on the install
        raise ValidationError("this channel needs httpx: pip install 'siyu[channels]'") from None
    return httpx.Client(base_url=base_url, transport=transport, timeout=timeout, follow_redirects=False)


def request(client: Any, method: str, url: str, *, sent_means_maybe_delivered: bool, what: str, **kwargs: Any) -> Any:
    """Run one request; network failures become :class:`ChannelError`.

    A failure while connecting never reached the provider: retryable. A
    timeout or broken connection *after* the request was written may have been
    accepted; for non-idempotent calls (``sent_means_maybe_delivered``) that is
    not retryable, with ``code="timeout_unknown"``.
    """
    import httpx

    try:
        return client.request(method, url, **kwargs)
    except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
        raise ChannelError(
            f"{what}: could not connect ({type(exc).__name__}); nothing was sent, retry later",
            retryable=True,
            code="connect",
        ) from None
    except (httpx.ReadTimeout, httpx.WriteTimeout, httpx.RemoteProtocolError, httpx.ReadError) as exc:
        if sent_means_maybe_delivered:
            raise ChannelError(
                f"{what}: no answer ({type(exc).__name__}) after the request was sent; it may have been "
                "delivered, so it is NOT retried automatically; check delivery receipts before resending",
                retryable=False,
                code="timeout_unknown",
            ) from None
        raise ChannelError(f"{what}: {type(exc).__name__}; retry later", retryable=True, code="timeout") from None
    except httpx.HTTPError as exc:
        raise ChannelError(f"{what}: {type(exc).__name__}", retryable=True, code="network") from None


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """Parse a ``Retry-After`` header (seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    now = now or datetime.now(UTC)
    return max(0.0, (when - now).total_seconds())


def unknown_outcome(what: str, why: str) -> ChannelError:
    """The error for a call that creates something and got an answer that may mean
    "done": never retried (code ``timeout_unknown``)."""
    return ChannelError(
        f"{what}: {why}; the provider may have accepted it, so it is NOT retried automatically "
        "(siyu asks the provider where it can, otherwise a person decides)",
        retryable=False,
        code="timeout_unknown",
    )


def json_object(response: Any, what: str, *, creates: bool = False) -> dict[str, Any]:
    """The JSON object a provider answered with, after checking the HTTP status.

    A 2xx answer that is not a JSON object is a provider fault (a proxy's HTML
    page, a truncated body): retryable with code ``malformed`` for a read, an
    unknown outcome for a call that ``creates`` something (it may have been done).
    """
    error = status_error(response, what, creates=creates)
    if error is not None:
        raise error
    try:
        data = response.json()
    except ValueError:
        if creates:
            raise unknown_outcome(what, f"HTTP {response.status_code} with an answer that is not JSON") from None
        raise ChannelError(f"{what}: the answer is not JSON", retryable=True, code="malformed") from None
    if not isinstance(data, dict):
        if creates:
            raise unknown_outcome(what, f"HTTP {response.status_code} with an answer that is not a JSON object")
        raise ChannelError(f"{what}: the answer is not a JSON object", retryable=True, code="malformed")
    return data


def status_error(response: Any, what: str, *, creates: bool = False) -> ChannelError | None:
    """A ChannelError for a non-2xx HTTP status, or ``None`` for success. For a
    call that ``creates`` something, 5xx and 408 are unknown outcomes: the
    server (or a gateway in front of it) may have passed the request on."""
    code = int(response.status_code)
    if 200 <= code < 300:
        return None
    if creates and (code >= 500 or code == 408):
        return unknown_outcome(what, f"HTTP {code}")
    if code == 429:
        return ChannelError(
            f"{what}: HTTP 429 rate limited",
            retryable=True,
            code=429,
            retry_after=retry_after_seconds(response.headers.get("retry-after")) or 1.0,
        )
    if code >= 500 or code == 408:
        return ChannelError(f"{what}: HTTP {code}; the server failed, retry later", retryable=True, code=code)
    return ChannelError(f"{what}: HTTP {code}; the request was refused", retryable=False, code=code)
