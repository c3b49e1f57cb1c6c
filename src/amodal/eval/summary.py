"""A sweep's report on disk and in W&B: the runs table, the paper's tables beside ours, and a plot of
mIoU against the occlusion bucket (one line per run)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from amodal.eval.paper import Comparison, compare, matches, paper_tables  # noqa: E402
from amodal.eval.report import RunRecord, runs_table, to_csv, to_latex, to_markdown  # noqa: E402


def run_labels(records: list[RunRecord]) -> list[str]:
    header, rows = runs_table(records)
    keys = header[1 : header.index("mIoU")]
    return [", ".join(f"{k}={v}" for k, v in zip(keys, row[1 : 1 + len(keys)])) or row[0] for row in rows]


def bucket_plot(records: list[RunRecord], path: Path) -> Path:
    """mIoU (%) against the occlusion bucket, from the most to the least occluded, one line per run."""
    figure, axes = plt.subplots(figsize=(7, 4.5))
    for record, label in zip(records, run_labels(records)):
        buckets = record.metrics["buckets"]
        axes.plot([b["label"] for b in buckets], [None if b["miou"] is None else 100 * b["miou"] for b in buckets],
                  marker="o", label=label)
    axes.set_xlabel("objects with occlusion rate")
    axes.set_ylabel("mIoU (%)")
    axes.grid(alpha=0.3)
    if len(records) <= 12:
        axes.legend(fontsize=7)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def comparisons(records: list[RunRecord]) -> list[Comparison]:
    """The paper's tables that some of the runs are about (their ``where`` matches a run)."""
    return [compare(spec, records) for spec in paper_tables(records)
            if any(matches(r, spec.get("where")) for r in records)]


def not_run(records: list[RunRecord]) -> list[str]:
    """"Table 3 (dataset=bsdsa)" for each paper table none of the runs is about."""
    return [f"{spec['table']} ({', '.join(f'{k}={v}' for k, v in spec['where'].items())})"
            for spec in paper_tables(records) if not any(matches(r, spec.get("where")) for r in records)]


def write_report(records: list[RunRecord], out: Path) -> dict[str, Path]:
    """report.md, runs.csv, runs.tex, paper.csv, paper.tex and buckets.png in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    header, rows = runs_table(records)
    tables = comparisons(records)
    files = {"markdown": out / "report.md", "csv": out / "runs.csv", "latex": out / "runs.tex",
             "plot": out / "buckets.png"}
    text = to_markdown(header, rows) + "".join("\n\n" + c.markdown() for c in tables) + "\n"
    if not_run(records):
        text += "\nNot run here: " + "; ".join(not_run(records)) + "\n"
    files["markdown"].write_text(text)
    files["csv"].write_text(to_csv(header, rows))
    files["latex"].write_text(to_latex(header, rows))
    if tables:
        files["paper_csv"] = out / "paper.csv"
        files["paper_latex"] = out / "paper.tex"
        files["paper_csv"].write_text(to_csv(["table", "row", "column", "ours", "paper", "ours_minus_paper"],
                                             [r for c in tables for r in c.csv_rows()]))
        files["paper_latex"].write_text("\n".join(c.latex() for c in tables))
    bucket_plot(records, files["plot"])
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
        data = [[label, *(c.ours for c in cells), *(c.paper for c in cells)] for label, cells in comparison.rows]
        columns = ["row", *(f"{x} (ours)" for x in comparison.labels), *(f"{x} (paper)" for x in comparison.labels)]
        payload[comparison.table] = wandb.Table(columns=columns, data=data)
    run.log(payload)
    run.finish()
