"""Experiment tracking: Weights & Biases (offline unless the user says online) or nothing."""

from __future__ import annotations

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
        self._pictures: list = []

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
                config=config,
                # no network: an answer in seconds; W&B's banner and summary off, finish() prints one line instead
                settings=wandb.Settings(init_timeout=self.init_timeout, silent=True),
            )
        except wandb.errors.Error as err:
            reason = (str(err).strip().splitlines() or [type(err).__name__])[0]
            raise AmodalError(f"W&B did not start in logger.mode={self.mode} ({reason}): check the network and "
                              "`wandb login`, or use logger.mode=offline (`wandb sync` uploads the run later)") from err

    def log_picture(self, name: str, picture: np.ndarray) -> None:
        import wandb

        self._pictures.append(wandb.Image(picture, caption=name))

    def log_metrics(self, metrics: dict) -> None:
        import wandb

        if self._run is None:
            return
        table = wandb.Table(columns=["bucket", "mIoU", "pixel IoU", "objects", "mIoU_occ", "objects_occ"])
        for bucket in metrics["buckets"]:
            table.add_data(bucket["label"], bucket["miou"], bucket["pixel_iou"], bucket["n"], bucket.get("miou_occ"),
                           bucket.get("n_occ"))
        payload = {**flat_metrics(metrics), "buckets": table}
        if self._pictures:
            payload["panels"] = self._pictures
        self._run.log(payload)
        self._run.summary.update(flat_metrics(metrics))

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
