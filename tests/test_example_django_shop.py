"""examples/django_shop: its own Django tests and siyu's management commands, each in a real process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("django")

ROOT = Path(__file__).resolve().parent.parent
PROJECT = ROOT / "examples" / "django_shop"


def manage(data: Path, *args: str) -> str:
    env = {**os.environ, "SHOP_DATA_DIR": str(data), "DJANGO_SETTINGS_MODULE": "shop.settings",
           "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(PROJECT), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "manage.py", *args], cwd=PROJECT, env=env, capture_output=True,
                          text=True, timeout=240)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def test_the_example_tests_pass(tmp_path: Path) -> None:
    out = manage(tmp_path, "test", "shop", "-v", "2")
    assert "Ran 6 tests" in out and "OK" in out


def test_siyu_run_due_and_siyu_worker_use_the_settings_workspace(tmp_path: Path) -> None:
    import siyu

    manage(tmp_path, "migrate", "-v", "0")
    with siyu.connect(f"sqlite:///{tmp_path / 'siyu.sqlite3'}", delivery="worker") as ws:
        member = ws.users.add(phone="13800138000").id
        ws.points.earn(member, 10, reason="signin", key="k")
        lag = max(c.lag for c in ws.event_log.consumers())
    assert lag > 0
    report = json.loads(manage(tmp_path, "siyu_run_due").strip().splitlines()[-1])
    assert report["delivered"] >= 2 and "points.expire" in report["jobs"]
    with siyu.connect(f"sqlite:///{tmp_path / 'siyu.sqlite3'}") as ws:
        assert max(c.lag for c in ws.event_log.consumers()) == 0
        ws.users.add(phone="13800138001")
    with siyu.connect(f"sqlite:///{tmp_path / 'siyu.sqlite3'}", delivery="worker") as ws:
        ws.users.add(phone="13800138002")
        assert max(c.lag for c in ws.event_log.consumers()) > 0
    stopped = json.loads(manage(tmp_path, "siyu_worker", "--idle-exit", "0.2", "--poll", "0.05").splitlines()[-1])
    assert stopped["stopped"] is True
    with siyu.connect(f"sqlite:///{tmp_path / 'siyu.sqlite3'}") as ws:
        assert max(c.lag for c in ws.event_log.consumers()) == 0
