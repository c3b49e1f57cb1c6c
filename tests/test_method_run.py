"""``method=inpaint`` end to end through ``amodal-run`` with tiny backbones, and the real backbones'
missing-model errors (no weights exist on this machine)."""

import numpy as np
import pytest

from amodal.config import build
from amodal.data.files import read_mask
from amodal.errors import ModelNotFoundError
from amodal.models import loading
from tests.helpers import cli, composed, in_process

QUICK = ["experiment=quickstart", "dataset.n_images=1"]


@pytest.mark.parametrize("backbone", ["tiny_sd", "tiny_sdxl", "tiny_flux", "tiny_sd3", "tiny_flux_fill"])
def test_quickstart_runs_every_tiny_backbone(run_app, backbone, tmp_path):
    metrics, run_dir = run_app(*QUICK, f"backbone={backbone}", run_dir=tmp_path / backbone)
    counts = metrics["counts"]
    assert counts["scored"] == metrics["objects_inpainted"] == counts["objects"] - counts["unoccluded"] > 0
    panels = list((run_dir / "pictures").glob("*.png"))
    assert panels  # with the condition image and the inpainting in them


def masks_of(run_dir):
    return {p.relative_to(run_dir): read_mask(p) for p in sorted((run_dir / "masks").rglob("*.png"))}


def test_same_seed_same_masks_and_batches_match_one_by_one(run_app, tmp_path):
    args = [*QUICK, "output.save_masks=true"]
    run_app(*args, "runtime.batch_size=1", run_dir=tmp_path / "a")
    run_app(*args, "runtime.batch_size=1", run_dir=tmp_path / "b")
    run_app(*args, "runtime.batch_size=3", run_dir=tmp_path / "c")
    run_app(*args, "runtime.seed=7", run_dir=tmp_path / "d")
    a, b, c, d = (masks_of(tmp_path / x) for x in "abcd")
    assert a.keys() == b.keys() == c.keys() and len(a) > 2
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert all(np.array_equal(a[k], c[k]) for k in a)
    assert not all(np.array_equal(a[k], d[k]) for k in a)


def test_sweeps_over_backgrounds_and_areas(tmp_path):
    for sweep, values in (("background", "histogram,white,black"), ("area", "hull,rect")):
        result = in_process("amodal-run", "-m", *QUICK, "dataset.limit=2", "logger=none", "output.progress=false",
                            f"cache.dir={tmp_path / 'cache'}", f"{sweep}={values}",
                            f"hydra.sweep.dir={tmp_path / sweep}")
        assert result.returncode == 0, result.stderr
        assert len(list((tmp_path / sweep).glob("*/metrics.json"))) == len(values.split(","))


@pytest.mark.parametrize("backbone,model", [
    ("sd15", "benjamin-paine/stable-diffusion-v1-5-inpainting"),
    ("sd2", "stabilityai/stable-diffusion-2-inpainting"),
    ("sdxl", "diffusers/stable-diffusion-xl-1.0-inpainting-0.1"),
    ("flux", "black-forest-labs/FLUX.1-schnell"),
    ("sd3", "stabilityai/stable-diffusion-3.5-medium"),
    ("flux_fill", "black-forest-labs/FLUX.1-Fill-dev"),
])
def test_a_missing_real_model_is_one_line_found_before_anything_is_built(backbone, model, tmp_path, monkeypatch):
    """The line names the model and the command that fetches it; for the gated ones (SD3.5, FLUX.1-Fill)
    also the licence to accept and the login."""
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    def never(what):
        def fail(*args, **kwargs):
            raise AssertionError(f"{what} before the missing model was named")
        return fail

    # found by the check alone: no pipeline is loaded, and offline not even the hub's name is looked up
    monkeypatch.setattr(loading.PretrainedPipeline, "load", never("a pipeline was loaded"))
    monkeypatch.setattr(loading, "_hub_reachable", never("the hub was looked up"))
    with composed(["method=inpaint", f"backbone={backbone}"], tmp_path) as cfg:
        with pytest.raises(ModelNotFoundError) as err:
            build(cfg.method, "method")
    message = str(err.value)
    assert model in message and f"huggingface-cli download {model}" in message and "\n" not in message
    gated = backbone in ("sd3", "flux_fill")
    assert (f"accept its licence at https://huggingface.co/{model}" in message) == gated
    assert ("huggingface-cli login" in message) == gated


def test_the_cli_says_a_missing_model_in_one_line_and_never_falls_back(tmp_path):
    import os

    env_home = tmp_path / "hf"
    os.environ["HF_HOME"] = str(env_home)
    try:
        result = cli("amodal-run", "method=inpaint", "backbone=sdxl", "backbone.pipeline.local_files_only=true",
                     "logger=none", f"hydra.run.dir={tmp_path / 'run'}")
    finally:
        del os.environ["HF_HOME"]
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == [lines[0]] and "diffusers/stable-diffusion-xl-1.0-inpainting-0.1" in lines[0]
    assert not (tmp_path / "run" / "results.jsonl").exists() or not (tmp_path / "run" / "results.jsonl").read_text()
