"""The run folder: what ``amodal-run`` writes, and what a resumed run, ``amodal-merge`` and
``amodal-report`` read back. One place for its file names and for the config's fingerprint.

    results.jsonl   a row per object, appended and flushed as it goes (``results.py``)
    metrics.json    written whole when the run finishes: a folder without it has not finished
    resume.json     the config's fingerprint, the settings that decide the rows: a run resumes into a
                    folder, and shards merge into one run, only when their fingerprints agree
    merged.json     in a folder that amodal-merge wrote: the shards it holds, and whether all of them
    .hydra/         config.yaml (as composed), resolved.yaml, hydra.yaml and overrides.yaml
    pictures/       panels of the first objects
    masks/          predicted masks (``data.files.mask_path``), with ``output.save_masks`` or without ground truth
"""

from __future__ import annotations

from pathlib import Path

import yaml
from omegaconf import DictConfig, OmegaConf

from amodal.config import auto_dtype

RESULTS_FILE = "results.jsonl"
METRICS_FILE = "metrics.json"
RESUME_FILE = "resume.json"
MERGED_FILE = "merged.json"
HYDRA_DIR = ".hydra"
PICTURES_DIR = "pictures"
MASKS_DIR = "masks"

RESULT_SECTIONS = ("dataset", "method", "shard")
"""Config sections that change the rows of results.jsonl; a resumed run must agree on them."""
NOT_RESULTS = ("limit", "device", "checkpoint_dir", "cache")
"""Keys within them that do not: a run may resume with more objects, on another machine or device."""


def _without(node, keys: tuple[str, ...]):
    if isinstance(node, dict):
        return {k: _without(v, keys) for k, v in node.items() if k not in keys}
    if isinstance(node, list):
        return [_without(v, keys) for v in node]
    return node


def result_fingerprint(cfg: DictConfig) -> dict:
    """What resume.json holds: the sections that decide the rows (resolved), the seed, the dtype the
    models run in, and whether unoccluded objects are predicted at all."""
    resolved = OmegaConf.to_container(cfg, resolve=True)
    fingerprint = _without({k: resolved.get(k) for k in RESULT_SECTIONS}, NOT_RESULTS)
    fingerprint["seed"] = resolved["runtime"]["seed"]
    fingerprint["dtype"] = auto_dtype(resolved["runtime"]["dtype"], resolved["runtime"]["device"])
    fingerprint["include_unoccluded"] = bool(resolved["eval"]["include_unoccluded"])
    return fingerprint


def differences(fingerprint: dict, other: dict) -> str:
    """The top-level keys in which two fingerprints differ ("dataset, method"), for the message that
    refuses to put their rows together."""
    return ", ".join(sorted(k for k in fingerprint.keys() | other.keys() if fingerprint.get(k) != other.get(k)))


def written_config(run_dir: Path, name: str = "config.yaml") -> dict:
    """A file of the run's ``.hydra/`` (config.yaml: the config as composed), {} when there is none."""
    path = Path(run_dir) / HYDRA_DIR / name
    return (yaml.safe_load(path.read_text()) if path.exists() else None) or {}
