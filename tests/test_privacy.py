"""Privacy end to end: what is on disk, keys from the environment, tampering, masking, the CLI."""

from __future__ import annotations

import json
import logging
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from dateutil.relativedelta import relativedelta

import siyu
from siyu.cli import cli
from siyu.errors import PluginError, PolicyViolation, ValidationError, WrongKeyError
from siyu.privacy import mask_value
from siyu.privacy.keys import FieldCipher, generate_key
from siyu.testing import FakeClock

KEY = "test-key-0123456789abcdef-0123456789"
PHONE = "13800138000"


def _raw(path: Path) -> bytes:
    """Every byte SQLite wrote: the main file and the write-ahead log."""
    data = path.read_bytes()
    wal = path.with_name(path.name + "-wal")
    return data + (wal.read_bytes() if wal.exists() else b"")


def test_raw_database_file_shows_no_plaintext_pii(tmp_path: Path) -> None:
    db = tmp_path / "shop.db"
    with siyu.connect(f"sqlite:///{db}", secret_key=KEY) as ws:
        a = ws.users.add(phone=PHONE, email="zhang.san@example.com", attributes={"name": "张三丰", "city": "杭州"})
        b = ws.users.add(phone="13900139000")
        ws.users.merge(keep=a.id, drop=b.id)
        assert ws.users.find(phone=PHONE).id == a.id  # type: ignore[union-attr]
    raw = _raw(db)
    for secret in (PHONE, "8613800138000", "13900139000", "zhang.san", "张三丰"):
        assert secret.encode() not in raw, secret
    assert "杭州".encode() in raw  # not personal: stays queryable by segments


def test_key_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path / 'shop.db'}"
    monkeypatch.setenv("SIYU_SECRET_KEY", KEY)
    with siyu.connect(url) as ws:
        ws.users.add(phone=PHONE)
        assert ws.privacy.encrypted
    monkeypatch.delenv("SIYU_SECRET_KEY")
    with pytest.raises(WrongKeyError, match="SIYU_SECRET_KEY"):
        siyu.connect(url)
    with siyu.connect(url, secret_key=KEY) as ws:
        assert ws.users.find(phone=PHONE) is not None


def test_first_keyed_connect_encrypts_existing_data(tmp_path: Path) -> None:
    db = tmp_path / "shop.db"
    with siyu.connect(f"sqlite:///{db}") as ws:
        uid = ws.users.add(phone=PHONE, attributes={"name": "张三丰"}).id
    assert PHONE.encode() in _raw(db)
    with siyu.connect(f"sqlite:///{db}", secret_key=KEY) as ws:
        assert ws.users.get(uid).phone == "+" + "86" + PHONE
        assert ws.privacy.audit(action="privacy.encryption_enabled")[0].details["identities"] == 1
    # Freed pages still hold the old clear text until SQLite rewrites the file (see the guide).
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.execute("VACUUM")
    conn.close()
    assert PHONE.encode() not in _raw(db)


def test_tampered_ciphertext_is_refused_not_misread(tmp_path: Path) -> None:
    db = tmp_path / "shop.db"
    with siyu.connect(f"sqlite:///{db}", secret_key=KEY) as ws:
        a = ws.users.add(phone=PHONE).id
        b = ws.users.add(phone="13900139000").id
    conn = sqlite3.connect(db)
    sealed = dict(conn.execute("SELECT user_id, sealed FROM identities").fetchall())
    # Swap the two ciphertexts: each is bound to its field, not its row, so also flip a byte.
    conn.execute("UPDATE identities SET sealed = ? WHERE user_id = ?", (sealed[b][:-2] + "AA", a))
    conn.commit()
    conn.close()
    with siyu.connect(f"sqlite:///{db}", secret_key=KEY) as ws:
        with pytest.raises(WrongKeyError, match="integrity"):
            ws.users.get(a)
        assert ws.users.get(b).phone == "+8613900139000"


def test_cipher_rejects_other_fields_and_keys() -> None:
    one, two = FieldCipher(KEY), FieldCipher(generate_key())
    token = one.seal("+8613800138000", "identity:phone")
    assert PHONE not in token
    with pytest.raises(WrongKeyError, match="integrity"):
        one.open(token, "identity:email")
    with pytest.raises(WrongKeyError, match="key"):
        two.open(token, "identity:phone")
    assert one.blind("phone", "", "+8613800138000") != two.blind("phone", "", "+8613800138000")
    with pytest.raises(ValidationError, match="generate-key"):
        FieldCipher("short")


