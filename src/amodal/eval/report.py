"""Tables of runs: one row per run folder, the choices that differ, mIoU and the occlusion buckets.

Numbers are recomputed from each run's results.jsonl (so a run still in progress, or one evaluated
with other bucket settings, reports consistently), falling back to metrics.json. A run that is not
whole (no metrics.json yet, a torn last line, a merge of some shards only) says so in a status column.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from amodal.eval.merge import MERGED_FILE
from amodal.eval.metrics import BUCKETS, bucket_label, summarize
from amodal.eval.results import FILENAME, has_torn_tail, read_rows

IGNORED_OVERRIDES = ("hydra.", "output.", "logger", "runtime.device", "runtime.batch_size")


@dataclass
class RunRecord:
    path: Path
    metrics: dict
    overrides: dict[str, str] = field(default_factory=dict)
    choices: dict[str, str] = field(default_factory=dict)
    config: dict = field(default_factory=dict)
    status: str = ""
    """What is not whole about the run ("" when it finished): unfinished, torn last line, partial merge."""


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
    return RunRecord(path=path, metrics=metrics, overrides=overrides, choices=choices, config=config,
                     status=run_status(path, config))


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
    if not (path / "metrics.json").exists():
        shard = config.get("shard") or {}
        sharded = int(shard.get("count", 1)) > 1
        notes.append(f"unfinished shard {shard['index']} of {shard['count']}" if sharded else "unfinished")
    if has_torn_tail(path / FILENAME):
        notes.append("torn last line")
    return ", ".join(notes)


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
    marked = any(record.status for record in records)
    if marked:
        header.append("status")
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
                *([record.status or "finished"] if marked else []),
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
    if counts["skipped"]:
        notes += ", skipped: " + ", ".join(f"{v} ({k})" for k, v in counts["skipped"].items())
    return to_markdown(header, [miou, count]) + "\n" + notes
