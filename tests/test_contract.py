"""The storage contract suite on every built-in backend."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from siyu.testing.contract import StorageContract

POSTGRES_URL = os.environ.get("SIYU_TEST_POSTGRES_URL")
PGBOUNCER_URL = os.environ.get("SIYU_TEST_PGBOUNCER_URL")


class TestMemoryBackend(StorageContract):
    def make_url(self, tmp_path: Path) -> str:
        return "memory://"


class TestSQLiteBackend(StorageContract):
    def make_url(self, tmp_path: Path) -> str:
        return f"sqlite:///{tmp_path / 'shop.db'}"


@pytest.mark.postgres
@pytest.mark.skipif(
    not POSTGRES_URL,
    reason="PostgreSQL tests need SIYU_TEST_POSTGRES_URL, e.g. "
    "SIYU_TEST_POSTGRES_URL=postgresql://postgres@127.0.0.1:5432/test (or: eval \"$(bash .ci/postgres.sh)\")",
)
class TestPostgresBackend(StorageContract):
    """One fresh schema per test run (dropped at the end), emptied between tests,
    so runs never see each other's data and tests never see each other's rows."""

    @pytest.fixture(scope="class")
    @classmethod
    def run_url(cls) -> Iterator[str]:
        from siyu.testing.postgres import drop_schema, with_schema

        assert POSTGRES_URL is not None
        url = with_schema(POSTGRES_URL, f"t_{uuid.uuid4().hex[:16]}")
        yield url
        drop_schema(url)

    @pytest.fixture
    def url(self, run_url: str) -> Iterator[str]:
        from siyu.testing.postgres import empty_schema

        yield run_url
        empty_schema(run_url)

    def make_url(self, tmp_path: Path) -> str:
        raise AssertionError("the url fixture supplies this class's URLs")


@pytest.mark.postgres
@pytest.mark.skipif(
    not PGBOUNCER_URL,
    reason="PgBouncer tests need SIYU_TEST_PGBOUNCER_URL (transaction pooling), e.g. "
    "postgresql://postgres@127.0.0.1:6432/test?pgbouncer=1 (or: eval \"$(bash .ci/pgbouncer.sh)\")",
)
class TestPostgresThroughPgBouncer(TestPostgresBackend):
    """The same suite through PgBouncer in transaction pooling mode: each transaction may
    run on another server session, so nothing siyu does may rely on session state."""

    @pytest.fixture(scope="class")
    @classmethod
    def run_url(cls) -> Iterator[str]:
        from siyu.testing.postgres import drop_schema, with_schema

        assert PGBOUNCER_URL is not None
        url = with_schema(PGBOUNCER_URL, f"b_{uuid.uuid4().hex[:16]}")
        yield url
        drop_schema(url)
