"""The ``siyu`` command.

Each command group lives in its own module of this package and exposes a
``click`` command or group named ``command``. :data:`COMMAND_MODULES` lists
them; adding a group is one line there (e.g. ``"siyu.cli.privacy"``).

Errors: a :class:`~siyu.errors.SiyuError` prints one red line and exits
with code 1; a usage error (unknown option, missing argument) exits with 2.
"""

from __future__ import annotations

import importlib

import click

import siyu

from ._common import DEFAULT_DB, CliState, SiyuGroup

__all__ = ["COMMAND_MODULES", "cli", "main"]

#: Modules whose ``command`` is registered on the main group, in this order.
COMMAND_MODULES: list[str] = [
    "siyu.cli.demo",
    "siyu.cli.events",
    "siyu.cli.plugins",
    "siyu.cli.privacy",
    "siyu.cli.report",
    "siyu.cli.run_due",
    "siyu.cli.users",
    "siyu.cli.wallet",
    "siyu.cli.worker",
]


@click.group(cls=SiyuGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option(
    "--db",
    default=DEFAULT_DB,
    show_default=True,
    envvar="SIYU_DB",
    show_envvar=True,
    metavar="URL",
    help="Storage URL: sqlite:///shop.db, sqlite:////abs/path.db, memory:// or a plugin's scheme.",
)
@click.option(
    "--plugin",
    "plugins",
    multiple=True,
    metavar="MODULE",
    help="Extra plugin module to load (repeatable), besides installed entry points.",
)
@click.version_option(siyu.__version__, "-V", "--version", prog_name="siyu")
@click.pass_context
def cli(ctx: click.Context, db: str, plugins: tuple[str, ...]) -> None:
    """siyu (私域): private-domain e-commerce operations from the command line."""
    ctx.obj = CliState(db=db, plugins=plugins)


def _register() -> None:
    for name in COMMAND_MODULES:
        module = importlib.import_module(name)
        cli.add_command(module.command)


_register()


def main() -> None:
    """Entry point of the ``siyu`` console script."""
    cli(prog_name="siyu")
