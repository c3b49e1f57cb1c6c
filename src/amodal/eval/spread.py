"""How far a report's numbers could move: a bootstrap interval over objects beside each mIoU
(``amodal-report --ci``), and runs that differ only in ``runtime.seed`` as one row, mean ± std over the
seeds (``--seeds``).

Both put their numbers into the runs' metrics dicts (``ci95`` beside ``miou``; ``miou_std`` and ``seeds``
for a group of seeds), overall and in every bucket, and the report's tables and plot show what is there.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from pathlib import Path

from amodal.eval.bootstrap import RESAMPLES, SEED, seeded_interval
from amodal.eval.metrics import TOLERANCE, counts_in_miou
from amodal.eval.results import read_rows, row_key
from amodal.eval.run_folder import RESULTS_FILE
from amodal.eval.runs import RunRecord

SEED_KEY = "runtime.seed"
SEED_RUNS = "seed_runs"
"""In a seed group's metrics: the run folders it averages."""


def object_ious(record: RunRecord) -> dict[tuple, float] | None:
    """The IoU of each object the record's mIoU counts (by the run's own rule), averaged over the runs of a
    seed group where every one of them counted the object; None for a run without results.jsonl."""
    paths = [Path(p) for p in record.metrics.get(SEED_RUNS, [record.path])]
    if not all((p / RESULTS_FILE).is_file() for p in paths):
        return None
    include = bool(record.metrics.get("include_unoccluded", False))
    per_run = [{row_key(r): r for r in read_rows(p / RESULTS_FILE) if counts_in_miou(r, include)} for p in paths]
    common = [k for k in per_run[0] if all(k in rows for rows in per_run[1:])]
    return {k: (math.fsum(rows[k]["iou"] for rows in per_run) / len(per_run), per_run[0][k]["occlusion_rate"])
            for k in common}


def add_intervals(records: Sequence[RunRecord], seed: int = SEED, resamples: int = RESAMPLES) -> list[RunRecord]:
    """``ci95`` (a 95 % bootstrap interval of the mean over objects, a fraction like ``miou``) beside the
    mIoU of each record, overall and in each bucket; None where fewer than two objects count. Returns the
    records without rows to resample (a folder holding only metrics.json), which get none."""
    without_rows = []
    for record in records:
        ious = object_ious(record)
        if ious is None:
            without_rows.append(record)
            continue
        values = list(ious.values())
        record.metrics["ci95"] = _pair(seeded_interval([v for v, _ in values], seed, resamples))
        for bucket in record.metrics["buckets"]:
            members = [v for v, rate in values if rate <= bucket["max_occlusion"] + TOLERANCE]
            bucket["ci95"] = _pair(seeded_interval(members, seed, resamples))
    return without_rows


def _pair(interval):
    return None if interval is None else list(interval)


def seed_groups(records: Sequence[RunRecord]) -> list[RunRecord]:
    """The records, those that differ only in ``runtime.seed`` made one (in the place of the first): its
    mIoU, each bucket's and the pixel IoU the mean over the seeds, ``miou_std`` their sample standard
    deviation (n − 1; none for one seed), ``seeds`` how many, ``n`` the objects of each (a range where the
    seeds' objects differ: ``n_range``)."""
    groups: dict[tuple, list[RunRecord]] = {}
    for record in records:
        key = tuple(sorted((k, v) for k, v in record.settings.items() if k != SEED_KEY))
        groups.setdefault(key, []).append(record)
    return [members[0] if len(members) == 1 else merge_seeds(members) for members in groups.values()]


def merge_seeds(members: list[RunRecord]) -> RunRecord:
    first = members[0]
    metrics = {**first.metrics, **_mean_over(m.metrics for m in members), SEED_RUNS: [str(m.path) for m in members]}
    metrics["buckets"] = [{**bucket, **_mean_over(m.metrics["buckets"][i] for m in members)}
                          for i, bucket in enumerate(first.metrics["buckets"])]
    names = sorted({name for m in members for name in m.metrics.get("categories") or {}})
    metrics["categories"] = {name: _mean_over((m.metrics.get("categories") or {}).get(name, {"miou": None, "n": 0})
                                              for m in members) for name in names}
    sweeps = {m.label.rsplit("/", 1)[0] for m in members}
    label = (f"{sweeps.pop()}/{','.join(m.label.rsplit('/', 1)[-1] for m in members)}" if len(sweeps) == 1
             else ", ".join(m.label for m in members))
    group = RunRecord(path=first.path, metrics=metrics, choices=first.choices, config=first.config,
                      status=", ".join(f"{m.label}: {m.status}" for m in members if m.status), label=label,
                      baseline=first.baseline)
    group.acting_values = {k: v for k, v in first.acting_values.items() if k != SEED_KEY}
    group.settings = {k: v for k, v in first.settings.items() if k != SEED_KEY}
    return group


def _mean_over(stats) -> dict:
    """mean and sample std of ``miou`` (and the means of ``pixel_iou`` and ``miou_occ``) over the seeds'
    dicts."""
    stats = list(stats)
    mious = [s["miou"] for s in stats if s.get("miou") is not None]
    counts = sorted({s["n"] for s in stats})
    pixel = [s["pixel_iou"] for s in stats if s.get("pixel_iou") is not None]
    hidden = [s.get("miou_occ") for s in stats]
    hidden_counts = sorted({s.get("n_occ") for s in stats} - {None})
    return {
        "miou_occ": statistics.fmean(hidden) if None not in hidden else None,  # a seed without it: unknown
        "n_occ": hidden_counts[0] if None not in hidden else None,
        "miou": statistics.fmean(mious) if mious else None,
        "miou_std": statistics.stdev(mious) if len(mious) > 1 else None,
        "seeds": len(stats),
        "n": counts[0],
        "n_range": [counts[0], counts[-1]] if len(counts) > 1 else None,
        "pixel_iou": statistics.fmean(pixel) if pixel else None,
    }
