"""Webhook signatures: key and nonce signed, replays refused, secrets rotate, typed errors for any input."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import siyu
import siyu.channels.webhook as webhook
from siyu.channels import Message
from siyu.channels.webhook import verify
from siyu.errors import CallbackRejected, SiyuError, ValidationError
from siyu.testing import FakeClock
from siyu.testing.fakes import WebhookReceiver

NOW = 1_795_000_000


def capture(ws: siyu.Workspace, messages: list[Message], **options: Any) -> list[httpx.Request]:
    """The requests the webhook channel sends for ``messages`` (answered 200)."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"ok": True})

    options.setdefault("secret", "whsec")
    hook = ws.channels.get(
        "webhook", url="http://hooks.example/in", transport=httpx.MockTransport(handler), clock=lambda: NOW, **options
    )
    assert all(r.ok for r in hook.send(messages))
    return seen


def headers_of(request: httpx.Request) -> dict[str, str]:
    return dict(request.headers)


# -- item: the Idempotency-Key is signed ---------------------------------------------------------
def test_a_replay_with_a_new_idempotency_key_is_refused(ws: siyu.Workspace) -> None:
    with WebhookReceiver(secret="whsec") as receiver:
        hook = ws.channels.get("webhook", url=receiver.url, secret="whsec")
        assert hook.send([Message("crm", text="新会员", key="order-1")])[0].ok
        captured = receiver.requests[-1]
        for n in range(3):
            forged = {**captured.headers, "idempotency-key": f"forged-{n}"}
            assert httpx.post(receiver.url, content=captured.body, headers=forged).status_code == 401
        assert list(receiver.received) == ["order-1"] and receiver.rejected == 3


def test_an_exact_replay_is_refused_and_a_retry_is_accepted(ws: siyu.Workspace) -> None:
    with WebhookReceiver(secret="whsec") as receiver:
        hook = ws.channels.get("webhook", url=receiver.url, secret="whsec")
        message = Message("crm", text="新会员", key="order-1")
        assert hook.send([message])[0].ok
        assert hook.send([message])[0].ok  # a retry: new nonce, same key
        first = receiver.requests[0]
        replay = httpx.post(receiver.url, content=first.body, headers=dict(first.headers))
        assert replay.status_code == 401 and replay.json()["code"] == "replay"
        assert list(receiver.received) == ["order-1"] and receiver.rejections == ["replay"]


def test_the_signature_covers_timestamp_nonce_key_and_body(ws: siyu.Workspace) -> None:
    (request,) = capture(ws, [Message("crm", text="x", key="order-1")])
    headers, body = headers_of(request), request.content
    assert headers["x-siyu-signature"].startswith("v2=") and len(headers["x-siyu-nonce"]) >= 16
    assert verify("whsec", body, headers, now=NOW)["id"] == "order-1"
    for name, value in [("idempotency-key", "order-2"), ("x-siyu-nonce", "0" * 32), ("x-siyu-timestamp", str(NOW - 1))]:
        with pytest.raises(CallbackRejected) as err:
            verify("whsec", body, {**headers, name: value}, now=NOW)
        assert err.value.code == "signature"
    with pytest.raises(CallbackRejected, match="signature"):
        verify("whsec", body.replace(b"x", b"y"), headers, now=NOW)


def test_retries_carry_the_same_key_and_a_new_nonce(ws: siyu.Workspace) -> None:
    message = Message("crm", text="x", key="order-1")
    one, two = capture(ws, [message, message])
    assert one.headers["idempotency-key"] == two.headers["idempotency-key"] == "order-1"
    assert one.headers["x-siyu-nonce"] != two.headers["x-siyu-nonce"]


def test_any_message_key_becomes_a_header_safe_idempotency_key(ws: siyu.Workspace) -> None:
    keys = ["订单-1", "with space", "line\nbreak", "x" * 300]
    requests = capture(ws, [Message("crm", text="x", key=k) for k in keys])
    sent = [r.headers["idempotency-key"] for r in requests]
    assert all(s.startswith("sha256:") for s in sent) and len(set(sent)) == 4
    assert sent == [r.headers["idempotency-key"] for r in capture(ws, [Message("crm", text="x", key=k) for k in keys])]
    verifier = webhook.WebhookVerifier("whsec", clock=lambda: NOW)
    assert [verifier.verify(r.content, headers_of(r))["id"] for r in requests] == sent


