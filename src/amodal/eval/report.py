"""Tables of runs: one row per run folder, the settings that tell the runs apart, and mIoU overall and in
each occlusion bucket, each with the number of objects behind it.

Numbers are recomputed from each run's results.jsonl (so a run still in progress, or one evaluated
with other bucket settings, reports consistently), falling back to metrics.json. Runs are labelled
``<sweep>/<num>`` and told apart by the config choices and values that act on their masks
(``eval/identity.py``), read from the files Hydra wrote, not from the command line. A run that is not
whole (no metrics.json yet, a torn last line, a merge of some shards only) says so in a status column.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from amodal.eval.identity import acting_choices, acting_values, differing, run_labels
from amodal.eval.metrics import BUCKETS, UNOCCLUDED, bucket_key, bucket_label, summarize, visible_baseline
from amodal.eval.results import has_torn_tail, read_rows
from amodal.eval.run_folder import BEYOND_LIMIT, MERGED_FILE, METRICS_FILE, RESULTS_FILE, written_config


@dataclass
class RunRecord:
    path: Path
    metrics: dict
    choices: dict[str, str] = field(default_factory=dict)
    """Hydra's group choices (all of them but Hydra's own)."""
    config: dict = field(default_factory=dict)
    status: str = ""
    """What is not whole about the run ("" when it finished): unfinished, torn last line, partial merge."""
    """.hydra/config.yaml as written (interpolations unresolved)."""
    label: str = ""
    """``<sweep>/<num>``: the run folder and the folder above it."""
    baseline: dict | None = None
    """The metrics Â = V would get on the same objects (``metrics.visible_baseline``), where known."""

    @cached_property
    def acting_choices(self) -> dict[str, str]:
        return acting_choices(self.config, self.choices) if self.config else dict(self.choices)

    @cached_property
    def acting_values(self) -> dict[str, str]:
        return acting_values(self.config) if self.config else {}

    @cached_property
    def settings(self) -> dict[str, str]:
        """The acting choices and config values, by name (``area``, ``backbone.s``)."""
        return {**self.acting_values, **self.acting_choices}


def load_run(path: Path, include_unoccluded: bool | None = None) -> RunRecord:
    config = written_config(path)
    eval_cfg = config.get("eval", {})
    hydra_meta = written_config(path, "hydra.yaml")
    choices = {
        k: str(v)
        for k, v in ((hydra_meta.get("hydra") or {}).get("runtime", {}).get("choices") or {}).items()
        if not k.startswith("hydra/") and v is not None
    }
    baseline = None
    if (path / RESULTS_FILE).exists():
        if include_unoccluded is None:
            include_unoccluded = bool(eval_cfg.get("include_unoccluded", False))
        buckets = tuple(eval_cfg.get("buckets", BUCKETS))
        rows = read_rows(path / RESULTS_FILE)
        metrics = summarize(rows, buckets, include_unoccluded)
        visible = visible_baseline(rows)
        if visible is not None:
            baseline = summarize(visible, buckets, include_unoccluded)
    else:
        metrics = json.loads((path / METRICS_FILE).read_text())
    label = "/".join(Path(path).resolve().parts[-2:])
    return RunRecord(path=path, metrics=metrics, choices=choices, config=config, label=label, baseline=baseline,
                     status=run_status(path, config))


def load_runs(paths: list[Path], include_unoccluded: bool | None = None) -> list[RunRecord]:
    """Each run folder's record, labelled so that no two read alike."""
    records = [load_run(path, include_unoccluded) for path in paths]
    for record, label in zip(records, run_labels([r.path for r in records])):
        record.label = label
    return records


