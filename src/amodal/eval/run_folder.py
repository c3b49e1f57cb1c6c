"""The run folder: what ``amodal-run`` writes, and what a resumed run, ``amodal-merge`` and
``amodal-report`` read back: the run-folder contract. One place for its file names, the config's
fingerprint, the check a resume passes (``check_resume``) and what a started run leaves (``record_start``).

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

import json
import re
from pathlib import Path

import yaml
from omegaconf import DictConfig, OmegaConf

from amodal.config import auto_dtype
from amodal.data.files import write_atomic
from amodal.errors import AmodalError, ConfigError
from amodal.eval.results import read_rows

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
BEYOND_LIMIT = "rows_beyond_limit"
"""metrics.json's count of rows that a resume with a lower ``dataset.limit`` found in the folder: counted
like every other row (the folder is the run, whatever limit its last process had)."""
PIXEL_LIMIT = "max_image_pixels"
"""The fingerprint's copy of ``runtime.max_image_pixels``: it decides which objects are skipped unread. A
resume may raise it (its skipped rows are tried again: ``too_large``), not lower it."""


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
    fingerprint[PIXEL_LIMIT] = resolved["runtime"].get(PIXEL_LIMIT)
    return fingerprint


def read_fingerprint(path: Path) -> dict:
    """resume.json, or one line saying why it cannot be one (not JSON, not an object)."""
    try:
        fingerprint = json.loads(Path(path).read_text())
    except (ValueError, RecursionError):
        fingerprint = None
    if not isinstance(fingerprint, dict):
        raise AmodalError(f"{path} is not a JSON object (the fingerprint of the run's config): restore it, or "
                          "run into a new folder")
    return fingerprint


def raised_pixel_limit(new: int | None, old: int | None) -> bool:
    return new != old and (new is None or (old is not None and new > old))


def too_large(row: dict) -> bool:
    """A row skipped unread because its image or mask was over ``runtime.max_image_pixels``."""
    return f"runtime.{PIXEL_LIMIT}" in str(row.get("skipped") or "")


TYPED = {"seed": "runtime.seed", "dtype": "runtime.dtype", "include_unoccluded": "eval.include_unoccluded",
         PIXEL_LIMIT: f"runtime.{PIXEL_LIMIT}"}
"""The fingerprint's own keys, as the config spells them."""
_REFERENCE = re.compile(r"^\$\{([A-Za-z_][\w.]*)\}$")  # a whole value that is ${area}, ${backbone.s}


def _as_typed(key: str, config: dict | None) -> str:
    """``method.area._target_`` as the user would type it, ``area._target_``, where ``config`` (unresolved)
    has ``method.area: ${area}``."""
    parts = key.split(".")
    for depth in range(len(parts), 0, -1):
        node = config
        for part in parts[:depth]:
            node = node.get(part) if isinstance(node, dict) else None
        reference = _REFERENCE.match(node) if isinstance(node, str) else None
        if reference:
            return _as_typed(".".join([reference.group(1), *parts[depth:]]), config)
    return TYPED.get(key, key)


def _differing_keys(new, old, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ; a node whose ``_target_`` (its class) differs is named whole."""
    if isinstance(new, dict) and isinstance(old, dict) and new.get("_target_") == old.get("_target_"):
        return [k for key in sorted(new.keys() | old.keys(), key=str)
                for k in _differing_keys(new.get(key), old.get(key), f"{prefix}{key}.")]
    return [] if new == old else [prefix[:-1]]


def _value(node, key: str):
    for part in key.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node.get("_target_", node) if isinstance(node, dict) else node


def differences(fingerprint: dict, other: dict, config: dict | None = None, names: tuple[str, str] = ("", "")) -> str:
    """The keys in which two fingerprints differ, as typed (``area``, not the ``method`` that interpolates
    it, given the unresolved ``config``), each with its two values (``names`` say whose): for the message
    that refuses to put their rows together."""
    keys = _differing_keys(fingerprint, other)
    shown = [f"{_as_typed(k, config)} ({json.dumps(_value(fingerprint, k), default=str)}{names[0]} vs "
             f"{json.dumps(_value(other, k), default=str)}{names[1]})" for k in keys[:3]]
    return ", ".join(shown) + (f" and {len(keys) - 3} more" if len(keys) > 3 else "")


def written_config(run_dir: Path, name: str = "config.yaml") -> dict:
    """A file of the run's ``.hydra/`` (config.yaml: the config as composed), {} when there is none."""
    path = Path(run_dir) / HYDRA_DIR / name
    return (yaml.safe_load(path.read_text()) if path.exists() else None) or {}


def check_resume(cfg: DictConfig, run_dir: Path, folder_key: str) -> tuple[dict, bool]:
    """This run's fingerprint, unless the folder holds rows of another config (refused: two configs never
    mix in one results.jsonl), and whether the rows skipped as too large are to be tried again (a raised
    ``runtime.max_image_pixels``). Writes nothing; a folder without rows takes any config. ``folder_key`` is
    the setting that names a fresh folder (``hydra.run.dir``, or ``hydra.sweep.dir`` in a multirun)."""
    path = run_dir / RESUME_FILE
    fingerprint = json.loads(json.dumps(result_fingerprint(cfg)))
    retry_too_large = False
    if path.exists() and read_rows(run_dir / RESULTS_FILE):
        previous = read_fingerprint(path)
        previous.setdefault("include_unoccluded", fingerprint["include_unoccluded"])  # written before it counted
        previous.setdefault(PIXEL_LIMIT, fingerprint[PIXEL_LIMIT])  # written before it counted
        retry_too_large = raised_pixel_limit(fingerprint[PIXEL_LIMIT], previous[PIXEL_LIMIT])
        if retry_too_large:
            previous[PIXEL_LIMIT] = fingerprint[PIXEL_LIMIT]
        if previous != fingerprint:
            config = OmegaConf.to_container(cfg, resolve=False)
            lowered = previous[PIXEL_LIMIT] != fingerprint[PIXEL_LIMIT]
            raise ConfigError(
                f"{run_dir} holds results of another config (differs in: "
                f"{differences(fingerprint, previous, config, (' here', ' in the folder'))}); resume with the "
                f"same config{' (a resume may raise runtime.max_image_pixels, not lower it)' if lowered else ''} "
                f"or choose a new {folder_key}"
            )
    return fingerprint, retry_too_large


def record_start(cfg: DictConfig, run_dir: Path, fingerprint: dict, hydra_cfg: DictConfig) -> None:
    """What a started run leaves beside its rows: resume.json, and in .hydra/ the config as composed
    (config.yaml, interpolations kept), resolved (resolved.yaml), Hydra's own (``hydra_cfg``: hydra.yaml)
    and the overrides. Hydra does not write .hydra/ itself (``hydra.output_subdir: null``), so that a run
    refused before it starts leaves the folder as it was."""
    files = {
        RESUME_FILE: json.dumps(fingerprint, indent=2) + "\n",
        f"{HYDRA_DIR}/config.yaml": OmegaConf.to_yaml(cfg),
        f"{HYDRA_DIR}/resolved.yaml": OmegaConf.to_yaml(cfg, resolve=True),
        f"{HYDRA_DIR}/hydra.yaml": OmegaConf.to_yaml(hydra_cfg),
        f"{HYDRA_DIR}/overrides.yaml": OmegaConf.to_yaml(hydra_cfg.hydra.overrides.task),
    }
    for name, text in files.items():
        write_atomic(run_dir / name, text)