# -- replay store ---------------------------------------------------------------------------------
def test_the_verifier_keeps_replays_only_for_the_window(ws: siyu.Workspace) -> None:
    clock = FakeClock(datetime.fromtimestamp(NOW, UTC))
    store = webhook.MemoryReplayStore()
    verifier = webhook.WebhookVerifier("whsec", tolerance=300, replay_store=store, clock=clock)
    (request,) = capture(ws, [Message("crm", text="x", key="k1")])
    verifier.verify(request.content, headers_of(request))
    with pytest.raises(CallbackRejected) as err:
        verifier.verify(request.content, headers_of(request))
    assert err.value.code == "replay"
    clock.advance(seconds=301)
    with pytest.raises(CallbackRejected) as err:
        verifier.verify(request.content, headers_of(request))
    assert err.value.code == "stale"
    assert store.add("other", expires_at=NOW + 900, now=NOW + 301) and len(store) == 1  # the old entry is gone


def test_memory_store_semantics() -> None:
    store = webhook.MemoryReplayStore()
    assert store.add("a", expires_at=10, now=0)
    assert not store.add("a", expires_at=12, now=10)
    assert store.add("a", expires_at=20, now=11)  # expired at 10, so new again
    assert isinstance(store, webhook.ReplayStore)


class SqliteReplayStore:
    """A shared store in a database table, as several receiver processes would use."""

    def __init__(self, path: Path) -> None:
        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.execute("CREATE TABLE IF NOT EXISTS seen (token TEXT PRIMARY KEY, expires_at REAL)")

    def add(self, token: str, *, expires_at: float, now: float) -> bool:
        self.db.execute("DELETE FROM seen WHERE expires_at < ?", (now,))
        try:
            self.db.execute("INSERT INTO seen VALUES (?, ?)", (token, expires_at))
        except sqlite3.IntegrityError:
            return False
        return True


def test_a_shared_store_refuses_a_replay_seen_by_another_receiver(ws: siyu.Workspace, tmp_path: Path) -> None:
    first, second = (
        webhook.WebhookVerifier("whsec", replay_store=SqliteReplayStore(tmp_path / "seen.db"), clock=lambda: NOW)
        for _ in range(2)
    )
    (request,) = capture(ws, [Message("crm", text="x", key="k1")])
    first.verify(request.content, headers_of(request))
    with pytest.raises(CallbackRejected, match="replay"):
        second.verify(request.content, headers_of(request))


# -- rotation ---------------------------------------------------------------------------------------
def test_the_sender_signs_with_the_newest_secret(ws: siyu.Workspace) -> None:
    (request,) = capture(ws, [Message("crm", text="x", key="k")], secret=["whsec_2026", "whsec_2025"])
    headers = headers_of(request)
    assert verify("whsec_2026", request.content, headers, now=NOW)
    with pytest.raises(CallbackRejected, match="signature"):
        verify("whsec_2025", request.content, headers, now=NOW)
    assert verify(["whsec_2025", "whsec_2026"], request.content, headers, now=NOW)


def test_a_receiver_accepts_every_configured_secret_during_a_rotation(ws: siyu.Workspace) -> None:
    with WebhookReceiver(secret=["whsec_2026", "whsec_2025"]) as receiver:
        old = ws.channels.get("webhook", url=receiver.url, secret="whsec_2025")
        new = ws.channels.get("webhook", url=receiver.url, secret=["whsec_2026", "whsec_2025"])
        stranger = ws.channels.get("webhook", url=receiver.url, secret="whsec_2024")
        assert old.send([Message("crm", text="a", key="a")])[0].ok
        assert new.send([Message("crm", text="b", key="b")])[0].ok
        assert not stranger.send([Message("crm", text="c", key="c")])[0].ok
        assert sorted(receiver.received) == ["a", "b"]
        assert "whsec_2026" not in repr(new) and set(new.secrets()) == {"whsec_2026", "whsec_2025"}


@pytest.mark.parametrize("secret", [[], [""], "", ["ok", 5], b"bytes", 7])
def test_a_bad_secret_is_refused_at_construction(ws: siyu.Workspace, secret: Any) -> None:
    with pytest.raises(ValidationError, match="secret"):
        ws.channels.get("webhook", url="http://hooks.example/in", secret=secret)