def test_reprs_logs_and_errors_are_masked(caplog: pytest.LogCaptureFixture) -> None:
    with siyu.connect("memory://", secret_key=KEY) as ws:
        user = ws.users.add(phone=PHONE, email="alice@example.com", attributes={"name": "张三丰", "vip": True})
        text = repr(user)
        assert "138****8000" in text and PHONE not in text
        assert "alice@" not in text and "a***@example.com" in text
        assert "张三丰" not in text and "'vip': True" in text
        assert user.phone == "+8613800138000"  # explicitly asked: the full value
        with caplog.at_level(logging.DEBUG):
            logging.getLogger("siyu").info("user %r", user)
        assert PHONE not in caplog.text
        with pytest.raises(siyu.SiyuError) as info:
            ws.users.add(phone=PHONE)
        assert PHONE not in str(info.value)
    assert mask_value("+8613800138000") == "138****8000"
    assert mask_value("上海市浦东新区") == "上海***"


def test_exporters_registry_and_messages() -> None:
    clock = FakeClock(datetime(2026, 11, 22, 4, 0, tzinfo=UTC))
    with siyu.connect("memory://", clock=clock) as ws:
        ws.privacy.register_exporter("crm_notes", lambda w, uid: [{"note": f"called user {uid}"}])
        with pytest.raises(PluginError):
            ws.privacy.register_exporter("crm_notes", lambda w, uid: None)
        with pytest.raises(PluginError):
            ws.privacy.register_exporter("user", lambda w, uid: None)
        uid = ws.users.add(phone=PHONE).id
        ws.users.consent(uid, purpose="marketing", channel="outbox")
        campaign = ws.campaigns.create("d11", audience=[uid], channel="outbox", template="双11 来了")
        ws.campaigns.send(campaign.id)
        data = ws.privacy.export(uid)
        assert data["crm_notes"] == [{"note": f"called user {uid}"}]
        assert {m["source"] for m in data["messages"]} == {"outbox", "campaign"}
        ws.privacy.erase(uid)
        after = ws.privacy.export(uid)
        assert all(m.get("content", "") == "" for m in after["messages"])
        assert all(m["recipient"] in (None, "erased") for m in after["messages"])


def test_audit_retention_is_at_least_three_years() -> None:
    clock = FakeClock(datetime(2026, 1, 1, tzinfo=UTC))
    with siyu.connect("memory://", clock=clock) as ws:
        ws.privacy.log("operator.login", details={"ip": "10.0.0.1"})
        clock.advance(days=365 * 2)
        with pytest.raises(PolicyViolation, match="3 years"):
            ws.privacy.purge_audit(older_than=relativedelta(years=1))
        assert ws.privacy.purge_audit() == 0
        clock.advance(days=366 * 2)
        assert ws.privacy.purge_audit() == 1
        assert [e.action for e in ws.privacy.audit()] == ["privacy.audit_purged"] * 2


def test_cli_privacy_commands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path / 'shop.db'}"
    monkeypatch.setenv("SIYU_SECRET_KEY", KEY)
    with siyu.connect(url) as ws:
        uid = ws.users.add(phone=PHONE, attributes={"name": "张三丰"}).id
    runner = CliRunner()
    key = runner.invoke(cli, ["privacy", "generate-key"]).output.strip()
    assert len(key) >= 40

    exported = runner.invoke(cli, ["--db", url, "privacy", "export", str(uid)])
    assert exported.exit_code == 0, exported.output
    assert json.loads(exported.output)["user"]["identities"][0]["value"] == "+8613800138000"

    monkeypatch.setenv("SIYU_NEW_SECRET_KEY", key)
    rotated = runner.invoke(cli, ["--db", url, "privacy", "rotate-key"])
    assert rotated.exit_code == 0, rotated.output
    assert "re-encrypted 1 identities" in rotated.output
    wrong = runner.invoke(cli, ["--db", url, "privacy", "audit"])
    assert wrong.exit_code == 1 and "key" in wrong.output
    monkeypatch.setenv("SIYU_SECRET_KEY", key)

    held = runner.invoke(cli, ["--db", url, "privacy", "hold", str(uid), "--reason", "court order"])
    assert held.exit_code == 0, held.output
    refused = runner.invoke(cli, ["--db", url, "privacy", "erase", str(uid), "--reason", "asked", "--yes"])
    assert refused.exit_code == 1 and "legal hold" in refused.output
    assert runner.invoke(cli, ["--db", url, "privacy", "release", "1"]).exit_code == 0
    erased = runner.invoke(cli, ["--db", url, "privacy", "erase", str(uid), "--reason", "asked", "--yes"])
    assert erased.exit_code == 0, erased.output and "pseudonym anon-" in erased.output

    log = runner.invoke(cli, ["--db", url, "privacy", "audit", "--json"])
    actions = [json.loads(line)["action"] for line in log.output.splitlines()]
    assert {"privacy.export", "privacy.key_rotated", "privacy.hold_placed", "privacy.erase"} <= set(actions)
    assert all(json.loads(line)["actor"].startswith(("cli", "system")) for line in log.output.splitlines())
    assert PHONE not in log.output and "张三丰" not in log.output


