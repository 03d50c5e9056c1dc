"""Traffic from tracked events: PV/UV, visit frequency, sessions and time on site, paths.

All four read the tracked events (``ws.events.track``) in ``[since, until)``:

- **PV/UV** per period: events of a kind (``page_view`` by default; ``None``
  for every kind) and the distinct users behind them.
- **Visit frequency**: how many users visited on 1, 2, 3–4, 5–7, 8–14 or 15 and more
  distinct days (business time zone) of the window, any kind of event.
- **Sessions** (停留时长): a user's events, every kind, in time order; a
  session starts at their first event and again after any gap longer than
  ``idle`` (30 minutes by default). It lasts from its first to its last
  event (a single-event session lasts 0 s: it *bounced*), and belongs to the
  period of its first event. Time on site is the sum of a user's sessions.
- **Paths** (在哪个环节流失): in every session with an ``entry`` event, the
  kinds that follow it (a kind repeated back to back counts once), up to
  ``depth`` steps: the most common paths, and at each step how many sessions
  were still going and how many ended there.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from itertools import pairwise
from typing import TYPE_CHECKING, ClassVar

import attrs
import numpy as np

from .._clock import to_us
from ._time import buckets, label
from .facts import distinct_per_group
from .results import Report, covering, rate

if TYPE_CHECKING:
    from datetime import tzinfo

    from .facts import Column, UserFacts

__all__ = ["FREQUENCY_BANDS", "PathReport", "SessionReport", "TrafficReport", "VisitFrequencyReport", "path_report",
           "pv_uv_report", "session_report", "visit_frequency_report"]

#: Visit-frequency bands: ``(label, fewest days, most days)``.
FREQUENCY_BANDS = (("1", 1, 1), ("2", 2, 2), ("3-4", 3, 4), ("5-7", 5, 7), ("8-14", 8, 14), ("15+", 15, None))


@attrs.frozen(kw_only=True)
class TrafficReport(Report):
    """``rows``: ``(period, pv, uv, pv_per_uv)``, then an ``(all)`` row (its UV counts each user once)."""

    kind: str | None
    period: str
    since: datetime
    until: datetime


@attrs.frozen(kw_only=True)
class VisitFrequencyReport(Report):
    """``rows``: ``(days_visited, users, share)`` per band of :data:`FREQUENCY_BANDS`."""

    percent_columns: ClassVar[frozenset[str]] = frozenset({"share"})
    since: datetime
    until: datetime


@attrs.frozen(kw_only=True)
class SessionReport(Report):
    """``rows``: ``(period, sessions, users, avg_seconds, events_per_session, bounce_rate,
    seconds_per_user)`` per period of the sessions' first event, then ``(all)``."""

    percent_columns: ClassVar[frozenset[str]] = frozenset({"bounce_rate"})
    idle: timedelta
    period: str
    since: datetime
    until: datetime


@attrs.frozen(kw_only=True)
class PathReport(Report):
    """``rows``: ``(path, sessions, share)`` for the most common paths from the entry kind.

    :attr:`steps` says at each step (1 = the entry) how many sessions were
    still going and how many ended there: ``(step, sessions, ended, ended_share)``.
    """

    percent_columns: ClassVar[frozenset[str]] = frozenset({"share"})
    entry: str
    depth: int
    since: datetime
    until: datetime
    steps: tuple[tuple[int, int, int, float | None], ...]


class _Events:
    """The events in a window (of one kind code, if given), read through the facts' time
    order; ``ordered``: sorted by user, then time, then id (what sessions need; counting
    does not), else in time order."""

    def __init__(self, facts: UserFacts, since: datetime, until: datetime, kind: int | None = None, *,
                 ordered: bool = True) -> None:
        ids = facts.timeline.window(facts.event_user, facts.event_at, to_us(since), to_us(until))
        if kind is not None:
            ids = ids[facts.event_kind[ids] == kind]
        users, at = facts.event_user[ids], facts.event_at[ids]
        order = np.lexsort((ids, at, users)) if ordered else slice(None)
        self.user: Column = users[order]
        self.at: Column = at[order]
        self.kind: Column = facts.event_kind[ids][order]


