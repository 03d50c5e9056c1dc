"""Erasure reaches every free-form field: after ``ws.privacy.erase`` the person's
phone number is nowhere in the raw database (SQLite file and WAL, a ``pg_dump``)
nor in their export, while another person's data written the same way stays."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

import siyu
from siyu.channels.base import Message
from siyu.channels.receipts import Receipt
from siyu.testing import FakeClock

POSTGRES_URL = os.environ.get("SIYU_TEST_POSTGRES_URL")
ERASED_PHONE, KEPT_PHONE = "13912340000", "13987650000"


def _leave_traces(ws: siyu.Workspace, phone: str, n: int) -> int:
    """A person whose phone number is typed into every free-form field siyu stores."""
    note = f"call {phone}"
    uid = ws.users.add(phone=phone, attributes={"note": note}, state=note).id
    ws.users.consent(uid, purpose="marketing")
    ws.events.track(uid, "page_view", properties={"contact": phone, "nested": [{"tel": note}]})
    ws.events.track_many([{"user_id": uid, "kind": "form", "properties": {"phone": phone}}])
    earned = ws.points.earn(uid, 100, reason=note, key=f"earn-{n}")
    ws.points.spend(uid, 10, reason=note, key=f"spend-{n}")
    ws.points.reverse(earned.id, key=f"rev-{n}", amount=5, reason=note)
    ws.tiers.add_growth(uid, 500, reason=note, key=f"growth-{n}")
    ws.tags.apply(uid, "interest/tea", by=note)
    ws.tags.remove(uid, "interest/tea", by=note)
    inviter = ws.users.add().id
    ws.referrals.bind(uid, inviter_id=inviter, device=note)
    ws.referrals.rebind(uid, inviter_id=ws.users.add().id, reason=note)
    ws.privacy.log("crm.note_added", user_id=uid, details={"note": note, "nested": {"text": note}},
                   before={"tel": phone}, after=phone)
    ws.users.update(uid, attributes={"note": f"{note}!"})  # audited with masked values
    ws.channels.outbox().send(Message(recipient=phone, text=f"hello {phone}", user_id=uid))
    camp = ws.campaigns.create(f"hi-{n}", channel="outbox", template="hi ${tel}", audience=[uid],
                               variants={"A": {"tel": "friend"}})
    ws.campaigns.send(camp.id)
    [delivery] = ws.campaigns.deliveries(camp.id, user_id=uid)
    assert delivery.provider_id is not None
    ws.campaigns.record_receipts([Receipt(channel="outbox", message_id=delivery.provider_id, status="failed",
                                          recipient=phone, code="FAIL", detail=f"no such number {phone}")])
    ws.campaigns.suppress(uid, channel="sms", reason=note)
    ws.lifecycle.mark_lost(uid, note)
    return uid


def _scenario(ws: siyu.Workspace) -> tuple[int, int]:
    ws.products.add("tea", "Tea", price=Decimal("39.90"), cost=Decimal("10"))
    erased = _leave_traces(ws, ERASED_PHONE, 1)
    kept = _leave_traces(ws, KEPT_PHONE, 2)
    ws.privacy.erase(erased)
    return erased, kept


def test_erase_leaves_no_trace_in_the_sqlite_file(tmp_path: Path, clock: FakeClock) -> None:
    db = tmp_path / "shop.db"
    with siyu.connect(f"sqlite:///{db}", clock=clock) as ws:
        erased, kept = _scenario(ws)
        exported = repr(ws.privacy.export(erased))
        assert ERASED_PHONE not in exported and "call" not in exported
        assert KEPT_PHONE in repr(ws.privacy.export(kept))
        assert ws.events.of(erased)[0].properties == {}
    raw = db.read_bytes() + (Path(f"{db}-wal").read_bytes() if Path(f"{db}-wal").exists() else b"")
    assert ERASED_PHONE.encode() not in raw
    assert KEPT_PHONE.encode() in raw


@pytest.fixture
def pg_url() -> Iterator[str]:
    if not POSTGRES_URL:
        pytest.skip("PostgreSQL tests need SIYU_TEST_POSTGRES_URL=postgresql://postgres@127.0.0.1:5432/test")
    from siyu.testing.postgres import drop_schema, with_schema

    url = with_schema(POSTGRES_URL, f"t_{uuid.uuid4().hex[:16]}")
    yield url
    drop_schema(url)


@pytest.mark.postgres
def test_erase_leaves_no_trace_in_pg_dump(pg_url: str) -> None:
    if shutil.which("pg_dump") is None:
        pytest.skip("needs pg_dump")
    with siyu.connect(pg_url, clock=FakeClock(datetime(2026, 11, 22, 8, tzinfo=UTC))) as ws:
        erased, _ = _scenario(ws)
        assert ERASED_PHONE not in repr(ws.privacy.export(erased))
    schema = pg_url.rsplit("schema=", 1)[1]
    assert POSTGRES_URL is not None
    dump = subprocess.run(["pg_dump", "--data-only", "--schema", schema, POSTGRES_URL.split("?")[0]],
                          capture_output=True, text=True, check=True).stdout
    assert ERASED_PHONE not in dump
    assert KEPT_PHONE in dump


def test_erased_audit_entries_keep_what_was_done_and_a_retry_says_why_it_is_refused(ws: siyu.Workspace) -> None:
    uid = ws.users.add(phone=ERASED_PHONE).id
    ws.users.consent(uid, purpose="marketing", source=f"form {ERASED_PHONE}")
    ws.points.earn(uid, 5, reason=f"gift for {ERASED_PHONE}", key="gift-1")
    ws.privacy.log("crm.called", user_id=uid, details={"calls": 2, "note": ERASED_PHONE, "kind": "phone"})
    removed = ws.privacy.erase(uid)
    [erase] = ws.privacy.audit(action="privacy.erase")
    assert erase.details["removed"]["audit_entries"] >= 2 and erase.details["pseudonym"] == removed.pseudonym
    [called] = ws.privacy.audit(action="crm.called")
    assert called.details == {"calls": 2, "note": "[erased]", "kind": "phone"} and called.before is None
    consent = next(e for e in ws.privacy.audit(user_id=uid) if e.action == "consent.recorded")
    assert consent.details["purpose"] == "marketing" and ERASED_PHONE not in repr(consent)
    assert ws.points.history(uid)[0].reason == "[erased]"
    with pytest.raises(siyu.errors.IdempotencyConflict, match="since erased"):
        ws.points.earn(uid, 5, reason=f"gift for {ERASED_PHONE}", key="gift-1")
