"""Fixtures shared by the ``test_fission_*.py`` files. A module they import
rather than ``conftest.py``, so the fission start time and workspace stay
local to them (``conftest.py`` has its own ``clock`` for everyone else)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

import siyu
from siyu.testing import FakeClock

__all__ = ["START", "clock", "guards_off", "ws"]

START = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
def ws(clock: FakeClock) -> Iterator[siyu.Workspace]:
    with siyu.connect("memory://", clock=clock) as workspace:
        yield workspace


def guards_off(ws: siyu.Workspace) -> siyu.Workspace:
    """Turn off the binding and leave guards a test does not exercise."""
    ws.referrals.fraud.configure(burst=None, phone_prefix=None, shared_device=None, leave_after_reward=None)
    return ws
