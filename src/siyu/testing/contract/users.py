"""Contract: users, identities, consent, merge."""

from __future__ import annotations

from typing import Any

import pytest

import siyu
from siyu.errors import IdentityConflict, InvalidPhone, NotFound, ValidationError

from .base import ContractBase, found


class UsersContract(ContractBase):
    def test_add_and_get(self, ws: siyu.Workspace) -> None:
        u = ws.users.add(phone="13800138000", source="douyin_live", attributes={"city": "上海"})
        got = ws.users.get(u.id)
        assert got.phone == "+8613800138000"
        assert got.source == "douyin_live"
        assert got.attributes == {"city": "上海"}

    def test_ids_are_dense(self, ws: siyu.Workspace) -> None:
        ids = ws.users.add_many([{"source": "s"} for _ in range(5)])
        first = ws.users.add().id
        assert [*ids, first] == list(range(ids[0], ids[0] + 6))

    @pytest.mark.parametrize(
        "spelling", ["13800138000", "+86 138-0013-8000", "0086 13800138000", "8613800138000", "138 0013 8000"]
    )
    def test_phone_spellings_find_the_same_user(self, ws: siyu.Workspace, spelling: str) -> None:
        u = ws.users.add(phone="13800138000")
        found = ws.users.find(phone=spelling)
        assert found is not None and found.id == u.id

    def test_invalid_phone(self, ws: siyu.Workspace) -> None:
        with pytest.raises(InvalidPhone):
            ws.users.add(phone="12345")
        assert ws.users.count() == 0

    def test_identity_belongs_to_one_user(self, ws: siyu.Workspace) -> None:
        a = ws.users.add(phone="13800138000")
        b = ws.users.add()
        with pytest.raises(IdentityConflict):
            ws.users.add(phone="+8613800138000")
        with pytest.raises(IdentityConflict):
            ws.users.link(b.id, "phone", "13800138000")
        ws.users.link(a.id, "phone", "13800138000")  # already theirs: no-op
        assert ws.users.count() == 2

    def test_several_wecom_ids_and_openid_per_app(self, ws: siyu.Workspace) -> None:
        u = ws.users.add(wecom_external_userid=["wmA", "wmB"])
        ws.users.link(u.id, "wechat_openid", "oX1", app="wxapp1")
        other = ws.users.add()
        ws.users.link(other.id, "wechat_openid", "oX1", app="wxapp2")  # same openid, other app
        assert found(ws.users.find(wecom_external_userid="wmB")).id == u.id
        assert found(ws.users.find(wechat_openid="oX1", app="wxapp2")).id == other.id
        with pytest.raises(ValidationError):
            ws.users.find(wechat_openid="oX1")

    def test_add_many_is_all_or_nothing(self, ws: siyu.Workspace) -> None:
        ws.users.add(phone="13900139000")
        rows: list[dict[str, Any]] = [{"phone": "13800138000"}, {"phone": "13900139000"}]
        with pytest.raises(IdentityConflict):
            ws.users.add_many(rows)
        assert ws.users.count() == 1
        assert ws.users.find(phone="13800138000") is None

    def test_update_attributes(self, ws: siyu.Workspace) -> None:
        u = ws.users.add(attributes={"city": "上海", "age": 30})
        got = ws.users.update(u.id, attributes={"age": None, "vip": True})
        assert got.attributes == {"city": "上海", "vip": True}
        with pytest.raises(ValidationError):
            ws.users.update(u.id, attributes={"bad key": 1})

    def test_consent_latest_wins(self, ws: siyu.Workspace, clock: Any) -> None:
        u = ws.users.add()
        assert not ws.users.has_consent(u.id, purpose="marketing", channel="sms")
        ws.users.consent(u.id, purpose="marketing", channel="sms", source="form", notice_version="v1")
        assert ws.users.has_consent(u.id, purpose="marketing", channel="sms")
        clock.advance(minutes=1)
        ws.users.consent(u.id, purpose="marketing", channel="sms", granted=False, source="sms_reply_TD")
        assert not ws.users.has_consent(u.id, purpose="marketing", channel="sms")
        assert [c.granted for c in ws.users.consents(u.id)] == [True, False]

    def test_merge_and_unmerge(self, ws: siyu.Workspace) -> None:
        a = ws.users.add(phone="13800138000", attributes={"city": "上海"})
        b = ws.users.add(phone="13900139000", wecom_external_userid="wmB", attributes={"city": "北京", "age": 3})
        ws.tags.apply(b.id, "interest/running")
        ws.points.earn(b.id, 40, reason="x", key="b1")
        merge = ws.users.merge(keep=a.id, drop=b.id)
        assert found(ws.users.find(phone="13900139000")).id == a.id
        assert ws.users.get(a.id).attributes == {"city": "上海", "age": 3}
        assert "interest/running" in ws.tags.of(a.id)
        assert ws.points.balance(a.id) == 40 and ws.points.balance(b.id) == 0
        assert ws.users.get(b.id).status == "merged"
        assert ws.users.count() == 1
        ws.users.unmerge(merge.id)
        assert found(ws.users.find(wecom_external_userid="wmB")).id == b.id
        assert ws.users.get(a.id).attributes == {"city": "上海"}
        assert ws.tags.of(a.id) == set() and ws.tags.of(b.id) == {"interest/running"}
        assert ws.points.balance(a.id) == 0 and ws.points.balance(b.id) == 40
        with pytest.raises(ValidationError):
            ws.users.unmerge(merge.id)

    def test_merge_validation(self, ws: siyu.Workspace) -> None:
        a = ws.users.add()
        with pytest.raises(ValidationError):
            ws.users.merge(keep=a.id, drop=a.id)
        with pytest.raises(NotFound):
            ws.users.merge(keep=a.id, drop=a.id + 100)

    def test_data_survives_reopen(self, connect: Any, caps: frozenset[str]) -> None:
        if "durable" not in caps:
            pytest.skip("backend does not declare the 'durable' capability")
        ws = connect()
        u = ws.users.add(phone="13800138000")
        ws.close()
        again = connect()
        assert again.users.find(phone="13800138000").id == u.id
