"""SAM (segment-anything, Kirillov et al. 2023): the official ViT-H/L/B models with their checkpoints,
and the same classes at toy width with seeded random weights (tests, CPU demo, benchmarks).

A model description is a small frozen dataclass (hashable: it is the key of the process-wide model
cache) with ``check()`` (the weights are there, else one line saying how to get them), ``build()``
(the ``torch.nn.Module`` on the CPU) and ``predictor(module)`` (segment-anything's ``SamPredictor``).
Building is lazy: ``conf/extractor/sam.yaml`` builds without the checkpoint; the first object loads it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path

import torch

from amodal.errors import ConfigError, ModelNotFoundError
from amodal.models.stamps import file_stamp
from amodal.seeding import seeded

CHECKPOINTS = {
    "vit_h": "sam_vit_h_4b8939.pth",
    "vit_l": "sam_vit_l_0b3195.pth",
    "vit_b": "sam_vit_b_01ec64.pth",
}
DOWNLOAD = "https://dl.fbaipublicfiles.com/segment_anything/"
ENCODERS = {
    # (embed_dim, depth, num_heads, global attention blocks): segment_anything.build_sam's sizes
    "vit_h": (1280, 32, 16, (7, 15, 23, 31)),
    "vit_l": (1024, 24, 16, (5, 11, 17, 23)),
    "vit_b": (768, 12, 12, (2, 5, 8, 11)),
}


def sam_architecture(
    embed_dim: int,
    depth: int,
    num_heads: int,
    global_attn: tuple[int, ...],
    image_size: int = 1024,
    prompt_dim: int = 256,
    decoder_mlp_dim: int = 2048,
    decoder_heads: int = 8,
):
    """SAM's classes wired as ``segment_anything.build_sam`` wires them, with the sizes as arguments:
    the official models at ``image_size=1024``; a toy one, or a full-size one at a reduced input."""
    from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, Sam, TwoWayTransformer

    patch = 16
    if image_size % patch:
        raise ConfigError(f"SAM image_size={image_size} must be a multiple of its patch size {patch}")
    return Sam(
        image_encoder=ImageEncoderViT(
            depth=depth, embed_dim=embed_dim, img_size=image_size, mlp_ratio=4,
            norm_layer=partial(torch.nn.LayerNorm, eps=1e-6), num_heads=num_heads, patch_size=patch,
            qkv_bias=True, use_rel_pos=True, global_attn_indexes=tuple(global_attn), window_size=14,
            out_chans=prompt_dim,
        ),
        prompt_encoder=PromptEncoder(
            embed_dim=prompt_dim, image_embedding_size=(image_size // patch, image_size // patch),
            input_image_size=(image_size, image_size), mask_in_chans=16,
        ),
        mask_decoder=MaskDecoder(
            num_multimask_outputs=3,
            transformer=TwoWayTransformer(depth=2, embedding_dim=prompt_dim, mlp_dim=decoder_mlp_dim,
                                          num_heads=decoder_heads),
            transformer_dim=prompt_dim, iou_head_depth=3, iou_head_hidden_dim=256,
        ),
        pixel_mean=[123.675, 116.28, 103.53],
        pixel_std=[58.395, 57.12, 57.375],
    ).eval()


def load_state_dict(path: Path, what: str) -> dict:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # a truncated download, or another model's file
        reason = str(err).splitlines()[0]
        raise ModelNotFoundError(f"{path} cannot be read as a {what} checkpoint ({reason}); "
                                 "download it again") from None


class SamPredictorMixin:
    def stamp(self) -> tuple | None:
        """What the weights are, beyond the description itself: nothing for the tiny models (their weights
        come from their seed); the official ones give their checkpoint's."""
        return None

    def predictor(self, module):
        from segment_anything import SamPredictor

        return SamPredictor(module)


@dataclass(frozen=True)
class SamModel(SamPredictorMixin):
    """An official SAM: ``size`` vit_h | vit_l | vit_b, weights from ``checkpoint`` or, when that is
    null, the official file name for ``size`` in ``checkpoint_dir``."""

    size: str = "vit_h"
    checkpoint: str | None = None
    checkpoint_dir: str = "checkpoints"

    def __post_init__(self) -> None:
        if self.size not in CHECKPOINTS:
            raise ConfigError(f"SAM size {self.size!r}: use one of {', '.join(CHECKPOINTS)}")

    @property
    def name(self) -> str:
        return f"sam_{self.size}"

    def checkpoint_path(self) -> Path | None:
        """The checkpoint file, or None when it is not there."""
        path = self.expected_path()
        return path if path.is_file() else None

    def expected_path(self) -> Path:
        if self.checkpoint:
            return Path(self.checkpoint).expanduser()
        return Path(self.checkpoint_dir).expanduser() / CHECKPOINTS[self.size]

    def check(self) -> Path:
        path = self.checkpoint_path()
        if path is None:
            path, name = self.expected_path(), CHECKPOINTS[self.size]
            raise ModelNotFoundError(
                f"SAM {self.size} checkpoint {path} not found: download it with "
                f"`wget -O {path} {DOWNLOAD}{name}` (or set extractor.model.checkpoint=/path/to/{name})"
            )
        return path

    def stamp(self) -> tuple | None:
        """The checkpoint as it is now (the model cache's key: a file replaced under the same name is loaded
        anew)."""
        return file_stamp(self.checkpoint_path())

    def build(self):
        from segment_anything import sam_model_registry

        path = self.check()
        module = sam_model_registry[self.size]()
        try:
            module.load_state_dict(load_state_dict(path, f"SAM {self.size}"))
        except RuntimeError as err:
            raise ModelNotFoundError(f"{path} is not a SAM {self.size} checkpoint "
                                     f"({str(err).splitlines()[0]})") from None
        return module.eval()


@dataclass(frozen=True)
class TinySamModel(SamPredictorMixin):
    """SAM's classes at toy width with weights drawn from ``seed``: no file, fast on a CPU."""

    width: int = 32
    depth: int = 2
    heads: int = 2
    image_size: int = 256
    seed: int = 0

    name = "tiny_sam"

    def check(self) -> None:
        pass

    def build(self):
        return seeded(self.seed, lambda: sam_architecture(
            embed_dim=self.width, depth=self.depth, num_heads=self.heads, global_attn=(self.depth - 1,),
            image_size=self.image_size, prompt_dim=self.width, decoder_mlp_dim=4 * self.width,
            decoder_heads=2,
        ))
