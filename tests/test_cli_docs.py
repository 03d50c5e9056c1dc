"""docs/reference/cli.md is generated from the click parser and must match it."""

from __future__ import annotations

from pathlib import Path

from siyu.cli import cli
from siyu.cli._docs import render

PAGE = Path(__file__).resolve().parent.parent / "docs" / "reference" / "cli.md"


def test_cli_reference_is_up_to_date() -> None:
    assert PAGE.read_text(encoding="utf-8") == render(), (
        "docs/reference/cli.md is out of date; regenerate it with "
        "`.venv/bin/python -m siyu.cli._docs docs/reference/cli.md`"
    )


def test_cli_reference_covers_every_command() -> None:
    page = render()
    for name, command in cli.commands.items():
        assert f"`siyu {name}`" in page
        for sub in getattr(command, "commands", {}):
            assert f"`siyu {name} {sub}`" in page
