"""The shipped synthetic backbone: it loads through the real loading code, and on scenes of a seed never
used in training the paper's method with it beats the visible mask on occluded objects."""

import json

import torch

from amodal.config import build
from amodal.models.loading import PretrainedPipeline
from amodal.models.synthetic_sd import WEIGHTS
from tests.conftest import composed

UNSEEN = ["dataset.seed=7", "dataset.n_images=3"]  # training used seed 1000, validation 1001


def test_the_shipped_weights_load_through_pretrained_pipeline():
    source = PretrainedPipeline("sd", str(WEIGHTS), local_files_only=True)
    source.check()
    pipe = source.load("cpu", torch.float32)
    assert type(pipe).__name__ == "StableDiffusionInpaintPipeline"
    assert pipe.unet.config.in_channels == 9 and pipe.vae_scale_factor == 2
    assert pipe.unet.dtype == torch.float32  # stored in float16, computed in float32
    index = json.loads((WEIGHTS / "model_index.json").read_text())
    assert {"vae", "unet", "text_encoder", "tokenizer", "scheduler"} <= set(index)
    assert sum(f.stat().st_size for f in WEIGHTS.rglob("*") if f.is_file()) < 20e6


def test_backbone_synthetic_sd_points_into_the_package(tmp_path):
    with composed(["backbone=synthetic_sd"], tmp_path) as cfg:
        inpainter = build(cfg.backbone, "backbone")
    assert isinstance(inpainter.source, PretrainedPipeline)
    assert inpainter.source.model == str(WEIGHTS)


def test_inpainting_beats_the_visible_mask_on_an_unseen_seed(run_app, tmp_path):
    inpaint, run_dir = run_app("experiment=quickstart", *UNSEEN, run_dir=tmp_path / "inpaint")
    visible, _ = run_app("method=visible", *UNSEEN, run_dir=tmp_path / "visible")
    occluded = {"inpaint": inpaint["buckets"][0], "visible": visible["buckets"][0]}
    assert occluded["inpaint"]["label"] == "≤50%" and occluded["inpaint"]["n"] >= 8
    assert occluded["inpaint"]["miou"] > occluded["visible"]["miou"] + 0.02, occluded
    assert list((run_dir / "pictures").glob("*.png"))
