"""Every bench script runs at a tiny scale, so none of them rots.

New scripts in ``bench/`` are picked up automatically; each must accept
``--scale`` and ``--db``, check its answers against its baseline (exit
non-zero on a mismatch) and print at least one ``... x vs baseline`` line.
Wall-clock figures are printed, never asserted.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
SCRIPTS = sorted(p for p in BENCH.glob("*.py") if not p.name.startswith("_"))


def test_there_are_bench_scripts() -> None:
    assert any(p.name == "ledger.py" for p in SCRIPTS)


@pytest.mark.parametrize("script", SCRIPTS, ids=[p.stem for p in SCRIPTS])
def test_bench_runs_at_tiny_scale(script: Path, tmp_path: Path) -> None:
    env = {**os.environ, "SIYU_DISABLE_PLUGIN_AUTOLOAD": "1"}
    db = f"sqlite:///{tmp_path / 'bench.db'}"
    # Two writers prove a multi-process script runs; eight spawns per round only cost CI minutes.
    fewer = ["--processes", "2"] if '"--processes"' in script.read_text(encoding="utf-8") else []
    result = subprocess.run(
        [sys.executable, str(script), "--scale", "0.001", "--db", db, *fewer],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=tmp_path,
    )
    assert result.returncode == 0, f"{script.name} failed:\n{result.stdout}\n{result.stderr}"
    assert "x vs baseline" in result.stdout, result.stdout
    assert "MISMATCH" not in result.stdout + result.stderr
