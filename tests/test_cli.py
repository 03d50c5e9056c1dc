"""The ``siyu`` command, driven through click's CliRunner."""

from __future__ import annotations

import re
import sys
import types
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import siyu
from siyu.cli import COMMAND_MODULES, cli
from siyu.demo_shop import DEMO_MARK

Run = Callable[..., Result]


@pytest.fixture
def db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'shop.db'}"


@pytest.fixture
def run(db: str) -> Run:
    def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
        return CliRunner().invoke(cli, ["--db", db, *args], env=env, catch_exceptions=False)

    return invoke


def write_csv(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_text(text.lstrip("\n"), encoding=encoding)
    return path


# -- the main group ---------------------------------------------------------------------------


def test_help_lists_every_command_group() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    for name in ("demo", "plugins", "users"):
        assert re.search(rf"^\s+{name}\s", result.output, re.M), name
    assert len(COMMAND_MODULES) == len(cli.commands)


def test_usage_errors_exit_2(run: Run) -> None:
    assert run("no-such-command").exit_code == 2
    assert run("users", "show").exit_code == 2
    assert run("demo", "--users", "0").exit_code == 2


def test_siyu_error_is_one_red_line_and_exit_1(run: Run) -> None:
    result = run("users", "show", "999")
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert result.stderr.strip().startswith("error: no user with id 999")
    assert len(result.stderr.strip().splitlines()) == 1


def test_unknown_backend_is_a_clean_error() -> None:
    result = CliRunner().invoke(cli, ["--db", "sqlit:///x.db", "plugins"])
    assert result.exit_code == 1
    assert "sqlite" in result.stderr and "Traceback" not in result.output


def test_db_comes_from_siyu_db_env(tmp_path: Path) -> None:
    target = tmp_path / "env.db"
    with siyu.connect(f"sqlite:///{target}") as ws:
        ws.users.add(phone="13800138000")
    result = CliRunner().invoke(cli, ["users", "show", "1"], env={"SIYU_DB": f"sqlite:///{target}"})
    assert result.exit_code == 0, result.output
    assert "138****8000" in result.output


# -- plugins --------------------------------------------------------------------------------------


def test_plugins_lists_builtin_and_extra_plugins(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    plugin = types.ModuleType("siyu_cli_test_plugin")

    @siyu.hookimpl
    def siyu_on_event(event: object, workspace: object) -> None:
        pass

    plugin.siyu_on_event = siyu_on_event  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "siyu_cli_test_plugin", plugin)
    result = run("--help")  # sanity: the group itself works
    assert result.exit_code == 0
    result = CliRunner().invoke(cli, ["--db", "memory://", "--plugin", "siyu_cli_test_plugin", "plugins"])
    assert result.exit_code == 0, result.output
    assert "siyu.storage.builtin" in result.output
    assert "siyu_register_storage_backends" in result.output
    assert "siyu_cli_test_plugin" in result.output and "siyu_on_event" in result.output
    assert siyu.__version__ in result.output


def test_plugins_names_are_readable_and_schemes_and_channels_are_listed() -> None:
    result = CliRunner().invoke(cli, ["--db", "memory://", "plugins"])
    assert result.exit_code == 0, result.output
    names = re.findall(r"^│ (\S+)", result.output, re.M)
    assert "siyu.storage.builtin" in names and "siyu.channels.builtin" in names
    assert not [n for n in names if re.search(r"\d{6,}", n)], names  # no object ids
    for scheme in ("memory", "sqlite", "postgresql"):
        assert re.search(rf"^│ {scheme}\s", result.output, re.M), scheme
    assert re.search(r"^│ postgresql\s+│ postgres\s", result.output, re.M)
    for channel in ("console", "outbox", "email", "webhook", "wecom", "sms_aliyun", "sms_tencent", "miniprogram"):
        assert re.search(rf"^│ {channel}\s", result.output, re.M), channel


def test_plugin_objects_get_names_not_ids() -> None:
    class Greeter:
        @siyu.hookimpl
        def siyu_on_event(self, event: object) -> None:
            pass

    namespace = types.SimpleNamespace(siyu_on_event=Greeter.siyu_on_event.__get__(Greeter()))
    with siyu.connect("memory://", plugins=[Greeter(), Greeter(), namespace]) as ws:
        ws.subscribe(print)
        names = [row["name"] for row in ws.plugins()]
    local = f"{__name__}.test_plugin_objects_get_names_not_ids.Greeter"
    assert local in names and f"{local}#2" in names
    assert __name__ in names  # a namespace of hook functions is named after their module
    assert "subscriber:print" in names
    assert not [n for n in names if re.fullmatch(r"\d+", n)]


# -- users import -------------------------------------------------------------------------------

GOOD = """
phone,email,wecom_external_userid,source,campaign,tags,attr.city,attr.level
13800138000,,wmAAA;wmBBB,douyin_live,live_1111,lifecycle/新客;interest/跑步,上海,gold
+86 139-0013-9000,li@Example.COM,,offline_store,,interest/跑步,杭州,
,wang@example.com,,sms,,,,
"""


def test_import_good_file(run: Run, db: str, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "people.csv", "\ufeff" + GOOD.lstrip())  # an Excel BOM is fine
    result = run("users", "import", str(path))
    assert result.exit_code == 0, result.output
    assert "imported 3 user(s)" in result.output
    with siyu.connect(db) as ws:
        first = ws.users.find(phone="138 0013 8000")
        assert first is not None
        assert first.source == "douyin_live" and first.source_campaign == "live_1111"
        assert first.attributes == {"city": "上海", "level": "gold"}
        assert {i.value for i in first.identities if i.kind == "wecom_external_userid"} == {"wmAAA", "wmBBB"}
        assert ws.tags.of(first.id) == {"lifecycle/新客", "interest/跑步"}
        assert {a.by for a in ws.tags.history(first.id)} == {"import:people.csv"}
        second = ws.users.find(email="li@example.com")
        assert second is not None and second.attributes == {"city": "杭州"}
        assert sorted(ws.tags.users("interest/跑步")) == sorted([first.id, second.id])
        assert ws.users.count() == 3


BAD = """
phone,source,tags
13800138000,douyin_live,interest/跑步
12345,ads,
13900139000,sms,interest/this-tag-name-is-far-too-long-for-wecom
13800138000,sms,
"""


def test_bad_rows_abort_the_whole_file(run: Run, db: str, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "bad.csv", BAD)
    result = run("users", "import", str(path))
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert re.search(r"bad\.csv:3: .*phone", result.stderr)
    assert re.search(r"bad\.csv:4: .*tag", result.stderr)
    assert re.search(r"bad\.csv:5: .*also appears in line 2\b", result.stderr)
    assert "bad.csv:2" not in result.stderr
    assert "3 bad row(s), nothing imported" in result.stderr
    with siyu.connect(db) as ws:
        assert ws.users.count() == 0
        assert ws.tags.names() == []


def test_skip_invalid_imports_the_good_rows(run: Run, db: str, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "bad.csv", BAD)
    result = run("users", "import", str(path), "--skip-invalid")
    assert result.exit_code == 0, result.output
    assert "imported 1 user(s)" in result.output and "skipped 3 bad row(s)" in result.output
    assert re.search(r"bad\.csv:3: ", result.stderr)
    with siyu.connect(db) as ws:
        assert ws.users.count() == 1
        user = ws.users.find(phone="13800138000")
        assert user is not None and ws.tags.of(user.id) == {"interest/跑步"}


def test_line_numbers_are_right_across_batches_and_existing_users(run: Run, db: str, tmp_path: Path) -> None:
    with siyu.connect(db) as ws:
        ws.users.add(phone="13700137000")
    lines = ["phone,source"] + [f"1380013{n:04d},ads" for n in range(30)]
    lines[17] = "13700137000,ads"  # line 18 of the file: the phone belongs to user 1 already
    lines[25] = '"multi\nline",ads'  # a quoted newline: reported at the line the record ends on
    path = write_csv(tmp_path / "many.csv", "\n".join(lines) + "\n")
    result = run("users", "import", str(path), "--batch-size", "7")
    assert result.exit_code == 1
    assert re.search(r"many\.csv:18: .*already belongs to user 1", result.stderr)
    assert re.search(r"many\.csv:27: .*phone", result.stderr)
    result = run("users", "import", str(path), "--batch-size", "7", "--skip-invalid")
    assert result.exit_code == 0
    with siyu.connect(db) as ws:
        assert ws.users.count() == 1 + 28


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("phone,nickname\n13800138000,x\n", "unknown column(s) 'nickname'"),
        ("", "is empty"),
        ("phone,phone\n13800138000,13800138000\n", "more than once"),
    ],
)
def test_bad_header_is_refused(run: Run, tmp_path: Path, text: str, message: str) -> None:
    path = write_csv(tmp_path / "h.csv", text)
    result = run("users", "import", str(path))
    assert result.exit_code == 1
    assert message in result.stderr


