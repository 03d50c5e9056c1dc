"""``siyu plugins``: which plugins are loaded, their versions and hooks."""

from __future__ import annotations

import os

import click
from rich.table import Table

import siyu

from ._common import CliState, out_console, pass_state


@click.command("plugins")
@pass_state
def command(state: CliState) -> None:
    """List the loaded plugins, their versions and hooks.

    Built-in plugins, installed entry-point plugins (group "siyu", unless
    SIYU_DISABLE_PLUGIN_AUTOLOAD is set) and --plugin modules."""
    ws = state.workspace()
    table = Table(title="siyu plugins", title_justify="left")
    table.add_column("plugin")
    table.add_column("distribution")
    table.add_column("version")
    table.add_column("hooks")
    rows = ws.plugins()
    for row in rows:
        version = row["version"] or (siyu.__version__ if row["distribution"] == "siyu" else "-")
        table.add_row(row["name"], row["distribution"] or "-", version, ", ".join(row["hooks"]) or "-")
    console = out_console()
    console.print(table)
    note = f"{len(rows)} plugin(s)"
    if os.environ.get("SIYU_DISABLE_PLUGIN_AUTOLOAD"):
        note += "; entry-point autoload is off (SIYU_DISABLE_PLUGIN_AUTOLOAD is set)"
    console.print(note)
