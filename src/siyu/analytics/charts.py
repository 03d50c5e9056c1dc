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

:func:`draw` picks the right one for a report. Every chart's title states
the time its report covers, and a period that had not ended by the report's
``until`` (a repurchase window still open, a running cohort, week or month)
is drawn hatched in a paler colour, listed in :attr:`ChartData.partial`.
matplotlib is imported only when a chart is drawn, with the non-interactive
Agg canvas (no display needed).
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
from .repurchase import RepurchaseReport, span
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
_PALE = "#b9d3c2"
_HATCH = "///"


@attrs.frozen(kw_only=True)
class ChartData:
    """What a chart shows: ``x`` labels, ``y`` labels (heatmaps), and ``values``
    (one number per bar, or rows of cells; ``None`` for an empty cell).
    ``covers`` is the time the report covers (drawn under the title);
    ``partial`` flags, in the shape of ``values``, the bars or cells drawn as
    not final (their period or window had not ended)."""

    kind: str
    title: str
    path: Path
    x: tuple[str, ...]
    y: tuple[str, ...] = ()
    values: tuple[Any, ...] = ()
    covers: str = ""
    partial: tuple[Any, ...] = ()


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


def _title(axes: Any, title: str, covers: str) -> None:
    axes.set_title(f"{title}\n{covers}" if covers else title, fontsize=10)


def _mark_partial(axes: Any, bars: Any, partial: Sequence[bool], label: str) -> None:
    """Draw the bars whose period had not ended pale and hatched, with a legend saying why."""
    marked = [bar for bar, flag in zip(bars, partial, strict=True) if flag]
    for bar in marked:
        bar.set_facecolor(_PALE)
        bar.set_hatch(_HATCH)
        bar.set_edgecolor(_COLOR)
    if marked:
        marked[0].set_label(label)
        axes.legend(frameon=False, fontsize=8)


def _bars(title: str, labels: Sequence[str], values: Sequence[float], ylabel: str, percent: bool,
          target: Path, fmt: str, notes: Sequence[str] | None = None, *, covers: str = "",
          partial: Sequence[bool] = (), partial_label: str = "") -> None:
    figure = _figure(max(4.0, 1.1 * len(labels) + 1.5), 3.6)
    axes = figure.add_subplot()
    bars = axes.bar(range(len(labels)), values, color=_COLOR)
    axes.set_xticks(range(len(labels)), labels, rotation=20 if len(labels) > 4 else 0, ha="right"
                    if len(labels) > 4 else "center")
    axes.set_ylabel(ylabel)
    _title(axes, title, covers)
    axes.spines[["top", "right"]].set_visible(False)
    if partial:
        _mark_partial(axes, bars, partial, partial_label)
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
    covers = f"entering at {report.steps[0]}, {report.covers}"
    _bars(title, report.steps, values, "users", False, target, fmt, notes, covers=covers)
    return ChartData(kind="funnel", title=title, path=target, x=report.steps, values=tuple(values), covers=covers)


def cohort_heatmap(report: CohortReport, path: str | Path) -> ChartData:
    """The retention matrix as a heatmap (share of each cohort active K periods later); the cells of a
    period still running at ``until`` are hatched."""
    from matplotlib.patches import Rectangle

    target, fmt = _target(path)
    shares = [[None if v is None else float(v) for v in row] for row in report.shares()]
    flags = [[flag and value is not None for flag, value in zip(marks, row, strict=True)]
             for marks, row in zip(report.partial(), shares, strict=True)]
    n = len(shares)
    figure = _figure(min(12.0, 1.5 + 0.55 * n + 1.5), min(10.0, 1.2 + 0.32 * n + 1))
    axes = figure.add_subplot()
    grid = [[math.nan if v is None else v for v in row] for row in shares]
    image = axes.imshow(grid, cmap="Greens", vmin=0, vmax=1, aspect="auto")
    columns = tuple(str(k) for k in range(n))
    axes.set_xticks(range(n), columns)
    axes.set_yticks(range(n), [f"{c} ({s})" for c, s in zip(report.cohorts, report.sizes, strict=True)])
    axes.set_xlabel(f"{report.period}s since joining")
    title = f"{report.metric} retention by {report.period}ly cohort"
    _title(axes, title, report.covers + (f"\nhatched: {report.cohorts[-1]} not over, so far"
                                         if any(map(any, flags)) else ""))
    for i, marks in enumerate(flags):
        for k, flag in enumerate(marks):
            if flag:
                axes.add_patch(Rectangle((k - 0.5, i - 0.5), 1, 1, fill=False, hatch=_HATCH, edgecolor="#888888",
                                         linewidth=0))
    if n <= 16:
        for i, row in enumerate(shares):
            for k, value in enumerate(row):
                if value is not None:
                    axes.text(k, i, f"{value:.0%}", ha="center", va="center", fontsize=7,
                              color="white" if value > 0.6 else "black")
    figure.colorbar(image, ax=axes, fraction=0.04)
    _save(figure, target, fmt)
    return ChartData(kind="cohorts", title=title, path=target, x=columns, y=report.cohorts,
                     values=tuple(tuple(row) for row in shares), covers=report.covers,
                     partial=tuple(tuple(marks) for marks in flags))


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
    title = f"buyers per RFM cell ({len(report.rows)} buyers)"
    _title(axes, title, f"orders {report.covers}")
    top = max((max(row) for row in cells), default=0) or 1
    for i, row in enumerate(cells):
        for j, value in enumerate(row):
            axes.text(j, i, f"{value:,}", ha="center", va="center", fontsize=7,
                      color="white" if value > 0.6 * top else "black")
    figure.colorbar(image, ax=axes, fraction=0.05)
    _save(figure, target, fmt)
    return ChartData(kind="rfm", title=title, path=target, x=x, y=y,
                     values=tuple(tuple(row) for row in cells), covers=f"orders {report.covers}")


