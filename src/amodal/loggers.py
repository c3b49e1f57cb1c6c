"""Experiment tracking: Weights & Biases (offline unless the user says online) or nothing."""

from __future__ import annotations

import uuid
from pathlib import Path

import numpy as np

from amodal.eval.metrics import flat_metrics


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
    ) -> None:
        self.project, self.entity, self.mode = project, entity, mode
        self.group, self.tags = group, list(tags or [])
        self._run = None
        self._pictures: list = []

    def start(self, *, config: dict, run_dir: Path, name: str, group: str | None, tags: list[str]) -> None:
        import wandb

        id_file = run_dir / "wandb_run_id.txt"
        run_id = id_file.read_text().strip() if id_file.exists() else uuid.uuid4().hex[:12]
        id_file.write_text(run_id + "\n")
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
            settings=wandb.Settings(silent=True),  # W&B's banner and summary: finish() prints one line instead
        )

    def log_picture(self, name: str, picture: np.ndarray) -> None:
        import wandb

        self._pictures.append(wandb.Image(picture, caption=name))

    def log_metrics(self, metrics: dict) -> None:
        import wandb

        if self._run is None:
            return
        table = wandb.Table(columns=["bucket", "mIoU", "pixel IoU", "objects"])
        for bucket in metrics["buckets"]:
            table.add_data(bucket["label"], bucket["miou"], bucket["pixel_iou"], bucket["n"])
        payload = {**flat_metrics(metrics), "buckets": table}
        if self._pictures:
            payload["panels"] = self._pictures
        self._run.log(payload)
        self._run.summary.update(flat_metrics(metrics))

    def finish(self) -> None:
        if self._run is not None:
            run, self._run = self._run, None
            run.finish()
            if self.mode == "offline":
                folder = run.settings.sync_dir
                print(f"W&B: offline run in {folder}; upload it with `wandb sync {folder}`")
            elif self.mode == "online":
                print(f"W&B: {run.url}")
