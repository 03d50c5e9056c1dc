"""``siyu demo``: build a simulated shop and show what is in it."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import click
from rich.text import Text

import siyu

from .._url import StorageURL
from ..demo_shop import DEMO_MARK, REPORTS, build
from ..errors import Conflict, ValidationError
from ..testing import FakeClock
from ._common import CliState, err_console, out_console, pass_state


def _has_data(ws: siyu.Workspace) -> bool:
    return ws.users.count() > 0 or bool(ws.tags.groups())


def _is_demo(ws: siyu.Workspace) -> bool:
    with ws.read() as tx:
        return tx.meta.get(DEMO_MARK) == "1"


def _sqlite_files(url: StorageURL) -> list[Path]:
    path = Path(url.path)
    return [path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")]


def _prepare(state: CliState, force: bool) -> None:
    """Make sure the database is empty: delete a previous demo, refuse real data."""
    url = StorageURL.parse(state.db)
    if url.scheme == "memory":
        return
    if url.scheme != "sqlite":
        raise ValidationError(f"siyu demo builds an SQLite file, not {url.scheme}://; use e.g. --db sqlite:///demo.db")
    if not Path(url.path).exists():
        return
    if not force:
        ws = state.workspace()
        if _has_data(ws) and not _is_demo(ws):
            raise Conflict(
                f"{url.masked()} holds data that is not a siyu demo; refusing to overwrite it. "
                "Pick another file with --db sqlite:///demo.db, or pass --force to replace it"
            )
        state.close()
    for file in _sqlite_files(url):
        file.unlink(missing_ok=True)


@click.command("demo")
@click.option(
    "--users",
    default=5000,
    show_default=True,
    type=click.IntRange(1, 1_000_000),
    help="How many customers to simulate.",
)
@click.option(
    "--seed", default=2026, show_default=True, type=int, help="Random seed: the same seed builds the same shop."
)
@click.option(
    "--weeks", default=26, show_default=True, type=click.IntRange(1, 520), help="Length of the simulated history."
)
@click.option("--force", is_flag=True, help="Replace the database even if it holds data that is not a demo.")
@pass_state
def command(state: CliState, users: int, seed: int, weeks: int, force: bool) -> None:
    """Build a simulated shop in the database (default sqlite:///siyu.db).

    Customers arrive over WEEKS weeks from Douyin live streams, Taobao parcel
    cards, the offline store, SMS, WeCom QR codes and ads, with identities,
    consents, tags, behaviour events, orders, invitations and a points ledger;
    then the tables of what was built are printed, ending with the funnel and
    the weekly cohort retention. Running it again rebuilds a previous demo database; a database
    with other data is left alone unless --force.
    """
    _prepare(state, force)
    clock = FakeClock(datetime(2026, 5, 4, tzinfo=UTC))
    ws = state.workspace(clock=clock)
    started = time.perf_counter()
    status = err_console()
    shop = build(
        ws,
        clock,
        users=users,
        seed=seed,
        weeks=weeks,
        on_step=lambda title: status.print(Text(f"· {title}", style="dim")),
    )
    elapsed = time.perf_counter() - started
    out = out_console()
    out.print(
        Text.assemble(
            ("siyu demo", "bold green"),
            f": {ws.url.masked()}, {users} customers over {weeks} weeks "
            f"({shop.start:%Y-%m-%d} to {shop.end:%Y-%m-%d}), seed {seed}, built in {elapsed:.1f}s",
        )
    )
    for report in REPORTS:
        out.print()
        out.print(report(shop))
    out.print()
    out.print(f"Next: siyu --db {state.db} users show {shop.people[0].id}")
