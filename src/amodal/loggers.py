"""Experiment tracking: Weights & Biases (offline unless the user says online) or nothing."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import numpy as np

from amodal.errors import AmodalError
from amodal.eval.metrics import flat_metrics
from amodal.eval.results import read_rows
from amodal.eval.run_folder import METRICS_FILE, RESULTS_FILE

OBJECT_COLUMNS = ("dataset", "image_id", "object_id", "category", "occlusion_rate", "iou", "iou_occ", "seconds")
"""The per-object table's columns: one row per scored object."""


def sweep_group(choices: dict, sweep_dir: Path) -> str:
    """The W&B group of a multirun's runs: named after its experiment (or "sweep") and its folder."""
    return f"{choices.get('experiment') or 'sweep'}-{Path(sweep_dir).name}"


def short_override(override: str) -> str:
    """An override as a run's name shows it: a path by its last part (``dataset.root=/data/coco/cocoa`` →
    ``dataset.root=cocoa``), so that no absolute path (a home folder, a cluster's layout) names a run."""
    key, equals, value = override.partition("=")
    parts = [part for part in re.split(r"[/\\]", value) if part]  # POSIX and Windows separators
    return key + equals + (parts[-1] if len(parts) > 1 or value.startswith(("/", "\\")) else value)


def wandb_metrics(metrics: dict) -> dict[str, float]:
    """metrics.json's scalars as W&B gets them: under its flat keys (``miou``, ``miou/le50``, ``n``, ...), every
    IoU (a key naming ``iou``) in percent, as every report prints it; metrics.json keeps fractions. The one
    place a metric's W&B key and scale are decided."""
    return {key: 100 * value if "iou" in key.split("/")[0] else value for key, value in flat_metrics(metrics).items()}


def choice_config(tags: list[str]) -> dict[str, str]:
    """The run's group choices (its tags, ``group:choice``) as config keys ``choices/<group>``, by which W&B's
    runs table groups and filters runs."""
    return {f"choices/{group}": choice for group, _, choice in (tag.partition(":") for tag in tags)}


def same_size(pictures: list[np.ndarray]) -> list[np.ndarray]:
    """Pictures on one canvas (white margins to the right and below): W&B shows a list of images at the first
    one's size, and warns "Images sizes do not match" when they differ, as panels of different images do."""
    height, width = max(p.shape[0] for p in pictures), max(p.shape[1] for p in pictures)
    canvases = []
    for picture in pictures:
        canvas = np.full((height, width, 3), 255, np.uint8)
        canvas[: picture.shape[0], : picture.shape[1]] = picture
        canvases.append(canvas)
    return canvases


class RunLogger:
    """No logging; the base of every logger (``logger=none``)."""

    def start(self, *, config: dict, run_dir: Path, name: str, group: str | None, tags: list[str]) -> None:
        pass

    def log_picture(self, name: str, picture: np.ndarray) -> None:
        pass

    def log_metrics(self, metrics: dict) -> None:
        pass

    def log_scalars(self, values: dict, step: int) -> None:
        """Numbers of one step (training losses, learning rate), logged against ``global_step``."""

    def log_results(self, run_dir: Path) -> None:
        """The finished run's per-object rows (results.jsonl) and metrics.json."""

    def finish(self) -> None:
        pass


class WandbLogger(RunLogger):
    """One W&B run per Hydra job; the runs of one multirun share a group.

    The run's id is kept in the run folder, so a resumed run continues the same W&B run.
    """

    def __init__(
        self,
        project: str = "amodal",
        entity: str | None = None,
        mode: str = "offline",
        group: str | None = None,
        tags: list[str] | None = None,
        init_timeout: float = 30.0,
    ) -> None:
        self.project, self.entity, self.mode, self.init_timeout = project, entity, mode, init_timeout
        self.group, self.tags = group, list(tags or [])
        self._run = None
        self._pictures: list[tuple[str, np.ndarray]] = []

    def start(self, *, config: dict, run_dir: Path, name: str, group: str | None, tags: list[str]) -> None:
        import wandb

        id_file = run_dir / "wandb_run_id.txt"
        run_id = id_file.read_text().strip() if id_file.exists() else uuid.uuid4().hex[:12]
        id_file.write_text(run_id + "\n")
        try:
            self._run = wandb.init(
                project=self.project,
                entity=self.entity,
                mode=self.mode,
                dir=str(run_dir),
                id=run_id,
                resume="allow",
                name=name,
                group=self.group or group,
                tags=[*tags, *self.tags][:64],
                config={**config, **choice_config(tags)},
                # no network: an answer in seconds; W&B's banner and summary off, finish() prints one line instead
                settings=wandb.Settings(init_timeout=self.init_timeout, silent=True),
            )
        except wandb.errors.Error as err:
            reason = (str(err).strip().splitlines() or [type(err).__name__])[0]
            raise AmodalError(f"W&B did not start in logger.mode={self.mode} ({reason}): check the network and "
                              "`wandb login`, or use logger.mode=offline (`wandb sync` uploads the run later)") from err

    def log_picture(self, name: str, picture: np.ndarray) -> None:
        self._pictures.append((name, picture))

    def log_metrics(self, metrics: dict) -> None:
        import wandb

        if self._run is None:
            return
        table = wandb.Table(columns=["bucket", "mIoU", "pixel IoU", "objects", "mIoU_occ", "objects_occ"])  # %
        for bucket in metrics["buckets"]:
            percent = [None if bucket.get(k) is None else 100 * bucket[k] for k in ("miou", "pixel_iou", "miou_occ")]
            table.add_data(bucket["label"], *percent[:2], bucket["n"], percent[2], bucket.get("n_occ"))
        payload = {**wandb_metrics(metrics), "buckets": table}
        if self._pictures:
            names, pictures = zip(*self._pictures)
            payload["panels"] = [wandb.Image(p, caption=n) for n, p in zip(names, same_size(list(pictures)))]
        self._run.log(payload)
        self._run.summary.update(wandb_metrics(metrics))

    def log_scalars(self, values: dict, step: int) -> None:
        if self._run is not None:
            self._run.log({**values, "global_step": step})

    def log_results(self, run_dir: Path) -> None:
        """A table with a row per scored object, and results.jsonl + metrics.json as a ``results`` artifact
        (which also holds the table: W&B shows logged tables up to ``wandb.Table.MAX_ROWS`` rows)."""
        import wandb

        if self._run is None:
            return
        rows = [r for r in read_rows(run_dir / RESULTS_FILE) if not r.get("skipped") and r.get("iou") is not None]
        table = wandb.Table(columns=list(OBJECT_COLUMNS), data=[[r.get(c) for c in OBJECT_COLUMNS] for r in rows])
        if len(rows) <= wandb.Table.MAX_ROWS:
            self._run.log({"objects": table})
        artifact = wandb.Artifact(f"results-{self._run.id}", type="results",
                                  description="results.jsonl (a row per object) and metrics.json of one run")
        for path in (run_dir / RESULTS_FILE, run_dir / METRICS_FILE):
            if path.exists():
                artifact.add_file(str(path))
        artifact.add(table, "objects")
        self._run.log_artifact(artifact)

    def finish(self) -> None:
        if self._run is not None:
            run, self._run = self._run, None
            run.finish()
            if self.mode == "offline":
                folder = run.settings.sync_dir
                print(f"W&B: offline run in {folder}; upload it with `wandb sync {folder}`")
            elif self.mode == "online":
                print(f"W&B: {run.url}")
