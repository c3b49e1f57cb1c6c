"""The real backbones on real weights: run where the weights are in the Hugging Face cache (and, for the
large ones, a GPU), skipped with the reason elsewhere — as on our CI machines, which have neither.

On a synthetic scene the method with a pretrained inpainting model and the `diff` extractor (no SAM
weights needed) must give a mask at the image's size that keeps the visible part, on the configured device."""

import numpy as np
import pytest
import torch
from huggingface_hub import try_to_load_from_cache

from amodal.config import build
from amodal.data.synthetic import SyntheticDataset
from amodal.seeding import object_seed
from tests.conftest import composed

BACKBONES = {  # name: (hub id, needs a GPU)
    "sd15": ("benjamin-paine/stable-diffusion-v1-5-inpainting", False),
    "sd2": ("stabilityai/stable-diffusion-2-inpainting", False),
    "sdxl": ("diffusers/stable-diffusion-xl-1.0-inpainting-0.1", True),
    "flux": ("black-forest-labs/FLUX.1-schnell", True),
    "sd3": ("stabilityai/stable-diffusion-3.5-medium", True),
    "flux_fill": ("black-forest-labs/FLUX.1-Fill-dev", True),
}
BFLOAT16 = {"sd3", "flux_fill"}  # trained and shipped in bfloat16


@pytest.mark.weights
@pytest.mark.parametrize("name", sorted(BACKBONES))
def test_a_real_backbone_inpaints_a_synthetic_object(name, tmp_path):
    model, needs_gpu = BACKBONES[name]
    if not isinstance(try_to_load_from_cache(model, "model_index.json"), str):
        pytest.skip(f"needs {model} in the Hugging Face cache (huggingface-cli download {model})")
    if needs_gpu and not torch.cuda.is_available():
        pytest.skip(f"{name} needs a CUDA GPU")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = ("bfloat16" if name in BFLOAT16 else "float16") if device == "cuda" else "float32"
    overrides = ["method=inpaint", f"backbone={name}", "extractor=diff", f"runtime.device={device}",
                 f"runtime.dtype={dtype}", "backbone.pipeline.local_files_only=true", "cache.enabled=false"]
    if device == "cpu":
        overrides += ["backbone.steps=2", "backbone.resolution=256"]
    with composed(overrides, tmp_path) as cfg:
        method = build(cfg.method, "method")
    dataset = SyntheticDataset(n_images=1, size=512)
    sample = max((dataset.load(k) for k in dataset.keys()), key=lambda s: s.occlusion_rate)
    (prediction,) = method.predict([sample], [object_seed(0, sample.key)])
    assert prediction.mask.shape == sample.visible.shape
    assert (prediction.mask & sample.visible).sum() >= 0.9 * sample.visible.sum()
    inpainted = prediction.pictures["inpainted"]
    assert inpainted.dtype == np.uint8 and inpainted.std() > 1  # a picture, not a constant
