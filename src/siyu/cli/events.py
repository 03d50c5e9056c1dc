"""``siyu events``: the event log's consumers and their lag, the log itself, and steering."""

from __future__ import annotations

import json
import time

import click
from rich.table import Table

from ._common import CliState, out_console, pass_state


@click.group("events")
def command() -> None:
    """The event log: consumers, lag, parked errors; tail the log."""


@command.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@pass_state
def status(state: CliState, as_json: bool) -> None:
    """Each consumer: its position, how many events wait for it, its last error,
    whether it is parked (stopped retrying; see `siyu events retry` and `skip`)."""
    ws = state.workspace(delivery="worker")
    rows = ws.event_log.consumers()
    head = ws.event_log.head()
    if as_json:
        click.echo(json.dumps({"head": head, "consumers": [
            {"name": c.name, "kind": c.kind, "position": c.position, "lag": c.lag, "parked": c.parked,
             "attempts": c.attempts, "failed_position": c.failed_position, "error": c.error,
             "declared": c.declared} for c in rows]}, ensure_ascii=False))
        return
    table = Table(title=f"event consumers (log head {head})", title_justify="left")
    for column in ("consumer", "kind", "position", "lag", "state", "error"):
        table.add_column(column, justify="right" if column in ("position", "lag") else "left")
    for c in rows:
        state_text = "parked" if c.parked else ("retrying" if c.error else "ok")
        if not c.declared:
            state_text += " (not loaded here)"
        error = "" if c.error is None else f"at {c.failed_position} (attempt {c.attempts}): {c.error}"
        table.add_row(c.name, c.kind, str(c.position), str(c.lag), state_text, error)
    out_console().print(table)


@command.command("tail")
@click.option("--after", type=int, default=None, help="Start after this position (default: the last 10 events).")
@click.option("--type", "types", multiple=True, metavar="CLASS", help="Only these event classes (repeatable).")
@click.option("--follow", "-f", is_flag=True, help="Keep printing new events (Ctrl-C stops).")
@click.option("--poll", type=float, default=1.0, show_default=True, help="Seconds between checks with --follow.")
@pass_state
def tail(state: CliState, after: int | None, types: tuple[str, ...], follow: bool, poll: float) -> None:
    """Print logged events as JSON lines: position, type, occurred_at, correlation id, data."""
    ws = state.workspace(delivery="worker")
    position = max(ws.event_log.head() - 10, 0) if after is None else after
    while True:
        for e in ws.event_log.read(after=position, types=list(types) or None, limit=1000):
            click.echo(json.dumps({"position": e.position, "type": e.type, "occurred_at": e.occurred_at.isoformat(),
                                   "correlation_id": e.correlation_id, "data": e.data}, ensure_ascii=False))
            position = e.position
        if not follow:
            return
        time.sleep(poll)


@command.command("retry")
@click.argument("consumer")
@pass_state
def retry(state: CliState, consumer: str) -> None:
    """Unpark CONSUMER: the next delivery tries the event it failed on again."""
    ws = state.workspace(delivery="worker")
    ws.event_log.retry(consumer)
    click.echo(f"{consumer}: unparked; delivered {ws.event_log.deliver()} event(s)")


@command.command("skip")
@click.argument("consumer")
@pass_state
def skip(state: CliState, consumer: str) -> None:
    """Move CONSUMER past the event it keeps failing on (it never handles that event)."""
    ws = state.workspace(delivery="worker")
    moved = ws.event_log.skip(consumer)
    click.echo(f"{consumer}: now at position {moved.position}")


@command.command("replay")
@click.argument("consumer")
@click.option("--from", "from_position", type=int, required=True, help="First position to deliver again.")
@pass_state
def replay(state: CliState, consumer: str, from_position: int) -> None:
    """Rewind CONSUMER so it receives the events from --from on again."""
    ws = state.workspace(delivery="worker")
    moved = ws.event_log.replay(consumer, from_position)
    click.echo(f"{consumer}: {moved.lag} event(s) to deliver again")
