"""Charts of reports, as PNG or SVG files (matplotlib, the ``siyu[charts]`` extra).

Each function draws one report to ``path`` (the suffix picks the format:
``.png`` or ``.svg``) and returns a :class:`ChartData` holding exactly what
it plotted, so a test (or a caller) can check the numbers without reading
pixels:

- :func:`funnel_chart`: users per funnel step, one bar per step;
- :func:`cohort_heatmap`: the retention matrix, cohorts down, periods across;
- :func:`rfm_grid`: buyers per R × F cell;
- :func:`touchpoint_chart`: drainage rate per touchpoint;
- :func:`fission_chart`: users per referral generation;
- :func:`aov_chart`: average order value per group;
- :func:`repurchase_chart`: repurchase rate per first-order period;
- :func:`new_vs_returning_chart`: new and returning buyers per period, stacked.

:func:`draw` picks the right one for a report. matplotlib is imported only
when a chart is drawn, with the non-interactive Agg canvas (no display needed).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import pairwise
from pathlib import Path
from typing import Any

import attrs

from ..errors import SiyuError, ValidationError
from .aov import AovReport
from .cohorts import CohortReport
from .fission import FissionReport
from .funnel import ALL_LABEL, FunnelReport
from .new_vs_returning import NewVsReturningReport
from .repurchase import RepurchaseReport
from .results import Report
from .rfm import RfmReport
from .touchpoints import TouchpointReport

__all__ = [
    "ChartData",
    "aov_chart",
    "cohort_heatmap",
    "draw",
    "fission_chart",
    "funnel_chart",
    "new_vs_returning_chart",
    "repurchase_chart",
    "rfm_grid",
    "touchpoint_chart",
]

_FORMATS = {".png": "png", ".svg": "svg"}
_COLOR = "#2f6f4f"


@attrs.frozen(kw_only=True)
class ChartData:
    """What a chart shows: ``x`` labels, ``y`` labels (heatmaps), and ``values``
    (one number per bar, or rows of cells; ``None`` for an empty cell)."""

    kind: str
    title: str
    path: Path
    x: tuple[str, ...]
    y: tuple[str, ...] = ()
    values: tuple[Any, ...] = ()


def _target(path: str | Path) -> tuple[Path, str]:
    target = Path(path)
    fmt = _FORMATS.get(target.suffix.lower())
    if fmt is None:
        raise ValidationError(f"chart file {str(target)!r} must end in .png or .svg")
    if not target.parent.exists():
        raise ValidationError(f"directory {str(target.parent)!r} for the chart does not exist")
    return target, fmt


def _figure(width: float, height: float) -> Any:
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise SiyuError("charts need matplotlib: pip install 'siyu[charts]'") from None
    figure = Figure(figsize=(width, height), dpi=80)
    FigureCanvasAgg(figure)
    return figure


def _save(figure: Any, target: Path, fmt: str) -> None:
    figure.tight_layout()
    # A fixed date and no software tag keep SVG output byte-stable between runs.
    metadata = {"Date": None} if fmt == "svg" else {"Software": None}
    figure.savefig(target, format=fmt, metadata=metadata)


def _bars(title: str, labels: Sequence[str], values: Sequence[float], ylabel: str, percent: bool,
          target: Path, fmt: str, notes: Sequence[str] | None = None) -> None:
    figure = _figure(max(4.0, 1.1 * len(labels) + 1.5), 3.4)
    axes = figure.add_subplot()
    bars = axes.bar(range(len(labels)), values, color=_COLOR)
    axes.set_xticks(range(len(labels)), labels, rotation=20 if len(labels) > 4 else 0, ha="right"
                    if len(labels) > 4 else "center")
    axes.set_ylabel(ylabel)
    axes.set_title(title, fontsize=10)
    axes.spines[["top", "right"]].set_visible(False)
    for index, (bar, value) in enumerate(zip(bars, values, strict=True)):
        text = f"{value:.1%}" if percent else f"{value:,.0f}"
        if notes is not None:
            text += notes[index]
        axes.annotate(text, (bar.get_x() + bar.get_width() / 2, bar.get_height()), ha="center", va="bottom",
                      fontsize=8)
    _save(figure, target, fmt)


def funnel_chart(report: FunnelReport, path: str | Path, *, group: str = ALL_LABEL) -> ChartData:
    """Users per step of ``group`` (default: all users), annotated with the step conversion."""
    if group not in report.counts:
        raise ValidationError(f"group {group!r} is not in this funnel; groups: {', '.join(report.counts)}")
    target, fmt = _target(path)
    values = report.counts[group]
    notes = [""] + [f"\n({v / p:.0%})" if p else "" for p, v in pairwise(values)]
    title = f"funnel: {group}" if group != ALL_LABEL else "funnel"
    _bars(title, report.steps, values, "users", False, target, fmt, notes)
    return ChartData(kind="funnel", title=title, path=target, x=report.steps, values=tuple(values))


def cohort_heatmap(report: CohortReport, path: str | Path) -> ChartData:
    """The retention matrix as a heatmap (share of each cohort active K periods later)."""
    target, fmt = _target(path)
    shares = [[None if v is None else float(v) for v in row] for row in report.shares()]
    n = len(shares)
    figure = _figure(min(12.0, 1.5 + 0.55 * n + 1.5), min(10.0, 1.2 + 0.32 * n + 1))
    axes = figure.add_subplot()
    grid = [[math.nan if v is None else v for v in row] for row in shares]
    image = axes.imshow(grid, cmap="Greens", vmin=0, vmax=1, aspect="auto")
    columns = tuple(str(k) for k in range(n))
    axes.set_xticks(range(n), columns)
    axes.set_yticks(range(n), [f"{c} ({s})" for c, s in zip(report.cohorts, report.sizes, strict=True)])
    axes.set_xlabel(f"{report.period}s since joining")
    axes.set_title(f"{report.metric} retention by {report.period}ly cohort", fontsize=10)
    if n <= 16:
        for i, row in enumerate(shares):
            for k, value in enumerate(row):
                if value is not None:
                    axes.text(k, i, f"{value:.0%}", ha="center", va="center", fontsize=7,
                              color="white" if value > 0.6 else "black")
    figure.colorbar(image, ax=axes, fraction=0.04)
    _save(figure, target, fmt)
    return ChartData(kind="cohorts", title=axes.get_title(), path=target, x=columns, y=report.cohorts,
                     values=tuple(tuple(row) for row in shares))


def rfm_grid(report: RfmReport, path: str | Path) -> ChartData:
    """Buyers per R (rows, best on top) × F (columns) cell."""
    target, fmt = _target(path)
    cells = report.grid()
    q = report.quantiles
    figure = _figure(1.5 + 0.7 * q, 1.2 + 0.6 * q)
    axes = figure.add_subplot()
    image = axes.imshow(cells, cmap="Greens", aspect="auto")
    x = tuple(f"F={j}" for j in range(1, q + 1))
    y = tuple(f"R={q - i}" for i in range(q))
    axes.set_xticks(range(q), x)
    axes.set_yticks(range(q), y)
    axes.set_title(f"buyers per RFM cell ({len(report.rows)} buyers)", fontsize=10)
    top = max((max(row) for row in cells), default=0) or 1
    for i, row in enumerate(cells):
        for j, value in enumerate(row):
            axes.text(j, i, f"{value:,}", ha="center", va="center", fontsize=7,
                      color="white" if value > 0.6 * top else "black")
    figure.colorbar(image, ax=axes, fraction=0.05)
    _save(figure, target, fmt)
    return ChartData(kind="rfm", title=axes.get_title(), path=target, x=x, y=y,
                     values=tuple(tuple(row) for row in cells))


def touchpoint_chart(report: TouchpointReport, path: str | Path) -> ChartData:
    """Drainage rate (added / reached) per touchpoint."""
    target, fmt = _target(path)
    labels = tuple(str(r[0]) for r in report.rows)
    values = tuple(float(r[3] or 0.0) for r in report.rows)
    _bars(f"drainage rate per {report.by}", labels, values, "added / reached", True, target, fmt)
    return ChartData(kind="touchpoints", title=f"drainage rate per {report.by}", path=target, x=labels,
                     values=values)


def fission_chart(report: FissionReport, path: str | Path) -> ChartData:
    """Users per referral generation (1 = invited by a seed user)."""
    target, fmt = _target(path)
    generations = report.stats.generations
    labels = tuple(f"gen {g}" for g in generations)
    values = tuple(generations.values())
    _bars(f"users per generation (K = {report.stats.k_factor:.2f})", labels, values, "users", False, target, fmt)
    return ChartData(kind="fission", title="users per generation", path=target, x=labels, values=values)


def aov_chart(report: AovReport, path: str | Path) -> ChartData:
    """Average order value (yuan) per group, without the ``(all)`` row."""
    target, fmt = _target(path)
    rows = [r for r in report.rows if r[0] != "(all)" and r[4] is not None] or list(report.rows[-1:])
    labels = tuple(str(r[0]) for r in rows)
    values = tuple(float(r[4] or 0) for r in rows)
    title = f"average order value{' by ' + report.by if report.by else ''} (yuan)"
    _bars(title, labels, values, "yuan per order", False, target, fmt)
    return ChartData(kind="aov", title=title, path=target, x=labels, values=values)


def repurchase_chart(report: RepurchaseReport, path: str | Path) -> ChartData:
    """Repurchase rate per period of the first order."""
    target, fmt = _target(path)
    rows = [r for r in report.rows if r[0] != "(all)"]
    labels = tuple(str(r[0]) for r in rows)
    values = tuple(float(r[3] or 0.0) for r in rows)
    title = f"repurchase within {report.window.days} days"
    _bars(title, labels, values, "repurchased / buyers", True, target, fmt)
    return ChartData(kind="repurchase", title=title, path=target, x=labels, values=values)


def new_vs_returning_chart(report: NewVsReturningReport, path: str | Path) -> ChartData:
    """New (bottom) and returning (top) buyers per period, stacked."""
    target, fmt = _target(path)
    labels = tuple(str(r[0]) for r in report.rows)
    new = tuple(int(r[2]) for r in report.rows)
    back = tuple(int(r[3]) for r in report.rows)
    figure = _figure(max(4.0, 0.6 * len(labels) + 2), 3.4)
    axes = figure.add_subplot()
    axes.bar(range(len(labels)), new, color=_COLOR, label="new")
    axes.bar(range(len(labels)), back, bottom=new, color="#9cc5a1", label="returning")
    axes.set_xticks(range(len(labels)), labels, rotation=30, ha="right")
    axes.set_ylabel("buyers")
    axes.legend(frameon=False, fontsize=8)
    axes.set_title(f"new vs returning buyers per {report.period}", fontsize=10)
    axes.spines[["top", "right"]].set_visible(False)
    _save(figure, target, fmt)
    return ChartData(kind="new_vs_returning", title=axes.get_title(), path=target, x=labels, y=("new", "returning"),
                     values=(new, back))


def draw(report: Report, path: str | Path) -> ChartData:
    """The chart that fits ``report``; other reports have none (ValidationError)."""
    if isinstance(report, FunnelReport):
        return funnel_chart(report, path)
    if isinstance(report, CohortReport):
        return cohort_heatmap(report, path)
    if isinstance(report, RfmReport):
        return rfm_grid(report, path)
    if isinstance(report, TouchpointReport):
        return touchpoint_chart(report, path)
    if isinstance(report, FissionReport):
        return fission_chart(report, path)
    if isinstance(report, AovReport):
        return aov_chart(report, path)
    if isinstance(report, RepurchaseReport):
        return repurchase_chart(report, path)
    if isinstance(report, NewVsReturningReport):
        return new_vs_returning_chart(report, path)
    raise ValidationError(f"{type(report).__name__} has no chart; charts exist for the funnel, cohorts, RFM, "
                          "touchpoints, fission, AOV, repurchase and new-vs-returning reports")
