from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

import siyu
from siyu.testing import FakeClock

settings.register_profile(
    "ci", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("ci" if os.environ.get("CI") else "dev")

POSTGRES_URL = os.environ.get("SIYU_TEST_POSTGRES_URL")


@pytest.fixture(autouse=True)
def _no_autoload(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests see only the plugins they register, not whatever is installed."""
    monkeypatch.setenv("SIYU_DISABLE_PLUGIN_AUTOLOAD", "1")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2026, 11, 22, 8, 0, tzinfo=UTC))


@pytest.fixture
def ws(clock: FakeClock) -> Iterator[siyu.Workspace]:
    with siyu.connect("memory://", clock=clock) as workspace:
        yield workspace


@pytest.fixture(scope="module")
def postgres_run_url() -> Iterator[str]:
    """One PostgreSQL schema for a test module's run (migrated once), dropped at the end."""
    if not POSTGRES_URL:
        pytest.skip("PostgreSQL tests need SIYU_TEST_POSTGRES_URL=postgresql://postgres@127.0.0.1:5432/test")
    from siyu.testing.postgres import drop_schema, with_schema

    schema_url = with_schema(POSTGRES_URL, f"t_{uuid.uuid4().hex[:16]}")
    yield schema_url
    drop_schema(schema_url)


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A durable database other processes can open: a SQLite file, or the module's PostgreSQL
    schema emptied after each test."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'shop.db'}"
        return
    from siyu.testing.postgres import empty_schema

    schema_url: str = request.getfixturevalue("postgres_run_url")
    yield schema_url
    empty_schema(schema_url)
