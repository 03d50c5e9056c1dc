"""PostgreSQL faults: lost connections, server-side kills, concurrent migrators, bad URLs."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor

import pytest

import siyu
from siyu.errors import StorageError, ValidationError

POSTGRES_URL = os.environ.get("SIYU_TEST_POSTGRES_URL")

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(
        not POSTGRES_URL,
        reason="PostgreSQL tests need SIYU_TEST_POSTGRES_URL=postgresql://postgres@127.0.0.1:5432/test",
    ),
]


@pytest.fixture
def url() -> Iterator[str]:
    from siyu.testing.postgres import drop_schema, with_schema

    assert POSTGRES_URL is not None
    schema_url = with_schema(POSTGRES_URL, f"f_{uuid.uuid4().hex[:16]}")
    yield schema_url
    drop_schema(schema_url)


def _kill_backends(url: str, schema: str) -> int:
    """Terminate every server process serving ``schema`` (what a restart does to clients)."""
    import psycopg

    with psycopg.connect(POSTGRES_URL or "", autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
            (f"siyu-test-{schema}",),
        ).fetchall()
    return len(rows)


def _tagged(url: str) -> tuple[str, str]:
    schema = url.rsplit("schema=", 1)[1]
    return f"{url}&application_name=siyu-test-{schema}", schema


def test_pool_recovers_after_server_drops_every_connection(url: str) -> None:
    tagged, schema = _tagged(url)
    with siyu.connect(tagged) as ws:
        uid = ws.users.add(phone="13800138000").id
        assert _kill_backends(tagged, schema) >= 1
        # The pool notices the dead connection and hands out a fresh one.
        ws.points.earn(uid, 10, reason="after restart", key="k1")
        assert ws.points.balance(uid) == 10


def test_connection_lost_mid_transaction_writes_nothing(url: str) -> None:
    tagged, schema = _tagged(url)
    with siyu.connect(tagged) as ws:
        uid = ws.users.add(phone="13800138000").id
        with pytest.raises(StorageError, match="rolled back"), ws.write() as tx:
            tx.points.balance(uid, ws.now())
            ws.points.earn(uid, 5, reason="half", key="lost-1")
            _kill_backends(tagged, schema)
            tx.users.update(uid, source="never")
        assert ws.points.balance(uid) == 0
        assert ws.users.get(uid).source is None
        # Retrying the idempotent write after the failure applies it exactly once.
        ws.points.earn(uid, 5, reason="half", key="lost-1")
        ws.points.earn(uid, 5, reason="half", key="lost-1")
        assert ws.points.balance(uid) == 5


def _open_and_count(url: str) -> dict[str, int]:
    with siyu.connect(url) as ws:
        return ws.schema_versions


def test_concurrent_first_opens_migrate_once(url: str) -> None:
    with ProcessPoolExecutor(4) as pool:
        results = list(pool.map(_open_and_count, [url] * 4))
    assert all(r == results[0] for r in results)
    with siyu.connect(url) as ws:
        assert ws.users.count() == 0


def test_interrupted_migration_is_rerun(url: str) -> None:
    import psycopg

    with siyu.connect(url):
        pass
    schema = url.rsplit("schema=", 1)[1]
    with psycopg.connect(POSTGRES_URL or "", autocommit=True) as conn:
        # Pretend the points step never finished: its tables vanish and its version is unrecorded.
        conn.execute(f'DROP TABLE "{schema}".points_entries, "{schema}".points_allocations')
        conn.execute(f"DELETE FROM \"{schema}\".siyu_schema WHERE component = 'points'")
    with siyu.connect(url) as ws:
        uid = ws.users.add().id
        ws.points.earn(uid, 3, reason="ok", key="m1")
        assert ws.points.balance(uid) == 3


def test_bad_urls_say_what_to_fix() -> None:
    assert POSTGRES_URL is not None
    with pytest.raises(ValidationError, match="schema"):
        siyu.connect(POSTGRES_URL + "?schema=bad-name;drop")
    with pytest.raises(ValidationError, match="pool_max"):
        siyu.connect(POSTGRES_URL + "?pool_max=zero")
    with pytest.raises(StorageError, match="cannot connect") as info:
        siyu.connect("postgresql://nobody:s3cret@127.0.0.1:1/none?pool_timeout=1")
    assert "s3cret" not in str(info.value)


def test_options_search_path_picks_the_schema(url: str) -> None:
    schema = url.rsplit("schema=", 1)[1]
    assert POSTGRES_URL is not None
    with siyu.connect(f"{POSTGRES_URL}?options=-csearch_path%3D{schema}") as ws:
        ws.users.add(phone="13800138000")
        assert ws.backend.describe().endswith(f"(schema {schema})")
    with siyu.connect(url) as ws:
        assert ws.users.find(phone="13800138000") is not None
