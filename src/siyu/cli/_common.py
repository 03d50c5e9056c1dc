"""What every ``siyu`` command shares: the database option, the open workspace,
consoles, and turning :class:`~siyu.errors.SiyuError` into a one-line message."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
import click
from rich.console import Console
from rich.text import Text

import siyu

__all__ = ["DEFAULT_DB", "CliState", "SiyuGroup", "err_console", "out_console", "pass_state"]

#: The database a bare ``siyu`` command uses (override with ``--db`` or ``SIYU_DB``).
DEFAULT_DB = "sqlite:///siyu.db"


def out_console() -> Console:
    """Standard output; made per call so click's test runner can capture it."""
    console = Console(highlight=False, soft_wrap=False)
    if not console.is_terminal:
        # Piped or captured output: rich would assume 80 columns and squeeze the tables.
        console.width = max(console.width, 120)
    return console


def err_console() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)


@attrs.define
class CliState:
    """Carried in ``ctx.obj``: the database URL and, once opened, the workspace."""

    db: str
    plugins: tuple[str, ...] = ()
    _workspace: siyu.Workspace | None = None

    def workspace(self, **kwargs: Any) -> siyu.Workspace:
        """Open the workspace on first use; it is closed when the command ends."""
        if self._workspace is None:
            ws = siyu.connect(self.db, plugins=list(self.plugins), **kwargs)
            self._workspace = ws
            click.get_current_context().call_on_close(self.close)
        return self._workspace

    def close(self) -> None:
        if self._workspace is not None:
            self._workspace.close()
            self._workspace = None


pass_state: Callable[[Callable[..., Any]], Callable[..., Any]] = click.make_pass_decorator(CliState)


class SiyuGroup(click.Group):
    """A group that reports :class:`~siyu.errors.SiyuError` as one red line
    (exit code 1) instead of a traceback. Usage errors keep click's exit code 2."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except siyu.SiyuError as exc:
            err_console().print(Text.assemble(("error: ", "bold red"), (str(exc), "red")))
            ctx.exit(1)
