"""Tools for testing code that uses siyu, and for testing siyu plugins.

- :class:`FakeClock`: a clock you move by hand, so tests never sleep.
- :mod:`siyu.testing.contract`: the storage contract suite every backend runs.
- :class:`RecordingChannel`: a channel that records messages (scriptable outcomes).
- :mod:`siyu.testing.fakes`: local fake servers for the built-in channels.
- :func:`log_events`: append hand-made events to the event log, as if a write emitted them.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from .recording import RecordingChannel

if TYPE_CHECKING:
    from ..events import Event
    from ..workspace import Workspace

__all__ = ["FakeClock", "RecordingChannel", "log_events"]


def log_events(ws: Workspace, events: Iterable[Event]) -> None:
    """Append ``events`` to the event log in one write, then deliver them as any write's
    events are (inline mode): a consumer sees them exactly as in production, the same
    event twice included, which is how to test that a consumer is idempotent."""
    with ws.write() as tx:
        for event in events:
            tx.emit(event)


class FakeClock:
    """A settable clock: pass it as ``siyu.connect(..., clock=FakeClock())``.

    >>> clock = FakeClock(datetime(2026, 11, 22, tzinfo=UTC))
    >>> clock.advance(days=1)
    datetime.datetime(2026, 11, 23, 0, 0, tzinfo=datetime.timezone.utc)
    """

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 1, 1, tzinfo=UTC)
        if self.now.tzinfo is None:
            raise ValueError("FakeClock needs a timezone-aware start")

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta | None = None, **kwargs: float) -> datetime:
        """Move forward by ``delta`` or by ``timedelta(**kwargs)``; return the new time."""
        self.now += delta if delta is not None else timedelta(**kwargs)
        return self.now

    def set(self, when: datetime) -> datetime:
        self.now = when
        return self.now