def test_row_without_identity_and_extra_cells(run: Run, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "x.csv", "phone,source\n,ads\n13800138000,ads,extra\n")
    result = run("users", "import", str(path))
    assert result.exit_code == 1
    assert re.search(r"x\.csv:2: no identity", result.stderr)
    assert re.search(r"x\.csv:3: more cells than columns", result.stderr)


def test_an_unterminated_quote_is_an_error_naming_its_line(run: Run, db: str, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "q.csv", 'phone,source,attr.city\n13800138001,douyin,上海\n13900139001,ads,"北京\n'
                     "13700137001,ads,杭州\n")
    for flags in ((), ("--skip-invalid",)):
        result = run("users", "import", str(path), *flags)
        assert result.exit_code == 1, result.output
        assert "q.csv, line 3: a quoted value opened on this line is never closed" in result.stderr
    with siyu.connect(db) as ws:
        assert ws.users.count() == 0


def test_a_stray_quote_is_an_error_and_quoted_newlines_are_fine(run: Run, db: str, tmp_path: Path) -> None:
    stray = write_csv(tmp_path / "s.csv", 'phone,source\n13800138001,"dou"yin\n')
    result = run("users", "import", str(stray))
    assert result.exit_code == 1 and "s.csv, line 2:" in result.stderr and "check the quoting" in result.stderr
    multi = write_csv(tmp_path / "m.csv", 'phone,attr.note\n13800138002,"two\nlines"\n1390013900x,ok\n')
    result = run("users", "import", str(multi))
    assert result.exit_code == 1 and re.search(r"m\.csv:4: phone '139\*\*\*3900x'", result.stderr)


