"""Rows map SELECT columns to record fields by name."""

from __future__ import annotations

from datetime import UTC, datetime

import attrs
import pytest

from siyu.storage.sql._rows import JSON, TIME, Rows


@attrs.frozen
class Record:
    id: int
    text: str
    tags: list[str]
    at: datetime | None


def test_columns_go_to_the_fields_of_their_name_through_their_conversion() -> None:
    rows = Rows(Record, "id, body, tags, at", {"tags": JSON, "at": TIME}, rename={"body": "text"})
    assert rows.columns == "id, body, tags, at"
    assert rows.all([(1, "hi", '["a"]', 0), (2, "yo", "[]", None)]) == [
        Record(id=1, text="hi", tags=["a"], at=datetime(1970, 1, 1, tzinfo=UTC)),
        Record(id=2, text="yo", tags=[], at=None),
    ]


def test_a_column_the_record_lacks_fails_when_the_mapper_is_built() -> None:
    with pytest.raises(TypeError, match="no field"):
        Rows(Record, "id, body, tags, at")
    with pytest.raises(TypeError, match="not among the columns"):
        Rows(Record, "id, text, tags, at", {"when": TIME})


def test_a_row_of_the_wrong_width_is_an_error_not_a_shifted_record() -> None:
    with pytest.raises(ValueError):
        Rows(Record, "id, text, tags, at").one((1, "hi", "[]"))
