"""``siyu report``: the shop's funnel, cohorts, RFM, touchpoints, fission and
order metrics as terminal tables, CSV or JSON, with an optional chart."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

import attrs
import click
from dateutil.parser import isoparse
from rich.text import Text

from ..analytics.funnel import BREAKDOWNS, BUILTIN_STEPS
from ..analytics.results import Report
from ..errors import ValidationError
from ..workspace import Workspace
from ._common import CliState, SiyuGroup, err_console, out_console, pass_state

__all__ = ["command"]


@click.group("report", cls=SiyuGroup)
def command() -> None:
    """Analytics: funnel, cohort retention, RFM, touchpoints, fission, activities, AOV, repurchase, traffic.

    Dates (--since, --until) are ISO dates or date-times; without a time zone
    they are read in the shop's business time zone. --since is inclusive,
    --until exclusive (default: now; on a database built by `siyu demo`, the
    end of its simulated history). Each report's title states the dates it
    covers, and a period that had not ended by --until is marked with *.
    """


def _instant(ws: Workspace, value: str | None, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = isoparse(value)
    except ValueError:
        raise ValidationError(f"--{name} {value!r} is not a date; use e.g. 2026-05-01 or 2026-05-01T08:00") from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=ws.tz)


def _emit(ws: Workspace, report: Report, fmt: str, chart: Path | None, extra: Sequence[Report] = ()) -> None:
    if chart is not None:
        from ..analytics.charts import draw

        data = draw(report, chart)
        err_console().print(Text(f"chart written to {data.path}", style="dim"))
    if fmt == "csv":
        click.echo(report.to_csv(), nl=False)
    elif fmt == "json":
        click.echo(report.to_json(indent=2))
    else:
        out = out_console()
        out.print(report.to_rich())
        for more in extra:
            out.print()
            out.print(more.to_rich())


def _common(func: Callable[..., Any]) -> Callable[..., Any]:
    func = click.option("--chart", type=click.Path(dir_okay=False, path_type=Path),
                        help="Also draw a chart to this .png or .svg file (needs siyu[charts]).")(func)
    func = click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table",
                        show_default=True, help="Output format.")(func)
    return func


def _window(func: Callable[..., Any]) -> Callable[..., Any]:
    func = click.option("--until", metavar="DATE",
                        help="End of the range (exclusive; default now, or a demo's end).")(func)
    func = click.option("--since", metavar="DATE", help="Start of the range (inclusive).")(func)
    return func


_PERIOD = click.option("--period", type=click.Choice(["day", "week", "month"]), default="week", show_default=True,
                       help="Bucket size (weeks start on Monday, months by calendar).")


@command.command("funnel")
@click.option("--steps", default=",".join(BUILTIN_STEPS), show_default=True,
              help="Comma-separated steps: built-in ones or tracked event kinds.")
@click.option("--by", type=click.Choice(BREAKDOWNS), help="Break down by the users' attribution.")
@_window
@_common
@pass_state
def funnel(state: CliState, steps: str, by: str | None, since: str | None, until: str | None, fmt: str,
           chart: Path | None) -> None:
    """Users at each funnel step and the conversion between steps."""
    ws = state.workspace()
    names = [s.strip() for s in steps.split(",") if s.strip()]
    report = ws.analytics.funnel(names, since=_instant(ws, since, "since"), until=_instant(ws, until, "until"),
                                 by=by)
    _emit(ws, report, fmt, chart)


@command.command("cohorts")
@_PERIOD
@click.option("--metric", type=click.Choice(["active", "ordered"]), default="active", show_default=True,
              help="active: a tracked event or an order; ordered: an order.")
@_window
@_common
@pass_state
def cohorts(state: CliState, period: str, metric: str, since: str | None, until: str | None, fmt: str,
            chart: Path | None) -> None:
    """Retention matrix: users by the period they joined, active in each later period
    (default: the last 12 periods)."""
    ws = state.workspace()
    report = ws.analytics.cohorts(period, metric, since=_instant(ws, since, "since"),
                                  until=_instant(ws, until, "until"))
    _emit(ws, report, fmt, chart)


@command.command("rfm")
@click.option("--quantiles", type=click.IntRange(2, 100), default=5, show_default=True, help="Score range 1..N.")
@click.option("--until", metavar="DATE", help="Score the orders paid before this date (default now, or a demo's end).")
@_common
@pass_state
def rfm(state: CliState, quantiles: int, until: str | None, fmt: str, chart: Path | None) -> None:
    """R, F, M scores per buyer (the table shows buyers per R x F cell; CSV and JSON one row per buyer)."""
    ws = state.workspace()
    _emit(ws, ws.analytics.rfm(quantiles, until=_instant(ws, until, "until")), fmt, chart)


@command.command("touchpoints")
@click.option("--by", type=click.Choice(BREAKDOWNS), default="source", show_default=True,
              help="What a touchpoint is: the users' source, channel QR state or campaign.")
@click.option("--reached", "exposure", multiple=True, metavar="NAME=N",
              help="Known exposure of a touchpoint (parcels shipped ...), repeatable: taobao_parcel_card=12000.")
@_window
@_common
@pass_state
def touchpoints(state: CliState, by: str, exposure: tuple[str, ...], since: str | None, until: str | None,
                fmt: str, chart: Path | None) -> None:
    """Drainage rate per touchpoint: reached -> added on WeCom -> ordered."""
    ws = state.workspace()
    reached: dict[str, int] = {}
    for item in exposure:
        name, _, number = item.partition("=")
        if not name or not number.isdigit():
            raise ValidationError(f"--reached {item!r} must be NAME=COUNT, e.g. taobao_parcel_card=12000")
        reached[name] = int(number)
    report = ws.analytics.touchpoints(since=_instant(ws, since, "since"), until=_instant(ws, until, "until"),
                                      by=by, reached=reached)
    _emit(ws, report, fmt, chart)


@command.command("fission")
@click.option("--campaign", help="One referral campaign (default: every binding).")
@_common
@pass_state
def fission(state: CliState, campaign: str | None, fmt: str, chart: Path | None) -> None:
    """Fission rate, inviters, K-factor, generations and the invite funnel."""
    ws = state.workspace()
    report = ws.analytics.fission(campaign)
    _emit(ws, report, fmt, chart, [report.channel_states()])


@command.command("activities")
@click.option("--kind", type=click.Choice(["flash_sale", "bargain", "draw"]), help="Only one kind of activity.")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True,
              help="Output format.")
@pass_state
def activities(state: CliState, kind: str | None, fmt: str) -> None:
    """Flash sales, bargains and draws: participants, helpers, completions, units, GMV,
    discount and prize cost, new users."""
    ws = state.workspace()
    _emit(ws, ws.activities.report(kind=kind), fmt, None)


@command.command("aov")
@click.option("--by", type=click.Choice(["channel", "source", "day", "week", "month"]),
              help="Group by order channel, buyer source or period.")
@_window
@_common
@pass_state
def aov(state: CliState, by: str | None, since: str | None, until: str | None, fmt: str,
        chart: Path | None) -> None:
    """Average order value (客单价) of the orders paid in the range."""
    ws = state.workspace()
    _emit(ws, ws.analytics.aov(since=_instant(ws, since, "since"), until=_instant(ws, until, "until"), by=by),
          fmt, chart)


@command.command("repurchase")
@click.option("--window", "days", type=click.IntRange(1, 3650), default=90, show_default=True,
              help="Days after the first order within which a second one counts.")
@click.option("--period", type=click.Choice(["day", "week", "month"]), default="month", show_default=True,
              help="Group buyers by the period of their first order.")
@_window
@_common
@pass_state
def repurchase(state: CliState, days: int, period: str, since: str | None, until: str | None, fmt: str,
               chart: Path | None) -> None:
    """Share of first-time buyers who bought again within the window."""
    ws = state.workspace()
    report = ws.analytics.repurchase(timedelta(days=days), since=_instant(ws, since, "since"),
                                     until=_instant(ws, until, "until"), period=period)
    _emit(ws, report, fmt, chart)


@command.command("new-vs-returning")
@click.option("--period", type=click.Choice(["day", "week", "month"]), default="month", show_default=True,
              help="Bucket size.")
@_window
@_common
@pass_state
def new_vs_returning(state: CliState, period: str, since: str | None, until: str | None, fmt: str,
                     chart: Path | None) -> None:
    """Buyers, orders and revenue per period: first-time vs returning buyers."""
    ws = state.workspace()
    report = ws.analytics.new_vs_returning(period, since=_instant(ws, since, "since"),
                                           until=_instant(ws, until, "until"))
    _emit(ws, report, fmt, chart)


@attrs.frozen(kw_only=True)
class _Steps(Report):
    percent_columns: ClassVar[frozenset[str]] = frozenset({"ended_share"})


_FORMAT = click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table",
                       show_default=True, help="Output format.")


def _idle(minutes: float) -> timedelta:
    return timedelta(minutes=minutes)


_IDLE = click.option("--idle", "idle_minutes", type=click.FloatRange(min=0, min_open=True), default=30,
                     show_default=True, help="Minutes without an event that end a session.")


@command.command("pv-uv")
@click.option("--kind", default="page_view", show_default=True,
              help="Event kind to count; --all-kinds counts every kind.")
@click.option("--all-kinds", is_flag=True, help="Count every tracked event, whatever its kind.")
@click.option("--period", type=click.Choice(["day", "week", "month"]), default="day", show_default=True,
              help="Bucket size.")
@_window
@_FORMAT
@pass_state
def pv_uv(state: CliState, kind: str, all_kinds: bool, period: str, since: str | None, until: str | None,
          fmt: str) -> None:
    """PV (events) and UV (distinct users) per period (default: the last 12 periods)."""
    ws = state.workspace()
    report = ws.analytics.pv_uv(None if all_kinds else kind, period, since=_instant(ws, since, "since"),
                                until=_instant(ws, until, "until"))
    _emit(ws, report, fmt, None)


@command.command("visit-frequency")
@_window
@_FORMAT
@pass_state
def visit_frequency(state: CliState, since: str | None, until: str | None, fmt: str) -> None:
    """Users by how many distinct days they visited (default: the last 30 days)."""
    ws = state.workspace()
    report = ws.analytics.visit_frequency(since=_instant(ws, since, "since"), until=_instant(ws, until, "until"))
    _emit(ws, report, fmt, None)


@command.command("sessions")
@click.option("--period", type=click.Choice(["day", "week", "month"]), default="day", show_default=True,
              help="Bucket size (by each session's first event).")
@_IDLE
@_window
@_FORMAT
@pass_state
def sessions(state: CliState, period: str, idle_minutes: float, since: str | None, until: str | None,
             fmt: str) -> None:
    """Sessions and time on site (停留时长) per period (default: the last 12 periods)."""
    ws = state.workspace()
    report = ws.analytics.sessions(period, idle=_idle(idle_minutes), since=_instant(ws, since, "since"),
                                   until=_instant(ws, until, "until"))
    _emit(ws, report, fmt, None)


@command.command("paths")
@click.option("--entry", default="page_view", show_default=True, help="Event kind the paths start from.")
@click.option("--depth", type=click.IntRange(2, 20), default=4, show_default=True, help="Steps per path.")
@click.option("--top", type=click.IntRange(1, 1000), default=10, show_default=True, help="How many paths to show.")
@_IDLE
@_window
@_FORMAT
@pass_state
def paths(state: CliState, entry: str, depth: int, top: int, idle_minutes: float, since: str | None,
          until: str | None, fmt: str) -> None:
    """The most common paths from an entry event and where sessions end (在哪个环节流失)
    (default: the last 30 days)."""
    ws = state.workspace()
    report = ws.analytics.paths(entry, depth=depth, top=top, idle=_idle(idle_minutes),
                                since=_instant(ws, since, "since"), until=_instant(ws, until, "until"))
    steps = _Steps(title="sessions still going at each step", columns=("step", "sessions", "ended", "ended_share"),
                   rows=report.steps)
    _emit(ws, report, fmt, None, (steps,))


@command.command("reindex")
@pass_state
def reindex(state: CliState) -> None:
    """Rebuild the activity rollup behind cohort retention from the raw rows.

    siyu keeps it up to date on every write it makes; run this after loading
    events or orders straight into the database, or once after upgrading a
    database that already held rows (cohort reports are right either way,
    only slower until then).
    """
    ws = state.workspace()
    started = time.perf_counter()
    ws.analytics.reindex()
    err_console().print(f"activity rollup rebuilt in {time.perf_counter() - started:.1f} s")
