"""Contract: customer groups, member deltas by version, join/quit log, merges."""

from __future__ import annotations

from datetime import timedelta

import siyu
from siyu.community import GroupStatus, MemberType
from siyu.testing import FakeClock

from .base import ContractBase


def _detail(version: str, *members: str) -> dict[str, object]:
    return {"chat_id": "c1", "name": "会员群", "owner": "o1", "member_version": version, "create_time": 1_795_000_000,
            "admin_list": [{"userid": "o1"}],
            "member_list": [{"userid": "o1", "type": 1, "join_time": 1_795_000_000, "join_scene": 1}]
            + [{"userid": m, "type": 2, "join_time": 1_795_000_100, "join_scene": 3, "state": "jw1"} for m in members]}


class CommunityContract(ContractBase):
    def test_groups_members_deltas_and_log(self, ws: siyu.Workspace, clock: FakeClock) -> None:
        uid = ws.users.add(wecom_external_userid="wmA").id
        start = clock()
        ws.groups.save_detail(_detail("v1", "wmA", "wmB"))
        group = ws.groups.get("c1")
        assert (group.owner, group.admins, group.member_version) == ("o1", ("o1",), "v1")
        assert [(m.member_id, m.type, m.user_id) for m in ws.groups.members("c1")] == [
            ("o1", MemberType.STAFF, None), ("wmA", MemberType.CUSTOMER, uid), ("wmB", MemberType.CUSTOMER, None)]
        assert [g.chat_id for g in ws.groups.of(uid)] == ["c1"]
        clock.advance(minutes=1)
        assert ws.groups.apply_change("c1", "update", detail="del_member", members=["wmA"], quit_scene=0,
                                      last_version="v1", current_version="v2") is False
        assert ws.groups.of(uid) == []
        assert ws.groups.apply_change("c1", "update", detail="add_member", members=["wmC"], last_version="v1",
                                      current_version="v3") is True  # stale: re-read
        ws.groups.save_detail(_detail("v3", "wmB", "wmC"))
        assert ws.groups.sizes() == {"c1": 3}
        (stats,) = ws.groups.stats(start, clock() + timedelta(seconds=1))
        assert (stats.size, stats.joins, stats.quits) == (3, 4, 1)  # o1, wmA, wmB, wmC joined; wmA left
        ws.groups.apply_change("c1", "dismiss")
        assert ws.groups.get("c1").status is GroupStatus.DISMISSED
        assert ws.groups.find() == []

    def test_merge_moves_memberships(self, ws: siyu.Workspace) -> None:
        keep = ws.users.add().id
        drop = ws.users.add(wecom_external_userid="wmA").id
        ws.groups.save_detail(_detail("v1", "wmA"))
        record = ws.users.merge(keep=keep, drop=drop)
        assert [g.chat_id for g in ws.groups.of(keep)] == ["c1"]
        ws.users.unmerge(record.id)
        assert [g.chat_id for g in ws.groups.of(drop)] == ["c1"]
        assert ws.groups.of(keep) == []
