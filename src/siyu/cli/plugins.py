"""``siyu plugins``: which plugins are loaded, and the storage schemes and channels they provide."""

from __future__ import annotations

import os

import click
from rich.table import Table

import siyu

from ._common import CliState, out_console, pass_state


def _origin(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


@click.command("plugins")
@pass_state
def command(state: CliState) -> None:
    """List the loaded plugins (versions and hooks), the storage URL schemes
    and the channel names they make available.

    Built-in plugins, installed entry-point plugins (group "siyu", unless
    SIYU_DISABLE_PLUGIN_AUTOLOAD is set) and --plugin modules."""
    ws = state.workspace()
    console = out_console()

    table = Table(title="plugins", title_justify="left")
    table.add_column("plugin")
    table.add_column("distribution")
    table.add_column("version")
    table.add_column("hooks")
    rows = ws.plugins()
    for row in rows:
        version = row["version"] or (siyu.__version__ if row["distribution"] == "siyu" else "-")
        table.add_row(row["name"], row["distribution"] or "-", version, ", ".join(row["hooks"]) or "-")
    console.print(table)

    schemes = Table(title="storage schemes (siyu --db SCHEME://...)", title_justify="left")
    schemes.add_column("scheme")
    schemes.add_column("also")
    schemes.add_column("backend")
    for name, cls, aliases in ws.backends.classes():
        schemes.add_row(name, ", ".join(aliases) or "-", _origin(cls))
    console.print(schemes)

    channels = Table(title='channels (ws.channels.get("NAME"))', title_justify="left")
    channels.add_column("name")
    channels.add_column("consent channel")
    channels.add_column("class")
    for name, cls, _ in ws.channel_classes.classes():
        channels.add_row(name, getattr(cls, "consent_channel", "") or name, _origin(cls))
    console.print(channels)

    note = (
        f"{len(rows)} plugin(s), {len(ws.backends.classes())} storage scheme(s), "
        f"{len(ws.channel_classes.classes())} channel(s)"
    )
    if os.environ.get("SIYU_DISABLE_PLUGIN_AUTOLOAD"):
        note += "; entry-point autoload is off (SIYU_DISABLE_PLUGIN_AUTOLOAD is set)"
    console.print(note)
