"""Render the ``siyu`` command's help as the Markdown page ``docs/reference/cli.md``.

The page is generated, never edited by hand; ``tests/test_cli_docs.py``
fails when it is out of date. Regenerate it with::

    .venv/bin/python -m siyu.cli._docs docs/reference/cli.md
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

__all__ = ["render"]

_WIDTH = 100
_HEADER = """\
# Command line

<!-- Generated from the click parser by `python -m siyu.cli._docs docs/reference/cli.md`;
     do not edit by hand (tests/test_cli_docs.py fails when it is out of date). -->

`siyu` is installed with the package. Every command takes the database from
`--db URL` (or the `SIYU_DB` environment variable; default `sqlite:///siyu.db`).
A siyu error (bad input, a conflict, a missing user) prints one red line and
exits with status 1; a usage error (unknown option, missing argument) exits
with status 2.
"""


def _context(command: click.Command, name: str, parent: click.Context | None) -> click.Context:
    # make_context applies the command's context_settings (e.g. -h/--help) like a real run.
    return command.make_context(
        name, [], parent=parent, resilient_parsing=True, terminal_width=_WIDTH, max_content_width=_WIDTH
    )


def _walk(command: click.Command, ctx: click.Context, out: list[str]) -> None:
    path = ctx.command_path
    level = min(2 + path.count(" "), 4)
    out.append(f"\n{'#' * level} `{path}`\n")
    out.append("```text")
    out.append(command.get_help(ctx).rstrip())
    out.append("```")
    if isinstance(command, click.Group):
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            if sub is None or sub.hidden:
                continue
            _walk(sub, _context(sub, name, ctx), out)


def render() -> str:
    """The Markdown page for every ``siyu`` command and subcommand."""
    from . import cli

    out = [_HEADER]
    _walk(cli, _context(cli, "siyu", None), out)
    return "\n".join(out) + "\n"


if __name__ == "__main__":  # pragma: no cover - the documented regeneration command
    text = render()
    if len(sys.argv) > 1:
        Path(sys.argv[1]).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
