"""The report writer: a sweep's report on disk and in W&B. report.md (what the runs share, the runs table,
the paper's tables beside ours), runs.csv and runs.tex, paper.csv and paper.tex, categories.md and
buckets.png; and the small table amodal-run and amodal-merge print for one run.

Each table is built once (``eval/table.py``) and rendered as markdown, CSV and LaTeX; the runs come from
``eval/runs.py``, the paper's tables from ``eval/paper.py``, the plot from ``eval/plot.py``.
"""

from __future__ import annotations

from pathlib import Path

from amodal.eval.metrics import bucket_key, bucket_label
from amodal.eval.paper import CSV_HEADER, Comparison, compare, matches, paper_tables
from amodal.eval.runs import RunRecord, held_constant_line, setting_columns
from amodal.eval.table import METRICS, SPREAD, Column, Table, percent, score_of, to_csv, to_markdown

RUNS_CAPTION = ("mIoU (%) of each run, overall (occluded objects, unless the run counted the unoccluded ones too) "
                "and by occlusion rate (≤X%: at most X% hidden); n: objects")


def spread_columns(records: list[RunRecord]) -> list[str]:
    """The CSV's columns beside each mIoU for what ``--ci`` and ``--seeds`` added (none without them)."""
    ci = any("ci95" in r.metrics for r in records)
    seeds = any(r.metrics.get("seeds") for r in records)
    return [name for name in SPREAD if (ci and "_ci_" in name) or (seeds and "_ci_" not in name)]


def runs_table(records: list[RunRecord]) -> Table:
    """The run, its settings, mIoU overall and per bucket (each with n), pixel IoU, and mIoU_occ (the
    hidden part's, with the objects that have one; per bucket in the CSV only); a ``status`` column
    ("finished" or what is not whole) when some run is not whole."""
    settings = setting_columns(records)
    buckets = records[0].metrics["buckets"] if records else []
    keys = [bucket_key(b["max_occlusion"]) for b in buckets]
    spread = tuple(spread_columns(records))

    def mean(title: str, key: str = "") -> Column:
        names = ("miou", *spread, "n")
        return Column(title, tuple(f"{name}_{key}" if key else name for name in names), "score", spread)

    columns = [Column("run"), *(Column(name) for name in settings), mean("mIoU"),
               *(mean(b["label"], k) for b, k in zip(buckets, keys)),
               Column("pixel IoU", ("pixel_iou",), "percent"), Column("mIoU_occ", ("miou_occ", "n_occ"), "score"),
               *(Column(f"mIoU_occ {b['label']}", (f"miou_occ_{k}", f"n_occ_{k}"), "score", shown=False)
                 for b, k in zip(buckets, keys))]
    status = any(record.status for record in records)
    if status:
        columns.append(Column("status"))
    rows = []
    for record in records:
        m = record.metrics
        rows.append([record.label, *(record.settings.get(k, "") for k in settings), m, *m["buckets"],
                     m["pixel_iou"], score_of(m, "miou_occ"), *(score_of(b, "miou_occ") for b in m["buckets"]),
                     *([record.status or "finished"] if status else [])])
    return Table(columns, rows, text_columns=1 + len(settings))


def runs_csv(records: list[RunRecord]) -> str:
    """The runs table as numbers: mIoU, pixel IoU and mIoU_occ in %, each bucket's n in a column of its
    own (mIoU_occ and n_occ empty for runs that predate them)."""
    return runs_table(records).to_csv()


def runs_latex(records: list[RunRecord]) -> str:
    sweeps = sorted({r.label.rsplit("/", 1)[0] for r in records})
    return runs_table(records).to_latex(f"{RUNS_CAPTION}. Runs of {', '.join(sweeps)}.", "tab:runs")


