"""``ws.analytics``: the shop's numbers computed from its own data."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from .._clock import to_us
from .._validation import check_int, check_text
from ..errors import ValidationError
from ..segments.metrics import MetricSpec
from ._time import AS_OF_SETTING, bucket_start, check_period, check_window
from .aov import AovReport, aov_report, check_aov_by
from .cohorts import CohortReport, check_metric, cohort_report
from .facts import FactsUnavailable, UserFacts, reading
from .fission import FissionReport, fission_report
from .funnel import BUILTIN_STEPS, FunnelReport, check_by, check_steps, funnel_report, reached
from .new_vs_returning import NewVsReturningReport, new_vs_returning_report
from .repurchase import RepurchaseReport, repurchase_report
from .rfm import RfmReport, rfm_report, rfm_scores
from .touchpoints import TouchpointReport, check_reached, touchpoint_report
from .traffic import (
    PathReport,
    SessionReport,
    TrafficReport,
    VisitFrequencyReport,
    path_report,
    pv_uv_report,
    session_report,
    visit_frequency_report,
)

if TYPE_CHECKING:
    from .._uow import UnitOfWork
    from ..segments import Segments
    from ..segments.metrics import MetricValues
    from ..services.referrals import Referrals
    from ..storage.base import Transaction

__all__ = ["Analytics"]

#: How many periods a period report covers when ``since`` is not given.
DEFAULT_PERIODS = 12
#: How many days the visit-frequency and path reports cover when ``since`` is not given.
DEFAULT_DAYS = 30
#: The change counters each step depends on (for the segment metric caches).
_STEP_COUNTERS = {
    "first_seen": ("users",),
    "added_wecom": ("users", "activity"),
    "first_order": ("users", "orders"),
    "second_order": ("users", "orders"),
    "invited_friend": ("users", "referrals"),
}


def _check_idle(idle: object) -> None:
    if not isinstance(idle, timedelta) or idle <= timedelta(0):
        raise ValidationError(f"idle must be a positive timedelta such as timedelta(minutes=30), got {idle!r}")


class Analytics:
    """``ws.analytics``: funnel, cohorts, repurchase, AOV, RFM, touchpoints,
    new vs returning buyers, fission, PV/UV, visit frequency, sessions and paths,
    each as a :class:`~siyu.analytics.results.Report`.

    Every method reads one consistent snapshot. ``until`` defaults to
    :meth:`as_of` (now, except on a demo database) and is exclusive; ``since``
    is inclusive; each report's title says the time it covers. Periods are
    ``"day"``, ``"week"`` (from Monday) or ``"month"`` (calendar) in the
    business time zone.

    It also registers segment metrics: ``events.<kind>`` (how many events of a
    tracked kind each user has: ``events.page_view >= 2``), ``rfm.r``, ``rfm.f``, ``rfm.m``
    (5-quantile scores of buyers) and ``funnel.<step>`` (``true`` when the
    user has reached a built-in step, or a tracked-event step once a funnel
    used it): ``ws.segments.count("rfm.r >= 4 and funnel.added_wecom = true")``.
    """

    def __init__(
        self, uow: UnitOfWork, *, segments: Segments, referrals: Referrals, horizon: Callable[[], int]
    ) -> None:
        self._uow = uow
        self._horizon = horizon
        self._facts = UserFacts()
        self._segments = segments
        self._referrals = referrals
        self._lock = threading.Lock()
        self._rfm_memo: tuple[tuple[Any, ...], dict[int, tuple[int, int, int]]] | None = None

    # -- segment metrics ----------------------------------------------------------------
    def segment_metrics(self) -> list[MetricSpec]:
        """The metrics analytics declares for segments: ``rfm.r``, ``rfm.f``, ``rfm.m`` and
        ``funnel.<step>`` of the built-in steps (the workspace registers them)."""
        rfm = [MetricSpec(name=f"rfm.{name}", values=self._rfm_metric(index), counters=("orders", "users"))
               for index, name in enumerate("rfm")]
        return rfm + [self._step_metric(step, _STEP_COUNTERS[step]) for step in BUILTIN_STEPS]

    @staticmethod
    def event_metric(kind: str) -> MetricSpec:
        """The segment metric ``events.<kind>``: how many ``kind`` events each user tracked
        (0 for users with none): ``ws.segments.count("events.page_view >= 2")``."""

        def values(tx: Transaction, now: datetime) -> MetricValues:
            counts = dict(tx.analytics.event_counts(kind))
            if not counts and kind not in tx.analytics.event_kinds():
                known = ", ".join(tx.analytics.event_kinds()[:15]) or "none tracked yet"
                raise ValidationError(f"events.{kind}: no {kind!r} event was ever tracked; use a tracked kind "
                                      f"({known})")
            return {uid: counts.get(uid, 0) for uid in tx.segments.user_ids()}

        return MetricSpec(name=f"events.{kind}", values=values, counters=("activity", "users"))

    @staticmethod
    def _step_metric(step: str, counters: Sequence[str]) -> MetricSpec:
        def values(tx: Transaction, now: datetime) -> MetricValues:
            members = reached(tx, step, None, to_us(now) + 1)
            return {uid: uid in members for uid in tx.segments.user_ids()}

        return MetricSpec(name=f"funnel.{step}", values=values, counters=tuple(counters))

    def _rfm_metric(self, index: int) -> Callable[[Transaction, datetime], MetricValues]:
        def values(tx: Transaction, now: datetime) -> MetricValues:
            token = (tx.meta.version("orders"), tx.meta.version("users"))
            with self._lock:
                memo = self._rfm_memo
                if memo is None or memo[0] != token:
                    values = tx.analytics.buyer_values(to_us(now) + 1)
                    scores = rfm_scores(values, 5)
                    memo = self._rfm_memo = (token, scores)
            return {uid: s[index] for uid, s in memo[1].items()}

        return values

    def facts(self, *, event_rows: bool = False) -> AbstractContextManager[tuple[Transaction, UserFacts]]:
        """A read transaction and the shared per-user facts caught up with it (held under their
        lock until the block ends), for read models built on the same columns, such as
        ``ws.recommendations``. ``event_rows``: also keep the tracked events by id."""
        return reading(self._uow, self._facts, self._horizon, event_rows=event_rows)

    def as_of(self) -> datetime:
        """Where reports end when no ``until`` is given: now, or on a database
        built by ``siyu demo`` the moment its simulated history ends (so its
        reports do not trail off into weeks with no data)."""
        with self._uow.read() as tx:
            stored = tx.meta.get(AS_OF_SETTING)
        if stored is not None:
            try:
                return datetime.fromisoformat(stored).astimezone(self._uow.tz)
            except ValueError:
                pass  # not ours to fail on: a report still works from the clock
        return self._uow.now()

    # -- reports --------------------------------------------------------------------------
    def funnel(
        self,
        steps: Sequence[str] = BUILTIN_STEPS,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        by: str | None = None,
    ) -> FunnelReport:
        """Users at each step and the conversion between steps.

        Users enter by reaching ``steps[0]`` in ``[since, until)`` and count at
        a later step if they reached it, and every step between, before
        ``until``. ``by``: ``"source"``, ``"campaign"`` or ``"state"`` adds one
        block per attribution value. Steps are the built-in ones
        (``first_seen``, ``added_wecom``, ``first_order``, ``second_order``,
        ``invited_friend``) or tracked event kinds; an unknown name raises
        :class:`~siyu.errors.ValidationError`.
        """
        start, end = check_window(since, until, self._end(until))
        group = check_by(by)
        with self._uow.read() as tx:
            names = check_steps(tx, steps)
        kinds = [n for n in names if n not in BUILTIN_STEPS]
        with reading(self._uow, self._facts, self._horizon, kinds) as (_, facts):
            report = funnel_report(facts, names, start, end, group, self._uow.tz)
        for name in names:
            if name not in BUILTIN_STEPS and f"funnel.{name}" not in self._segments.metrics():
                spec = self._step_metric(name, ("users", "activity"))
                self._segments.register_metric(spec.name, spec.values, counters=spec.counters, replace=True)
        return report

    def _end(self, until: datetime | None) -> datetime:
        # Only read the stored as-of when it is needed: an explicit until is the common case in code.
        return self.as_of() if until is None else self._uow.now()

    def _period_window(self, period: str, since: datetime | None, until: datetime | None) -> tuple[datetime,
                                                                                                  datetime]:
        start, end = check_window(since, until, self._end(until))
        if start is None:
            start = bucket_start(end - timedelta(microseconds=1), period, self._uow.tz)
            for _ in range(DEFAULT_PERIODS - 1):
                start = bucket_start(start - timedelta(microseconds=1), period, self._uow.tz)
        return start, end

    def cohorts(
        self,
        period: str = "week",
        metric: str = "active",
        *,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> CohortReport:
        """Retention matrix of the users created in each period since ``since``
        (default: the last 12 periods, the running one included).

        ``metric="active"`` counts users with a tracked event or a counted
        order in a later period, ``"ordered"`` only a counted order.
        """
        check_period(period)
        check_metric(metric)
        start, end = self._period_window(period, since, until)
        try:
            with reading(self._uow, self._facts, self._horizon) as (tx, facts):
                return cohort_report(tx, facts, period, metric, start, end, self._uow.tz)
        except FactsUnavailable:
            pass  # ids too wide for the columns: the raw rows answer (slower)
        with self._uow.read() as tx:
            return cohort_report(tx, None, period, metric, start, end, self._uow.tz)

    def repurchase(
        self,
        window: timedelta = timedelta(days=90),
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        period: str = "month",
    ) -> RepurchaseReport:
        """Share of first-time buyers (first order in ``[since, until)``) who
        ordered again within ``window``, per period of their first order."""
        if not isinstance(window, timedelta) or window <= timedelta(0):
            raise ValidationError(f"window must be a positive timedelta such as timedelta(days=90), got {window!r}")
        check_period(period)
        start, end = check_window(since, until, self._end(until))
        with reading(self._uow, self._facts, self._horizon) as (_, facts):
            return repurchase_report(facts, window, period, start, end, self._uow.tz)

    def aov(
        self, *, since: datetime | None = None, until: datetime | None = None, by: str | None = None
    ) -> AovReport:
        """Average order value of counted orders paid in ``[since, until)``;
        ``by``: ``"channel"``, ``"source"`` (the buyer's), ``"day"``, ``"week"`` or ``"month"``."""
        group = check_aov_by(by)
        start, end = check_window(since, until, self._end(until))
        with reading(self._uow, self._facts, self._horizon) as (_, facts):
            return aov_report(facts, group, start, end, self._uow.tz)

    def rfm(self, quantiles: int = 5, *, until: datetime | None = None) -> RfmReport:
        """Per-buyer R, F, M scores from 1 to ``quantiles`` (see :mod:`siyu.analytics.rfm`)."""
        check_int(quantiles, "quantiles", minimum=2, maximum=100)
        _, end = check_window(None, until, self._end(until))
        with reading(self._uow, self._facts, self._horizon) as (_, facts):
            return rfm_report(facts, quantiles, end, self._uow.tz)

    def touchpoints(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        by: str = "source",
        reached: Mapping[str, int] | None = None,
    ) -> TouchpointReport:
        """Drainage rate per touchpoint: reached → added on WeCom → ordered.

        ``by``: ``"source"``, ``"state"`` (channel QR state) or ``"campaign"``.
        ``reached`` overrides the reach of touchpoints whose real exposure you
        know (``{"taobao_parcel_card": 12000}`` parcels shipped)."""
        if check_by(by) is None:
            raise ValidationError("touchpoints need by='source', 'state' or 'campaign'")
        exposure = check_reached(reached)
        start, end = check_window(since, until, self._end(until))
        with reading(self._uow, self._facts, self._horizon) as (_, facts):
            return touchpoint_report(facts, by, start, end, exposure, self._uow.tz)

    def new_vs_returning(
        self, period: str = "month", *, since: datetime | None = None, until: datetime | None = None
    ) -> NewVsReturningReport:
        """Buyers, orders and revenue per period, split into first-time and returning buyers
        (default: the last 12 periods)."""
        check_period(period)
        start, end = self._period_window(period, since, until)
        with reading(self._uow, self._facts, self._horizon) as (_, facts):
            return new_vs_returning_report(facts, period, start, end, self._uow.tz)

    # -- traffic (tracked events) ---------------------------------------------------------------
    def _days_window(self, since: datetime | None, until: datetime | None) -> tuple[datetime, datetime]:
        start, end = check_window(since, until, self._end(until))
        return (end - timedelta(days=DEFAULT_DAYS) if start is None else start), end

    def pv_uv(
        self, kind: str | None = "page_view", period: str = "day", *, since: datetime | None = None,
        until: datetime | None = None,
    ) -> TrafficReport:
        """PV (events of ``kind``; ``None``: every kind) and UV (distinct users) per period
        (default: the last 12 periods)."""
        check_period(period)
        if kind is not None:
            check_text(kind, "kind", max_length=64)
        start, end = self._period_window(period, since, until)
        with reading(self._uow, self._facts, self._horizon, event_rows=True) as (_, facts):
            return pv_uv_report(facts, kind, period, start, end, self._uow.tz)

    def visit_frequency(self, *, since: datetime | None = None, until: datetime | None = None) -> VisitFrequencyReport:
        """Users by how many distinct days they visited (any tracked event) in ``[since, until)``
        (default: the last 30 days)."""
        start, end = self._days_window(since, until)
        with reading(self._uow, self._facts, self._horizon, event_rows=True) as (_, facts):
            return visit_frequency_report(facts, start, end, self._uow.tz)

    def sessions(
        self, period: str = "day", *, idle: timedelta = timedelta(minutes=30), since: datetime | None = None,
        until: datetime | None = None,
    ) -> SessionReport:
        """Sessions and time on site (停留时长) per period: a gap of more than ``idle`` between a
        user's events ends a session (see :mod:`siyu.analytics.traffic`); default: the last 12 periods."""
        check_period(period)
        _check_idle(idle)
        start, end = self._period_window(period, since, until)
        with reading(self._uow, self._facts, self._horizon, event_rows=True) as (_, facts):
            return session_report(facts, idle, period, start, end, self._uow.tz)

    def paths(
        self, entry: str = "page_view", *, depth: int = 4, top: int = 10, idle: timedelta = timedelta(minutes=30),
        since: datetime | None = None, until: datetime | None = None,
    ) -> PathReport:
        """The ``top`` most common paths of ``depth`` steps from ``entry`` within sessions, and where
        sessions end (在哪个环节流失): ``report.steps``. Default window: the last 30 days."""
        check_text(entry, "entry", max_length=64)
        check_int(depth, "depth", minimum=2, maximum=20)
        check_int(top, "top", minimum=1, maximum=1000)
        _check_idle(idle)
        start, end = self._days_window(since, until)
        with reading(self._uow, self._facts, self._horizon, event_rows=True) as (_, facts):
            return path_report(facts, entry, depth, idle, top, start, end, self._uow.tz)

    def fission(self, campaign: str | None = None) -> FissionReport:
        """Fission rate, inviters, K-factor, generations and the invite funnel
        (``ws.referrals.stats``), as of now (:meth:`as_of`)."""
        return fission_report(self._referrals.stats(campaign), self.as_of(), self._uow.tz)

    def reindex(self) -> None:
        """Rebuild what the reports read from the raw rows: the activity rollup
        behind cohort retention, and the per-user facts behind the funnel and
        RFM (:mod:`siyu.analytics.facts`).

        siyu keeps both current on every write it makes; rebuild them after
        loading events or orders straight into the database (a bulk SQL
        import), or once after upgrading a database that already held rows.
        Until then, cohort reports stay right but read the raw rows (slower).
        """
        upto = self._horizon()
        with self._uow.write() as tx:
            tx.analytics.reindex()
        with self._uow.read() as tx, self._facts.lock:
            self._facts.rebuild(tx, upto)