# -- legacy v1 senders ----------------------------------------------------------------------------
def test_legacy_v1_signatures_only_with_allow_v1() -> None:
    body = b'{"id": "1"}'
    legacy = {"X-Siyu-Timestamp": str(NOW), "X-Siyu-Signature": webhook.sign_v1("k", NOW, body)}
    with pytest.raises(CallbackRejected) as err:
        verify("k", body, legacy, now=NOW)
    assert err.value.code == "v1"
    verifier = webhook.WebhookVerifier("k", clock=lambda: NOW, allow_v1=True)
    assert verifier.verify(body, {**legacy, "Idempotency-Key": "a"}) == {"id": "1"}
    with pytest.raises(CallbackRejected, match="replay"):  # the v1 key is not signed, the signature is stored
        verifier.verify(body, {**legacy, "Idempotency-Key": "b"})


# -- bad input: typed errors only --------------------------------------------------------------------
@pytest.mark.parametrize("stamp", ["²", "¹²³⁴", "١٢٣٤", "１２３", "-5", "+5", "5.0", " ", "9" * 5000])
def test_a_timestamp_that_is_not_ascii_digits_is_refused(stamp: str) -> None:
    with pytest.raises(CallbackRejected):
        verify("k", b"{}", {"X-Siyu-Timestamp": stamp, "X-Siyu-Signature": "v2=" + "0" * 64}, now=NOW)


@pytest.mark.parametrize("now", [float("nan"), float("inf"), 10**400, True, "1000"])
def test_a_bad_clock_value_is_a_validation_error(now: Any) -> None:
    headers = {"X-Siyu-Timestamp": "1000", "X-Siyu-Signature": webhook.sign_v1("k", 1000, b"{}")}
    with pytest.raises(ValidationError):
        verify("k", b"{}", headers, now=now, allow_v1=True)


HEADER_NAMES = ["X-Siyu-Timestamp", "x-siyu-signature", "X-SIYU-NONCE", "Idempotency-Key", "Content-Type"]
junk = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(),
    st.binary(),
    st.lists(st.text(), max_size=3),
    st.dictionaries(st.text(), st.text(), max_size=3),
)
header_value = st.one_of(
    st.text(),
    st.from_regex(r"v[12]=[0-9a-f²]{60,66}", fullmatch=True),
    st.from_regex(r"[0-9²³¹١٢]{1,14}", fullmatch=True),
    junk,
)


@settings(max_examples=200, deadline=None)
@given(
    secret=st.one_of(st.text(), st.lists(st.text(), max_size=3), junk),
    body=st.one_of(st.binary(max_size=64), st.just(b'{"id": "1"}'), junk),
    headers=st.one_of(st.dictionaries(st.one_of(st.sampled_from(HEADER_NAMES), st.text()), header_value), junk),
    now=st.one_of(st.none(), st.integers(), st.floats(), junk),
    tolerance=st.one_of(st.integers(), st.floats(), junk),
    allow_v1=st.booleans(),
)
def test_verify_raises_only_typed_errors(
    secret: Any, body: Any, headers: Any, now: Any, tolerance: Any, allow_v1: bool
) -> None:
    try:
        result = verify(secret, body, headers, now=now, tolerance=tolerance, allow_v1=allow_v1)
    except SiyuError:
        return
    assert isinstance(result, dict)


def _signed(body: bytes, key: str, nonce: str) -> dict[str, str]:
    return webhook.signed_headers("k", body, key=key, timestamp=NOW, nonce=nonce)


@settings(max_examples=150, deadline=None)
@given(
    body=st.one_of(st.binary(max_size=64), st.builds(lambda t: t.encode("utf-8", "surrogatepass"), st.text())),
    key=st.text(max_size=40),
    nonce=st.from_regex(r"[0-9a-f]{32}", fullmatch=True),
    name=st.sampled_from(HEADER_NAMES),
    value=st.one_of(st.text(), junk),
)
def test_a_genuine_request_with_one_header_changed_is_refused_with_a_typed_error(
    body: bytes, key: str, nonce: str, name: str, value: Any
) -> None:
    headers: Mapping[str, Any] = _signed(body, key, nonce)
    original = {k.lower(): v for k, v in headers.items()}
    changed = {**original, name.lower(): value}
    try:
        verify("k", body, changed, now=NOW)
    except SiyuError:
        return
    # Accepted: the header was not one the signature covers, or was not really changed.
    assert name.lower() == "content-type" or changed == original or str(value).strip() == original[name.lower()]
