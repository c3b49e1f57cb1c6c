"""``amodal-run``: the Hydra app that evaluates a method on a dataset (primary config: conf/run.yaml).

    amodal-run experiment=quickstart             # the demo (make demo): synthetic_sd on synthetic scenes, a CPU
    amodal-run dataset=cocoa paths.data=/data    # the default method=inpaint: SDXL and SAM, real weights
    amodal-run method=oracle                     # the geometry check on synthetic scenes: mIoU ≥ 0.99
    amodal-run -m method=area area=hull,rect     # a sweep; its report lands in <sweep dir>/report/
    amodal-run hydra.run.dir=outputs/mine        # run again into it to resume
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import hydra
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from amodal.cli.command_line import check_run_settings
from amodal.cli.errors import one_line_errors, storage_errors
from amodal.config import auto_dtype, build, check_device, config_dir
from amodal.data.base import Shard
from amodal.data.files import limit_image_pixels, write_atomic
from amodal.errors import ConfigError
from amodal.eval.ap import average_precision
from amodal.eval.identity import acting_choices, acting_overrides
from amodal.eval.report import bucket_table
from amodal.eval.run_folder import METRICS_FILE, RESULTS_FILE, check_resume, record_start, result_fingerprint
from amodal.lock import RunLock
from amodal.loggers import short_override, sweep_group
from amodal.method.external import read_results
from amodal.runner import Runner, RunSettings

log = logging.getLogger("amodal")


def new_folder_key() -> str:
    """The key that names a fresh folder: ``hydra.sweep.dir`` in a multirun (each job's folder is below it)."""
    return "hydra.sweep.dir" if HydraConfig.get().mode == RunMode.MULTIRUN else "hydra.run.dir"


def run_identity(cfg: DictConfig) -> tuple[str, str | None, list[str]]:
    """(name, group, tags) for the experiment tracker: a tag for each choice that acts on the method
    (``eval/identity.py``: no ``backbone:`` on ``method=visible``, no ``logger:``), a name from the
    overrides that act on it (``area=rect backbone.s=0.3``; a path by its last part), else the method."""
    hydra_cfg = HydraConfig.get()
    config = OmegaConf.to_container(cfg, resolve=False)
    choices = acting_choices(config, dict(hydra_cfg.runtime.choices))
    tags = [f"{group}:{choice}" for group, choice in choices.items()]
    overrides = [short_override(o) for o in acting_overrides(config, list(hydra_cfg.overrides.task))]
    name = " ".join(overrides) or choices.get("method", "run")
    group = sweep_group(choices, Path(hydra_cfg.sweep.dir)) if hydra_cfg.mode == RunMode.MULTIRUN else None
    return name, group, tags


def evaluate_ap(cfg: DictConfig, run_dir: Path) -> dict:
    """``eval.metric=ap``: COCO AP/AR of a detection-style results file on the dataset's amodal masks
    (``eval/ap.py``). Detections are not objects, so the run folder gets metrics.json and .hydra/, no rows."""
    if cfg.eval.metric != "ap":
        raise ConfigError(f"eval.metric={cfg.eval.metric}: use miou (a mask per object) or ap (COCO AP/AR of "
                          "detection-style results)")
    predictions = cfg.method.get("predictions")
    if not predictions:
        raise ConfigError("eval.metric=ap scores a detection results file: add method=external "
                          "method.predictions=FILE.json")
    if (run_dir / RESULTS_FILE).exists():
        raise ConfigError(f"{run_dir} holds per-object results (results.jsonl); choose a new hydra.run.dir for AP")
    entries = read_results(Path(predictions).expanduser())
    metrics = average_precision(build(cfg.dataset, "dataset"), entries, str(predictions))
    record_start(cfg, run_dir, result_fingerprint(cfg), HydraConfig.instance().cfg)
    write_atomic(run_dir / METRICS_FILE, json.dumps(metrics, indent=2, ensure_ascii=False) + "\n")
    log.info("finished %s: %s", run_dir, ", ".join(
        f"{name} {'–' if value is None else f'{100 * value:.1f}'}" for name, value in metrics.items()
        if name.startswith(("ap", "ar"))))
    return metrics


def evaluate(cfg: DictConfig) -> dict:
    """Check, lock, build, then run. Nothing is written into the run folder before the lock is held and
    the resume check has passed, and resume.json only once the dataset and the method are built."""
    limit_image_pixels(cfg.runtime.max_image_pixels)
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    if cfg.eval.get("metric", "miou") != "miou":
        return evaluate_ap(cfg, run_dir)
    settings = RunSettings(
        seed=cfg.runtime.seed,  # types checked by Hydra against amodal.config.RUN_SETTINGS
        batch_size=cfg.runtime.batch_size,
        shard=Shard(cfg.shard.index, cfg.shard.count),
        buckets=tuple(cfg.eval.buckets),
        include_unoccluded=cfg.eval.include_unoccluded,
        save_masks=cfg.output.save_masks,
        pictures=cfg.output.pictures,
        device=str(cfg.runtime.device),
        progress=cfg.output.progress,
    )
    if settings.batch_size < 1:
        raise ConfigError(f"runtime.batch_size={settings.batch_size}: use 1 or more")
    check_device(settings.device)
    run_dir.mkdir(parents=True, exist_ok=True)
    with RunLock(run_dir) as lock:
        fingerprint, settings.retry_too_large = check_resume(cfg, run_dir, new_folder_key())
        lock.claim()
        dataset = build(cfg.dataset, "dataset")
        predictor = build(cfg.method, "method")
        predictor.check_dataset(dataset)
        logger = build(cfg.logger, "logger")
        # before anything is logged: a refused run writes nothing
        record_start(cfg, run_dir, fingerprint, HydraConfig.instance().cfg)
        name, group, tags = run_identity(cfg)
        log.info("choices: %s; device %s, dtype %s, seed %d", " ".join(t.replace(":", "=", 1) for t in tags),
                 settings.device, auto_dtype(str(cfg.runtime.dtype), settings.device), settings.seed)
        log.info("results: %s (a row per object, as it goes), metrics: %s (at the end)", run_dir / RESULTS_FILE,
                 run_dir / METRICS_FILE)
        logger.start(config=OmegaConf.to_container(cfg, resolve=True), run_dir=run_dir, name=name, group=group,
                     tags=tags)
        threads = torch.get_num_threads()
        try:
            torch.set_num_threads(int(cfg.runtime.get("threads") or threads))
            metrics = Runner(dataset, predictor, run_dir, settings, logger).run()
            logger.log_results(run_dir)
        finally:
            torch.set_num_threads(threads)  # the next job of a multirun starts from the default again
            logger.finish()
    log.info("finished %s\n%s", run_dir, bucket_table(metrics))
    return metrics


@hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="run")
@one_line_errors("amodal-run", hydra_task=True)
def _hydra_main(cfg: DictConfig) -> float:
    """Returns the mIoU, the objective of hyperparameter sweepers (NaN when nothing was scored)."""
    with storage_errors(HydraConfig.get().runtime.output_dir, "free space or make the folder writable, then run "
                        "the same command again: it resumes after the rows already written"):
        metrics = evaluate(cfg)
    value = metrics["miou"] if "miou" in metrics else metrics["ap"]
    return float("nan") if value is None else value


def main() -> None:
    logging.raiseExceptions = False  # a full disk under run.log: the one error line, not a trace per record
    check_run_settings("amodal-run")
    _hydra_main()


if __name__ == "__main__":
    main()