def test_wrong_encoding_names_the_fix(run: Run, db: str, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "gbk.csv", "phone,attr.city\n13800138000,上海\n", encoding="gb18030")
    result = run("users", "import", str(path))
    assert result.exit_code == 1 and "--encoding gb18030" in result.stderr
    assert run("users", "import", str(path), "--encoding", "gb18030").exit_code == 0
    with siyu.connect(db) as ws:
        user = ws.users.find(phone="13800138000")
        assert user is not None and user.attributes == {"city": "上海"}


def test_large_import_with_progress(run: Run, db: str, tmp_path: Path) -> None:
    rows = ["phone,tags"] + [f"1{n + 3800000000},lifecycle/新客" for n in range(2500)]
    path = write_csv(tmp_path / "big.csv", "\n".join(rows) + "\n")
    result = run("users", "import", str(path))
    assert result.exit_code == 0, result.output
    with siyu.connect(db) as ws:
        assert ws.users.count() == 2500
        assert len(ws.tags.users("lifecycle/新客")) == 2500


# -- users show ---------------------------------------------------------------------------------


def test_show_masks_identities_unless_revealed(run: Run, db: str) -> None:
    with siyu.connect(db) as ws:
        user = ws.users.add(
            phone="13800138000",
            email="zhang@example.com",
            wecom_external_userid="wmABCDEFGH",
            source="douyin_live",
            attributes={"city": "上海"},
        )
        ws.tags.apply(user.id, "lifecycle/新客")
        ws.users.consent(user.id, purpose="marketing", channel="sms", source="live")
        ws.points.earn(user.id, 120, reason="sign_in", key="k1", expires_at=datetime(2099, 1, 1, tzinfo=UTC))
        ws.points.spend(user.id, 20, reason="redeem", key="k2")
    result = run("users", "show", str(user.id))
    assert result.exit_code == 0, result.output
    out = result.output
    assert "138****8000" in out and "13800138000" not in out
    assert "zhang@example.com" not in out and "z***@example.com" in out
    assert "wmABCDEFGH" not in out
    assert "lifecycle/新客" in out and "douyin_live" in out and "上海" in out
    assert "100 available" in out
    assert "sign_in" in out and "redeem" in out and "-20" in out
    assert "marketing" in out

    lines = out.splitlines()
    assert any(line.startswith("tags: ") for line in lines)
    assert [line for line in lines if line.startswith("points: ")] == ["points: 100 available"]

    bare = run("users", "show", str(ws_add_bare(db)))
    assert bare.exit_code == 0
    assert {"tags: (none)", "consents: (none recorded)", "points: 0 available"} <= set(bare.output.splitlines())

    revealed = run("users", "show", "138-0013-8000", "--reveal")
    assert revealed.exit_code == 0
    assert "+8613800138000" in revealed.output and "wmABCDEFGH" in revealed.output


