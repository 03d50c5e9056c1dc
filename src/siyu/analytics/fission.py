"""Fission (裂变) metrics from the referral graph, as a report.

The numbers are :meth:`ws.referrals.stats <siyu.services.referrals.Referrals.stats>`,
as of the moment the report is made: seed users, new users they brought,
fission rate (new / seeds), inviters (users who recorded a share or have a
bound invitee), invites sent, K-factor, generations, and the invite funnel
sent → scanned → bound → converted, in total and per channel state.

The K-factor is :attr:`FissionStats.k_factor
<siyu.models.referrals.FissionStats.k_factor>`, defined once:
(invites sent / inviters) × (new users / invites sent).
"""

from __future__ import annotations

from datetime import datetime, tzinfo
from typing import ClassVar

import attrs

from ..models.referrals import FissionStats
from .results import Report, rate

__all__ = ["FissionReport", "fission_report"]


@attrs.frozen(kw_only=True)
class FissionReport(Report):
    """``rows``: ``(metric, value)``. :meth:`channel_states` is the funnel per channel state."""

    stats: FissionStats
    #: The moment the numbers were read (reports on a demo database: the demo's end).
    as_of: datetime | None = None

    def channel_states(self) -> Report:
        """``(channel_state, sent, scanned, bound, converted, scan_rate, bind_rate, convert_rate)`` rows:
        each rate is a stage over the one before it."""
        rows = tuple(
            (state, f.sent, f.scanned, f.bound, f.converted, rate(f.scanned, f.sent), rate(f.bound, f.scanned),
             rate(f.converted, f.bound))
            for state, f in self.stats.by_channel_state.items()
        )
        return _StateReport(title=f"invite funnel per channel state{_as_of(self.as_of)}",
                            columns=("channel_state", "sent", "scanned", "bound", "converted", "scan_rate",
                                     "bind_rate", "convert_rate"), rows=rows)


@attrs.frozen(kw_only=True)
class _StateReport(Report):
    percent_columns: ClassVar[frozenset[str]] = frozenset({"scan_rate", "bind_rate", "convert_rate"})


def _as_of(moment: datetime | None) -> str:
    return "" if moment is None else f", as of {moment:%Y-%m-%d %H:%M}"


def fission_report(stats: FissionStats, as_of: datetime | None = None, tz: tzinfo | None = None) -> FissionReport:
    f = stats.funnel
    rows: list[tuple[str, object]] = [
        ("seed_users", stats.seed_users),
        ("new_users", stats.new_users),
        ("fission_rate", round(stats.fission_rate, 4)),
        ("inviters", stats.inviters),
        ("invites_sent", stats.invites_sent),
        ("k_factor", round(stats.k_factor, 4)),
        ("max_depth", stats.max_depth),
        *((f"generation_{g}", n) for g, n in stats.generations.items()),
        ("funnel_sent", f.sent),
        ("funnel_scanned", f.scanned),
        ("funnel_bound", f.bound),
        ("funnel_converted", f.converted),
    ]
    local = None if as_of is None else as_of.astimezone(tz)
    return FissionReport(
        title=f"fission ({'campaign ' + stats.campaign if stats.campaign else 'all bindings'}{_as_of(local)})",
        covers=_as_of(local).removeprefix(", "),
        columns=("metric", "value"),
        rows=tuple(rows),
        stats=stats,
        as_of=local,
    )
