"""The report's plot: mIoU (or mIoU_occ) against the occlusion bucket, one line per run, the paper's
numbers dashed beside the runs they compare with, optionally Â = V.

Drawn on matplotlib's object API (a ``Figure`` of its own, saved through its canvas): no backend is
chosen at import and no pyplot state is touched, so importing the report leaves a notebook's or a
caller's matplotlib as it was.
"""

from __future__ import annotations

import math
import textwrap
from dataclasses import dataclass
from pathlib import Path

from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from amodal.eval.identity import format_value
from amodal.eval.metrics import bucket_key
from amodal.eval.paper import Comparison
from amodal.eval.runs import RunRecord, held_constant_line, setting_columns
from amodal.eval.table import METRICS

COLOURS = colormaps["tab10"].colors + colormaps["Dark2"].colors
LINE_STYLES = ["-", "-.", ":", (0, (3, 1, 1, 1, 1, 1))]  # "--" is kept for the paper's numbers
MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*"]
PAPER_STYLE = {"linestyle": "--", "linewidth": 1.2, "alpha": 0.8}
BASELINE_STYLE = {"color": "0.25", "linewidth": 4, "alpha": 0.3, "solid_capstyle": "round"}


@dataclass
class LineStyle:
    colour: tuple
    line: object = "-"
    marker: str = "o"


def _level_order(value: str):
    try:
        return (0, float(value), "")
    except ValueError:
        return (1, 0.0, value)


def line_styles(records: list[RunRecord]) -> tuple[list[LineStyle], list[Line2D]]:
    """A style per run and the legend that explains it: colour for the setting with the most values,
    line style and marker for two more. Runs that differ in more than three settings (or in too many
    values to draw apart) get a colour each and a legend entry naming their settings."""
    factors = setting_columns(records) if len(records) > 1 else []
    levels = {f: sorted({r.settings.get(f, "") for r in records}, key=_level_order) for f in factors}
    ranked = sorted(factors, key=lambda f: -len(levels[f]))
    slots = [("colour", COLOURS), ("line", LINE_STYLES), ("marker", MARKERS)]
    assigned: dict[str, str] = {}
    for factor in ranked:
        slot = next((name for name, options in slots if name not in assigned.values()
                     and len(levels[factor]) <= len(options)), None)
        if slot is None:
            break
        assigned[factor] = slot
    if factors and len(assigned) == len(factors):
        return _factor_styles(records, levels, assigned)
    styles, handles = [], []
    for i, record in enumerate(records):
        style = LineStyle(COLOURS[i % len(COLOURS)], LINE_STYLES[i // len(COLOURS) % len(LINE_STYLES)],
                          MARKERS[i % len(MARKERS)])
        styles.append(style)
        settings = record.settings
        label = ", ".join(f"{f}={format_value(settings.get(f, ''), digits=3)}" for f in factors) or record.label
        handles.append(Line2D([], [], color=style.colour, linestyle=style.line, marker=style.marker, label=label))
    return styles, handles


def _factor_styles(records, levels, assigned) -> tuple[list[LineStyle], list[Line2D]]:
    options = {"colour": COLOURS, "line": LINE_STYLES, "marker": MARKERS}
    styles = []
    for record in records:
        style = LineStyle(colour="0.2")
        for factor, slot in assigned.items():
            value = levels[factor].index(record.settings.get(factor, ""))
            setattr(style, slot, options[slot][value])
        styles.append(style)
    handles = []
    for factor, slot in assigned.items():
        handles.append(Line2D([], [], linestyle="none", label=f"{factor}:"))
        for i, value in enumerate(levels[factor]):
            look = {"color": "0.35", "linestyle": "-", "marker": "none"}
            look[{"colour": "color", "line": "linestyle", "marker": "marker"}[slot]] = options[slot][i]
            handles.append(Line2D([], [], label=format_value(value, digits=3) or "–", **look))
    return styles, handles


def dodge(records: list[RunRecord], metric: str = "miou", width: float = 0.3, near: float = 0.005) -> list[float]:
    """A small sideways shift per run, so that runs with (nearly) equal numbers in a bucket (hull and rect
    on objects where both areas are the same) are drawn side by side, not one hidden behind the other:
    0 for every run when no two runs come within ``near`` (half a percentage point) in a bucket."""
    buckets = [[b.get(metric) for b in r.metrics["buckets"]] for r in records]
    close = any(a is not None and b is not None and abs(a - b) < near
                for i, first in enumerate(buckets) for second in buckets[i + 1:] for a, b in zip(first, second))
    if not close:
        return [0.0] * len(records)
    step = min(width / (len(records) - 1), 0.08)
    return [(i - (len(records) - 1) / 2) * step for i in range(len(records))]


def _bucket_ticks(records: list[RunRecord], metric: str = "miou") -> list[str]:
    """"≤50%" and how many objects it holds (a range where the runs' objects differ)."""
    key = METRICS[metric][1]
    ticks = []
    for i, bucket in enumerate(records[0].metrics["buckets"]):
        counts = sorted({r.metrics["buckets"][i].get(key) for r in records} - {None})
        n = "?" if not counts else str(counts[0]) if len(counts) == 1 else f"{counts[0]}–{counts[-1]}"
        ticks.append(f"{bucket['label']}\n{key}={n}")
    return ticks


def _percent(values: list) -> list[float]:
    return [math.nan if v is None else 100 * v for v in values]


def bucket_figure(records: list[RunRecord], tables: list[Comparison] = (), baseline: bool = False,
                  metric: str = "miou"):
    """mIoU (%) — or ``metric``, e.g. mIoU_occ — against the occlusion bucket, from the most to the least
    occluded, one line per run; the paper's numbers (mIoU) dashed in the colour of the run they compare
    with; optionally Â = V. The legend sits outside the axes, each bucket's tick says how many objects it
    holds."""
    title = METRICS[metric][0]
    styles, handles = line_styles(records)
    figure = Figure(figsize=(7.5, 4.5))
    axes = figure.subplots()
    x = list(range(len(records[0].metrics["buckets"])))
    for record, style, shift in zip(records, styles, dodge(records, metric)):
        shifted = [i + shift for i in x]
        axes.plot(shifted, _percent([b.get(metric) for b in record.metrics["buckets"]]),
                  color=style.colour, linestyle=style.line, marker=style.marker, markersize=5, linewidth=1.6,
                  label=record.label)
        if metric == "miou" and any("ci95" in b for b in record.metrics["buckets"]):  # --ci: mIoU's 95 % interval
            low, high = zip(*((b.get("ci95") or (None, None)) for b in record.metrics["buckets"]))
            axes.fill_between(shifted, _percent(low), _percent(high), color=style.colour, alpha=0.15, linewidth=0)
    by_label = {r.label: s for r, s in zip(records, styles)}
    keys = [bucket_key(b["max_occlusion"]) for b in records[0].metrics["buckets"]]
    references = [t.table for t in tables if metric == "miou" and _paper_lines(axes, t, by_label, keys)]
    if references:
        handles.append(Line2D([], [], color="0.35", label="paper: " + ", ".join(references), **PAPER_STYLE))
    if baseline:
        handles += _baseline_lines(axes, records, metric)
    axes.set_xticks(x, _bucket_ticks(records, metric), fontsize=8)
    axes.set_xlabel("objects with occlusion rate at most")
    axes.set_ylabel(f"{title} (%)")
    axes.grid(alpha=0.3)
    sweeps = sorted({r.label.rsplit("/", 1)[0] for r in records})
    held = held_constant_line(records)
    heading = f"{title} by occlusion rate: {', '.join(sweeps)}" + (f"\n{held}" if held else "")
    axes.set_title("\n".join(textwrap.fill(part, 110) for part in heading.split("\n")), fontsize=9)
    axes.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False,
                ncol=max(1, math.ceil(len(handles) / 28)))
    return figure


