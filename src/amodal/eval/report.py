"""Tables of runs: one row per run folder, the choices that differ, mIoU and the occlusion buckets.

Numbers are recomputed from each run's results.jsonl (so a run still in progress, or one evaluated
with other bucket settings, reports consistently), falling back to metrics.json.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from amodal.eval.metrics import BUCKETS, UNOCCLUDED, bucket_label, summarize
from amodal.eval.results import FILENAME, read_rows

IGNORED_OVERRIDES = ("hydra.", "output.", "logger", "runtime.device", "runtime.batch_size")


@dataclass
class RunRecord:
    path: Path
    metrics: dict
    overrides: dict[str, str] = field(default_factory=dict)
    choices: dict[str, str] = field(default_factory=dict)
    config: dict = field(default_factory=dict)


def _read_yaml(path: Path):
    return yaml.safe_load(path.read_text()) if path.exists() else None


def load_run(path: Path, include_unoccluded: bool | None = None) -> RunRecord:
    hydra_dir = path / ".hydra"
    config = _read_yaml(hydra_dir / "config.yaml") or {}
    eval_cfg = config.get("eval", {})
    overrides = {}
    for item in _read_yaml(hydra_dir / "overrides.yaml") or []:
        key, _, value = str(item).partition("=")
        key = key.lstrip("+~")
        if not key.startswith(IGNORED_OVERRIDES):
            overrides[key] = value
    hydra_meta = _read_yaml(hydra_dir / "hydra.yaml") or {}
    choices = {
        k: str(v)
        for k, v in ((hydra_meta.get("hydra") or {}).get("runtime", {}).get("choices") or {}).items()
        if not k.startswith("hydra/") and v is not None
    }
    if (path / FILENAME).exists():
        if include_unoccluded is None:
            include_unoccluded = bool(eval_cfg.get("include_unoccluded", False))
        buckets = tuple(eval_cfg.get("buckets", BUCKETS))
        metrics = summarize(read_rows(path / FILENAME), buckets, include_unoccluded)
    else:
        metrics = json.loads((path / "metrics.json").read_text())
    return RunRecord(path=path, metrics=metrics, overrides=overrides, choices=choices, config=config)


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
        candidates = {p.parent for name in (FILENAME, "metrics.json") for p in root.rglob(name)}
        candidates = {c for c in candidates if "wandb" not in c.parts}
        found += sorted(candidates, key=lambda p, root=root: _sweep_order(p, root))
    return found


def _sweep_order(path: Path, root: Path) -> tuple:
    """Job folders 0, 1, …, 10 in numeric order."""
    return tuple((0, int(x)) if x.isdigit() else (1, x) for x in path.relative_to(root).parts)


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}"


def columns_that_differ(records: list[RunRecord]) -> list[str]:
    keys: list[str] = []
    for record in records:
        keys += [k for k in record.overrides if k not in keys]
    if len(records) > 1:
        keys = [k for k in keys if len({r.overrides.get(k, "") for r in records}) > 1]
    return keys


def runs_table(records: list[RunRecord]) -> tuple[list[str], list[list[str]]]:
    """(header, rows) with the differing choices, mIoU, the buckets and the object count."""
    labels = columns_that_differ(records)
    bucket_names = [b["label"] for b in records[0].metrics["buckets"]] if records else []
    header = ["run", *labels, "mIoU", *bucket_names, "pixel IoU", "n"]
    rows = []
    for record in records:
        m = record.metrics
        rows.append(
            [
                record.path.name,
                *(record.overrides.get(k, "") for k in labels),
                _percent(m["miou"]),
                *(_percent(b["miou"]) for b in m["buckets"]),
                _percent(m["pixel_iou"]),
                str(m["n"]),
            ]
        )
    return header, rows


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


def _latex_escape(text: str) -> str:
    for char, escaped in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("_", r"\_"), ("#", r"\#"),
                          ("≤", r"$\leq$"), ("–", "--")):
        text = text.replace(char, escaped)
    return text


def to_latex(header: list[str], rows: list[list[str]]) -> str:
    lines = [r"\begin{tabular}{" + "l" * (len(header) - 1) + "r}", r"\toprule"]
    lines.append(" & ".join(_latex_escape(h) for h in header) + r" \\")
    lines.append(r"\midrule")
    lines += [" & ".join(_latex_escape(c) for c in row) + r" \\" for row in rows]
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


def bucket_table(metrics: dict) -> str:
    """One run's metrics as a small markdown table (printed at the end of amodal-run)."""
    header = ["", "all", *(bucket_label(b["max_occlusion"]) for b in metrics["buckets"])]
    miou = ["mIoU", _percent(metrics["miou"]), *(_percent(b["miou"]) for b in metrics["buckets"])]
    count = ["n", str(metrics["n"]), *(str(b["n"]) for b in metrics["buckets"])]
    counts = metrics["counts"]
    notes = f"objects: {counts['objects']}, scored: {counts['scored']}, unoccluded: {counts['unoccluded']}"
    for what in ("unscored", "skipped"):
        if counts.get(what):
            notes += f", {what}: " + ", ".join(f"{v} ({k})" for k, v in counts[what].items())
    return to_markdown(header, [miou, count]) + "\n" + notes