def _bucket_of(at: Column, bounds: list[datetime]) -> Column:
    edges = np.array([to_us(b) for b in bounds], dtype=np.int64)
    index: Column = np.searchsorted(edges, at, side="right") - 1
    return index


def _distinct(users: Column) -> int:
    """How many distinct values ``users`` holds (sorting a period's few thousand events)."""
    ordered = np.sort(users)
    return int(np.count_nonzero(ordered[1:] != ordered[:-1])) + 1 if len(ordered) else 0


def pv_uv_report(facts: UserFacts, kind: str | None, period: str, since: datetime, until: datetime,
                 tz: tzinfo) -> TrafficReport:
    code = None if kind is None else facts.kind_code(kind)
    events = _Events(facts, since, since if code == -1 else until, code, ordered=False)  # -1: never tracked
    bounds = buckets(since, until, period, tz)
    n = len(bounds) - 1
    # Unordered events still come in time order (the facts' timeline): each period is a slice.
    cuts = np.searchsorted(events.at, [to_us(b) for b in bounds]).tolist()
    pv = [hi - lo for lo, hi in pairwise(cuts)]
    uv = [_distinct(events.user[lo:hi]) for lo, hi in pairwise(cuts)]
    rows: list[tuple[object, ...]] = [(label(bounds[i], period, tz), pv[i], uv[i], rate(pv[i], uv[i]))
                                      for i in range(n)]
    seen = np.zeros(int(events.user.max(initial=-1)) + 1, dtype=bool)
    seen[events.user] = True
    total_uv = int(np.count_nonzero(seen))
    rows.append(("(all)", len(events.at), total_uv, rate(len(events.at), total_uv)))
    covers = covering(since, until, tz)
    return TrafficReport(title=f"PV/UV of {kind or 'every event'} per {period}, {covers}", covers=covers,
                         columns=("period", "pv", "uv", "pv_per_uv"), rows=tuple(rows), kind=kind, period=period,
                         since=since, until=until)


