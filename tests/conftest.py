"""Shared fixtures (a run evaluated in-process, small datasets) and the one hook through which the markers
``gpu``, ``weights`` and ``slow`` skip a test, with the reason shown. Plain helpers live in ``tests/helpers.py``."""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # pytest-xdist runs one worker per core
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("WANDB_MODE", "offline")
from pathlib import Path

import pytest

from tests.helpers import composed, write_png


def pytest_addoption(parser):
    parser.addoption("--skip-slow", action="store_true",
                     help="skip the tests marked slow, each with the reason (they run by default, as in make test)")


def missing_weights(mark) -> str | None:
    """Why a ``weights(model, ...)`` test cannot run here: the first model whose ``check()`` (the package's
    own, as a run does it) finds no weights, in the package's one line that says how to get them."""
    from amodal.errors import ModelNotFoundError

    if not mark.args:
        raise pytest.UsageError("pytest.mark.weights needs the models it loads, e.g. weights(SamModel('vit_b'))")
    for model in mark.args:
        try:
            model.check()
        except ModelNotFoundError as err:
            return f"weights: {err}"
    return None


def pytest_collection_modifyitems(config, items):
    """The one place where marked tests are skipped, each with the reason in the summary (``-ra``):
    ``gpu`` without a CUDA GPU, ``weights`` without the weights its mark names, ``slow`` with --skip-slow.
    Everything else runs: ``make test`` runs every test this machine can run."""
    import torch

    gpu = torch.cuda.is_available()
    for item in items:
        if item.get_closest_marker("gpu") and not gpu:
            item.add_marker(pytest.mark.skip(reason="gpu: needs a CUDA GPU, and none is visible here"))
        elif item.get_closest_marker("slow") and config.getoption("--skip-slow"):
            item.add_marker(pytest.mark.skip(reason="slow: skipped with --skip-slow"))
        else:
            why = next(filter(None, map(missing_weights, item.iter_markers("weights"))), None)
            if why:
                item.add_marker(pytest.mark.skip(reason=why))


@pytest.fixture
def run_app(tmp_path):
    """Evaluate in-process like ``amodal-run``; returns (metrics, run_dir)."""
    from amodal.cli.run import evaluate

    def run(*overrides: str, run_dir: Path | None = None):
        run_dir = run_dir or tmp_path / "run"
        with composed(["logger=none", "output.progress=false", f"cache.dir={tmp_path / 'cache'}", *overrides],
                      run_dir) as cfg:
            return evaluate(cfg), run_dir

    return run


@pytest.fixture
def folder_dataset(tmp_path):
    """A folder dataset of two synthetic scenes, with amodal masks."""
    from amodal.data.synthetic import SyntheticDataset

    root = tmp_path / "folder"
    synthetic = SyntheticDataset(n_images=2, seed=3, size=128)
    for key in synthetic.keys():
        sample = synthetic.load(key)
        write_png(root / "images" / f"{key.image_id}.png", sample.image)
        write_png(root / "visible" / key.image_id / f"{key.object_id}.png", sample.visible)
        write_png(root / "amodal" / key.image_id / f"{key.object_id}.png", sample.amodal)
    return root


@pytest.fixture
def cocoa_dataset(tmp_path):
    """COCO-A in its own format: annotations/COCO_amodal_val2014.json and val2014/ (tests/formats.py)."""
    from tests.formats import write_cocoa

    return write_cocoa(tmp_path / "cocoa")


@pytest.fixture
def bsdsa_dataset(tmp_path):
    from tests.formats import write_cocoa

    return write_cocoa(tmp_path / "bsdsa", bsds=True)


@pytest.fixture
def kins_dataset(tmp_path):
    from tests.formats import write_kins

    return write_kins(tmp_path / "kins")


@pytest.fixture
def fishbowl_dataset(tmp_path):
    from tests.formats import write_fishbowl

    return write_fishbowl(tmp_path / "fishbowl")


@pytest.fixture
def sailvos_dataset(tmp_path):
    from tests.formats import write_sailvos

    return write_sailvos(tmp_path / "sailvos")
