"""The metric registry: named per-user values that expressions compare.

Other domains extend the segment language through
``ws.segments.register_metric(name, values, counters=..., time_dependent=...)``.
``values(tx, now)`` returns ``{user_id: value}``; users missing from the
dict have no value, so every comparison on them is false. Values are cached
until one of ``counters`` (``tx.meta`` change counters) moves, or, for
``time_dependent`` metrics, until the clock enters a new period (a minute by
default, or the ``timedelta`` given), so a busy workspace recomputes them at
most once per period.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

import attrs

from ..errors import ValidationError

if TYPE_CHECKING:
    from ..storage.base import Transaction

__all__ = ["MetricDef", "MetricSpec", "MetricValues", "check_metric_name"]

#: What a metric callable returns.
MetricValues = Mapping[int, int | float | Decimal | datetime | None]

_NAME = re.compile(r"(?:[^\W\d]\w*(?:\.\w+)*)|(?:days_since\([^\W\d]\w*(?:\.\w+)*\))")
_RESERVED = {"source", "has", "attr", "tag", "segment", "and", "or", "not", "in", "true", "false", "days_since",
             "weeks_since", "months_since"}


@attrs.frozen
class MetricDef:
    name: str
    values: Callable[[Transaction, datetime], MetricValues]
    counters: tuple[str, ...]
    #: Seconds of clock time a cached value stays valid (0: only counters invalidate it).
    period: float


@attrs.frozen(kw_only=True)
class MetricSpec:
    """A metric a domain declares for segment expressions: the arguments of
    :meth:`siyu.segments.Segments.register_metric`, as data the workspace registers."""

    name: str
    values: Callable[[Transaction, datetime], MetricValues]
    counters: tuple[str, ...] = ()
    time_dependent: bool | timedelta = False


def check_metric_name(name: object) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name) or name.lower() in _RESERVED \
            or name.lower().startswith("attr."):
        raise ValidationError(
            f"metric name {name!r} must be an identifier as written in expressions, such as 'orders', "
            "'spend_30d', 'rfm.r' or 'days_since(last_order)', and not a reserved word "
            f"({', '.join(sorted(_RESERVED))})"
        )
    return name