def visit_frequency_report(facts: UserFacts, since: datetime, until: datetime, tz: tzinfo) -> VisitFrequencyReport:
    events = _Events(facts, since, until, ordered=False)
    days = _bucket_of(events.at, buckets(since, until, "day", tz))
    span = int(days.max(initial=0)) + 1
    pairs = np.unique(events.user * span + days)
    per_user = np.bincount(pairs // span)
    per_user = per_user[per_user > 0]
    users = len(per_user)
    rows = []
    for name, low, high in FREQUENCY_BANDS:
        inside = per_user >= low if high is None else (per_user >= low) & (per_user <= high)
        count = int(np.count_nonzero(inside))
        rows.append((name, count, rate(count, users)))
    covers = covering(since, until, tz)
    return VisitFrequencyReport(title=f"visit frequency: users by days visited, {covers}", covers=covers,
                                columns=("days_visited", "users", "share"), rows=tuple(rows), since=since,
                                until=until)


def _sessions(events: _Events, idle: timedelta) -> tuple[Column, Column]:
    """Start and end (exclusive) positions of each session in ``events``."""
    gap = idle // timedelta(microseconds=1)
    new = np.ones(len(events.at), dtype=bool)
    new[1:] = (events.user[1:] != events.user[:-1]) | (events.at[1:] - events.at[:-1] > gap)
    starts = np.flatnonzero(new)
    # No events, no sessions: appending the end position would make one session of nothing.
    ends = np.append(starts[1:], len(events.at)).astype(np.int64) if len(starts) else starts.astype(np.int64)
    return starts, ends


def session_report(facts: UserFacts, idle: timedelta, period: str, since: datetime, until: datetime,
                   tz: tzinfo) -> SessionReport:
    events = _Events(facts, since, until)
    starts, ends = _sessions(events, idle)
    bounds = buckets(since, until, period, tz)
    n = len(bounds) - 1
    bucket = _bucket_of(events.at[starts], bounds)
    seconds = (events.at[ends - 1] - events.at[starts]) / 1e6
    sizes = ends - starts
    users = events.user[starts]

    def row(name: str, sessions: int, people: int, total: float, events_n: int, bounced: int) -> tuple[object, ...]:
        return (name, sessions, people, total / sessions if sessions else None,
                events_n / sessions if sessions else None, rate(bounced, sessions), total / people if people else None)

    count = np.bincount(bucket, minlength=n).tolist()
    people = distinct_per_group(bucket, users, n).tolist()
    total = np.bincount(bucket, weights=seconds, minlength=n).tolist()
    events_n = np.bincount(bucket, weights=sizes, minlength=n).tolist()
    bounced = np.bincount(bucket, weights=sizes == 1, minlength=n).tolist()
    rows = [row(label(bounds[i], period, tz), count[i], people[i], total[i], int(events_n[i]), int(bounced[i]))
            for i in range(n)]
    rows.append(row("(all)", len(starts), len(np.unique(users)), float(seconds.sum()), len(events.at),
                    int(np.count_nonzero(sizes == 1))))
    covers = covering(since, until, tz)
    minutes = idle / timedelta(minutes=1)
    return SessionReport(title=f"sessions per {period} ({minutes:g} min idle ends one), {covers}", covers=covers,
                         columns=("period", "sessions", "users", "avg_seconds", "events_per_session", "bounce_rate",
                                  "seconds_per_user"),
                         rows=tuple(rows), idle=idle, period=period, since=since, until=until)


def path_report(facts: UserFacts, entry: str, depth: int, idle: timedelta, top: int, since: datetime,
                until: datetime, tz: tzinfo) -> PathReport:
    events = _Events(facts, since, until)
    starts, ends = _sessions(events, idle)
    session = np.repeat(np.arange(len(starts)), ends - starts)
    # A kind repeated back to back within a session counts once.
    keep = np.ones(len(events.at), dtype=bool)
    keep[1:] = (events.kind[1:] != events.kind[:-1]) | (session[1:] != session[:-1])
    kinds, session = events.kind[keep], session[keep]
    last = np.zeros(len(starts), dtype=np.int64)
    if len(session):
        last[session] = np.arange(len(session))  # the last kept position of each session
    at_entry = np.flatnonzero(kinds == facts.kind_code(entry))
    entered, first = np.unique(session[at_entry], return_index=True)
    first = at_entry[first]
    paths = np.full((len(first), depth), -1, dtype=np.int64)
    for step in range(depth):
        position = first + step
        going = position <= last[entered]
        paths[going, step] = kinds[position[going]]
    total = len(first)
    rows = []
    if total:
        unique, counts = np.unique(paths, axis=0, return_counts=True)
        for index in np.lexsort((np.arange(len(counts)), -counts))[:top].tolist():
            names = [facts.kinds[c] for c in unique[index].tolist() if c >= 0]
            rows.append((" → ".join(names), int(counts[index]), rate(int(counts[index]), total)))
    reached = [int(np.count_nonzero(paths[:, step] >= 0)) for step in range(depth)]
    reached.append(int(np.count_nonzero(first + depth <= last[entered])))  # went on past the last step shown
    steps = tuple((step + 1, reached[step], reached[step] - reached[step + 1],
                   rate(reached[step] - reached[step + 1], reached[step])) for step in range(depth))
    covers = covering(since, until, tz)
    return PathReport(title=f"paths from {entry} ({total} sessions, {depth} steps), {covers}", covers=covers,
                      columns=("path", "sessions", "share"), rows=tuple(rows), entry=entry, depth=depth, since=since,
                      until=until, steps=steps)
