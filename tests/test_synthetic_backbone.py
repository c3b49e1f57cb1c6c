"""The shipped synthetic backbone: it loads through the real loading code, and on scenes of a seed never
used in training the paper's method with it draws part of what is hidden."""

import json

import numpy as np
import torch
from PIL import Image

from amodal.config import build
from amodal.data.synthetic import render_scene
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


def test_on_an_unseen_seed_it_draws_part_of_the_hidden_region(run_app, tmp_path):
    """The README's main command with the shipped weights, on scenes never seen in training: on the
    occluded objects the predicted mask covers part of A \\ V (the visible mask covers none of it).
    It does NOT yet beat Â = V in mIoU (README, "The synthetic backbone"): this pins what it does."""
    metrics, run_dir = run_app("experiment=quickstart", *UNSEEN, "output.save_masks=true",
                               run_dir=tmp_path / "inpaint")
    recalls = []
    for row in map(json.loads, (run_dir / "results.jsonl").read_text().splitlines()):
        if row["occlusion_rate"] < 0.1:
            continue
        scene = render_scene(7, int(row["image_id"].removeprefix("scene")), 512)
        amodal, visible = scene.amodal[int(row["object_id"])], scene.visible[int(row["object_id"])]
        predicted = np.asarray(Image.open(run_dir / "masks" / row["image_id"] / f"{row['object_id']}.png")) > 0
        hidden = amodal & ~visible
        recalls.append((predicted & hidden).sum() / hidden.sum())
    assert len(recalls) >= 5 and np.mean(recalls) > 0.2, recalls
    assert list((run_dir / "pictures").glob("*.png"))
