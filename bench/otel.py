"""What siyu.otel costs: the same calls with and without the Telemetry plugin.

Runs ``points.earn`` (a write) and ``points.balance`` (a read) N times on a
workspace without the plugin (the baseline) and on one with it, exporting
spans through the SDK's BatchSpanProcessor to an exporter that drops them
and metrics to an in-memory reader: the cost of building and recording the
spans and metrics, without a network. Above 1 would mean faster with it;
read ``0.9x`` as "10% slower". Balances are checked equal.

    .venv/bin/python bench/otel.py [--db URL] [--scale 0.1]
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import Timing, check_equal, parse_args, ratio_line, scaled, temp_dir, timed, workspace_url
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

import siyu
from siyu.otel import Telemetry
from siyu.testing import FakeClock

START = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)


class Drop(SpanExporter):
    def export(self, spans: Sequence[Any]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def run(url: str, calls: int, plugins: list[object], label: str) -> tuple[Timing, Timing, int]:
    with siyu.connect(url, clock=FakeClock(START), plugins=plugins) as ws:
        phone = "13800138000" if label == "plain" else "13800138001"  # one member per run, even on one --db
        member = (ws.users.find(phone=phone) or ws.users.add(phone=phone)).id
        before = ws.points.balance(member)
        with timed(calls) as earn:
            for n in range(calls):
                ws.points.earn(member, 1, reason="signin", key=f"{label}-{before}-{n}")
        with timed(calls) as read:
            for _ in range(calls):
                balance = ws.points.balance(member)
        return earn, read, balance - before


def main() -> None:
    args = parse_args(__doc__ or "")
    calls = scaled(2_000, args.scale, minimum=20)
    with temp_dir() as tmp:
        tracer_provider = TracerProvider()
        tracer_provider.add_span_processor(BatchSpanProcessor(Drop()))
        meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
        base_url = workspace_url(args, tmp, "plain.db")
        otel_url = args.db or f"sqlite:///{tmp / 'otel.db'}"
        plain_earn, plain_read, plain_balance = run(base_url, calls, [], "plain")
        telemetry = Telemetry(tracer_provider=tracer_provider, meter_provider=meter_provider)
        otel_earn, otel_read, otel_balance = run(otel_url, calls, [telemetry], "otel")
        tracer_provider.shutdown()
        check_equal("points gained by the earns", otel_balance, plain_balance)
        print(ratio_line("points.earn with siyu.otel", otel_earn, plain_earn))
        print(ratio_line("points.balance with siyu.otel", otel_read, plain_read))


if __name__ == "__main__":
    main()
