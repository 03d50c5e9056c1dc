"""The storage contract suite on every built-in backend."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from siyu.testing.contract import StorageContract

POSTGRES_URL = os.environ.get("SIYU_TEST_POSTGRES_URL")


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
    """Each test gets a fresh schema, dropped afterwards, so runs never see each other's data."""

    @pytest.fixture(autouse=True)
    def _drop_schema(self, url: str) -> Iterator[None]:
        yield
        from siyu.testing.postgres import drop_schema

        drop_schema(url)

    def make_url(self, tmp_path: Path) -> str:
        from siyu.testing.postgres import with_schema

        assert POSTGRES_URL is not None
        return with_schema(POSTGRES_URL, f"t_{uuid.uuid4().hex[:16]}")