def run_status(path: Path, config: dict) -> str:
    """"" for a finished run, else what is missing: a run or shard still going or stopped (no metrics.json),
    a line a crash tore, a merge of some of the shards (merged.json ``partial``)."""
    merged = path / MERGED_FILE
    if merged.exists():
        info = json.loads(merged.read_text())
        if not info.get("partial"):
            return ""
        count, have = info.get("shard_count"), {int(i) for i in info.get("shards", {})}
        missing = [str(i) for i in range(count or 0) if i not in have]
        unfinished = [str(i) for i in info.get("unfinished", [])]
        return "partial merge" + (f", shards {', '.join(missing)} of {count} missing" if missing else "") + (
            f", shards {', '.join(unfinished)} unfinished" if unfinished else "")
    notes = []
    if not (path / METRICS_FILE).exists():
        shard = config.get("shard") or {}
        sharded = int(shard.get("count", 1)) > 1
        notes.append(f"unfinished shard {shard['index']} of {shard['count']}" if sharded else "unfinished")
    if has_torn_tail(path / RESULTS_FILE):
        notes.append("torn last line")
    elif (path / METRICS_FILE).exists() and (beyond := json.loads((path / METRICS_FILE).read_text()).get(BEYOND_LIMIT)):
        notes.append(f"{beyond} rows beyond its last dataset.limit, counted")
    return ", ".join(notes)


def unpredicted_unoccluded(record: RunRecord) -> str | None:
    """One line when the table counts unoccluded objects but the run did not predict some of them."""
    missing = record.metrics["counts"].get("unscored", {}).get(UNOCCLUDED, 0)
    if not (record.metrics.get("include_unoccluded") and missing):
        return None
    return (f"{record.path}: {missing} unoccluded objects were not predicted (the run had "
            "eval.include_unoccluded=false), so its numbers leave them out; to score them, run it again "
            "with eval.include_unoccluded=true into a new folder")


def find_runs(paths: list[str | Path]) -> list[Path]:
    """Run folders (holding results.jsonl or metrics.json) at or below each path, in sweep order."""
    found: list[Path] = []
    for root in map(Path, paths):
        if not root.exists():
            raise FileNotFoundError(f"{root} does not exist")
        candidates = {p.parent for name in (RESULTS_FILE, METRICS_FILE) for p in root.rglob(name)}
        candidates = {c for c in candidates if "wandb" not in c.parts}
        found += sorted(candidates, key=lambda p, root=root: _sweep_order(p, root))
    return found


def _sweep_order(path: Path, root: Path) -> tuple:
    """Job folders 0, 1, …, 10 in numeric order."""
    return tuple((0, int(x)) if x.isdigit() else (1, x) for x in path.relative_to(root).parts)


def percent(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}"


def number(value: float | None) -> str:
    """A number as the CSV files write it (empty when there is none)."""
    return "" if value is None else f"{value:.4f}"


def score(value: float | None, n: int) -> str:
    """An mIoU (%) with the number of objects behind it: ``81.0 (n=6)``."""
    return f"{percent(value)} (n={n})"


def setting_columns(records: list[RunRecord]) -> list[str]:
    """The acting choices and config values that differ between the runs (all of them for one run)."""
    if len(records) == 1:
        return list(records[0].acting_choices)
    return differing([r.acting_choices for r in records], [r.acting_values for r in records])


def runs_table(records: list[RunRecord]) -> tuple[list[str], list[list[str]]]:
    """(header, rows): the run, its settings, mIoU overall and per bucket (each with n), pixel IoU."""
    columns = setting_columns(records)
    bucket_names = [b["label"] for b in records[0].metrics["buckets"]] if records else []
    header = ["run", *columns, "mIoU", *bucket_names, "pixel IoU"]
    rows = []
    for record in records:
        m, settings = record.metrics, record.settings
        rows.append([record.label, *(settings.get(k, "") for k in columns), score(m["miou"], m["n"]),
                     *(score(b["miou"], b["n"]) for b in m["buckets"]), percent(m["pixel_iou"])])
    return with_status(header, rows, records)


def with_status(header: list[str], rows: list[list[str]], records: list[RunRecord]):
    """A ``status`` column ("finished" or what is not whole) when some run is not whole, else none."""
    if not any(record.status for record in records):
        return header, rows
    return [*header, "status"], [[*row, record.status or "finished"] for row, record in zip(rows, records)]


