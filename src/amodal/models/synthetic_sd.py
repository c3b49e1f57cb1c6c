"""The synthetic backbone: a small Stable-Diffusion-inpainting pipeline, built from diffusers' own classes.

Same parts as SD1.5-inpainting, at a size 2 CPU cores train in about 65 minutes (MODEL_CARD.md: 12 for
the autoencoder, 53 for the UNet): an ``AutoencoderKL`` that downsamples by 2 (two blocks; a 64 px view
gives 32×32×4 latents — with ÷4 the autoencoder did not learn to keep the objects within that budget), a
``UNet2DConditionModel`` with 9 input channels ([noisy latents | mask | masked-image latents]) and
cross-attention at its coarsest level, the tiny CLIP tokenizer and text encoder of ``models/tiny.py``
(fixed random weights: the method is prompt-free, the empty prompt's embedding is all the UNet ever
reads), and a DDIM scheduler on SD's noise schedule. The trained weights ship in ``weights/synthetic_sd/``
(see its MODEL_CARD.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from diffusers import (
    AutoencoderKL,
    DDIMScheduler,
    DDPMScheduler,
    StableDiffusionInpaintPipeline,
    UNet2DConditionModel,
)

from amodal.models.tiny import TEXT_WIDTH, clip_text_encoder, clip_tokenizer
from amodal.seeding import seeded

WEIGHTS = Path(__file__).parent / "weights" / "synthetic_sd"
"""The shipped pipeline folder (``save_pretrained``), inside the package."""

NOISE_SCHEDULE = {"num_train_timesteps": 1000, "beta_start": 0.00085, "beta_end": 0.012,
                  "beta_schedule": "scaled_linear", "prediction_type": "epsilon"}
"""SD's schedule: the training noise and the sampler's must agree."""


def autoencoder(block_out_channels: Sequence[int] = (32, 64), latent_channels: int = 4,
                layers_per_block: int = 1, norm_num_groups: int = 8, initial_log_variance: float = -8.0
                ) -> AutoencoderKL:
    """Downsamples by 2^(len(block_out_channels) − 1). Without the mid-block attention it is fully
    convolutional, so training on small crops carries over to the whole view. The posterior's
    log-variance starts at ``initial_log_variance`` (σ ≈ 0.02) rather than 0: with SD's tiny KL weight,
    σ = 1 noise would drown the initially small latents and stall the reconstruction for thousands
    of steps."""
    blocks = len(block_out_channels)
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=latent_channels,
        block_out_channels=tuple(block_out_channels), down_block_types=("DownEncoderBlock2D",) * blocks,
        up_block_types=("UpDecoderBlock2D",) * blocks, layers_per_block=layers_per_block,
        norm_num_groups=norm_num_groups, mid_block_add_attention=False,
    )
    with torch.no_grad():
        vae.quant_conv.bias[latent_channels:] = initial_log_variance  # [mean | log-variance] channels
    return vae


def inpainting_unet(latent_size: int, latent_channels: int = 4,
                    block_out_channels: Sequence[int] = (32, 64, 128), layers_per_block: int = 1,
                    attention_head_dim: int = 8, norm_num_groups: int = 16) -> UNet2DConditionModel:
    """SD-inpainting's layout: 2·latent_channels + 1 inputs; cross-attention only at the coarsest level
    (attention on the finer levels costs most of a CPU step, and the coarsest level sees the whole view)."""
    blocks = len(block_out_channels)
    return UNet2DConditionModel(
        sample_size=latent_size, in_channels=2 * latent_channels + 1, out_channels=latent_channels,
        block_out_channels=tuple(block_out_channels), layers_per_block=layers_per_block,
        down_block_types=("DownBlock2D",) * (blocks - 1) + ("CrossAttnDownBlock2D",),
        up_block_types=("CrossAttnUpBlock2D",) + ("UpBlock2D",) * (blocks - 1),
        cross_attention_dim=TEXT_WIDTH, attention_head_dim=attention_head_dim,
        norm_num_groups=norm_num_groups,
    )


def training_scheduler() -> DDPMScheduler:
    return DDPMScheduler(**NOISE_SCHEDULE)


def sampling_scheduler() -> DDIMScheduler:
    """DDIM with trailing timesteps, so that sampling starts from pure noise at t = 999."""
    return DDIMScheduler(**NOISE_SCHEDULE, clip_sample=False, set_alpha_to_one=False,
                         timestep_spacing="trailing", steps_offset=1)  # the offset is unused when trailing


def text_parts(seed: int = 0):
    """The tiny CLIP tokenizer and a text encoder with weights drawn from ``seed`` (never trained)."""
    tokenizer = clip_tokenizer()
    return tokenizer, seeded(seed, lambda: clip_text_encoder(tokenizer))


def assemble(vae: AutoencoderKL, unet: UNet2DConditionModel,
             text_seed: int = 0) -> StableDiffusionInpaintPipeline:
    tokenizer, text_encoder = text_parts(text_seed)
    return StableDiffusionInpaintPipeline(
        vae=vae.eval(), text_encoder=text_encoder, tokenizer=tokenizer, unet=unet.eval(),
        scheduler=sampling_scheduler(), safety_checker=None, feature_extractor=None,
        requires_safety_checker=False,
    )


def empty_prompt_embedding(text_seed: int = 0) -> torch.Tensor:
    """What the pipeline's ``encode_prompt("")`` gives: 1×77×TEXT_WIDTH, the UNet's only text input."""
    tokenizer, encoder = text_parts(text_seed)
    ids = tokenizer("", padding="max_length", max_length=tokenizer.model_max_length, truncation=True,
                    return_tensors="pt").input_ids
    with torch.no_grad():
        return encoder(ids)[0]
