"""Helpers shared by the bench scripts: arguments, temp databases, timing, output.

Every bench script accepts ``--db URL`` (default: a fresh temporary SQLite
file) and ``--scale X`` (multiplies the data sizes; the test suite runs each
script at a tiny scale so they keep working), and prints result lines like
``earn batched: 0.4x vs baseline`` next to the raw rates.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import attrs

__all__ = ["Timing", "check_equal", "parse_args", "ratio_line", "scaled", "temp_dir", "timed", "workspace_url"]


def parse_args(
    description: str,
    argv: list[str] | None = None,
    extra: Callable[[argparse.ArgumentParser], None] | None = None,
) -> argparse.Namespace:
    """``--db`` and ``--scale``; ``extra`` may add a script's own arguments."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--db", default=None, metavar="URL", help="storage URL to benchmark (default: a temporary SQLite file)"
    )
    parser.add_argument("--scale", type=float, default=1.0, help="multiply the data sizes (e.g. 0.01 for a quick run)")
    if extra is not None:
        extra(parser)
    args = parser.parse_args(argv)
    if args.scale <= 0:
        parser.error("--scale must be positive")
    return args


def scaled(count: int, scale: float, minimum: int = 1) -> int:
    return max(minimum, round(count * scale))


@contextlib.contextmanager
def temp_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="siyu-bench-") as name:
        yield Path(name)


def workspace_url(args: argparse.Namespace, directory: Path, name: str = "siyu.db") -> str:
    """The URL given with ``--db``, or a new SQLite file in ``directory``."""
    return str(args.db) if args.db else f"sqlite:///{directory / name}"


@attrs.define
class Timing:
    """Seconds spent on ``count`` operations (filled in by :func:`timed`)."""

    count: int
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds > 0 else float("inf")


@contextlib.contextmanager
def timed(count: int) -> Iterator[Timing]:
    timing = Timing(count)
    start = time.perf_counter()
    try:
        yield timing
    finally:
        timing.seconds = time.perf_counter() - start


def ratio_line(name: str, siyu: Timing, baseline: Timing, note: str = "") -> str:
    """``name: X.Yx vs baseline (siyu N/s, baseline M/s)``; above 1 means siyu is faster."""
    ratio = siyu.rate / baseline.rate if baseline.rate else float("nan")
    extra = f"; {note}" if note else ""
    return (
        f"{name}: {ratio:.2f}x vs baseline (siyu {siyu.rate:,.0f}/s over {siyu.count:,}, "
        f"baseline {baseline.rate:,.0f}/s over {baseline.count:,}{extra})"
    )


def check_equal(what: str, siyu: object, baseline: object) -> None:
    """Stop the bench if siyu and the baseline disagree: a fast wrong answer is no result."""
    if siyu != baseline:
        print(f"MISMATCH {what}: siyu={siyu!r} baseline={baseline!r}", file=sys.stderr)
        raise SystemExit(1)
    shown = repr(siyu)
    print(f"check {what}: equal ({shown if len(shown) <= 60 else shown[:57] + '...'})")
