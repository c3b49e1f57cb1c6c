"""Run folders as records: finding them (one finder, which ``amodal-merge`` shares), loading each one's
numbers and settings, what is not whole about it, the shards among them, and what all of them share.

Numbers are recomputed from each run's results.jsonl (so a run still in progress, or one evaluated
with other bucket settings, reports consistently), falling back to metrics.json. Runs are labelled
``<sweep>/<num>`` and told apart by the config choices and values that act on their masks
(``eval/identity.py``), read from the files Hydra wrote, not from the command line. A run that is not
whole (no metrics.json yet, a torn last line, a merge of some shards only) says so in its ``status``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from omegaconf import OmegaConf

from amodal.errors import AmodalError
from amodal.eval.identity import acting_choices, acting_values, differing, run_labels
from amodal.eval.metrics import BUCKETS, UNOCCLUDED, summarize_with_baseline
from amodal.eval.results import has_torn_tail, iter_rows
from amodal.eval.run_folder import BEYOND_LIMIT, MERGED_FILE, METRICS_FILE, RESULTS_FILE, written_config


@dataclass
class RunRecord:
    path: Path
    metrics: dict
    choices: dict[str, str] = field(default_factory=dict)
    """Hydra's group choices (all of them but Hydra's own)."""
    config: dict = field(default_factory=dict)
    """.hydra/config.yaml as written (interpolations unresolved)."""
    status: str = ""
    """What is not whole about the run ("" when it finished): unfinished, torn last line, partial merge."""
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
        metrics, baseline = summarize_with_baseline(iter_rows(path / RESULTS_FILE), buckets, include_unoccluded)
    else:
        metrics = json.loads((path / METRICS_FILE).read_text())
        if metrics.get("metric") == "ap":  # eval.metric=ap: no rows, no buckets
            raise AmodalError(f"{path} holds COCO AP/AR (eval.metric=ap), not mIoU: read its metrics.json, and "
                              "give amodal-report the mIoU runs only")
    label = "/".join(Path(path).resolve().parts[-2:])
    return RunRecord(path=path, metrics=metrics, choices=choices, config=config, label=label, baseline=baseline,
                     status=run_status(path, config))


def load_runs(paths: list[Path], include_unoccluded: bool | None = None) -> list[RunRecord]:
    """Each run folder's record, labelled so that no two read alike."""
    records = [load_run(path, include_unoccluded) for path in paths]
    for record, label in zip(records, run_labels([r.path for r in records])):
        record.label = label
    return records


def is_shard(record: RunRecord) -> bool:
    """A shard of a sharded run (``shard.count`` > 1), not a merge of shards."""
    shard = record.config.get("shard") or {}
    return int(shard.get("count", 1) or 1) > 1 and not (record.path and (Path(record.path) / MERGED_FILE).exists())


def without_shards(records: list[RunRecord]) -> tuple[list[RunRecord], list[str]]:
    """The runs that are not shards, and one line per sharded run saying how to get it (a shard holds
    some of the objects: as a run of its own its numbers would mislead)."""
    runs = [r for r in records if not is_shard(r)]
    groups: dict[str, list[RunRecord]] = {}
    for record in records:
        if is_shard(record):
            config = {k: v for k, v in record.config.items() if k != "shard"}
            groups.setdefault(json.dumps(config, sort_keys=True, default=str), []).append(record)
    lines = []
    for shards in groups.values():
        folders = sorted({Path(r.path).parent for r in shards})
        whole = len(folders) == 1 and len(groups) == 1  # the folder holds these shards only
        sources = [str(f) for f in folders] if whole else [str(r.path) for r in shards]
        merged = f"{folders[0]}-merged" if whole else f"{folders[0]}/merged-{len(lines)}"
        count = int(shards[0].config["shard"]["count"])
        names = [r.label + (" unfinished" if r.status else "") for r in shards]
        partial = " --partial" if len(shards) < count or any(r.status for r in shards) else ""
        lines.append(f"{len(shards)} of the {count} shards of one run ({', '.join(names)}) are left out of the "
                     f"tables; report the run they split: amodal-merge {' '.join(sources)} --out {merged}"
                     f"{partial} && amodal-report {merged}")
    return runs, lines


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


NOT_RUNS = ("wandb", ".submitit")
"""Folders the loggers and the launcher write into: nothing below them is a run folder."""


def find_runs(paths: list[str | Path], marks: tuple[str, ...] = (RESULTS_FILE, METRICS_FILE)) -> list[Path]:
    """Run folders (holding one of ``marks``) at or below each path, in sweep order; the one finder of
    amodal-report and amodal-merge (which looks for results.jsonl only)."""
    found: list[Path] = []
    for root in map(Path, paths):
        if not root.exists():
            raise FileNotFoundError(f"{root} does not exist")
        candidates = {p.parent for name in marks for p in root.rglob(name)}
        candidates = {c for c in candidates if not set(NOT_RUNS) & set(c.parts)}
        found += sorted(candidates, key=lambda p, root=root: _sweep_order(p, root))
    return found


def _sweep_order(path: Path, root: Path) -> tuple:
    """Job folders 0, 1, …, 10 in numeric order."""
    return tuple((0, int(x)) if x.isdigit() else (1, x) for x in path.relative_to(root).parts)


HELD = (("dataset", "dataset"), ("dataset root", "dataset.root"), ("backbone", "backbone"),
        ("extractor", "extractor"), ("limit", "dataset.limit"), ("seed", "runtime.seed"), ("dtype", "runtime.dtype"))
"""What a reader needs to know was the same for every run: (what the line calls it, the setting)."""


def _held_value(record: RunRecord, key: str) -> str | None:
    """A run's value of one of ``HELD`` where it acts on the run (the dataset root: its last folder)."""
    if key == "dataset.root":
        if "dataset.root" not in record.acting_values:
            return None
        try:
            root = OmegaConf.select(OmegaConf.create(record.config), "dataset.root")
        except Exception:  # an interpolation this process cannot resolve: the value as written
            root = record.config["dataset"]["root"]
        return Path(str(root)).name or str(root)
    return record.settings.get(key)


def held_constant(records: list[RunRecord]) -> list[tuple[str, str]]:
    """(name, value) of each setting in ``HELD`` that all runs acting on it share."""
    shared = []
    for name, key in HELD:
        values = {_held_value(r, key) for r in records} - {None, "null"}
        if len(values) == 1:
            shared.append((name, values.pop()))
    return shared


def held_constant_line(records: list[RunRecord]) -> str:
    """``Held constant: dataset cocoa (root cocoa-demo), backbone tiny_sd, …``, or "" when nothing is."""
    shared = dict(held_constant(records))
    if not shared:
        return ""
    if "dataset root" in shared and "dataset" in shared:
        shared["dataset"] += f" (root {shared.pop('dataset root')})"
    return "Held constant: " + ", ".join(f"{name} {value}" for name, value in shared.items())


def setting_columns(records: list[RunRecord]) -> list[str]:
    """The acting choices and config values that differ between the runs (all of them for one run)."""
    if len(records) == 1:
        return list(records[0].acting_choices)
    return differing([r.acting_choices for r in records], [r.acting_values for r in records])
