"""Contract: personal-data protection (encryption, export, erasure, holds, audit)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

import siyu
from siyu.errors import ConsentRequired, IdentityConflict, LegalHold, WrongKeyError
from siyu.storage.base import Capability

from .base import ContractBase, found

KEY = "contract-test-key-0123456789abcdef"
OTHER_KEY = "another-test-key-0123456789abcdef"


def _need_encryption(caps: frozenset[str]) -> None:
    if Capability.ENCRYPTION not in caps:
        pytest.skip("the backend does not declare Capability.ENCRYPTION")


class PrivacyContract(ContractBase):
    def test_encrypted_identities_are_found_and_read_back(
        self, connect: Callable[..., siyu.Workspace], caps: frozenset[str]
    ) -> None:
        _need_encryption(caps)
        ws = connect(secret_key=KEY)
        user = ws.users.add(phone="13800138000", email="Alice@Example.COM", attributes={"name": "张三", "vip": 1})
        assert ws.privacy.encrypted
        found = ws.users.find(phone="+86 138-0013-8000")
        assert found is not None and found.id == user.id
        assert found.phone == "+8613800138000"
        assert found.identity("email") == "Alice@example.com"
        assert found.attributes == {"name": "张三", "vip": 1}
        assert ws.users.find(email="Alice@example.com") is not None
        assert ws.users.find(phone="13900139000") is None
        with pytest.raises(IdentityConflict) as info:
            ws.users.add(phone="13800138000")
        assert "138****8000" in str(info.value) and "13800138000" not in str(info.value)

    def test_link_unlink_merge_unmerge_work_encrypted(
        self, connect: Callable[..., siyu.Workspace], caps: frozenset[str]
    ) -> None:
        _need_encryption(caps)
        ws = connect(secret_key=KEY)
        a = ws.users.add(phone="13800138000")
        b = ws.users.add(email="b@example.com", attributes={"address": "上海市浦东新区"})
        ws.users.link(a.id, "email", "a@example.com")
        assert ws.users.unlink(a.id, "email", "a@example.com")
        record = ws.users.merge(keep=a.id, drop=b.id)
        kept = ws.users.get(a.id)
        assert kept.identity("email") == "b@example.com" and kept.attributes["address"] == "上海市浦东新区"
        ws.users.unmerge(record.id)
        assert found(ws.users.find(email="b@example.com")).id == b.id

    def test_wrong_or_missing_key_is_refused(
        self, connect: Callable[..., siyu.Workspace], caps: frozenset[str]
    ) -> None:
        if Capability.DURABLE not in caps:
            pytest.skip("needs a durable backend to reopen")
        _need_encryption(caps)
        ws = connect(secret_key=KEY)
        ws.users.add(phone="13800138000")
        ws.close()
        with pytest.raises(WrongKeyError, match="key id"):
            connect(secret_key=OTHER_KEY)
        with pytest.raises(WrongKeyError, match="secret_key"):
            connect()
        again = connect(secret_key=KEY)
        assert again.users.find(phone="13800138000") is not None

    def test_rotation_reencrypts_everything(self, connect: Callable[..., siyu.Workspace], caps: frozenset[str]) -> None:
        _need_encryption(caps)
        ws = connect(secret_key=KEY)
        a = ws.users.add(phone="13800138000", attributes={"name": "张三"})
        b = ws.users.add(email="b@example.com")
        ws.users.merge(keep=a.id, drop=b.id)
        old_id = ws.privacy.key_id
        counts = ws.privacy.rotate_key(OTHER_KEY)
        assert counts["identities"] == 2 and counts["users"] >= 1 and counts["merge_records"] == 1
        assert ws.privacy.key_id != old_id
        assert found(ws.users.find(phone="13800138000")).attributes == {"name": "张三"}
        assert found(ws.users.find(email="b@example.com")).id == a.id
        assert [e.action for e in ws.privacy.audit(action="privacy.key_rotated")] == ["privacy.key_rotated"]
        if Capability.DURABLE in caps:
            ws.close()
            with pytest.raises(WrongKeyError):
                connect(secret_key=KEY)
            assert connect(secret_key=OTHER_KEY).users.get(a.id).phone == "+8613800138000"

    def test_export_holds_everything_about_a_person(self, ws: siyu.Workspace) -> None:
        user = ws.users.add(phone="13800138000", attributes={"name": "张三"}, source="douyin_live")
        ws.users.consent(user.id, purpose="marketing", channel="sms", notice_version="v3")
        ws.tags.apply(user.id, "vip")
        ws.points.earn(user.id, 50, reason="signup", key="e1")
        data = ws.privacy.export(user.id)
        json.dumps(data, ensure_ascii=False)
        assert data["user"]["identities"][0]["value"] == "+8613800138000"
        assert data["user"]["attributes"] == {"name": "张三"}
        assert data["consents"][0]["notice_version"] == "v3"
        assert "vip" in json.dumps(data["tags"], ensure_ascii=False)
        assert data["points"]["balance"] == 50
        assert [e.action for e in ws.privacy.audit(user_id=user.id)][-1] == "privacy.export"

    def test_erase_removes_personal_data_and_keeps_ledgers(self, ws: siyu.Workspace) -> None:
        user = ws.users.add(phone="13800138000", email="a@example.com", attributes={"name": "张三", "vip": 1})
        other = ws.users.add(phone="13900139000")
        ws.users.merge(keep=user.id, drop=other.id)
        ws.tags.apply(user.id, "vip")
        ws.points.earn(user.id, 80, reason="order", key="e1")
        ws.points.spend(user.id, 30, reason="redeem", key="s1")
        hold = ws.privacy.hold(user.id, reason="court order 2026-17")
        with pytest.raises(LegalHold, match="release_hold"):
            ws.privacy.erase(user.id)
        assert ws.users.find(phone="13800138000") is not None
        ws.privacy.release_hold(hold.id)
        tomb = ws.privacy.erase(user.id, reason="user request via app")
        assert ws.privacy.erase(user.id) == tomb
        gone = ws.users.get(user.id)
        assert gone.status == "erased" and gone.identities == () and gone.attributes == {}
        assert ws.users.find(phone="13800138000") is None and ws.users.find(phone="13900139000") is None
        assert ws.users.get(other.id).identities == ()
        assert ws.points.balance(user.id) == 50
        assert "default/vip" in ws.tags.of(user.id)
        assert tomb.pseudonym.startswith("anon-")
        entry = ws.privacy.audit(action="privacy.erase")[0]
        assert entry.user_id == user.id and entry.details["reason"] == "user request via app"
        assert "13800138000" not in json.dumps([a.details for a in ws.privacy.audit()])

    def test_consent_withdrawal_and_holds_stop_contact_at_once(self, ws: siyu.Workspace) -> None:
        user = ws.users.add()
        assert not ws.privacy.may_contact(user.id, purpose="marketing", channel="sms")
        ws.users.consent(user.id, purpose="marketing", channel="*")
        assert ws.privacy.may_contact(user.id, purpose="marketing", channel="sms")
        ws.users.consent(user.id, purpose="marketing", channel="sms", granted=False)
        assert not ws.privacy.may_contact(user.id, purpose="marketing", channel="sms")
        assert ws.privacy.may_contact(user.id, purpose="marketing", channel="wecom")
        hold = ws.privacy.hold(user.id, reason="dispute")
        assert not ws.privacy.may_contact(user.id, purpose="marketing", channel="wecom")
        assert ws.privacy.held([user.id, user.id + 1]) == {user.id} == ws.privacy.held()
        ws.privacy.release_hold(hold.id)
        assert ws.privacy.personalization_allowed(user.id)
        ws.users.consent(user.id, purpose="personalization", granted=False)
        assert not ws.privacy.personalization_allowed(user.id)
        actions = [e.action for e in ws.privacy.audit(user_id=user.id)]
        assert actions.count("consent.recorded") == 3
        assert {"privacy.hold_placed", "privacy.hold_released"} <= set(actions)

    def test_sensitive_attributes_need_separate_consent(self, ws: siyu.Workspace) -> None:
        with pytest.raises(ConsentRequired, match="sensitive_data"):
            ws.users.add(attributes={"health": "diabetes"})
        assert ws.users.count() == 0
        user = ws.users.add(attributes={"name": "李四"})
        with pytest.raises(ConsentRequired):
            ws.users.update(user.id, attributes={"health": "diabetes"})
        ws.users.consent(user.id, purpose="sensitive_data", notice_version="v1")
        with ws.privacy.acting_as("operator:alice"):
            ws.users.update(user.id, attributes={"health": "diabetes", "name": "李小四"})
        entry = ws.privacy.audit(action="user.personal_changed")[-1]
        assert entry.actor == "operator:alice"
        assert entry.before == {"name": "李*"} and entry.after == {"health": "di***", "name": "李小***"}

    def test_marking_personal_seals_existing_values(
        self, connect: Callable[..., siyu.Workspace], caps: frozenset[str]
    ) -> None:
        _need_encryption(caps)
        ws = connect(secret_key=KEY)
        user = ws.users.add(attributes={"wechat_name": "小明", "city": "杭州"})
        ws.privacy.mark_personal("wechat_name")
        assert "wechat_name" in ws.privacy.personal_attributes()
        assert ws.users.get(user.id).attributes == {"wechat_name": "小明", "city": "杭州"}
        with ws.read() as tx:
            store: Any = tx.users
            if hasattr(store, "tx"):  # an SQL backend: look at what is really stored
                assert "小明" not in store.tx.execute("SELECT attributes FROM users").fetchone()[0]
