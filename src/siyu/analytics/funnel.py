"""The AARRR funnel: how many users reach each step, per breakdown.

Built-in steps (see the funnel page of the reports guide for the precise
definitions): ``first_seen`` (the user was created), ``added_wecom`` (a
``wecom_external_userid`` identity was linked, or an ``added_wecom`` event
was tracked), ``first_order`` and ``second_order`` (counted orders: not
fully refunded), ``invited_friend`` (at least one invitee actively bound).
Any tracked event kind is a step too: reached when first tracked.

Users *enter* the funnel by reaching the first step inside
``[since, until)``; a user counts at step ``k`` if they entered and
reached every step from 2 to ``k`` before ``until`` (in any order).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, ClassVar

import attrs
import numpy as np
from pyroaring import BitMap

from .._clock import to_us
from .._validation import check_text
from ..errors import ValidationError
from .results import Report, covering, rate

if TYPE_CHECKING:
    from datetime import tzinfo

    from ..storage.base import Transaction
    from .facts import Column, UserFacts

__all__ = [
    "BREAKDOWNS", "BUILTIN_STEPS", "FunnelReport", "StepSets", "check_by", "check_steps", "first_reach",
    "funnel_report", "reached",
]

BUILTIN_STEPS = ("first_seen", "added_wecom", "first_order", "second_order", "invited_friend")
#: Attribution fields a funnel can be broken down by (columns of the user).
BREAKDOWNS = ("source", "campaign", "state")
#: The label of users without a value for the breakdown field.
NONE_LABEL = "(none)"
ALL_LABEL = "(all)"


def check_by(by: object) -> str | None:
    if by is not None and by not in BREAKDOWNS:
        raise ValidationError(
            f"by={by!r} is not a breakdown; use None, 'source', 'campaign' (source_campaign) or 'state' (source_state)"
        )
    return by  # type: ignore[return-value]


def check_steps(tx: Transaction, steps: object) -> list[str]:
    """Validate a step list: non-empty, no repeats, every name built in or a tracked event kind."""
    if isinstance(steps, str) or not isinstance(steps, Sequence) or not steps:
        raise ValidationError(
            "steps must be a non-empty list of step names, e.g. ['first_seen', 'added_wecom', 'first_order']"
        )
    names = [check_text(step, "step") for step in steps]
    if len(set(names)) != len(names):
        raise ValidationError(f"steps {names!r} repeat a step; each step may appear once")
    kinds: list[str] | None = None
    for name in names:
        if name in BUILTIN_STEPS:
            continue
        if kinds is None:
            kinds = tx.analytics.event_kinds()
        if name not in kinds:
            known = ", ".join(kinds[:15]) or "none tracked yet"
            raise ValidationError(
                f"unknown funnel step {name!r}; use a built-in step ({', '.join(BUILTIN_STEPS)}) "
                f"or a tracked event kind (tracked so far: {known})"
            )
    return names


class StepSets:
    """Who first reached each step, read once per report.

    ``first_order`` and ``second_order`` before a cut-off come from one pass
    over the per-buyer order counts."""

    def __init__(self, tx: Transaction, until: int) -> None:
        self.tx, self.until = tx, until
        self._buyers: tuple[BitMap, BitMap] | None = None

    def _orders(self) -> tuple[BitMap, BitMap]:
        if self._buyers is None:
            counts = self.tx.analytics.order_counts(self.until)
            self._buyers = (BitMap(u for u, _ in counts), BitMap(u for u, n in counts if n >= 2))
        return self._buyers

    def reached(self, step: str, since: int | None = None) -> BitMap:
        """Users who first reached ``step`` in ``[since, until)``."""
        store, until = self.tx.analytics, self.until
        if step == "first_seen":
            return BitMap(store.users_created(since, until))
        if step == "added_wecom":
            if since is None:
                return BitMap(store.identity_linked("wecom_external_userid", None, until)) | BitMap(
                    store.event_reached("added_wecom", None, until)
                )
            # First reach = the earlier of the two ways: reached in range by one
            # way and by neither before the range.
            before = StepSets(self.tx, since).reached(step)
            inside = BitMap(store.identity_linked("wecom_external_userid", since, until)) | BitMap(
                store.event_reached("added_wecom", since, until)
            )
            return inside - before
        if step in ("first_order", "second_order"):
            if since is None:
                return self._orders()[step == "second_order"]
            return BitMap(store.nth_order_reached(1 if step == "first_order" else 2, since, until))
        if step == "invited_friend":
            return BitMap(store.invited_reached(since, until))
        return BitMap(store.event_reached(step, since, until))


def reached(tx: Transaction, step: str, since: int | None, until: int) -> BitMap:
    """Users who first reached ``step`` in ``[since, until)`` (instants in storage microseconds)."""
    return StepSets(tx, until).reached(step, since)


@attrs.frozen(kw_only=True)
class FunnelReport(Report):
    """Counts and conversions per step, per breakdown group.

    ``rows``: ``(group, step, users, step_conversion, overall_conversion)``;
    ``step_conversion`` is users at this step / users at the previous one,
    ``overall_conversion`` / users at the first step. With a breakdown, one
    block per group (largest first) and a final ``(all)`` block.
    """

    percent_columns: ClassVar[frozenset[str]] = frozenset({"step_conversion", "overall_conversion"})

    steps: tuple[str, ...]
    by: str | None
    since: datetime | None
    until: datetime
    #: ``{group: (users at step 1, users at step 2, ...)}``; the total is under ``"(all)"``.
    counts: dict[str, tuple[int, ...]]

    def totals(self) -> tuple[int, ...]:
        """Users at each step over all groups."""
        return self.counts[ALL_LABEL]


def first_reach(facts: UserFacts, step: str) -> Column:
    """When each user first reached ``step`` (``NEVER``: not yet), indexed by user id."""
    columns = {
        "first_seen": lambda: facts.created,
        "added_wecom": lambda: facts.wecom,
        "first_order": lambda: facts.first_paid,
        "second_order": lambda: facts.second_paid,
        "invited_friend": lambda: facts.invited,
    }
    pick = columns.get(step)
    return facts.event(step) if pick is None else pick()


def funnel_report(
    facts: UserFacts, steps: list[str], since: datetime | None, until: datetime, by: str | None,
    tz: tzinfo,
) -> FunnelReport:
    until_us = to_us(until)
    # One boolean column per step: entered (first reached step 1 in range), then reached each later step too.
    reach = first_reach(facts, steps[0])
    current = reach < until_us
    if since is not None:
        current &= reach >= to_us(since)
    sets = [current]
    for step in steps[1:]:
        current = current & (first_reach(facts, step) < until_us)
        sets.append(current)

    counts: dict[str, tuple[int, ...]] = {}
    if by is not None:
        codes, labels = facts.groups(by)
        alive = codes >= 0
        per_code = [np.bincount(codes[s & alive], minlength=len(labels)).tolist() for s in sets]
        per_group = {(NONE_LABEL if label is None else label): tuple(c[i] for c in per_code)
                     for i, label in enumerate(labels)}
        for name in sorted(per_group, key=lambda g: (-per_group[g][0], g)):
            if per_group[name][0]:
                counts[name] = per_group[name]
    counts[ALL_LABEL] = tuple(int(np.count_nonzero(s)) for s in sets)
    rows = []
    for group, values in counts.items():
        for index, (step, users) in enumerate(zip(steps, values, strict=True)):
            previous = values[index - 1] if index else users
            rows.append((group, step, users, rate(users, previous), rate(users, values[0])))
    covers = covering(since, until, tz)
    return FunnelReport(
        title=f"funnel ({steps[0]} {covers}{', by ' + by if by else ''})",
        covers=covers,
        columns=("group", "step", "users", "step_conversion", "overall_conversion"),
        rows=tuple(rows),
        steps=tuple(steps),
        by=by,
        since=since,
        until=until,
        counts=counts,
    )
