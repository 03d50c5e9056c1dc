"""Fission (裂变) metrics from the referral graph, as a report.

The numbers are :meth:`ws.referrals.stats <siyu.services.referrals.Referrals.stats>`:
seed users, new users they brought, fission rate (new / seeds), invites
sent, K-factor (invites per sharer × conversion), generations, and the
invite funnel sent → scanned → bound → converted, in total and per channel
state.
"""

from __future__ import annotations

from typing import ClassVar

import attrs

from ..models.referrals import FissionStats
from .results import Report, rate

__all__ = ["FissionReport", "fission_report"]


@attrs.frozen(kw_only=True)
class FissionReport(Report):
    """``rows``: ``(metric, value)``. :meth:`channel_states` is the funnel per channel state."""

    stats: FissionStats

    def channel_states(self) -> Report:
        """``(channel_state, sent, scanned, bound, converted, bind_rate, convert_rate)`` rows."""
        rows = tuple(
            (state, f.sent, f.scanned, f.bound, f.converted, rate(f.bound, f.sent or f.scanned),
             rate(f.converted, f.bound))
            for state, f in self.stats.by_channel_state.items()
        )
        return _StateReport(title="invite funnel per channel state",
                            columns=("channel_state", "sent", "scanned", "bound", "converted", "bind_rate",
                                     "convert_rate"), rows=rows)


@attrs.frozen(kw_only=True)
class _StateReport(Report):
    percent_columns: ClassVar[frozenset[str]] = frozenset({"bind_rate", "convert_rate"})


def fission_report(stats: FissionStats) -> FissionReport:
    f = stats.funnel
    rows: list[tuple[str, object]] = [
        ("seed_users", stats.seed_users),
        ("new_users", stats.new_users),
        ("fission_rate", round(stats.fission_rate, 4)),
        ("invites_sent", stats.invites_sent),
        ("k_factor", round(stats.k_factor, 4)),
        ("max_depth", stats.max_depth),
        *((f"generation_{g}", n) for g, n in stats.generations.items()),
        ("funnel_sent", f.sent),
        ("funnel_scanned", f.scanned),
        ("funnel_bound", f.bound),
        ("funnel_converted", f.converted),
    ]
    return FissionReport(
        title=f"fission ({'campaign ' + stats.campaign if stats.campaign else 'all bindings'})",
        columns=("metric", "value"),
        rows=tuple(rows),
        stats=stats,
    )