def bucket_plot(records: list[RunRecord], path: Path, tables: list[Comparison] = (), baseline: bool = False,
                metric: str = "miou") -> Path:
    """``bucket_figure`` as a PNG."""
    figure = bucket_figure(records, tables, baseline, metric)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=130, bbox_inches="tight")
    return path


def _paper_lines(axes, table: Comparison, by_label: dict[str, LineStyle], keys: list[str]) -> bool:
    """The paper's bucket numbers of each row that one run of ours fills, dashed in that run's colour."""
    buckets = [i for i, c in enumerate(table.columns) if c in keys]
    drawn = False
    for row, cells in table.rows:
        runs = {tuple(cells[i].runs) for i in buckets}
        if len(runs) != 1 or len(next(iter(runs))) != 1 or next(iter(runs))[0] not in by_label:
            continue
        style = by_label[next(iter(runs))[0]]
        paper = [math.nan if cells[i].paper is None else cells[i].paper for i in buckets]
        axes.plot([keys.index(table.columns[i]) for i in buckets], paper, color=style.colour,
                  label=f"paper: {table.table}, {row}", **PAPER_STYLE)
        drawn = True
    return drawn


def _baseline_lines(axes, records: list[RunRecord], metric: str = "miou") -> list[Line2D]:
    """Â = V on each dataset's objects (from the run with the most of them)."""
    by_dataset: dict[str, RunRecord] = {}
    for record in records:
        key = record.settings.get("dataset", "")
        if record.baseline and (key not in by_dataset or record.baseline["n"] > by_dataset[key].baseline["n"]):
            by_dataset[key] = record
    handles = []
    for dataset, record in sorted(by_dataset.items()):
        x = list(range(len(record.baseline["buckets"])))
        label = "Â = V" + (f" ({dataset})" if len(by_dataset) > 1 else "")
        axes.plot(x, _percent([b.get(metric) for b in record.baseline["buckets"]]), label=label, **BASELINE_STYLE)
        handles.append(Line2D([], [], label=label, **BASELINE_STYLE))
    return handles
