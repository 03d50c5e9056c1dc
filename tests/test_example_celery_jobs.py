"""examples/celery_jobs: a real Celery worker with embedded beat, on the local Redis, runs siyu's jobs."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("celery")
pytest.importorskip("redis")

import siyu

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "celery_jobs"


def _redis_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=0.5):
            return True
    except OSError:
        return False


pytestmark = [pytest.mark.slow, pytest.mark.skipif(not _redis_up(), reason="needs Redis on 127.0.0.1:6379")]


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(EXAMPLE), os.environ.get("PYTHONPATH", "")]),
        "SIYU_URL": f"sqlite:///{tmp_path / 'shop.db'}",
        "CELERY_BROKER_URL": "redis://127.0.0.1:6379/0",
        # Our own queue: other runs on this Redis never take our tasks, nor we theirs.
        "SIYU_CELERY_QUEUE": f"siyu-test-{uuid.uuid4().hex[:12]}",
        "SIYU_EVENTS_EVERY": "0.5",
        "SIYU_DUE_EVERY": "3600",
    }


@pytest.fixture
def worker(env: dict[str, str], tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    log = (tmp_path / "worker.log").open("wb")  # a file, not a pipe nobody reads: the worker never blocks on it
    proc = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "siyu_tasks", "worker", "--beat", "--pool=prefork",
         "--concurrency=1", "--loglevel=INFO", "--schedule", str(tmp_path / "beat-schedule"),
         "-n", f"{env['SIYU_CELERY_QUEUE']}@%h"],
        cwd=EXAMPLE, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _lag(url: str) -> int:
    with siyu.connect(url, delivery="worker") as ws:
        return max(c.lag for c in ws.event_log.consumers())


def test_beat_delivers_events_and_run_due_runs_the_jobs(
    env: dict[str, str], worker: subprocess.Popen[bytes], tmp_path: Path
) -> None:
    url = env["SIYU_URL"]
    with siyu.connect(url, delivery="worker") as ws:
        member = ws.users.add(phone="13800138000").id
        ws.points.earn(member, 10, reason="signin", key="k")
        assert max(c.lag for c in ws.event_log.consumers()) > 0
    deadline = time.monotonic() + 90
    while _lag(url) > 0:  # nobody sends a task: beat's siyu.deliver catches the consumers up
        assert worker.poll() is None, (tmp_path / "worker.log").read_text(errors="replace")
        assert time.monotonic() < deadline, "beat's siyu.deliver never caught up"
        time.sleep(0.3)
    # The run-due task, called as an application would, answered through the Redis result backend.
    code = ("import json, siyu_tasks; "
            "print(json.dumps(siyu_tasks.run_due.delay().get(timeout=60)))")
    out = subprocess.run([sys.executable, "-c", code], cwd=EXAMPLE, env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert '"points.expire"' in out.stdout and '"campaigns.run_due"' in out.stdout
