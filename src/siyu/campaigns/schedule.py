"""Campaign schedules: a start time, and recurrence with python-dateutil rrule.

``schedule=`` accepts

* an aware ``datetime``: send once, at that time;
* an RFC 5545 rule string, ``"FREQ=WEEKLY;BYDAY=MO;BYHOUR=10;BYMINUTE=0"``
  (optionally with a ``DTSTART`` line), or a :class:`dateutil.rrule.rrule`:
  send at every occurrence. Occurrences are computed in the business time
  zone; each occurrence is a separate delivery round, so one user receives
  at most one message per occurrence.

The workspace clock decides what is due: call ``ws.campaigns.run_due()``
from a cron job or a loop (tests move a FakeClock instead of sleeping).
"""

from __future__ import annotations

from datetime import datetime, tzinfo
from typing import Any

from dateutil.rrule import rrule, rrulestr

from .._clock import aware
from ..errors import ValidationError

__all__ = ["Schedule"]


def _dtstart(rule: Any) -> datetime | None:
    start: datetime | None = rule._dtstart
    return start


class Schedule:
    """A parsed schedule: ``start_at`` and an optional recurrence rule."""

    def __init__(self, start_at: datetime | None, rule: str | None, tz: tzinfo) -> None:
        self.start_at = start_at
        self.rule = rule
        self.tz = tz
        self._rrule: rrule | None = None
        if rule is not None:
            dtstart = (start_at or datetime(2000, 1, 1, tzinfo=tz)).astimezone(tz)
            try:
                parsed = rrulestr(rule, dtstart=dtstart, forceset=False)
            except (ValueError, TypeError) as exc:
                raise ValidationError(
                    f"schedule {rule!r} is not an RFC 5545 rule ({exc}); "
                    "write e.g. 'FREQ=WEEKLY;BYDAY=MO;BYHOUR=10;BYMINUTE=0'"
                ) from None
            if not isinstance(parsed, rrule):
                raise ValidationError("schedule must be a single RRULE, not a rule set")
            start = _dtstart(parsed)
            if start is not None and start.tzinfo is None:  # a DTSTART line without a zone: business time
                parsed = parsed.replace(dtstart=start.replace(tzinfo=tz))
            self._rrule = parsed

    @classmethod
    def parse(cls, value: object, tz: tzinfo, now: datetime) -> Schedule | None:
        if value is None:
            return None
        if isinstance(value, datetime):
            return cls(aware(value, "schedule"), None, tz)
        if isinstance(value, rrule):
            start = _dtstart(value)
            if start is not None and start.tzinfo is None:
                start = start.replace(tzinfo=tz)
            text = str(value).split("\n")[-1].removeprefix("RRULE:")
            return cls(start, text, tz)
        if isinstance(value, str):
            if "DTSTART" in value.upper():
                sched = cls(None, value, tz)
                assert sched._rrule is not None
                sched.start_at = _dtstart(sched._rrule)
                return sched
            return cls(now.astimezone(tz).replace(second=0, microsecond=0), value, tz)
        raise ValidationError(
            f"schedule must be an aware datetime, an rrule string or a dateutil rrule, got {type(value).__name__}"
        )

    @property
    def recurring(self) -> bool:
        return self._rrule is not None

    def first(self) -> datetime | None:
        """The first time the campaign is due."""
        if self._rrule is None:
            return self.start_at
        return self.after(None)

    def after(self, moment: datetime | None) -> datetime | None:
        """The first occurrence strictly after ``moment`` (``None``: the very first)."""
        if self._rrule is None:
            if moment is None or (self.start_at is not None and self.start_at > moment):
                return self.start_at
            return None
        if moment is None:
            first = _dtstart(self._rrule)
            assert first is not None
            nxt = self._rrule.after(first, inc=True)
        else:
            nxt = self._rrule.after(moment.astimezone(self.tz), inc=False)
        return nxt