def test_erased_data_does_not_linger_in_the_sqlite_file(tmp_path: Path) -> None:
    db = tmp_path / "shop.db"
    with siyu.connect(f"sqlite:///{db}") as ws:  # no key: stored in clear until erased
        uid = ws.users.add(phone=PHONE, attributes={"name": "张三丰"}).id
        ws.users.add(phone="13900139000")
        ws.privacy.erase(uid)
    raw = _raw(db)
    assert PHONE.encode() not in raw and "张三丰".encode() not in raw
    assert b"13900139000" in raw


UNIONID, OPENID, EXTERNAL = "oUnion_zhangsan_0001", "oOpen_zhangsan_0001", "wmExternal_zhangsan_0001"


def test_wechat_and_wecom_ids_are_sealed_too(tmp_path: Path) -> None:
    db = tmp_path / "shop.db"
    with siyu.connect(f"sqlite:///{db}", secret_key=KEY) as ws:
        uid = ws.users.add(wechat_unionid=UNIONID, wechat_openid=OPENID, app="wx0001",
                           wecom_external_userid=[EXTERNAL]).id
        assert ws.users.find(wecom_external_userid=EXTERNAL).id == uid  # type: ignore[union-attr]
        assert ws.users.find(wechat_openid=OPENID, app="wx0001").id == uid  # type: ignore[union-attr]
        values = {i.kind: i.value for i in ws.users.get(uid).identities}
        assert values["wechat_unionid"] == UNIONID and values["wecom_external_userid"] == EXTERNAL
    raw = _raw(db)
    for secret in (UNIONID, OPENID, EXTERNAL):
        assert secret.encode() not in raw, secret


def test_ids_an_older_siyu_left_in_clear_are_sealed_on_the_next_keyed_connect(tmp_path: Path) -> None:
    db = tmp_path / "shop.db"
    with siyu.connect(f"sqlite:///{db}", secret_key=KEY) as ws:
        uid = ws.users.add(phone=PHONE, wecom_external_userid=[EXTERNAL]).id
    # What an older siyu wrote: the WeCom id in clear, and no record of the sealed kinds.
    conn = sqlite3.connect(db)
    conn.execute("UPDATE identities SET value = ?, sealed = NULL WHERE kind = 'wecom_external_userid'", (EXTERNAL,))
    conn.execute("DELETE FROM siyu_settings WHERE name = 'privacy.sealed_kinds'")
    conn.commit()
    conn.close()
    with siyu.connect(f"sqlite:///{db}", secret_key=KEY) as ws:
        assert ws.users.find(wecom_external_userid=EXTERNAL).id == uid  # type: ignore[union-attr]
        assert ws.users.find(phone=PHONE).id == uid  # type: ignore[union-attr]
        [entry] = ws.privacy.audit(action="privacy.identities_sealed")
        assert entry.details["identities"] == 2
    with siyu.connect(f"sqlite:///{db}", secret_key=KEY) as ws:  # once only
        assert len(ws.privacy.audit(action="privacy.identities_sealed")) == 1
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT COUNT(*) FROM identities WHERE sealed IS NULL").fetchone()[0] == 0
    assert conn.execute("SELECT COUNT(*) FROM identities WHERE value = ?", (EXTERNAL,)).fetchone()[0] == 0
    conn.close()
