"""Time windows and calendar buckets in the business time zone.

Weeks start on Monday, months follow the calendar (``dateutil``'s
``relativedelta``), days run midnight to midnight in ``ws.tz``. A bucket
list is the sorted boundaries ``b0 < b1 < ... < bn``; bucket ``i`` is the
half-open interval ``[b_i, b_{i+1})``.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, tzinfo

from dateutil.relativedelta import relativedelta

from .._clock import aware
from ..errors import ValidationError

__all__ = [
    "AS_OF_SETTING", "MAX_BUCKETS", "PERIODS", "bucket_start", "buckets", "check_period", "check_window", "label",
]

PERIODS = ("day", "week", "month")
#: Workspace setting holding the ISO instant a snapshot database's data ends at (``siyu demo`` writes it);
#: reports on such a database default to it instead of now.
AS_OF_SETTING = "reports.as_of"
#: Most buckets one report may span (a daily report over ~5 years).
MAX_BUCKETS = 2000


def check_period(period: object) -> str:
    if period not in PERIODS:
        raise ValidationError(f"period must be one of 'day', 'week' or 'month', got {period!r}")
    assert isinstance(period, str)
    return period


def check_window(since: object, until: object, now: datetime) -> tuple[datetime | None, datetime]:
    """Validate ``since``/``until`` (aware datetimes or ``None``); ``until`` defaults to now."""
    start = None if since is None else aware(since, "since")
    end = now if until is None else aware(until, "until")
    if start is not None and start > end:
        raise ValidationError(
            f"since={start.isoformat()} is after until={end.isoformat()}; swap them or widen the range"
        )
    if start is not None and start == end:
        raise ValidationError(
            f"the range since={start.isoformat()} .. until={end.isoformat()} is empty; "
            "until is exclusive, so pass a later until"
        )
    return start, end


def _local_start(day: date, tz: tzinfo) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=tz)


def bucket_start(instant: datetime, period: str, tz: tzinfo) -> datetime:
    """The first instant of the bucket holding ``instant``."""
    local = instant.astimezone(tz).date()
    if period == "week":
        local -= timedelta(days=local.weekday())
    elif period == "month":
        local = local.replace(day=1)
    return _local_start(local, tz)


def _step(start: datetime, period: str, n: int, tz: tzinfo) -> datetime:
    day = start.date()
    if period == "day":
        day += timedelta(days=n)
    elif period == "week":
        day += timedelta(weeks=n)
    else:
        day += relativedelta(months=n)
    return _local_start(day, tz)


def buckets(since: datetime, until: datetime, period: str, tz: tzinfo) -> list[datetime]:
    """Boundaries of the buckets covering ``[since, until)``: the first starts
    at or before ``since``, the last ends after ``until`` (or at it)."""
    first = bucket_start(since, period, tz)
    out = [first]
    n = 0
    while out[-1] < until or len(out) < 2:
        n += 1
        out.append(_step(first, period, n, tz))
        if len(out) > MAX_BUCKETS + 1:
            raise ValidationError(
                f"{since.date()} .. {until.date()} spans more than {MAX_BUCKETS} {period}s; "
                "pick a longer period or a shorter range"
            )
    return out


def label(start: datetime, period: str, tz: tzinfo) -> str:
    """How a bucket is named in tables: ``2026-05-04`` (day / week start) or ``2026-05``."""
    local = start.astimezone(tz)
    return f"{local:%Y-%m}" if period == "month" else f"{local:%Y-%m-%d}"
