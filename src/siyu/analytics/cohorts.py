"""Cohort retention: users grouped by when they were created, and the share
of each cohort active (or ordering) in each later period.

Cohort ``i`` holds the users created in period ``i`` (day, week from Monday,
or calendar month, in the business time zone). Column ``k`` is the share of
the cohort active in period ``i + k``: ``metric="active"`` counts a tracked
event or a counted order, ``metric="ordered"`` a counted order only.
Periods that have not started by ``until`` are ``None``; the last period,
when it is still running at ``until`` (``report.running``), counts activity
up to ``until`` only: its cohort is still forming and the shares in its
period can still grow, so tables mark them ``*`` and the heatmap hatches them.
"""

from __future__ import annotations

from array import array
from datetime import datetime
from typing import TYPE_CHECKING

import attrs
import numpy as np
from pyroaring import BitMap

from .._clock import from_us_required, to_us
from ..errors import ValidationError
from ._time import buckets, label
from .results import INCOMPLETE, Report, covering, rate

if TYPE_CHECKING:
    from datetime import tzinfo

    from ..storage.base import Transaction
    from .facts import UserFacts

__all__ = ["METRICS", "CohortReport", "check_metric", "cohort_report"]

METRICS = ("active", "ordered")
ADJECTIVE = {"day": "daily", "week": "weekly", "month": "monthly"}


def check_metric(metric: object) -> str:
    if metric not in METRICS:
        raise ValidationError(f"metric must be 'active' (events or orders) or 'ordered' (orders), got {metric!r}")
    assert isinstance(metric, str)
    return metric


@attrs.frozen(kw_only=True)
class CohortReport(Report):
    """A retention matrix.

    ``rows``: ``(cohort, users, r0, r1, ...)`` where ``rK`` is the share of the
    cohort active ``K`` periods after its own (``None`` for periods not yet
    started). ``retained[i][k]`` holds the user counts behind the shares.
    """

    period: str
    metric: str
    since: datetime
    until: datetime
    #: Cohort labels, oldest first (``2026-05-04`` for weeks and days, ``2026-05`` for months).
    cohorts: tuple[str, ...]
    sizes: tuple[int, ...]
    #: ``retained[i][k]``: users of cohort ``i`` active in period ``i + k`` (``None``: not started yet).
    retained: tuple[tuple[int | None, ...], ...]
    #: Whether the last period had not ended by ``until``: its numbers are partial.
    running: bool = False

    def is_percent(self, column: str) -> bool:
        return column not in ("cohort", "users")

    def partial(self) -> list[list[bool]]:
        """``partial()[i][k]``: whether cell ``(i, k)`` (and, at ``k = 0``, cohort ``i``'s size) counts a
        period still running at ``until``."""
        n = len(self.cohorts)
        return [[self.running and i + k == n - 1 for k in range(n)] for i in range(n)]

    def cells(self) -> list[list[str]]:
        cells = super().cells()
        for i, (row, flags) in enumerate(zip(cells, self.partial(), strict=True)):
            if self.running and i == len(cells) - 1:
                row[0] += INCOMPLETE
            for k, flag in enumerate(flags):
                if flag and self.rows[i][2 + k] is not None:
                    row[2 + k] += INCOMPLETE
        return cells

    def shares(self) -> list[list[float | None]]:
        """The retention shares, ``shares()[i][k]``, as in ``rows``."""
        return [list(row[2:]) for row in self.rows]


def cohort_cells(
    tx: Transaction, facts: UserFacts | None, bounds: list[int], metric: str
) -> tuple[dict[int, int], dict[tuple[int, int], int]]:
    """Cohort sizes and ``{(cohort, period): active users}``: the cohorts' members from the
    facts, each period's active users from the store's activity bitmaps when it keeps them."""
    activity = None if facts is None else facts.activity(tx, bounds, metric)
    if activity is None or facts is None:
        return tx.analytics.cohort_matrix(bounds, metric)
    edges = np.array(bounds, dtype=np.int64)
    created = facts.created
    ids = np.flatnonzero((created >= edges[0]) & (created < edges[-1]))
    bucket = np.searchsorted(edges, created[ids], side="right") - 1
    order = np.argsort(bucket, kind="stable")
    counts = np.bincount(bucket, minlength=len(bounds) - 1)
    members = np.split(ids[order].astype(np.uint32), np.cumsum(counts)[:-1])
    sizes: dict[int, int] = {}
    cells: dict[tuple[int, int], int] = {}
    for i, users in enumerate(members):
        if not len(users):
            continue
        cohort = BitMap(array("I", users.tobytes()))  # through the buffer: ten times faster than from NumPy
        sizes[i] = len(cohort)
        for j in range(i, len(activity)):
            active = cohort.intersection_cardinality(activity[j])
            if active:
                cells[i, j] = active
    return sizes, cells


def cohort_report(
    tx: Transaction, facts: UserFacts | None, period: str, metric: str, since: datetime, until: datetime, tz: tzinfo
) -> CohortReport:
    bounds = buckets(since, until, period, tz)
    # The running period ends at `until`, so re-running a report for a past
    # `until` gives the same numbers whatever happened since.
    bounds_us = [to_us(b) for b in bounds]
    bounds_us[-1] = min(bounds_us[-1], to_us(until))
    if bounds_us[-1] <= bounds_us[-2]:
        bounds_us.pop()
        bounds.pop()
    n = len(bounds_us) - 1
    running = bounds[-1] > until
    sizes, active = cohort_cells(tx, facts, bounds_us, metric)
    labels = tuple(label(from_us_required(bounds_us[i], tz), period, tz) for i in range(n))
    retained = tuple(tuple(active.get((i, i + k), 0) for k in range(n - i)) + (None,) * i for i in range(n))
    rows = []
    for i in range(n):
        size = sizes.get(i, 0)
        rows.append((labels[i], size, *(None if v is None else rate(v, size) for v in retained[i])))
    notes = () if not running else (
        f"{INCOMPLETE} {labels[-1]} had not ended by {until.astimezone(tz):%Y-%m-%d %H:%M}: that cohort is still "
        "joining and every share in that period can still grow",)
    covers = covering(bounds[0], until, tz)
    return CohortReport(
        title=f"{ADJECTIVE[period]} cohort retention ({metric}), {covers}",
        covers=covers,
        columns=("cohort", "users", *(str(k) for k in range(n))),
        rows=tuple(rows),
        footnotes=notes,
        running=running,
        period=period,
        metric=metric,
        since=since,
        until=until,
        cohorts=labels,
        sizes=tuple(sizes.get(i, 0) for i in range(n)),
        retained=retained,
    )
