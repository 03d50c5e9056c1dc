"""Contract: staff members, per-(staff, customer) relations, owners, transfers, merges."""

from __future__ import annotations

from datetime import timedelta

import pytest

import siyu
from siyu.errors import NotFound, ValidationError
from siyu.staff import Follow, OwnerRule, RelationStatus, StaffStatus, TransferStatus
from siyu.testing import FakeClock

from .base import ContractBase


class StaffContract(ContractBase):
    def test_relations_are_per_pair_and_a_customer_is_lost_only_with_the_last(self, ws: siyu.Workspace) -> None:
        u = ws.users.add().id
        ws.staff.add("a", name="导购A", store="徐汇店")
        ws.staff.follow(u, "a", add_way=1, state="store-qr", remark="老客", tags=["高意向"])
        ws.staff.follow(u, "b", add_way=16, state="link-7")
        a, b = ws.staff.relations(u)
        assert (a.staff, a.remark, a.tags, a.add_way, a.state) == ("a", "老客", ("高意向",), 1, "store-qr")
        assert (b.staff, b.remark, b.add_way, b.state) == ("b", "", 16, "link-7")
        assert ws.staff.get("b").name == "b"  # an unknown member is added on first sight
        ws.staff.unfollow(u, "b", by="customer")
        assert ws.lifecycle.stage(u) != "lost"
        assert "lifecycle/lost" not in ws.tags.of(u)
        assert [r.staff for r in ws.staff.relations(u, active=True)] == ["a"]
        ws.staff.unfollow(u, "a", by="staff")
        assert ws.lifecycle.stage(u) == "lost"
        assert ws.staff.relations(u)[0].status is RelationStatus.DELETED_BY_STAFF

    def test_a_transfer_is_not_churn(self, ws: siyu.Workspace) -> None:
        u = ws.users.add().id
        ws.staff.follow(u, "a")
        ws.staff.unfollow(u, "a", by="transfer")
        assert ws.lifecycle.stage(u) != "lost"
        assert ws.staff.relations(u)[0].status is RelationStatus.TRANSFERRED

    def test_late_callbacks_never_undo_newer_changes(self, ws: siyu.Workspace, clock: FakeClock) -> None:
        u = ws.users.add().id
        t0 = clock()
        ws.staff.unfollow(u, "a", by="customer", at=t0 + timedelta(seconds=5))
        ws.staff.follow(u, "a", at=t0)  # the add arrived after the deletion
        assert ws.staff.relations(u, active=True) == []
        ws.staff.follow(u, "a", at=t0 + timedelta(seconds=9))
        assert [r.staff for r in ws.staff.relations(u, active=True)] == ["a"]

    def test_owner_rules_and_history(self, ws: siyu.Workspace, clock: FakeClock) -> None:
        u, v = ws.users.add().id, ws.users.add().id
        assert ws.staff.owner_rule is OwnerRule.FIRST_ADDER
        ws.staff.follow(u, "a")
        clock.advance(seconds=1)
        ws.staff.follow(u, "b")
        assert ws.staff.owner(u) == "a"
        ws.staff.set_owner_rule("last_adder")
        ws.staff.follow(v, "a")
        clock.advance(seconds=1)
        ws.staff.follow(v, "b")
        assert ws.staff.owner(v) == "b"
        before = clock()
        clock.advance(seconds=1)
        ws.staff.unfollow(u, "a", by="customer")
        assert ws.staff.owner(u) == "b"  # the remaining relation inherits
        assert ws.staff.owner_at(u, before) == "a"
        assert [c.staff for c in ws.staff.owner_history(u)] == ["a", "b"]
        assert ws.staff.owned("b") == [u, v]
        with pytest.raises(NotFound):
            ws.staff.set_owner(u, "nobody")
        with pytest.raises(ValidationError):
            ws.staff.set_owner_rule("oldest")

    def test_follow_many_is_follow_one_by_one_in_one_write(self, ws: siyu.Workspace, clock: FakeClock) -> None:
        ws.staff.set_owner_rule("last_adder")
        u, v, w = (ws.users.add().id for _ in range(3))
        t0 = clock()
        late = t0 - timedelta(seconds=5)
        ws.staff.unfollow(w, "a", by="customer", at=t0)
        follows = [Follow(user_id=u, staff="a", remark="老客", tags=["高意向"]), Follow(user_id=v, staff="a"),
                   Follow(user_id=u, staff="b", state="qr", at=t0 + timedelta(seconds=1)),
                   Follow(user_id=u, staff="a", remark="复购"), Follow(user_id=w, staff="a", at=late)]
        out = ws.staff.follow_many(follows)
        assert [(r.user_id, r.staff, r.status, r.remark) for r in out] == [
            (u, "a", RelationStatus.ACTIVE, "老客"), (v, "a", RelationStatus.ACTIVE, ""),
            (u, "b", RelationStatus.ACTIVE, ""), (u, "a", RelationStatus.ACTIVE, "复购"),
            (w, "a", RelationStatus.DELETED_BY_CUSTOMER, "")]  # the late add never revives the deletion
        assert [(r.staff, r.remark, r.tags) for r in ws.staff.relations(u)] == [
            ("a", "复购", ("高意向",)), ("b", "", ())]
        assert (ws.staff.owner(u), ws.staff.owner(v), ws.staff.owner(w)) == ("b", "a", None)
        assert [c.staff for c in ws.staff.owner_history(u)] == ["a", "b"]
        assert ws.staff.get("b").name == "b"
        before = ws.staff.relations(v)
        with pytest.raises(NotFound):  # all or nothing: one unknown customer refuses the batch
            ws.staff.follow_many([Follow(user_id=v, staff="c"), Follow(user_id=10**9, staff="c")])
        with pytest.raises(ValidationError):
            ws.staff.follow_many([Follow(user_id=v, staff="c", remark="x" * 21)])
        assert ws.staff.relations(v) == before
        assert ws.staff.members(status="active")[-1].userid == "b"  # "c" was never added

    def test_local_transfer_moves_relation_and_owner(self, ws: siyu.Workspace) -> None:
        u, w = ws.users.add().id, ws.users.add().id
        ws.staff.add("a")
        ws.staff.add("c", store="静安店")
        ws.staff.follow(u, "a", remark="VIP", state="qr1", add_way=1)
        results = ws.staff.transfer([u, w], from_="a", to="c")
        assert [(t.user_id, t.status) for t in results] == [(u, TransferStatus.DONE), (w, TransferStatus.NOT_FOLLOWED)]
        old, new = ws.staff.relations(u)
        assert (old.staff, old.status) == ("a", RelationStatus.TRANSFERRED)
        assert (new.staff, new.status, new.remark, new.state) == ("c", RelationStatus.ACTIVE, "VIP", "qr1")
        assert ws.staff.owner(u) == "c"
        assert ws.staff.transfers.of(u)[0].status is TransferStatus.DONE
        with pytest.raises(ValidationError):
            ws.staff.transfer([u], from_="c", to="c")
        ws.staff.resign("a")
        assert ws.staff.get("a").status is StaffStatus.RESIGNED
        with pytest.raises(ValidationError):
            ws.staff.transfer([u], from_="c", to="a")

    def test_merge_moves_relations_and_unmerge_brings_them_back(self, ws: siyu.Workspace) -> None:
        keep, drop = ws.users.add().id, ws.users.add().id
        ws.staff.follow(keep, "a")
        ws.staff.follow(drop, "a")
        ws.staff.follow(drop, "b")
        record = ws.users.merge(keep=keep, drop=drop)
        assert [r.staff for r in ws.staff.relations(keep)] == ["a", "b"]
        ws.users.unmerge(record.id)
        assert [r.staff for r in ws.staff.relations(drop)] == ["a", "b"]
        assert [r.staff for r in ws.staff.relations(keep)] == ["a"]
