"""Inpainting with a pretrained diffusion model, leakage conditioning (eq. 7) and mask guidance (eq. 11).

One class serves every backbone: it holds the method's settings, loads the pipeline once per process,
encodes the prompt once and runs a batch of objects. How each family's stock diffusers pipeline is
called, with eq. 7 as its ``callback_on_step_end`` and eq. 11 where its denoiser sees the mask, is its
adapter's business (``families.py``: SD1.5/SD2, SDXL, FLUX.1-schnell, SD3.5, FLUX.1-Fill). With
``leakage="stock"`` and w = 0 the pipeline inpaints as it does without this method, which
``tests/test_stock.py`` proves equal to calling the stock pipeline directly.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from amodal.config import auto_dtype, torch_dtype
from amodal.errors import ConfigError, ModelOutputError
from amodal.lru import LRUCache
from amodal.method.component import Component
from amodal.method.families import FAMILIES, Settings
from amodal.method.leakage import Leakage
from amodal.models.loading import PipelineSource
from amodal.seeding import torch_generator

log = logging.getLogger(__name__)

LEAKAGE = ("eq7", "stock")
VAE_LATENTS = ("sample", "mode")

_LOADED: LRUCache[tuple] = LRUCache(size=1)
"""The last loaded pipeline of this process and its prompt embeddings: the jobs of a multirun that
share a backbone (a sweep over s, w, areas, datasets) load it once; the previous backbone is freed before
the next loads."""


class DiffusionInpainter(Component):
    """One backbone (``conf/backbone/<name>.yaml``): a pipeline and the method's settings for it.

    ``s`` is the leakage strength of eq. 7, ``w`` the mask-guidance weight of eq. 11, ``steps`` the
    denoising steps, ``resolution`` the side of the (square) view the model sees. ``leakage="stock"``
    runs no eq. 7 at all (the pipeline's own inpainting); ``vae_latents`` is how images become latents:
    a posterior ``sample`` drawn with each object's generator, as the stock pipelines do, or its ``mode``.
    ``strength`` is the pipelines' own (1: start from pure noise); ``max_sequence_length`` is the T5
    prompt length (Flux, SD3); ``distilled_guidance`` is FLUX.1-Fill's guidance embedding (diffusers'
    ``guidance_scale`` there), which every pass of its transformer gets, eq. 11's two included.
    """

    def __init__(
        self,
        pipeline: PipelineSource,
        resolution: int = 512,
        steps: int = 20,
        s: float = 0.3,
        w: float = 7.5,
        leakage: str = "eq7",
        leakage_region: str = "literal",
        leakage_until: float = 1.0,
        vae_latents: str = "sample",
        strength: float = 1.0,
        max_sequence_length: int = 256,
        distilled_guidance: float = 30.0,
        prompt: str = "",
        device: str = "cpu",
        dtype: str = "float32",
        free_text_encoders: bool = True,
    ) -> None:
        if steps < 1:
            raise ConfigError(f"backbone.steps={steps}: use at least 1 denoising step")
        if w < 0:
            raise ConfigError(f"backbone.w={w}: the guidance weight of eq. 11 must be ≥ 0 (0 = no guidance)")
        if leakage not in LEAKAGE:
            raise ConfigError(f"backbone.leakage={leakage!r}: use eq7 (the paper's) or stock (the pipeline's own)")
        if vae_latents not in VAE_LATENTS:
            raise ConfigError(f"backbone.vae_latents={vae_latents!r}: use sample (as the pipelines) or mode")
        if not 0.0 < strength <= 1.0:
            raise ConfigError(f"backbone.strength={strength}: the pipelines' strength lies in (0, 1] (1 = pure noise)")
        if not 1 <= max_sequence_length <= 512:
            raise ConfigError(f"backbone.max_sequence_length={max_sequence_length}: T5 takes 1 to 512 tokens")
        self.source = pipeline
        self.resolution, self.steps = int(resolution), int(steps)
        equation7 = Leakage(strength=s, region=leakage_region, until=leakage_until)
        self.leakage = equation7 if leakage == "eq7" else None  # None: the stock pipeline's own inpainting
        self.w, self.prompt = float(w), prompt
        self.vae_latents, self.strength = vae_latents, float(strength)
        self.max_sequence_length = int(max_sequence_length)
        self.distilled_guidance = float(distilled_guidance)
        self.free_text_encoders = free_text_encoders
        self.family = FAMILIES[pipeline.family]
        self.device = device
        self.dtype = torch_dtype(auto_dtype(dtype, device, self.family.gpu_dtype))
        if self.resolution % self.family.multiple:
            raise ConfigError(f"backbone.resolution={resolution}: {self.family.name} needs a multiple of "
                              f"{self.family.multiple}")
        if not self.family.takes_mask and self.w:
            log.warning("backbone.w=%s has no effect on %s: its denoiser does not take the mask, so the two terms "
                        "of eq. 11 are equal; running one pass per step", self.w, self.family.title)
            self.w = 0.0
        self._pipe = None
        self._embeddings: dict | None = None

    # -- loading ---------------------------------------------------------------------------------
    def check(self) -> None:
        self.source.check()

    @property
    def pipe(self):
        if self._pipe is None:
            key = (self.source.identity(), str(self.device), self.dtype, self.prompt, self.free_text_encoders,
                   self.max_sequence_length if self.family.uses_t5 else None)
            self._pipe, self._embeddings = _LOADED.get(key, self._load)
        return self._pipe

    def _load(self) -> tuple:
        pipe = self.source.load(self.device, self.dtype)
        pipe.set_progress_bar_config(disable=True)
        # the VAE stays in the pipeline's dtype, as the stock pipelines expect: SDXL's upcasts
        # itself to encode and decode (its VAE overflows in float16); the others feed it theirs
        self._pipe = pipe
        return pipe, self._encode_prompt()

    def _encode_prompt(self) -> dict:
        """The prompt's embeddings, computed once; both guidance halves get the same ones (eq. 11 guides
        on the mask only). The text encoders are then freed unless asked to keep them."""
        pipe = self._pipe
        with torch.no_grad():
            out = self.family.prompt_embeddings(pipe, self.prompt, self.device, self.max_sequence_length)
        if self.free_text_encoders:
            for name in ("text_encoder", "text_encoder_2", "text_encoder_3"):
                if getattr(pipe, name, None) is not None:
                    pipe.register_modules(**{name: None})
        return out

    # -- the method --------------------------------------------------------------------------------
    @property
    def settings(self) -> Settings:
        """What the family adapter calls its pipeline with."""
        return Settings(
            steps=self.steps, strength=self.strength, leakage=self.leakage, w=self.w, vae_latents=self.vae_latents,
            max_sequence_length=self.max_sequence_length, distilled_guidance=self.distilled_guidance,
            dtype=self.dtype, backbone=str(self.source),
        )

    def _latent_size(self, height: int, width: int) -> tuple[int, int]:
        factor = self.pipe.vae_scale_factor
        return height // factor, width // factor

    def inpaint(self, conditions: Sequence[np.ndarray], areas: Sequence[np.ndarray], seeds: Sequence[int]):
        """Inpaint a batch: condition images x (float h×w×3 in [−1, 1], eq. 8), areas M (bool h×w) and one
        seed per object → x̂₀ as uint8 h×w×3. Objects are independent: a batch gives what one-by-one does."""
        pipe = self.pipe
        height, width = conditions[0].shape[:2]
        if (height, width) != (self.resolution, self.resolution):
            raise ValueError(f"condition is {width}×{height}, the backbone expects {self.resolution}²")
        # contiguous NCHW, as a stock pipeline's user passes it: the VAE rounds a channels-last view differently
        x = torch.from_numpy(np.stack(conditions)).permute(0, 3, 1, 2).contiguous().to(self.device)
        area = torch.from_numpy(np.stack(areas)).to(torch.float32)[:, None].to(self.device)
        generators = [torch_generator(seed) for seed in seeds]  # what the pipeline draws its randomness from
        area_latent = F.interpolate(area, size=self._latent_size(height, width), mode="nearest").to(self.dtype)
        images = self.family.run(pipe, self.settings, self._embeddings, x, area, area_latent, seeds, generators)
        images = images.float().permute(0, 2, 3, 1).cpu().numpy()
        if not np.isfinite(images).all():  # NaN weights or a float16 overflow: every later object would fail too
            fix = "check its weights" if self.dtype == torch.float32 else "run it in float32 (runtime.dtype=float32)"
            raise ModelOutputError(f"backbone {self.source} in {str(self.dtype).removeprefix('torch.')} "
                                   f"produced NaN or infinite pixels: {fix}; the rows written so far are kept")
        return [np.clip(np.rint(image * 255), 0, 255).astype(np.uint8) for image in images]
