"""A sweep's report on disk and in W&B: the runs table, the paper's tables beside ours, and a plot of
mIoU (or mIoU_occ) against the occlusion bucket."""

from __future__ import annotations

import logging
import math
import textwrap
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from amodal.eval.identity import format_value  # noqa: E402
from amodal.eval.metrics import bucket_key  # noqa: E402
from amodal.eval.paper import CSV_HEADER, Comparison, compare, matches, paper_tables  # noqa: E402
from amodal.eval.report import (  # noqa: E402
    METRICS,
    RunRecord,
    held_constant_line,
    runs_csv,
    runs_latex,
    runs_table,
    setting_columns,
    to_csv,
    to_markdown,
)

log = logging.getLogger("amodal")

COLOURS = plt.get_cmap("tab10").colors + plt.get_cmap("Dark2").colors
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
    figure, axes = plt.subplots(figsize=(7.5, 4.5))
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
    plt.close(figure)
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


def comparisons(records: list[RunRecord]) -> list[Comparison]:
    """The paper's tables that some of the runs are about (their ``where`` matches a run)."""
    return [compare(spec, records) for spec in paper_tables(records)
            if any(matches(r, spec.get("where")) for r in records)]


def not_run(records: list[RunRecord]) -> list[str]:
    """"Table 3 (dataset=bsdsa)" for each paper table none of the runs is about."""
    return [f"{spec['table']} ({', '.join(f'{k}={v}' for k, v in spec['where'].items())})"
            for spec in paper_tables(records) if not any(matches(r, spec.get("where")) for r in records)]


def report_markdown(records: list[RunRecord], tables: list[Comparison], notes: list[str] = ()) -> str:
    """What the runs share, the runs table, the paper's tables beside ours (with their warnings), the
    tables not run, and ``notes`` (the shards left out)."""
    header, rows = runs_table(records)
    held = held_constant_line(records)
    text = ("mIoU (%) overall and by occlusion rate (≤X%: objects at most X% hidden); n: objects; mIoU_occ: "
            "the mean IoU of the hidden part (Â \\ V against A \\ V) over the objects that have one.\n\n"
            + (f"{held}.\n\n" if held else "")
            + to_markdown(header, rows)
            + "".join("\n\n" + c.markdown() for c in tables) + "\n")
    if not_run(records):
        text += "\nNot run here: " + "; ".join(not_run(records)) + "\n"
    text += "".join(f"\nNote: {note}\n" for note in notes)
    return text


def write_report(records: list[RunRecord], out: Path, tables: list[Comparison] | None = None,
                 baseline: bool = False, notes: list[str] = (), metric: str = "miou") -> dict[str, Path]:
    """report.md, runs.csv, runs.tex, paper.csv, paper.tex and buckets.png in ``out``."""
    tables = comparisons(records) if tables is None else tables
    out.mkdir(parents=True, exist_ok=True)
    files = {"markdown": out / "report.md", "csv": out / "runs.csv", "latex": out / "runs.tex",
             "plot": out / "buckets.png"}
    files["markdown"].write_text(report_markdown(records, tables, notes))
    files["csv"].write_text(runs_csv(records))
    files["latex"].write_text(runs_latex(records))
    if tables:
        files["paper_csv"] = out / "paper.csv"
        files["paper_latex"] = out / "paper.tex"
        files["paper_csv"].write_text(to_csv(CSV_HEADER, [r for c in tables for r in c.csv_rows()]))
        files["paper_latex"].write_text("\n".join(c.latex() for c in tables))
    bucket_plot(records, files["plot"], tables, baseline, metric)
    return files


def log_summary_run(records: list[RunRecord], files: dict[str, Path], *, project: str, group: str | None,
                    mode: str = "offline", entity: str | None = None) -> None:
    """One W&B run per sweep holding the tables and the plot, in the sweep's group."""
    import wandb

    run = wandb.init(project=project, entity=entity, mode=mode, group=group, job_type="report",
                     name=f"report {group or ''}".strip(), dir=str(files["markdown"].parent))
    header, rows = runs_table(records)
    payload = {"runs": wandb.Table(columns=header, data=rows), "buckets": wandb.Image(str(files["plot"]))}
    for comparison in comparisons(records):
        data = [[label, *(c.ours for c in cells), *(c.n for c in cells), *(c.paper for c in cells)]
                for label, cells in comparison.rows]
        columns = ["row", *(f"{x} (ours)" for x in comparison.labels), *(f"{x} (n)" for x in comparison.labels),
                   *(f"{x} (paper)" for x in comparison.labels)]
        payload[comparison.table] = wandb.Table(columns=columns, data=data)
    run.log(payload)
    run.finish()
