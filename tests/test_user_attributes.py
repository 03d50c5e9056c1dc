"""User attributes are profile fields with stated limits, refused clearly beyond them."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

import siyu
from siyu.cli import cli
from siyu.errors import ValidationError
from siyu.models.users import ATTRIBUTE_LIMITS


def test_the_limits_are_stated_as_data() -> None:
    assert ATTRIBUTE_LIMITS.max_text_length == 1024
    assert ATTRIBUTE_LIMITS.max_count == 100
    assert ATTRIBUTE_LIMITS.max_name_length == 64


def test_a_huge_attribute_value_is_refused_and_nothing_is_written(ws: siyu.Workspace) -> None:
    limit = ATTRIBUTE_LIMITS.max_text_length
    ok = ws.users.add(attributes={"note": "字" * limit})
    assert len(ok.attributes["note"]) == limit
    with pytest.raises(ValidationError, match=r"attribute 'note' is 10,485,760 characters long; the limit is 1,024"):
        ws.users.add(attributes={"note": "x" * 10 * 1024 * 1024})
    with pytest.raises(ValidationError, match=r"row 1: attribute 'note' is 1,025 characters"):
        ws.users.add_many([{"email": "a@example.cn"}, {"attributes": {"note": "x" * (limit + 1)}}])
    with pytest.raises(ValidationError, match="the limit is 1,024"):
        ws.users.update(ok.id, attributes={"note": "x" * (limit + 1)})
    assert ws.users.count() == 1
    assert ws.users.get(ok.id).attributes == {"note": "字" * limit}


def test_too_many_attributes_are_refused_also_when_an_update_adds_them(ws: siyu.Workspace) -> None:
    most = {f"a{i}": i for i in range(ATTRIBUTE_LIMITS.max_count)}
    with pytest.raises(ValidationError, match="101 attributes given; a user holds at most 100"):
        ws.users.add(attributes={**most, "one_more": 1})
    user = ws.users.add(attributes=most)
    with pytest.raises(ValidationError, match=f"user {user.id} would hold 101 attributes; the limit is 100"):
        ws.users.update(user.id, attributes={"one_more": 1})
    # Replacing one and deleting one stays within the limit.
    updated = ws.users.update(user.id, attributes={"a0": None, "one_more": 1})
    assert len(updated.attributes) == ATTRIBUTE_LIMITS.max_count


def test_the_import_reports_the_long_value_as_a_bad_row(tmp_path: Path) -> None:
    path = tmp_path / "long.csv"
    path.write_text(f"phone,attr.note\n13800138000,short\n13900139000,{'x' * 5000}\n", encoding="utf-8")
    db = f"sqlite:///{tmp_path / 'shop.db'}"
    result = CliRunner().invoke(cli, ["--db", db, "users", "import", str(path)])
    assert result.exit_code == 1
    assert "long.csv:3: attribute 'note' is 5,000 characters long; the limit is 1,024" in result.stderr
