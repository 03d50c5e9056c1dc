"""Drainage (引流) per touchpoint: reached → added on WeCom → ordered.

A touchpoint is a user's attribution: ``source`` (parcel card, live room,
store ...), ``state`` (the channel QR code's state) or ``campaign``.
*Reached* are the users created in ``[since, until)`` with that value,
unless you know the real exposure (parcels shipped, store visitors) and pass
it as ``reached={"taobao_parcel_card": 12000}``. *Added* are the reached
users who added the shop on WeCom before ``until`` (the funnel's
``added_wecom``), *ordered* those of them with a counted order.
``drainage_rate`` = added / reached, ``order_rate`` = ordered / added.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, ClassVar

import attrs
import numpy as np

from .._clock import to_us
from ..errors import ValidationError
from .funnel import NONE_LABEL
from .results import Report, covering, rate

if TYPE_CHECKING:
    from datetime import tzinfo

    from .facts import UserFacts

__all__ = ["TouchpointReport", "touchpoint_report"]


@attrs.frozen(kw_only=True)
class TouchpointReport(Report):
    """``rows``: ``(touchpoint, reached, added, drainage_rate, ordered, order_rate, overall_rate)``,
    biggest touchpoint first."""

    percent_columns: ClassVar[frozenset[str]] = frozenset({"drainage_rate", "order_rate", "overall_rate"})

    by: str
    since: datetime | None
    until: datetime


def check_reached(value: object) -> dict[str, int]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValidationError("reached must be a dict like {'taobao_parcel_card': 12000}")
    out = {}
    for name, n in value.items():
        if not isinstance(name, str) or isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ValidationError(f"reached[{name!r}] must be a non-negative int of people reached, got {n!r}")
        out[name] = n
    return out


def touchpoint_report(
    facts: UserFacts, by: str, since: datetime | None, until: datetime, exposure: dict[str, int], tz: tzinfo
) -> TouchpointReport:
    until_us = to_us(until)
    users = facts.created < until_us
    if since is not None:
        users &= facts.created >= to_us(since)
    added = users & (facts.wecom < until_us)
    ordered = added & (facts.first_paid < until_us)
    codes, labels = facts.groups(by)
    alive = codes >= 0
    n = len(labels)
    counted = [np.bincount(codes[s & alive], minlength=n).tolist() for s in (users, added, ordered)]
    groups = {(NONE_LABEL if label is None else label): i for i, label in enumerate(labels)}
    rows = []
    for name in exposure:
        groups.setdefault(name, -1)
    for name, code in groups.items():
        n_users, n_added, n_ordered = (0, 0, 0) if code < 0 else (c[code] for c in counted)
        n_reached = exposure.get(name, n_users)
        if n_reached < n_added:
            raise ValidationError(
                f"reached[{name!r}]={n_reached} is less than the {n_added} users of that touchpoint who added "
                "the shop; pass the number of people exposed to it (at least the users it brought)"
            )
        if n_reached or name in exposure:
            rows.append((name, n_reached, n_added, rate(n_added, n_reached), n_ordered,
                         rate(n_ordered, n_added), rate(n_ordered, n_reached)))
    rows.sort(key=lambda r: (-int(r[1]), str(r[0])))  # type: ignore[call-overload]
    covers = covering(since, until, tz)
    return TouchpointReport(
        title=f"drainage per {by}: reached -> added on WeCom -> ordered, {covers}",
        covers=covers,
        columns=("touchpoint", "reached", "added", "drainage_rate", "ordered", "order_rate", "overall_rate"),
        rows=tuple(rows),
        by=by,
        since=since,
        until=until,
    )
