"""``siyu privacy``: keys, export, erasure, legal holds and the audit log (PIPL).

Keys never go on the command line (shell history, ``ps``): the current key
comes from ``SIYU_SECRET_KEY``, a new one from the environment variable named
by ``--new-key-env`` (default ``SIYU_NEW_SECRET_KEY``) or from a file.
Every command runs as actor ``cli:$USER`` in the audit log.
"""

from __future__ import annotations

import getpass
import json
import os
from pathlib import Path

import click
from rich.table import Table

from ..errors import ValidationError
from ..privacy.keys import generate_key
from ..workspace import Workspace
from ._common import CliState, SiyuGroup, out_console, pass_state


@click.group("privacy", cls=SiyuGroup)
def command() -> None:
    """Personal data (PIPL): encryption keys, export, erasure, legal holds, audit log."""


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # no user name in some containers
        return "cli"


def _open(state: CliState) -> Workspace:
    return state.workspace()


@command.command("generate-key")
def generate_key_() -> None:
    """Print a new random workspace key (store it in your secret manager, then set SIYU_SECRET_KEY)."""
    click.echo(generate_key())


@command.command("rotate-key")
@click.option("--new-key-env", default="SIYU_NEW_SECRET_KEY", show_default=True, help="Variable holding the new key.")
@click.option(
    "--new-key-file", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="File holding the new key."
)
@pass_state
def rotate_key(state: CliState, new_key_env: str, new_key_file: Path | None) -> None:
    """Re-encrypt all personal data under a new key (one transaction).

    The current key is read from SIYU_SECRET_KEY (leave it unset to turn
    encryption on for a database stored in clear). Afterwards, set
    SIYU_SECRET_KEY to the new key everywhere and restart the applications.
    """
    if new_key_file is not None:
        new_key = new_key_file.read_text(encoding="utf-8").strip()
    else:
        new_key = os.environ.get(new_key_env, "").strip()
    if not new_key:
        raise ValidationError(
            f"no new key: set {new_key_env} (e.g. to the output of `siyu privacy generate-key`) or pass --new-key-file"
        )
    ws = _open(state)
    before = ws.privacy.key_id
    with ws.privacy.acting_as(_actor()):
        counts = ws.privacy.rotate_key(new_key)
    out_console().print(
        f"re-encrypted {counts['identities']} identities, {counts['users']} users' personal attributes and "
        f"{counts['merge_records']} merge records: key {before or '(none)'} -> {ws.privacy.key_id}. "
        "Now set SIYU_SECRET_KEY to the new key everywhere."
    )


@command.command("export")
@click.argument("user_id", type=int)
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), help="Write the JSON here.")
@pass_state
def export(state: CliState, user_id: int, out: Path | None) -> None:
    """Everything held about USER_ID as JSON (in full: it is for the person themselves)."""
    ws = _open(state)
    with ws.privacy.acting_as(_actor()):
        data = ws.privacy.export(user_id)
    text = json.dumps(data, ensure_ascii=False, indent=2)
    if out is None:
        click.echo(text)
    else:
        out.write_text(text + "\n", encoding="utf-8")
        out_console().print(f"wrote the export of user {user_id} to {out}")


@command.command("erase")
@click.argument("user_id", type=int)
@click.option("--reason", required=True, help="Why (recorded in the audit log), e.g. 'request 2026-118 via app'.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_state
def erase(state: CliState, user_id: int, reason: str, yes: bool) -> None:
    """Erase USER_ID's personal data; ledgers stay under a pseudonym. Cannot be undone."""
    if not yes:
        click.confirm(f"Erase the personal data of user {user_id}? This cannot be undone", abort=True)
    ws = _open(state)
    with ws.privacy.acting_as(_actor()):
        tomb = ws.privacy.erase(user_id, reason=reason)
    out_console().print(f"user {user_id} erased at {tomb.erased_at.isoformat()}; pseudonym {tomb.pseudonym}")


@command.command("hold")
@click.argument("user_id", type=int)
@click.option("--reason", required=True, help="Why, e.g. 'court order 2026-17'.")
@pass_state
def hold(state: CliState, user_id: int, reason: str) -> None:
    """Place a legal hold on USER_ID: erasure and processing other than storage stop."""
    ws = _open(state)
    with ws.privacy.acting_as(_actor()):
        record = ws.privacy.hold(user_id, reason=reason)
    out_console().print(f"legal hold #{record.id} placed on user {user_id}")


@command.command("release")
@click.argument("hold_id", type=int)
@pass_state
def release(state: CliState, hold_id: int) -> None:
    """Release legal hold HOLD_ID."""
    ws = _open(state)
    with ws.privacy.acting_as(_actor()):
        record = ws.privacy.release_hold(hold_id)
    out_console().print(f"legal hold #{record.id} on user {record.user_id} released")


@command.command("audit")
@click.option("--user", "user_id", type=int, help="Only entries about this user.")
@click.option("--action", help="Only this action, e.g. privacy.erase.")
@click.option("--actor", help="Only this actor, e.g. cli:alice.")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 100_000))
@click.option("--json", "as_json", is_flag=True, help="JSON lines instead of a table.")
@pass_state
def audit(
    state: CliState, user_id: int | None, action: str | None, actor: str | None, limit: int, as_json: bool
) -> None:
    """Show the audit log (oldest first). Values in it are masked."""
    ws = _open(state)
    entries = ws.privacy.audit(user_id=user_id, action=action, actor=actor, limit=limit)
    if as_json:
        from ..services.privacy import to_jsonable

        for entry in entries:
            click.echo(json.dumps(to_jsonable(entry), ensure_ascii=False))
        return
    table = Table(title="audit log", title_justify="left")
    for column in ("id", "at", "actor", "action", "user", "details"):
        table.add_column(column)
    for e in entries:
        details = json.dumps(e.details, ensure_ascii=False)
        if e.before is not None or e.after is not None:
            before, after = (json.dumps(v, ensure_ascii=False) for v in (e.before, e.after))
            details += f" before={before} after={after}"
        table.add_row(str(e.id), e.at.isoformat(timespec="seconds"), e.actor, e.action, str(e.user_id or "-"), details)
    console = out_console()
    console.print(table)
    console.print(f"{len(entries)} entr{'y' if len(entries) == 1 else 'ies'}")
