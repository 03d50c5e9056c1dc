"""Time: an injectable clock and conversions to the storage representation.

Storage keeps instants as integer microseconds since the Unix epoch (UTC):
the same type on every backend, cheap to index and compare, no time-zone
ambiguity. The public API speaks timezone-aware ``datetime``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ._validation import check_aware as aware
from .errors import ValidationError

Clock = Callable[[], datetime]

__all__ = ["Clock", "aware", "checked_now", "from_us", "from_us_required", "start_of_day", "system_clock", "to_us",
           "zone"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def system_clock() -> datetime:
    """The default clock: the current UTC time."""
    return datetime.now(UTC)


def checked_now(clock: Clock) -> datetime:
    now = clock()
    if not isinstance(now, datetime) or now.tzinfo is None or now.utcoffset() is None:
        raise ValidationError(
            f"the clock returned {now!r}; a clock must return a timezone-aware datetime "
            "(e.g. datetime.now(timezone.utc))"
        )
    return now


def to_us(value: datetime) -> int:
    """Aware datetime -> integer microseconds since the epoch."""
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_us(value: int | None, tz: tzinfo = UTC) -> datetime | None:
    if value is None:
        return None
    return datetime.fromtimestamp(value // 1_000_000, tz).replace(microsecond=value % 1_000_000)


def from_us_required(value: int, tz: tzinfo = UTC) -> datetime:
    result = from_us(value, tz)
    assert result is not None
    return result


def zone(name: str | tzinfo) -> tzinfo:
    if isinstance(name, tzinfo):
        return name
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValidationError(
            f"unknown time zone {name!r}; use an IANA name such as 'Asia/Shanghai'"
        ) from exc


def start_of_day(day: date, tz: tzinfo) -> datetime:
    """The first instant of ``day`` in the business time zone."""
    return datetime.combine(day, time.min, tzinfo=tz)
