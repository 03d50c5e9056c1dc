"""Contract: tag groups, exclusive groups, history."""

from __future__ import annotations

import pytest

import siyu
from siyu.errors import NotFound, ValidationError

from .base import ContractBase


class TagsContract(ContractBase):
    def test_apply_remove_of_users(self, ws: siyu.Workspace) -> None:
        a, b = ws.users.add(), ws.users.add()
        assert ws.tags.apply(a.id, "interest/running") is True
        assert ws.tags.apply(a.id, "interest/running") is False
        ws.tags.apply(b.id, "interest/running")
        ws.tags.apply(b.id, "兴趣/瑜伽")
        assert list(ws.tags.users("interest/running")) == [a.id, b.id]
        assert ws.tags.of(b.id) == {"interest/running", "兴趣/瑜伽"}
        assert ws.tags.remove(a.id, "interest/running") is True
        assert ws.tags.remove(a.id, "interest/running") is False
        assert list(ws.tags.users("interest/running")) == [b.id]

    def test_bare_name_lives_in_default_group(self, ws: siyu.Workspace) -> None:
        u = ws.users.add()
        ws.tags.apply(u.id, "vip")
        assert ws.tags.of(u.id) == {"default/vip"}

    def test_exclusive_group_replaces(self, ws: siyu.Workspace) -> None:
        u = ws.users.add()
        ws.tags.define_group("lifecycle", exclusive=True)
        ws.tags.apply(u.id, "lifecycle/new")
        ws.tags.apply(u.id, "lifecycle/customer")
        assert ws.tags.of(u.id) == {"lifecycle/customer"}
        assert [(h.tag, h.action) for h in ws.tags.history(u.id)] == [
            ("lifecycle/new", "apply"),
            ("lifecycle/new", "remove"),
            ("lifecycle/customer", "apply"),
        ]

    def test_history_records_by(self, ws: siyu.Workspace) -> None:
        u = ws.users.add()
        ws.tags.apply(u.id, "vip", by="operator:alice")
        assert ws.tags.history(u.id)[0].by == "operator:alice"

    @pytest.mark.parametrize("bad", ["x" * 31, "g" * 16 + "/x", "/x", "g/", " vip"])
    def test_name_limits(self, ws: siyu.Workspace, bad: str) -> None:
        u = ws.users.add()
        with pytest.raises(ValidationError):
            ws.tags.apply(u.id, bad)
        assert ws.tags.of(u.id) == set()

    def test_chinese_names_at_the_limit(self, ws: siyu.Workspace) -> None:
        u = ws.users.add()
        tag = "生" * 15 + "/" + "命" * 30
        ws.tags.apply(u.id, tag)
        assert ws.tags.of(u.id) == {tag}

    def test_unknown_tag_and_user(self, ws: siyu.Workspace) -> None:
        with pytest.raises(NotFound):
            ws.tags.users("nope/never")
        with pytest.raises(NotFound):
            ws.tags.apply(999, "vip")
        assert ws.tags.names() == []

    def test_apply_many(self, ws: siyu.Workspace) -> None:
        ids = ws.users.add_many([{} for _ in range(10)])
        assert ws.tags.apply_many(ids[:6], "seg/a") == 6
        assert ws.tags.apply_many(ids, "seg/a") == 4
        assert ws.tags.remove_many(ids[:3], "seg/a") == 3
        assert list(ws.tags.users("seg/a")) == ids[3:]
