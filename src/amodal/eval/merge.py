"""Merging shard run folders into the one run they split: exact, un-padded, every object once.

A shard folder is what ``amodal-run shard.index=i shard.count=N`` writes (``run_folder.py``):
``results.jsonl``, ``metrics.json`` once finished, ``resume.json`` (the config's fingerprint) and
``.hydra/config.yaml``. The merge refuses what would give other numbers than the unsharded run:
shards of different configs, a missing, repeated or unfinished shard, an object in two shards.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml

from amodal.data.files import atomic_file, write_atomic
from amodal.errors import AmodalError
from amodal.eval.metrics import BUCKETS, Summary
from amodal.eval.results import iter_rows, key_text, row_key
from amodal.eval.run_folder import (
    HYDRA_DIR,
    MERGED_FILE,
    METRICS_FILE,
    RESULTS_FILE,
    RESUME_FILE,
    differences,
    read_fingerprint,
    written_config,
)
from amodal.eval.runs import find_runs


class MergeError(AmodalError):
    """Shard folders that do not add up to one run."""


@dataclass
class ShardRun:
    path: Path
    index: int
    count: int
    fingerprint: dict
    """resume.json without its ``shard`` section: equal for every shard of one run."""
    config: dict
    """.hydra/config.yaml ({} without one)."""

    @property
    def finished(self) -> bool:
        return (self.path / METRICS_FILE).exists()


def find_shard_folders(paths: list[str | Path]) -> list[Path]:
    """Run folders (holding results.jsonl) at or below each path, each once (``runs.find_runs``, the
    report's finder); merged folders are not shards."""
    try:
        folders = find_runs(paths, marks=(RESULTS_FILE,))
    except FileNotFoundError as err:
        raise MergeError(str(err)) from err
    return list(dict.fromkeys(f for f in folders if not (f / MERGED_FILE).exists()))


def read_shard(path: Path) -> ShardRun:
    resume = path / RESUME_FILE
    if not resume.exists():
        raise MergeError(f"{path} has no {RESUME_FILE}: it is not a run folder written by amodal-run")
    fingerprint = read_fingerprint(resume)
    config = written_config(path)
    shard = config.get("shard") or fingerprint.get("shard") or {}
    try:
        index, count = int(shard["index"]), int(shard["count"])
    except (KeyError, TypeError, ValueError) as err:
        raise MergeError(
            f"{path}: neither .hydra/config.yaml nor {RESUME_FILE} says which shard it is"
        ) from err
    fingerprint = {k: v for k, v in fingerprint.items() if k != "shard"}
    return ShardRun(path, index, count, fingerprint, config)


def check_shards(shards: list[ShardRun], partial: bool = False) -> None:
    """One config, one shard count, every index once and finished (``partial``: missing ones allowed)."""
    if not shards:
        raise MergeError("no shard folders (with results.jsonl) found")
    first = shards[0]
    for shard in shards[1:]:
        if shard.fingerprint != first.fingerprint:
            raise MergeError(
                f"{first.path} and {shard.path} ran different configs "
                f"(differ in: {differences(first.fingerprint, shard.fingerprint, first.config)}); "
                "merge only the shards of one run"
            )
        if shard.config.get("eval") != first.config.get("eval"):
            raise MergeError(
                f"{first.path} and {shard.path} use different eval settings; merge only the shards of one run"
            )
        if shard.count != first.count:
            raise MergeError(
                f"{first.path} is shard {first.index} of {first.count} but {shard.path} is shard "
                f"{shard.index} of {shard.count}"
            )
    by_index: dict[int, ShardRun] = {}
    for shard in shards:
        if shard.index in by_index:
            raise MergeError(
                f"{by_index[shard.index].path} and {shard.path} are both shard {shard.index} of {shard.count}"
            )
        by_index[shard.index] = shard
    missing = [i for i in range(first.count) if i not in by_index]
    if missing and not partial:
        several = len(missing) > 1
        raise MergeError(
            f"missing shard{'s' if several else ''} {', '.join(map(str, missing))} of {first.count} "
            f"(found {', '.join(map(str, sorted(by_index)))}): run {'them' if several else 'it'} "
            f"with shard.index=… shard.count={first.count}, or pass --partial"
        )
    for shard in shards:
        if not shard.finished and not partial:
            raise MergeError(
                f"shard {shard.index} of {shard.count} ({shard.path}) has not finished (no metrics.json): "
                "run it again into the same folder to resume it, or pass --partial"
            )


def merged_rows(shards: list[ShardRun]) -> Iterator[dict]:
    """Every shard's rows, in shard order, as they are read (a merge holds their keys, never the rows); an
    object in two shards is refused (one that is twice in one shard is read once, with a warning:
    ``iter_rows``)."""
    seen: dict = {}
    for shard in sorted(shards, key=lambda s: s.index):
        for row in iter_rows(shard.path / RESULTS_FILE):
            key = row_key(row)
            if key_text(key) in seen:
                raise MergeError(
                    f"object {key.image_id}/{key.object_id} is in both {seen[key_text(key)]} and {shard.path}"
                )
            seen[key_text(key)] = shard.path
            yield row


def merge(paths: list[str | Path], out: str | Path, partial: bool = False) -> dict:
    """Merge the shard folders at or below ``paths`` into ``out``; returns the merged metrics. The rows
    stream from the shards into the merged results.jsonl and the metrics' sums at once."""
    out = Path(out)
    if (out / RESULTS_FILE).exists():
        raise MergeError(f"{out} already holds {RESULTS_FILE}; choose another --out")
    shards = [read_shard(p) for p in find_shard_folders(paths) if p.resolve() != out.resolve()]
    check_shards(shards, partial)
    eval_cfg = shards[0].config.get("eval") or {}
    summary = Summary(tuple(eval_cfg.get("buckets", BUCKETS)), bool(eval_cfg.get("include_unoccluded", False)))
    # every file whole (temporary file and rename), results.jsonl last: a merge killed midway leaves no
    # results.jsonl, so the same command merges again; an object in two shards leaves none either
    out.mkdir(parents=True, exist_ok=True)
    with atomic_file(out / RESULTS_FILE) as handle:
        for row in merged_rows(shards):
            summary.add(row)
            handle.write((json.dumps(row, ensure_ascii=False) + "\n").encode())
        metrics = summary.result()
        write_atomic(out / METRICS_FILE, json.dumps(metrics, indent=2, ensure_ascii=False) + "\n")
        _write_unsharded_config(shards[0], out)
        merged = {
            "shard_count": shards[0].count,
            "shards": {s.index: str(s.path) for s in sorted(shards, key=lambda s: s.index)},
            "partial": sorted({s.index for s in shards}) != list(range(shards[0].count))
            or not all(s.finished for s in shards),
            "unfinished": sorted(s.index for s in shards if not s.finished),
        }
        write_atomic(out / MERGED_FILE, json.dumps(merged, indent=2) + "\n")
    return metrics


def _write_unsharded_config(shard: ShardRun, out: Path) -> None:
    """The configs an unsharded run would have written, so amodal-report and resuming read the merged
    folder like any run folder."""
    unsharded = {**shard.fingerprint, "shard": {"index": 0, "count": 1}}
    write_atomic(out / RESUME_FILE, json.dumps(unsharded, indent=2) + "\n")
    hydra_dir = shard.path / HYDRA_DIR
    if not hydra_dir.is_dir():
        return
    (out / HYDRA_DIR).mkdir(exist_ok=True)
    config = {**shard.config, "shard": {"index": 0, "count": 1}}
    write_atomic(out / HYDRA_DIR / "config.yaml", yaml.safe_dump(config, sort_keys=False, allow_unicode=True))
    resolved_file = hydra_dir / "resolved.yaml"
    if resolved_file.exists():
        resolved = {**(yaml.safe_load(resolved_file.read_text()) or {}), "shard": {"index": 0, "count": 1}}
        write_atomic(out / HYDRA_DIR / "resolved.yaml", yaml.safe_dump(resolved, sort_keys=False, allow_unicode=True))
    overrides_file = hydra_dir / "overrides.yaml"
    if overrides_file.exists():
        overrides = [
            o
            for o in yaml.safe_load(overrides_file.read_text()) or []
            if not str(o).lstrip("+~").startswith("shard.")
        ]
        write_atomic(out / HYDRA_DIR / "overrides.yaml", yaml.safe_dump(overrides, allow_unicode=True))
    if (hydra_dir / "hydra.yaml").exists():
        write_atomic(out / HYDRA_DIR / "hydra.yaml", (hydra_dir / "hydra.yaml").read_text())
