"""ws.users.upsert_many and `siyu users import --update`: match by identity, report what changed."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import siyu
from siyu.cli import cli
from siyu.errors import ConsentRequired, IdentityConflict, InvalidPhone, ValidationError
from siyu.events import IdentityLinked, UserCreated, UserUpdated


def snapshot(ws: siyu.Workspace) -> list[Any]:
    return [ws.users.get(uid) for uid in ws.users.ids()]


def test_new_rows_are_created_known_ones_updated_and_the_rest_unchanged(ws: siyu.Workspace) -> None:
    first = ws.users.upsert_many([
        {"phone": "13800138000", "source": "douyin_live", "attributes": {"city": "上海"}},
        {"email": "li@example.cn"},
    ])
    assert first.created == first.ids == [1, 2] and first.updated == first.unchanged == []
    again = ws.users.upsert_many([
        {"phone": "138-0013-8000", "source": "douyin_live", "attributes": {"city": "上海"}},
        {"email": "li@example.cn", "phone": "13900139000", "attributes": {"level": 2}},
        {"wecom_external_userid": "wmNEW"},
    ])
    assert again.ids == [1, 2, 3]
    assert (again.created, again.updated, again.unchanged) == ([3], [2], [1])
    li = ws.users.get(2)
    assert li.phone == "+8613900139000" and li.attributes == {"level": 2}


def test_the_same_rows_twice_change_nothing(ws: siyu.Workspace) -> None:
    rows = [
        {"phone": "13800138000", "source": "ads", "campaign": "双11", "state": "qr1", "attributes": {"vip": True}},
        {"wechat_openid": "oA1", "app": "wx1", "wecom_external_userid": ["wmA", "wmB"], "attributes": {"n": 1}},
    ]
    ws.users.upsert_many(rows)
    before = snapshot(ws)
    seen: list[Any] = []
    ws.subscribe(seen.append)
    result = ws.users.upsert_many(rows)
    assert result.unchanged == [1, 2] and result.created == result.updated == []
    assert snapshot(ws) == before and seen == []


def test_attribution_is_first_touch_and_none_deletes_an_attribute(ws: siyu.Workspace) -> None:
    uid = ws.users.add(phone="13800138000", attributes={"city": "上海", "tier": "gold"}).id
    result = ws.users.upsert_many([
        {"phone": "13800138000", "source": "taobao", "campaign": "618", "attributes": {"tier": None}},
    ])
    assert result.updated == [uid]
    user = ws.users.get(uid)
    assert (user.source, user.source_campaign, user.attributes) == ("taobao", "618", {"city": "上海"})
    kept = ws.users.upsert_many([{"phone": "13800138000", "source": "offline", "attributes": {"tier": None}}])
    assert kept.unchanged == [uid] and ws.users.get(uid).source == "taobao"


def test_a_value_of_another_type_is_a_change(ws: siyu.Workspace) -> None:
    uid = ws.users.add(email="a@example.cn", attributes={"level": 1}).id
    assert ws.users.upsert_many([{"email": "a@example.cn", "attributes": {"level": True}}]).updated == [uid]
    assert ws.users.get(uid).attributes == {"level": True}
    assert ws.users.upsert_many([{"email": "a@example.cn", "attributes": {"level": "1"}}]).updated == [uid]


def test_rows_of_one_call_naming_the_same_person_build_one_user(ws: siyu.Workspace) -> None:
    result = ws.users.upsert_many([
        {"phone": "13800138000", "attributes": {"a": 1}},
        {"phone": "13800138000", "email": "z@example.cn", "source": "ads"},
        {"email": "z@example.cn", "attributes": {"b": 2}},
    ])
    assert result.ids == [1, 1, 1] and result.created == [1]
    user = ws.users.get(1)
    assert user.attributes == {"a": 1, "b": 2} and user.source == "ads" and user.identity("email") == "z@example.cn"


def test_identities_of_two_people_in_one_row_are_refused_and_nothing_is_written(ws: siyu.Workspace) -> None:
    ws.users.add(phone="13800138000")
    ws.users.add(email="b@example.cn")
    before = snapshot(ws)
    with pytest.raises(IdentityConflict, match=r"^row 1: its phone 138\*\*\*\*8000 belongs to user 1 and its email "
                                                r"b\*\*\*@example.cn to user 2; .*ws.users.merge"):
        ws.users.upsert_many([{"wecom_external_userid": "wmX"}, {"phone": "13800138000", "email": "b@example.cn"}])
    with pytest.raises(IdentityConflict, match="the user row 0 creates"):
        ws.users.upsert_many([{"email": "new@example.cn"}, {"email": "new@example.cn", "phone": "13800138000"}])
    assert snapshot(ws) == before


@pytest.mark.parametrize(
    ("rows", "error", "message"),
    [
        ([{"source": "ads"}], ValidationError, r"row 0: no identity to match on"),
        ([{"email": "a@b.cn"}, {"phone": "12"}], InvalidPhone, r"^row 1: phone"),
        ([{"email": "a@b.cn"}, 5], ValidationError, r"row 1: expected a dict"),
        ([{"email": "a@b.cn", "nickname": "x"}], ValidationError, r"row 0: unknown field"),
        ([{"email": "a@b.cn", "attributes": {"id_number": "110"}}], ConsentRequired, r"row 0: id_number is sensitive"),
    ],
)
def test_bad_rows_name_their_row_and_write_nothing(
    ws: siyu.Workspace, rows: list[Any], error: type[Exception], message: str
) -> None:
    ws.users.add(email="a@b.cn", attributes={"x": 1})
    before = snapshot(ws)
    with pytest.raises(error, match=message):
        ws.users.upsert_many(rows)
    assert snapshot(ws) == before


def test_events_say_what_happened(ws: siyu.Workspace) -> None:
    ws.users.add(phone="13800138000")
    seen: list[Any] = []
    ws.subscribe(seen.append)
    ws.users.upsert_many([{"phone": "13800138000", "email": "a@example.cn", "attributes": {"c": 1}},
                          {"email": "new@example.cn", "source": "ads"}])
    kinds = sorted(type(e).__name__ for e in seen)
    assert kinds == ["IdentityLinked", "UserCreated", "UserUpdated"]
    (updated,) = [e for e in seen if isinstance(e, UserUpdated)]
    assert updated.user_id == 1 and updated.changed == ("attributes",)
    assert [e.kind for e in seen if isinstance(e, IdentityLinked)] == ["email"]
    assert [e.source for e in seen if isinstance(e, UserCreated)] == ["ads"]


def test_created_at_applies_to_new_users_only(ws: siyu.Workspace) -> None:
    old = datetime(2025, 1, 1, tzinfo=UTC)
    uid = ws.users.add(phone="13800138000").id
    created_at = ws.users.get(uid).created_at
    result = ws.users.upsert_many([{"phone": "13800138000", "created_at": old}, {"email": "o@example.cn",
                                                                                  "created_at": old}])
    assert result.unchanged == [uid]
    assert ws.users.get(uid).created_at == created_at and ws.users.get(result.created[0]).created_at == old


phones = st.sampled_from(["13800138000", "13900139000", "13700137000", None])
emails = st.sampled_from(["a@example.cn", "b@example.cn", None])
cities = st.sampled_from(["上海", "北京", None])
row_strategy = st.fixed_dictionaries({"phone": phones, "email": emails, "city": cities}).filter(
    lambda r: r["phone"] or r["email"]
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.lists(row_strategy, min_size=1, max_size=4), min_size=1, max_size=4))
def test_every_user_is_reported_once_and_a_repeat_changes_nothing(batches: list[list[dict[str, Any]]]) -> None:
    with siyu.connect("memory://") as ws:
        for batch in batches:
            rows = [{k: v for k, v in (("phone", r["phone"]), ("email", r["email"])) if v}
                    | ({"attributes": {"city": r["city"]}} if r["city"] else {}) for r in batch]
            try:
                result = ws.users.upsert_many(rows)
            except IdentityConflict:
                continue
            reported = result.created + result.updated + result.unchanged
            assert sorted(reported) == sorted(set(result.ids))
            assert len(set(reported)) == len(reported)
            before = snapshot(ws)
            repeat = ws.users.upsert_many(rows)
            assert repeat.ids == result.ids and repeat.created == []
            assert repeat.updated == [] or len(set(result.ids)) < len(result.ids)  # a row undoing an earlier one
            if len(set(result.ids)) == len(result.ids):
                assert snapshot(ws) == before


# -- the command -------------------------------------------------------------------------------


def test_import_update_reports_created_updated_unchanged(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'shop.db'}"
    path = tmp_path / "customers.csv"
    path.write_text("phone,source,tags,attr.city\n13800138000,douyin,lifecycle/新客,上海\n"
                    "13900139000,ads,,杭州\n", encoding="utf-8")
    runner = CliRunner()
    assert runner.invoke(cli, ["--db", db, "users", "import", str(path)]).exit_code == 0

    again = runner.invoke(cli, ["--db", db, "users", "import", str(path)])
    assert again.exit_code == 1
    assert "already belongs to user 1" in again.stderr
    assert "hint: to update customers who already exist (importing a file again), pass --update" in again.stderr

    same = runner.invoke(cli, ["--db", db, "users", "import", str(path), "--update"])
    assert same.exit_code == 0, same.output
    assert "customers.csv: created 0, updated 0, unchanged 2 user(s); applied 0 tag(s)" in same.stdout

    path.write_text("phone,source,tags,attr.city\n13800138000,other,vip/gold,上海\n13900139000,ads,,杭州\n"
                    "13700137000,store,,北京\n010-1234-5678,store,,北京\n", encoding="utf-8")
    changed = runner.invoke(cli, ["--db", db, "users", "import", str(path), "--update"])
    assert changed.exit_code == 0, changed.output
    assert "created 2, updated 1, unchanged 1 user(s); applied 1 tag(s)" in changed.stdout
    assert re.search(r"note: 1 phone\(s\) are landlines .* \(line 5\)", changed.stderr)
    with siyu.connect(db) as ws:
        user = ws.users.find(phone="13800138000")
        assert user is not None and user.source == "douyin" and ws.tags.of(user.id) == {"lifecycle/新客", "vip/gold"}
        assert ws.users.count() == 4


def test_import_update_reports_a_row_naming_two_customers(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'shop.db'}"
    with siyu.connect(db) as ws:
        ws.users.add(phone="13800138000")
        ws.users.add(email="b@example.cn")
    path = tmp_path / "c.csv"
    path.write_text("phone,email\n13900139000,\n13800138000,b@example.cn\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["--db", db, "users", "import", str(path), "--update"])
    assert result.exit_code == 1
    assert re.search(r"c\.csv:3: its phone 138\*\*\*\*8000 belongs to user 1 and its email", result.stderr)
    skipped = CliRunner().invoke(cli, ["--db", db, "users", "import", str(path), "--update", "--skip-invalid"])
    assert skipped.exit_code == 0 and "created 1, updated 0, unchanged 0" in skipped.stdout
