"""Monocular depth for the depth-filtered area D (§S2): Depth Anything (Yang et al. 2024, the paper's
[52]) through transformers' ``AutoModelForDepthEstimation``.

Why transformers: the PyPI "depth-anything" packages are unofficial repackages that need Python ≥ 3.12
or numpy < 2; transformers ships the official weights' port (``LiheYoung/depth-anything-*-hf``,
``depth-anything/Depth-Anything-V2-*-hf``) and is already a dependency.

The estimator returns *nearness* (larger = nearer), whatever the model predicts: the relative models
predict relative inverse depth (disparity, larger = nearer), taken as it is; the metric models predict
depth in metres (larger = farther), negated.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from amodal.config import auto_device, auto_dtype, half_precision, torch_dtype
from amodal.errors import ModelNotFoundError
from amodal.models.model_cache import cached_model
from amodal.models.stamps import weights_stamp
from amodal.seeding import seeded

DEFAULT_MODEL = "LiheYoung/depth-anything-large-hf"
TINY = "tiny"
PREPROCESSING = {  # Depth Anything's preprocessor_config.json, for the tiny model (that has no file)
    "do_resize": True, "keep_aspect_ratio": True, "ensure_multiple_of": 14, "resample": 3,
    "do_rescale": True, "rescale_factor": 1 / 255, "do_normalize": True,
    "image_mean": [0.485, 0.456, 0.406], "image_std": [0.229, 0.224, 0.225],
}


@dataclass(frozen=True)
class DepthModel:
    """``model``: a Hugging Face id (read from the local cache only), a local folder saved with
    ``save_pretrained``, or ``tiny`` (Depth Anything's classes at toy width, weights from ``seed``)."""

    model: str = DEFAULT_MODEL
    seed: int = 0

    def stamp(self) -> str | None:
        """The weights as they are now (the model cache's key): a local folder's files, or the commit of the
        cached hub snapshot; None for the tiny model (its weights come from its seed)."""
        return None if self.model == TINY else json.dumps(weights_stamp(self.model, index="config.json"),
                                                          sort_keys=True)

    def check(self) -> None:
        if self.model == TINY:
            return
        folder = Path(self.model).expanduser()
        if folder.is_dir():
            if not (folder / "config.json").is_file():
                raise ModelNotFoundError(f"depth model folder {folder} has no config.json; save one with "
                                         "save_pretrained or use a Hugging Face id")
            return
        from huggingface_hub import try_to_load_from_cache

        if not isinstance(try_to_load_from_cache(self.model, "config.json"), str):
            raise ModelNotFoundError(
                f"depth model {self.model} is not in the Hugging Face cache: download it with "
                f"`huggingface-cli download {self.model}` (or set area.model=/path/to/folder; "
                "area.model=tiny is the random-weight toy)"
            )

    def build(self):
        """(image processor, model) on the CPU."""
        if self.model == TINY:
            return tiny_depth_anything(self.seed)
        self.check()  # before importing transformers, which takes seconds
        from transformers import AutoImageProcessor, AutoModelForDepthEstimation

        from amodal.models.loading import quiet_loading

        source = str(Path(self.model).expanduser()) if Path(self.model).expanduser().is_dir() else self.model
        try:
            with quiet_loading():
                processor = AutoImageProcessor.from_pretrained(source, local_files_only=True)
                module = AutoModelForDepthEstimation.from_pretrained(source, local_files_only=True)
        except OSError as err:  # e.g. the config is cached but the weights are not
            reason = str(err).splitlines()[0]
            raise ModelNotFoundError(f"depth model {self.model} cannot be loaded ({reason}); "
                                     f"download it with `huggingface-cli download {self.model}`") from None
        return processor, module.eval()


def tiny_depth_anything(seed: int = 0, input_size: int = 56):
    """Depth Anything (DINOv2 backbone, DPT-style neck and head) at toy width, on a ``input_size`` input."""
    from transformers import (
        DepthAnythingConfig,
        DepthAnythingForDepthEstimation,
        Dinov2Config,
        DPTImageProcessor,
    )

    backbone = Dinov2Config(
        image_size=input_size, patch_size=14, hidden_size=16, num_hidden_layers=4, num_attention_heads=2,
        intermediate_size=32, out_indices=[1, 2, 3, 4], reshape_hidden_states=False,
    )
    config = DepthAnythingConfig(
        backbone_config=backbone, patch_size=14, reassemble_hidden_size=16,
        neck_hidden_sizes=[8, 16, 16, 16], fusion_hidden_size=16, head_hidden_size=8,
    )
    processor = DPTImageProcessor(size={"height": input_size, "width": input_size}, **PREPROCESSING)
    return processor, seeded(seed, lambda: DepthAnythingForDepthEstimation(config)).eval()


class DepthEstimator:
    """image (uint8 H×W×3) → nearness (float32 H×W, larger = nearer), at the image's resolution."""

    def __init__(self, model: DepthModel, device: str = "auto", dtype: str = "float32") -> None:
        self.model, self.device, self.dtype = model, auto_device(device), auto_dtype(dtype, device)
        torch_dtype(self.dtype, "area.dtype")  # refused now, not at the first image

    def check(self) -> None:
        self.model.check()

    def loaded(self):
        def make():
            processor, module = self.model.build()
            return processor, module.to(self.device)

        return cached_model(("depth", self.model, self.model.stamp(), self.device), make)

    def __call__(self, image: np.ndarray) -> np.ndarray:
        processor, module = self.loaded()
        inputs = processor(images=image, return_tensors="pt").to(self.device)
        with torch.inference_mode(), half_precision(self.device, torch_dtype(self.dtype)):
            outputs = module(**inputs)
        depth = processor.post_process_depth_estimation(outputs, target_sizes=[image.shape[:2]])[0]
        depth = depth["predicted_depth"].float().cpu().numpy().astype(np.float32)
        metric = getattr(module.config, "depth_estimation_type", "relative") == "metric"
        return -depth if metric else depth
