"""``amodal-train-synthetic``: trains the synthetic backbone (``backbone=synthetic_sd``) on synthetic scenes.

    amodal-train-synthetic                                       # into outputs/train/<time>
    amodal-train-synthetic hydra.run.dir=outputs/train/mine      # run again into it to resume
    amodal-train-synthetic export.dir=src/amodal/models/weights/synthetic_sd   # refresh the shipped weights

The run folder gets checkpoints/, vae/, pipeline/ (the trained pipeline, float32), loss.png,
summary.json and wandb/ (offline). With ``export.dir`` the pipeline is also saved there in
``export.dtype`` with its MODEL_CARD.md.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import hydra
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.utils import to_absolute_path
from omegaconf import DictConfig

from amodal.cli.errors import one_line_errors
from amodal.config import torch_dtype, train_config_dir
from amodal.loggers import WandbLogger
from amodal.train.card import model_card
from amodal.train.trainer import Trainer

log = logging.getLogger("amodal")


def run_logger(cfg: DictConfig) -> WandbLogger | None:
    """``logger.mode``: W&B offline (in the run folder, ``wandb sync`` later) or online; disabled: none."""
    mode = str(cfg.logger.mode)
    return None if mode == "disabled" else WandbLogger(project=str(cfg.logger.project), mode=mode)


def train(cfg: DictConfig, run_dir: Path) -> dict:
    torch.set_num_threads(int(cfg.threads))
    trainer = Trainer(cfg, run_dir, progress=bool(cfg.progress), logger=run_logger(cfg))
    pipe = trainer.run()
    summary = trainer.summary()
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    if cfg.export.dir:
        target = Path(to_absolute_path(str(cfg.export.dir)))
        if target.exists():
            shutil.rmtree(target)
        pipe.to(dtype=torch_dtype(str(cfg.export.dtype), "export.dtype")).save_pretrained(target)
        (target / "MODEL_CARD.md").write_text(model_card(cfg, summary, overrides=_overrides()))
        shutil.copy(run_dir / "loss.png", target / "loss.png")
        log.info("exported the pipeline to %s", target)
    print(f"\n{run_dir}\n{json.dumps(summary, indent=2)}")
    return summary


def _overrides() -> list[str]:
    try:
        return list(HydraConfig.get().overrides.task)
    except ValueError:  # not under a Hydra app (tests call train() directly)
        return []


@hydra.main(version_base="1.3", config_path=str(train_config_dir()), config_name="synthetic")
@one_line_errors("amodal-train-synthetic", hydra_task=True)
def _hydra_main(cfg: DictConfig) -> None:
    train(cfg, Path(HydraConfig.get().runtime.output_dir))


def main() -> None:
    _hydra_main()


if __name__ == "__main__":
    main()
