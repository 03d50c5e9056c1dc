"""``siyu users``: import customers from CSV, show one customer."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import click
from rich.panel import Panel
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from ..errors import NotFound
from ..identities import mask
from ..models.users import User
from ..workspace import Workspace
from ._common import CliState, SiyuGroup, err_console, out_console, pass_state
from ._importer import BadRow, ImportAborted, import_users, read_rows

#: Files with more rows than this get a progress bar.
PROGRESS_THRESHOLD = 2000


@click.group("users", cls=SiyuGroup)
def command() -> None:
    """Customers: import them from CSV, look one up."""


def _report_bad(bad: list[BadRow], path: Path, update: bool, limit: int = 50) -> None:
    console = err_console()
    for row in bad[:limit]:
        console.print(Text.assemble((f"{path}:{row.line}: ", "bold"), (row.reason, "red")))
    if len(bad) > limit:
        console.print(f"... and {len(bad) - limit} more bad rows")
    if not update and any("already belongs to user" in row.reason for row in bad):
        console.print("hint: to update customers who already exist (importing a file again), pass --update")


@command.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--skip-invalid", is_flag=True, help="Import the good rows and report the bad ones (default: all or nothing)."
)
@click.option(
    "--update",
    is_flag=True,
    help="Update customers who already exist (matched by phone, e-mail, unionid, openid or WeCom id) "
    "instead of reporting them as bad rows; reports created / updated / unchanged.",
)
@click.option(
    "--encoding", default="utf-8-sig", show_default=True, help="Text encoding of FILE (e.g. gb18030 for Excel exports)."
)
@click.option(
    "--batch-size", default=2000, show_default=True, type=click.IntRange(1, 100_000), help="Rows per add_many call."
)
@pass_state
def import_(state: CliState, file: Path, skip_invalid: bool, update: bool, encoding: str, batch_size: int) -> None:
    """Import customers from FILE.csv.

    Columns: phone, email, wechat_unionid, wechat_openid, app,
    wecom_external_userid, source, campaign, state, tags (";"-separated
    group/name) and attr.NAME for attributes. A bad row is reported with its
    line number and reason; then nothing is imported unless --skip-invalid.
    A customer who already exists is a bad row unless --update: then the row
    updates them (new identities, attributes, tags; source, campaign and
    state only where they have none), so the same file can be imported again.
    """
    rows = list(read_rows(file, encoding))
    ws = state.workspace()
    with Progress(
        TextColumn("importing {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err_console(),
        disable=len(rows) <= PROGRESS_THRESHOLD,
        transient=True,
    ) as progress:
        task = progress.add_task(file.name, total=len(rows))
        try:
            result = import_users(
                ws,
                rows,
                by=f"import:{file.name}"[:128],
                skip_invalid=skip_invalid,
                update=update,
                batch_size=batch_size,
                progress=lambda n: progress.advance(task, n),
            )
        except ImportAborted as exc:
            progress.stop()
            _report_bad(exc.bad, file, update)
            raise
    if result.bad:
        _report_bad(result.bad, file, update)
    if update:
        summary = (
            f"{file.name}: created [bold]{len(result.created)}[/], updated [bold]{len(result.updated)}[/], "
            f"unchanged [bold]{len(result.unchanged)}[/] user(s); applied {result.tags_applied} tag(s)"
        )
    else:
        summary = (
            f"imported [bold]{len(result.user_ids)}[/] user(s) from {file.name}, "
            f"applied {result.tags_applied} tag(s)"
        )
    out_console().print(summary + (f", skipped [bold red]{len(result.bad)}[/] bad row(s)" if result.bad else ""))
    if result.no_sms:
        lines = ", ".join(map(str, result.no_sms[:10])) + (" ..." if len(result.no_sms) > 10 else "")
        err_console().print(
            f"note: {len(result.no_sms)} phone(s) are landlines or 400/800 numbers that SMS cannot reach "
            f"(line {lines}); they were imported, and SMS sends to them will be refused"
        )


def _resolve(ws: Workspace, who: str) -> User:
    text = who.strip()
    if text.isdigit() and len(text) < 11:
        return ws.users.get(int(text))
    user = ws.users.find(phone=text)
    if user is None:
        raise NotFound(f"no user with phone {mask('phone', text)}; check the number or look up by id")
    return user


@command.command("show")
@click.argument("who", metavar="ID|PHONE")
@click.option("--reveal", is_flag=True, help="Show identities in full instead of masked (138****8000).")
@click.option(
    "--ledger",
    "ledger_size",
    default=10,
    show_default=True,
    type=click.IntRange(0),
    help="Recent ledger lines to show.",
)
@pass_state
def show(state: CliState, who: str, reveal: bool, ledger_size: int) -> None:
    """Show one customer: profile, identities, tags, consents and points."""
    ws = state.workspace()
    user = _resolve(ws, who)
    tz = ws.tz

    def when(value: datetime | None) -> str:
        return value.astimezone(tz).strftime("%Y-%m-%d %H:%M") if value is not None else "-"

    profile = Table.grid(padding=(0, 2))
    profile.add_column(style="bold")
    profile.add_column()
    profile.add_row("id", str(user.id))
    profile.add_row("status", user.status + (f" (into {user.merged_into})" if user.merged_into else ""))
    profile.add_row("created", when(user.created_at))
    profile.add_row("source", user.source or "-")
    profile.add_row("campaign", user.source_campaign or "-")
    profile.add_row("state", user.source_state or "-")
    for key, value in sorted(user.attributes.items()):
        profile.add_row(f"attr.{key}", str(value))

    identities = Table("kind", "value", "scope", "linked", "note", title="identities", title_justify="left")
    for ident in user.identities:
        identities.add_row(
            ident.kind,
            ident.value if reveal else mask(ident.kind, ident.value),
            ident.scope or "-",
            when(ident.linked_at),
            f"{(ident.line_type or '').replace('_', '-')}: SMS cannot reach it" if ident.sms_reachable is False else "",
        )

    tags = Text(", ".join(sorted(ws.tags.of(user.id))) or "(none)")
    consents = Table("purpose", "channel", "granted", "at", "source", title="consents", title_justify="left")
    for consent in ws.users.consents(user.id):
        consents.add_row(
            consent.purpose,
            consent.channel,
            "yes" if consent.granted else "withdrawn",
            when(consent.at),
            consent.source or "-",
        )

    balance, pending = ws.points.balance(user.id), ws.points.pending(user.id)
    history = ws.points.history(user.id)
    ledger = Table(
        "entry", "at", "kind", "amount", "reason", title=f"recent points ({len(history)} entries)", title_justify="left"
    )
    for entry in history[-ledger_size:] if ledger_size else []:
        ledger.add_row(str(entry.id), when(entry.at), entry.kind, f"{entry.amount:+d}", entry.reason)

    # One print per section: rich joins several renderables given to one print()
    # with spaces, which ran the one-line sections together.
    console = out_console()
    console.print(Panel(profile, title=f"user {user.id}", title_align="left", expand=False))
    console.print(identities if identities.row_count else Text.assemble(("identities: ", "bold"), "(none)"))
    console.print(Text.assemble(("tags: ", "bold"), tags))
    console.print(consents if consents.row_count else Text.assemble(("consents: ", "bold"), "(none recorded)"))
    console.print(
        Text.assemble(("points: ", "bold"), f"{balance} available", f", {pending} pending" if pending else "")
    )
    if ledger.row_count:
        console.print(ledger)