def bucket_table(metrics: dict) -> str:
    """One run's metrics as a small markdown table (printed at the end of amodal-run)."""
    header = ["", "all", *(bucket_label(b["max_occlusion"]) for b in metrics["buckets"])]
    miou = ["mIoU", percent(metrics["miou"]), *(percent(b["miou"]) for b in metrics["buckets"])]
    count = ["n", str(metrics["n"]), *(str(b["n"]) for b in metrics["buckets"])]
    hidden = ["mIoU_occ", *(percent(m.get("miou_occ")) for m in (metrics, *metrics["buckets"]))]
    count_hidden = ["n_occ", *(str(m.get("n_occ")) for m in (metrics, *metrics["buckets"]))]
    counts = metrics["counts"]
    notes = f"objects: {counts['objects']}, scored: {counts['scored']}, unoccluded: {counts['unoccluded']}"
    for what in ("unscored", "skipped"):
        if counts.get(what):
            notes += f", {what}: " + ", ".join(f"{v} ({k})" for k, v in counts[what].items())
    return to_markdown(header, [miou, count, hidden, count_hidden]) + "\n" + notes


def category_table(records: list[RunRecord], metric: str = "miou") -> Table:
    """One row per category that some run names, one column per run, each cell the run's ``metric`` (%)
    on that category with its objects; a last row with all objects."""
    names = sorted({name for record in records for name in record.metrics.get("categories") or {}})
    columns = [Column("category"), *(Column(record.label, kind="score") for record in records)]
    rows = [[name, *(score_of((r.metrics.get("categories") or {}).get(name, {"n": 0}), metric) for r in records)]
            for name in names]
    rows.append(["all", *(score_of(r.metrics, metric) for r in records)])
    return Table(columns, rows)


def category_markdown(records: list[RunRecord], metric: str = "miou") -> str:
    title, count = METRICS[metric]
    text = (f"{title} (%) by category, over the objects mIoU counts ({count}: those behind each number"
            + (", the ones with a hidden part" if metric == "miou_occ" else "") + ").\n\n")
    return text + category_table(records, metric).to_markdown() + "\n"


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
    held = held_constant_line(records)
    text = ("mIoU (%) overall and by occlusion rate (≤X%: objects at most X% hidden); n: objects; mIoU_occ: "
            "the mean IoU of the hidden part (Â \\ V against A \\ V) over the objects that have one.\n\n"
            + (f"{held}.\n\n" if held else "")
            + runs_table(records).to_markdown()
            + "".join("\n\n" + c.markdown() for c in tables) + "\n")
    if not_run(records):
        text += "\nNot run here: " + "; ".join(not_run(records)) + "\n"
    text += "".join(f"\nNote: {note}\n" for note in notes)
    return text


def write_report(records: list[RunRecord], out: Path, tables: list[Comparison] | None = None,
                 baseline: bool = False, notes: list[str] = (), metric: str = "miou",
                 by_category: bool = False) -> dict[str, Path]:
    """report.md, runs.csv, runs.tex, paper.csv, paper.tex (where the runs fill a paper table),
    categories.md (``by_category``) and buckets.png in ``out``."""
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
    from amodal.eval.plot import bucket_plot  # matplotlib: imported when a report is written, not by every run

    bucket_plot(records, files["plot"], tables, baseline, metric)
    if by_category:
        files["categories"] = out / "categories.md"
        files["categories"].write_text(category_markdown(records, metric))
    return files


def log_summary_run(records: list[RunRecord], files: dict[str, Path], *, project: str, group: str | None,
                    mode: str = "offline", entity: str | None = None) -> None:
    """One W&B run per sweep holding the tables and the plot, in the sweep's group."""
    import wandb

    run = wandb.init(project=project, entity=entity, mode=mode, group=group, job_type="report",
                     name=f"report {group or ''}".strip(), dir=str(files["markdown"].parent))
    table = runs_table(records)
    payload = {"runs": wandb.Table(columns=table.header, data=table.text_rows()),
               "buckets": wandb.Image(str(files["plot"]))}
    for comparison in comparisons(records):
        data = [[label, *(c.ours for c in cells), *(c.n for c in cells), *(c.paper for c in cells)]
                for label, cells in comparison.rows]
        columns = ["row", *(f"{x} (ours)" for x in comparison.labels), *(f"{x} (n)" for x in comparison.labels),
                   *(f"{x} (paper)" for x in comparison.labels)]
        payload[comparison.table] = wandb.Table(columns=columns, data=data)
    run.log(payload)
    run.finish()