def ws_add_bare(db: str) -> int:
    with siyu.connect(db) as ws:
        return ws.users.add(email="bare@example.com").id


def test_show_unknown_phone(run: Run) -> None:
    result = run("users", "show", "13800138000")
    assert result.exit_code == 1
    assert "no user with phone 138****8000" in result.stderr


def test_show_invalid_phone(run: Run) -> None:
    result = run("users", "show", "call-me-maybe")
    assert result.exit_code == 1
    assert "Traceback" not in result.output


# -- demo -----------------------------------------------------------------------------------------


def _summary(output: str) -> str:
    return re.sub(r"built in [\d.]+s", "", output)


def test_demo_builds_a_shop_and_rebuilds_it(run: Run, db: str) -> None:
    result = run("demo", "--users", "300")
    assert result.exit_code == 0, result.output
    out = result.output
    assert "users per source (300 users)" in out
    for source in ("douyin_live", "taobao_parcel_card", "offline_store", "sms", "wecom_qr", "ads"):
        assert source in out
    for heading in ("tags per group", "lifecycle", "interest", "industry", "points ledger", "balance distribution"):
        assert heading in out
    with siyu.connect(db) as ws:
        assert ws.users.count() == 300
        with ws.read() as tx:
            assert tx.meta.get(DEMO_MARK) == "1"
        groups = {g.name: g for g in ws.tags.groups()}
        assert groups["lifecycle"].exclusive and not groups["interest"].exclusive
        lifecycle = sum(len(ws.tags.users(t)) for t in ws.tags.names("lifecycle"))
        assert lifecycle == 300  # exclusive: every customer has exactly one stage
        kinds: set[str] = set()
        dates = set()
        for uid in ws.users.ids():
            user = ws.users.get(uid)
            assert user.identities
            for entry in ws.points.history(uid):
                kinds.add(entry.kind)
                dates.add(entry.at.date())
            assert ws.points.balance(uid) >= 0
        assert {"earn", "spend", "expire"} <= kinds
        assert (max(dates) - min(dates)).days > 120  # history spans months
        phones = [u.phone for u in map(ws.users.get, ws.users.ids()) if u.phone]
        assert phones and all(re.fullmatch(r"\+861[3-9]\d{9}", p) for p in phones)

    again = run("demo", "--users", "300")
    assert again.exit_code == 0, again.output
    assert _summary(again.output) == _summary(out)  # same seed, same shop
    with siyu.connect(db) as ws:
        assert ws.users.count() == 300

    other = run("demo", "--users", "300", "--seed", "7")
    assert other.exit_code == 0
    assert _summary(other.output) != _summary(out)


def test_demo_refuses_a_database_with_real_data(run: Run, db: str) -> None:
    with siyu.connect(db) as ws:
        ws.users.add(phone="13800138000", source="real_customer")
    result = run("demo", "--users", "50")
    assert result.exit_code == 1
    assert "not a siyu demo" in result.stderr and "--force" in result.stderr
    with siyu.connect(db) as ws:
        assert ws.users.count() == 1
        assert ws.users.get(1).source == "real_customer"

    forced = run("demo", "--users", "50", "--force")
    assert forced.exit_code == 0, forced.output
    with siyu.connect(db) as ws:
        assert ws.users.count() == 50
        assert ws.users.find(phone="13800138000") is None or ws.users.get(1).source != "real_customer"


def test_demo_on_an_empty_database_and_memory(run: Run, db: str) -> None:
    with siyu.connect(db):
        pass  # an empty, migrated database is not "data"
    assert run("demo", "--users", "30", "--weeks", "4").exit_code == 0
    result = CliRunner().invoke(cli, ["--db", "memory://", "demo", "--users", "20", "--weeks", "3"])
    assert result.exit_code == 0, result.output
    assert "users per source (20 users)" in result.output


def test_demo_refuses_other_backends() -> None:
    result = CliRunner().invoke(cli, ["--db", "postgresql://localhost/shop", "demo"])
    assert result.exit_code == 1
    assert "sqlite" in result.stderr


def test_demo_on_a_file_that_is_not_a_database(run: Run, tmp_path: Path) -> None:
    (tmp_path / "shop.db").write_text("not a database")
    result = run("demo", "--users", "20", "--weeks", "2")
    assert result.exit_code == 1 and "not a database" in result.stderr
    assert (tmp_path / "shop.db").read_text() == "not a database"
    assert run("demo", "--users", "20", "--weeks", "2", "--force").exit_code == 0
