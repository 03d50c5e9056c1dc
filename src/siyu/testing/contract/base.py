"""Fixtures shared by the contract mixins."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import pytest

import siyu
from siyu.testing import FakeClock


class ContractBase:
    """Provides ``clock``, ``ws`` and ``connect`` fixtures from :meth:`make_url`."""

    plugins: ClassVar[list[object]] = []
    __test__ = False  # only concrete subclasses named Test* are collected

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__name__.startswith("Test"):
            cls.__test__ = True

    def make_url(self, tmp_path: Path) -> str:
        raise NotImplementedError("a contract test class must define make_url(self, tmp_path) -> str")

    @pytest.fixture
    def clock(self) -> FakeClock:
        return FakeClock(datetime(2026, 11, 22, 8, 0, tzinfo=UTC))

    @pytest.fixture
    def url(self, tmp_path: Path) -> str:
        return self.make_url(tmp_path)

    @pytest.fixture
    def connect(self, url: str, clock: FakeClock) -> Iterator[Callable[..., siyu.Workspace]]:
        """Open (more) workspaces on the same database, closed after the test."""
        opened: list[siyu.Workspace] = []

        def _connect(**kwargs: Any) -> siyu.Workspace:
            kwargs.setdefault("clock", clock)
            kwargs.setdefault("plugins", self.plugins)
            ws = siyu.connect(url, **kwargs)
            opened.append(ws)
            return ws

        yield _connect
        for ws in opened:
            ws.close()

    @pytest.fixture
    def ws(self, connect: Callable[..., siyu.Workspace]) -> siyu.Workspace:
        return connect()

    @property
    def capabilities(self) -> frozenset[str]:
        raise NotImplementedError  # replaced per test by the `caps` fixture

    @pytest.fixture
    def caps(self, ws: siyu.Workspace) -> frozenset[str]:
        return type(ws.backend).capabilities


_T = TypeVar("_T")


def found(value: _T | None) -> _T:
    """``value``, asserting the lookup that gave it found something."""
    assert value is not None, "expected the lookup to find a record"
    return value
