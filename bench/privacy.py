"""The cost of encrypting personal data on import: siyu with a key vs siyu without.

Imports 50,000 customers (phone, e-mail, name, city) with ``ws.users.add_many``
in batches, once into a workspace with a secret key (AES-GCM sealing plus a
blind index per phone and e-mail, name sealed) and once without (the
baseline), then looks 2,000 of them up by phone in both. The answers must be
equal. Goal of issue 9: the encrypted import takes less than 2x the
unencrypted one (ratio above 0.5x).

    .venv/bin/python bench/privacy.py [--db URL] [--scale 0.1] [--batch 2000]

With ``--db postgresql://...`` each run gets its own throw-away schema.
"""

from __future__ import annotations

import argparse
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import Timing, check_equal, parse_args, ratio_line, scaled, temp_dir, timed

import siyu
from siyu.privacy.keys import generate_key

GOAL = 0.5  # encrypted rate / clear rate: "under 2x the unencrypted import time"


def rows(count: int) -> list[dict[str, Any]]:
    return [
        {
            "phone": f"13{i % 10}{i:08d}",
            "email": f"customer{i}@example.com",
            "attributes": {"name": f"顾客{i}", "city": ("杭州", "上海", "成都")[i % 3]},
            "source": "bench",
        }
        for i in range(count)
    ]


@contextmanager
def database(args: argparse.Namespace, directory: Path, name: str) -> Iterator[str]:
    """A fresh database per run: a new SQLite file, or a new schema on the given server."""
    if args.db and args.db.startswith(("postgresql:", "postgres:")):
        from siyu.testing.postgres import drop_schema, with_schema

        url = with_schema(args.db, f"bench_{name}_{uuid.uuid4().hex[:8]}")
        try:
            yield url
        finally:
            drop_schema(url)
        return
    if args.db:
        base = Path(args.db.removeprefix("sqlite:///"))
        yield f"sqlite:///{base.with_name(f'{base.stem}-{name}{base.suffix}')}"
        return
    yield f"sqlite:///{directory / f'{name}.db'}"


def run(url: str, data: list[dict[str, Any]], batch: int, key: str | None, probes: list[str]) -> tuple[Timing, Any]:
    with siyu.connect(url, secret_key=key) as ws:
        with timed(len(data)) as timing:
            for start in range(0, len(data), batch):
                ws.users.add_many(data[start : start + batch])
        found = []
        for phone in probes:
            user = ws.users.find(phone=phone)
            assert user is not None
            found.append((user.identity("email"), user.attributes["name"]))
        return timing, (ws.users.count(), found)


def main(argv: list[str] | None = None) -> int:
    def extra(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--batch", type=int, default=2000, help="users per add_many call")

    args = parse_args(__doc__.splitlines()[0], argv, extra)
    data = rows(scaled(50_000, args.scale, minimum=20))
    probes = [str(r["phone"]) for r in data[:: max(1, len(data) // scaled(2000, args.scale, minimum=10))]]
    with temp_dir() as tmp:
        with database(args, tmp, "clear") as url:
            clear, clear_answer = run(url, data, args.batch, None, probes)
        with database(args, tmp, "sealed") as url:
            sealed, sealed_answer = run(url, data, args.batch, generate_key(), probes)
    check_equal("users and lookups by phone", sealed_answer, clear_answer)
    print(ratio_line("import with PII encryption", sealed, clear, note="baseline: the same import without a key"))
    slowdown = clear.rate / sealed.rate if sealed.rate else float("inf")
    verdict = "meets" if sealed.rate >= GOAL * clear.rate else "MISSES"
    print(f"encryption slows the import {slowdown:.2f}x; {verdict} the goal of < {1 / GOAL:.0f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