def runs_csv(records: list[RunRecord]) -> str:
    """The runs table as numbers: mIoU and pixel IoU in %, each bucket's n in a column of its own."""
    columns = setting_columns(records)
    keys = [bucket_key(b["max_occlusion"]) for b in records[0].metrics["buckets"]] if records else []
    header = ["run", *columns, "miou", "n", *(f"{name}_{k}" for k in keys for name in ("miou", "n")), "pixel_iou"]
    rows = []
    for record in records:
        m, settings = record.metrics, record.settings
        buckets = [x for b in m["buckets"] for x in (number(_pct(b["miou"])), str(b["n"]))]
        rows.append([record.label, *(settings.get(k, "") for k in columns), number(_pct(m["miou"])), str(m["n"]),
                     *buckets, number(_pct(m["pixel_iou"]))])
    return to_csv(*with_status(header, rows, records))


def _pct(value: float | None) -> float | None:
    return None if value is None else 100 * value


def to_markdown(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def to_csv(header: list[str], rows: list[list[str]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


LATEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "_": r"\_", "#": r"\#", "{": r"\{", "}": r"\}",
         "$": r"\$", "^": r"\^{}", "~": r"\~{}", "≤": r"$\leq$", "–": "--", "−": "$-$", "✗": r"$\times$",
         "Â": r"$\hat{A}$"}


def latex_escape(text: str) -> str:
    """Text as LaTeX prints it (one pass, so that no replacement is escaped again)."""
    return "".join(LATEX.get(char, char) for char in str(text))


def latex_score(value: float | None, n: int | None) -> str:
    """``81.0 {\\scriptsize n=6}`` (an mIoU in %, with its object count set small)."""
    text = "--" if value is None else f"{value:.1f}"
    return text if n is None else text + r" {\scriptsize $n$=" + str(n) + "}"


def latex_table(header: list[str], rows: list[list[str]], *, text_columns: int, caption: str, label: str) -> str:
    """A booktabs ``table`` with a caption, ready to paste (``\\usepackage{booktabs}``): the first
    ``text_columns`` columns left-aligned, the numbers right-aligned. Cells are LaTeX already."""
    align = "l" * text_columns + "r" * (len(header) - text_columns)
    lines = [r"% needs \usepackage{booktabs}", r"\begin{table}[t]", r"\centering",
             r"\caption{" + latex_escape(caption) + "}", r"\label{" + label + "}",
             r"\begin{tabular}{" + align + "}", r"\toprule",
             " & ".join(latex_escape(h) for h in header) + r" \\", r"\midrule"]
    lines += [" & ".join(row) + r" \\" for row in rows]
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines) + "\n"


RUNS_CAPTION = ("mIoU (%) of each run, overall (occluded objects, unless the run counted the unoccluded ones too) "
                "and by occlusion rate (≤X%: at most X% hidden); n: objects")


def runs_latex(records: list[RunRecord]) -> str:
    columns = setting_columns(records)
    header, _ = runs_table(records)
    rows = []
    for record in records:
        m, settings = record.metrics, record.settings
        rows.append([latex_escape(record.label), *(latex_escape(settings.get(k, "")) for k in columns),
                     latex_score(_pct(m["miou"]), m["n"]),
                     *(latex_score(_pct(b["miou"]), b["n"]) for b in m["buckets"]),
                     latex_score(_pct(m["pixel_iou"]), None),
                     *([latex_escape(record.status or "finished")] if "status" in header else [])])
    sweeps = sorted({r.label.rsplit("/", 1)[0] for r in records})
    caption = f"{RUNS_CAPTION}. Runs of {', '.join(sweeps)}."
    return latex_table(header, rows, text_columns=1 + len(columns), caption=caption, label="tab:runs")


def bucket_table(metrics: dict) -> str:
    """One run's metrics as a small markdown table (printed at the end of amodal-run)."""
    header = ["", "all", *(bucket_label(b["max_occlusion"]) for b in metrics["buckets"])]
    miou = ["mIoU", percent(metrics["miou"]), *(percent(b["miou"]) for b in metrics["buckets"])]
    count = ["n", str(metrics["n"]), *(str(b["n"]) for b in metrics["buckets"])]
    counts = metrics["counts"]
    notes = f"objects: {counts['objects']}, scored: {counts['scored']}, unoccluded: {counts['unoccluded']}"
    for what in ("unscored", "skipped"):
        if counts.get(what):
            notes += f", {what}: " + ", ".join(f"{v} ({k})" for k, v in counts[what].items())
    return to_markdown(header, [miou, count]) + "\n" + notes
