"""Render the chart images of the report pages (docs/reports/img/*.png) from the demo shop.

    .venv/bin/python docs/reports/render_images.py

Deterministic: the same siyu builds the same demo shop (seed 2026) and the
same charts. Re-run it after changing a report or a chart, and commit the PNGs.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import siyu
from siyu.analytics import charts
from siyu.demo_shop import build
from siyu.testing import FakeClock

OUT = Path(__file__).resolve().parent / "img"


def main() -> None:
    clock = FakeClock(datetime(2026, 5, 4, tzinfo=UTC))
    with siyu.connect("memory://", clock=clock) as ws:
        shop = build(ws, clock, users=3000, weeks=26)
        a = ws.analytics
        end = shop.end
        drawn = [
            charts.funnel_chart(a.funnel(until=end), OUT / "funnel.png"),
            charts.cohort_heatmap(a.cohorts("week", "active", until=end), OUT / "cohorts.png"),
            charts.rfm_grid(a.rfm(until=end), OUT / "rfm.png"),
            charts.touchpoint_chart(a.touchpoints(until=end), OUT / "touchpoints.png"),
            charts.fission_chart(a.fission(), OUT / "fission.png"),
            charts.aov_chart(a.aov(by="channel", until=end), OUT / "aov.png"),
            charts.repurchase_chart(a.repurchase(timedelta(days=30), until=end), OUT / "repurchase.png"),
            charts.new_vs_returning_chart(a.new_vs_returning("month", until=end), OUT / "new_vs_returning.png"),
        ]
    for chart in drawn:
        print(f"{chart.path.relative_to(OUT.parent.parent.parent)}: {chart.path.stat().st_size:,} bytes")


if __name__ == "__main__":
    main()
