"""What the tests share besides fixtures (those stay in ``conftest.py``): Hydra configs composed the way
``amodal-run`` composes them, the console scripts run as a user runs them (``cli``), small files and batches."""

from __future__ import annotations

import os
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import open_dict
from PIL import Image

from amodal.config import config_dir

REPO = Path(__file__).resolve().parents[1]


@contextmanager
def composed(overrides: list[str], run_dir: Path):
    """The config ``amodal-run <overrides>`` would run with, with Hydra's runtime facts set."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(version_base="1.3", config_dir=str(config_dir())):
        cfg = compose("run", overrides=[*overrides, f"hydra.run.dir={run_dir}"], return_hydra_config=True)
        with open_dict(cfg):
            cfg.hydra.runtime.output_dir = str(run_dir)
            cfg.hydra.job.override_dirname = ",".join(overrides)
        HydraConfig.instance().set_config(cfg)
        with open_dict(cfg):
            del cfg["hydra"]
        try:
            yield cfg
        finally:
            GlobalHydra.instance().clear()


def cli(*args: str, cwd: Path | None = None, timeout: float = 300, env: dict | None = None,
        pythonpath: tuple[Path, ...] = ()) -> subprocess.CompletedProcess:
    """Run a console script of this package as a user would (``amodal-run ...``); ``env`` adds variables,
    ``pythonpath`` (a user's own modules) goes before the package."""
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(map(str, [*pythonpath, REPO / "src"])), "HYDRA_FULL_ERROR": "0",
           **(env or {})}
    return subprocess.run([str(bin_dir / args[0]), *args[1:]], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)


def write_png(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if array.dtype == bool:
        array = array.astype(np.uint8) * 255
    Image.fromarray(array).save(path)


def condition_batch(size: int, seed: int, boxes: list[tuple[int, int, int, int]], seeds: list[int]):
    """An inpainter's batch: random condition images x in [−1, 1] (one per box), their areas M (the boxes,
    rows y0:y1 and columns x0:x1) and one seed per object."""
    rng = np.random.default_rng(seed)
    conditions = [rng.uniform(-1, 1, (size, size, 3)).astype(np.float32) for _ in boxes]
    areas = []
    for y0, y1, x0, x1 in boxes:
        area = np.zeros((size, size), bool)
        area[y0:y1, x0:x1] = True
        areas.append(area)
    return conditions, areas, seeds