def touchpoint_chart(report: TouchpointReport, path: str | Path) -> ChartData:
    """Drainage rate (added / reached) per touchpoint."""
    target, fmt = _target(path)
    labels = tuple(str(r[0]) for r in report.rows)
    values = tuple(float(r[3] or 0.0) for r in report.rows)
    _bars(f"drainage rate per {report.by}", labels, values, "added / reached", True, target, fmt,
          covers=f"users first seen {report.covers}")
    return ChartData(kind="touchpoints", title=f"drainage rate per {report.by}", path=target, x=labels,
                     values=values, covers=f"users first seen {report.covers}")


def fission_chart(report: FissionReport, path: str | Path) -> ChartData:
    """Users per referral generation (1 = invited by a seed user), titled with the K-factor and fission
    rate of the report (:attr:`FissionStats.k_factor <siyu.models.referrals.FissionStats.k_factor>`)."""
    target, fmt = _target(path)
    stats = report.stats
    generations = stats.generations
    labels = tuple(f"gen {g}" for g in generations)
    values = tuple(generations.values())
    title = f"users per generation\nK = {stats.k_factor:.2f}, fission rate {stats.fission_rate:.2f}"
    _bars(title, labels, values, "users", False, target, fmt, covers=report.covers)
    return ChartData(kind="fission", title=title, path=target, x=labels, values=values, covers=report.covers)


def aov_chart(report: AovReport, path: str | Path) -> ChartData:
    """Average order value (yuan) per group, without the ``(all)`` row."""
    target, fmt = _target(path)
    rows = [r for r in report.rows if r[0] != "(all)" and r[4] is not None] or list(report.rows[-1:])
    labels = tuple(str(r[0]) for r in rows)
    values = tuple(float(r[4] or 0) for r in rows)
    title = f"average order value{' by ' + report.by if report.by else ''} (yuan)"
    partial = tuple(report.running and i == len(rows) - 1 and r[0] != "(all)" for i, r in enumerate(rows))
    _bars(title, labels, values, "yuan per order", False, target, fmt, covers=report.covers,
          partial=partial if any(partial) else (), partial_label="not over: so far")
    return ChartData(kind="aov", title=title, path=target, x=labels, values=values, covers=report.covers,
                     partial=partial)


def repurchase_chart(report: RepurchaseReport, path: str | Path) -> ChartData:
    """Repurchase rate per period of the first order; periods whose windows had not all closed by
    ``until`` (``complete`` false) are drawn pale and hatched: their rate can still grow."""
    target, fmt = _target(path)
    rows = [r for r in report.rows if r[0] != "(all)"]
    labels = tuple(str(r[0]) for r in rows)
    values = tuple(float(r[3] or 0.0) for r in rows)
    partial = tuple(not r[4] for r in rows)
    title = f"repurchase within {span(report.window)}"
    _bars(title, labels, values, "repurchased / buyers", True, target, fmt, covers=f"first orders {report.covers}",
          partial=partial if any(partial) else (), partial_label="window still open: can still grow")
    return ChartData(kind="repurchase", title=title, path=target, x=labels, values=values,
                     covers=f"first orders {report.covers}", partial=partial)


def new_vs_returning_chart(report: NewVsReturningReport, path: str | Path) -> ChartData:
    """New (bottom) and returning (top) buyers per period, stacked; a last period still running at
    ``until`` is hatched."""
    target, fmt = _target(path)
    labels = tuple(str(r[0]) for r in report.rows)
    new = tuple(int(r[2]) for r in report.rows)
    back = tuple(int(r[3]) for r in report.rows)
    partial = tuple(report.running and i == len(labels) - 1 for i in range(len(labels)))
    figure = _figure(max(4.5, 0.6 * len(labels) + 2), 3.6)
    axes = figure.add_subplot()
    lower = axes.bar(range(len(labels)), new, color=_COLOR, label="new")
    upper = axes.bar(range(len(labels)), back, bottom=new, color="#9cc5a1", label="returning")
    for bars in (lower, upper):
        for bar, flag in zip(bars, partial, strict=True):
            if flag:
                bar.set_hatch(_HATCH)
                bar.set_edgecolor("white")
    axes.set_xticks(range(len(labels)), labels, rotation=30, ha="right")
    axes.set_ylabel("buyers")
    axes.legend(frameon=False, fontsize=8)
    title = f"new vs returning buyers per {report.period}"
    _title(axes, title, report.covers + (f"\nhatched: {labels[-1]} not over, so far" if report.running else ""))
    axes.spines[["top", "right"]].set_visible(False)
    _save(figure, target, fmt)
    return ChartData(kind="new_vs_returning", title=title, path=target, x=labels, y=("new", "returning"),
                     values=(new, back), covers=report.covers, partial=partial)


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
