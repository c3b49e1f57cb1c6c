"""``amodal-run``: the Hydra app that evaluates a method on a dataset.

    amodal-run                                   # visible-mask baseline on the synthetic default
    amodal-run method=oracle                     # the geometry check: mIoU ≥ 0.99
    amodal-run -m method=area area=hull,rect     # a sweep; amodal-report on its folder
    amodal-run hydra.run.dir=outputs/mine        # run again into it to resume
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import hydra
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from amodal.config import auto_dtype, build, config_dir
from amodal.data.base import Shard
from amodal.errors import AmodalError, ConfigError
from amodal.eval.report import bucket_table
from amodal.loggers import sweep_group
from amodal.runner import Runner, RunSettings

log = logging.getLogger("amodal")

RESUME_FILE = "resume.json"
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
    resolved = OmegaConf.to_container(cfg, resolve=True)
    fingerprint = _without({k: resolved.get(k) for k in RESULT_SECTIONS}, NOT_RESULTS)
    fingerprint["seed"] = resolved["runtime"]["seed"]
    fingerprint["dtype"] = auto_dtype(resolved["runtime"]["dtype"], resolved["runtime"]["device"])
    # which objects are predicted at all: unoccluded ones only with include_unoccluded
    fingerprint["include_unoccluded"] = bool(resolved["eval"]["include_unoccluded"])
    return fingerprint


def check_resume(cfg: DictConfig, run_dir: Path) -> None:
    """Refuse to mix rows of two different configs in one results.jsonl."""
    path = run_dir / RESUME_FILE
    fingerprint = json.loads(json.dumps(result_fingerprint(cfg)))
    if path.exists():
        previous = json.loads(path.read_text())
        previous.setdefault("include_unoccluded", fingerprint["include_unoccluded"])  # written before it counted
        if previous != fingerprint:
            keys = sorted(k for k in fingerprint.keys() | previous.keys() if fingerprint.get(k) != previous.get(k))
            raise ConfigError(
                f"{run_dir} holds results of another config (differs in: {', '.join(keys)}); "
                "resume with the same config or choose a new hydra.run.dir"
            )
    else:
        path.write_text(json.dumps(fingerprint, indent=2) + "\n")


def run_identity(cfg: DictConfig) -> tuple[str, str | None, list[str]]:
    """(name, group, tags) for the experiment tracker, from Hydra's choices and overrides."""
    hydra_cfg = HydraConfig.get()
    choices = {k: v for k, v in hydra_cfg.runtime.choices.items() if not k.startswith("hydra/") and v}
    tags = [f"{group}:{choice}" for group, choice in sorted(choices.items())]
    name = hydra_cfg.job.override_dirname or choices.get("method", "run")
    group = sweep_group(choices, Path(hydra_cfg.sweep.dir)) if hydra_cfg.mode == RunMode.MULTIRUN else None
    return name, group, tags


def evaluate(cfg: DictConfig) -> dict:
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    check_resume(cfg, run_dir)
    settings = RunSettings(
        seed=int(cfg.runtime.seed),
        batch_size=int(cfg.runtime.batch_size),
        shard=Shard(int(cfg.shard.index), int(cfg.shard.count)),
        buckets=tuple(cfg.eval.buckets),
        include_unoccluded=bool(cfg.eval.include_unoccluded),
        save_masks=bool(cfg.output.save_masks),
        pictures=int(cfg.output.pictures),
        device=str(cfg.runtime.device),
        progress=bool(cfg.output.progress),
    )
    if settings.batch_size < 1:
        raise ConfigError(f"runtime.batch_size={settings.batch_size}: use 1 or more")
    dataset = build(cfg.dataset, "dataset")
    predictor = build(cfg.method, "method")
    logger = build(cfg.logger, "logger")
    name, group, tags = run_identity(cfg)
    logger.start(config=OmegaConf.to_container(cfg, resolve=True), run_dir=run_dir, name=name, group=group, tags=tags)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(int(cfg.runtime.get("threads") or threads))
        metrics = Runner(dataset, predictor, run_dir, settings, logger).run()
    finally:
        torch.set_num_threads(threads)  # the next job of a multirun starts from the default again
        logger.finish()
    print(f"\n{run_dir}\n{bucket_table(metrics)}")
    return metrics


@hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="run")
def _hydra_main(cfg: DictConfig) -> float:
    """Returns the mIoU, the objective of hyperparameter sweepers (NaN when nothing was scored)."""
    try:
        metrics = evaluate(cfg)
    except AmodalError as err:
        print(f"amodal-run: error: {err}", file=sys.stderr)
        sys.exit(2)
    return float("nan") if metrics["miou"] is None else metrics["miou"]


def main() -> None:
    _hydra_main()


if __name__ == "__main__":
    main()
