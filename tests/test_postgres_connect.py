"""A PostgreSQL URL that leads nowhere fails at once, in one line, without the pool's log noise.

No server is needed: the targets are ports on 127.0.0.1 that refuse or never answer.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest

import siyu
from siyu.errors import StorageError

pytest.importorskip("psycopg_pool")


@pytest.fixture
def closed_port() -> int:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port: int = probe.getsockname()[1]
    probe.close()  # nothing listens there now: connecting is refused
    return port


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that completes the TCP handshake (the kernel does) and then says nothing."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    yield server.getsockname()[1]
    server.close()


def test_a_refused_connection_is_one_clear_error_and_no_pool_logging(
    closed_port: int, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with pytest.raises(StorageError) as info:
        siyu.connect(f"postgresql://bob:s3cret@127.0.0.1:{closed_port}/shop")
    message = str(info.value)
    assert "\n" not in message
    assert f"127.0.0.1:{closed_port}" in message and "Connection refused" in message
    assert "s3cret" not in message
    assert [r for r in caplog.records if r.name.startswith("psycopg")] == []


def test_a_server_that_never_answers_times_out_by_default(silent_port: int) -> None:
    with pytest.raises(StorageError, match="timeout expired"):
        siyu.connect(f"postgresql://postgres@127.0.0.1:{silent_port}/shop")


def test_the_url_can_set_its_own_connect_timeout(silent_port: int) -> None:
    with pytest.raises(StorageError, match="timeout expired"):
        siyu.connect(f"postgresql://postgres@127.0.0.1:{silent_port}/shop?connect_timeout=2")


def test_the_cli_prints_one_line_for_a_bad_postgres_url(closed_port: int) -> None:
    result = subprocess.run(
        [sys.executable, "-c", "from siyu.cli import cli; cli()", "--db", f"postgresql://postgres@127.0.0.1:{closed_port}/shop",
         "users", "show", "1"],
        capture_output=True, text=True, timeout=120, env={**os.environ, "SIYU_DISABLE_PLUGIN_AUTOLOAD": "1"},
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: cannot connect to postgresql://postgres@127.0.0.1")
