"""Inpainting with a pretrained diffusion model, leakage conditioning (eq. 7) and mask guidance (eq. 11).

The stock diffusers pipelines run the denoising loop and draw their own randomness (start noise, VAE
posterior samples) from each object's generator, in their own order; this module changes the loop
only through their hooks:
- ``callback_on_step_end`` replaces the latents after each step by eq. 7 (``leakage.py``), with
  x_t = the condition image's latents noised, with the pipeline's own start noise, to the next step;
- for SD-family UNets (9 input channels) a forward pre-hook gives the unconditional half of the guided
  batch the empty mask ∅ (``guidance.py``), so diffusers' guidance with g = 1 + w is eq. 11.
Flux's transformer does not take the mask: the pipeline only blends with it after each step (eq. 5).
With eq. 7 it gets an all-ones mask, which makes its own blend a no-op, and eq. 7 blends with M.
With ``leakage="stock"`` there is no callback: the pipeline inpaints as it does without this method
(SD/SDXL: no blend at all; Flux: its eq. 5 blend), which ``tests/test_stock.py`` proves equal to
calling the stock pipeline directly.

The same code serves SD1.5, SD2, SDXL and Flux; only the latent layout differs (Flux packs 2×2 patches).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from contextlib import contextmanager

import numpy as np
import torch
import torch.nn.functional as F

from amodal.config import auto_dtype
from amodal.errors import ConfigError, ModelOutputError
from amodal.method.guidance import EmptyMaskHook, guidance_scale
from amodal.method.leakage import Leakage
from amodal.models.loading import PipelineSource, torch_dtype
from amodal.seeding import torch_generator

log = logging.getLogger(__name__)

LEAKAGE = ("eq7", "stock")
VAE_LATENTS = ("sample", "mode")
CONDITION_LATENTS_STREAM = 1
"""The torch seed stream (``torch_generator(seed, stream)``) of SD's condition latents: the stock 9-channel
pipelines never encode the unmasked image, so sampling them from the object's own generator would shift
every draw the pipeline makes after it."""

_LOADED: dict[tuple, tuple] = {}
"""The last loaded pipeline of this process and its prompt embeddings: the jobs of a multirun that
share a backbone (a sweep over s, w, areas, datasets) load it once."""


class PipelineDraws:
    """What the stock pipeline drew for itself in ``prepare_latents``: its start noise and, where it
    encodes the condition image there (Flux; SD with a 4-channel UNet), those latents. Eq. 7's x_t is
    built from the very noise the pipeline starts from, as the pipelines' own eq. 5 blend is."""

    noise: torch.Tensor | None = None
    image_latents: torch.Tensor | None = None

    @contextmanager
    def watching(self, pipe):
        """Record ``pipe.prepare_latents``' outputs during one call (it returns latents, noise, then the
        image latents where it has them); the pipeline is shared, so the method is restored after."""
        prepare = pipe.prepare_latents

        def recorded(*args, **kwargs):
            out = prepare(*args, **kwargs)
            self.noise = out[1]
            self.image_latents = out[2] if len(out) > 2 else None
            return out

        pipe.prepare_latents = recorded
        try:
            yield self
        finally:
            del pipe.prepare_latents


class LeakageCallback:
    """``callback_on_step_end`` applying eq. 7 after denoising step i.

    x_t is the condition latents x0 noised, with the pipeline's start noise, to the level the latents
    have after step i: the NEXT timestep's (after the last step, x0 itself), as the stock pipelines'
    eq. 5 blend does. ``condition_latents`` defaults to the latents the pipeline encoded itself.
    """

    def __init__(self, leakage: Leakage, area: torch.Tensor, add_noise, draws: PipelineDraws,
                 condition_latents: torch.Tensor | None = None) -> None:
        self.leakage, self.area, self.add_noise, self.draws = leakage, area, add_noise, draws
        self.condition_latents = condition_latents

    def known(self, scheduler, timesteps: torch.Tensor, i: int) -> torch.Tensor:
        """x_t after step i."""
        x0 = self.condition_latents if self.condition_latents is not None else self.draws.image_latents
        if i + 1 < len(timesteps):
            return self.add_noise(scheduler, x0, self.draws.noise, timesteps[i + 1])
        return x0

    def __call__(self, pipe, i, t, kwargs):
        # the loop's own timesteps (strength < 1 skips the first ones); steps are the loop's iterations
        # (PNDM, SD1.5's scheduler, runs one more than asked for)
        timesteps = pipe.scheduler.timesteps[len(pipe.scheduler.timesteps) - pipe.num_timesteps:]
        if not self.leakage.applies(i, len(timesteps)):
            return {}
        latents = kwargs["latents"]
        known = self.known(pipe.scheduler, timesteps, i)
        return {"latents": self.leakage(latents, known, self.area).to(latents.dtype)}


def noised_sd(scheduler, latents, noise, t):
    """Latents noised to timestep t by an SD scheduler's forward process (eq. 1), as its pipelines do."""
    return scheduler.add_noise(latents, noise, torch.tensor([t]))


def noised_flux(scheduler, latents, noise, t):
    """Latents noised to timestep t by Flux's flow-matching scheduler, as its pipeline does."""
    return scheduler.scale_noise(latents, torch.tensor([t]), noise)


class DiffusionInpainter:
    """One backbone (``conf/backbone/<name>.yaml``): a pipeline and the method's settings for it.

    ``s`` is the leakage strength of eq. 7, ``w`` the mask-guidance weight of eq. 11, ``steps`` the
    denoising steps, ``resolution`` the side of the (square) view the model sees. ``leakage="stock"``
    runs no eq. 7 at all (the pipeline's own inpainting); ``vae_latents`` is how images become latents:
    a posterior ``sample`` drawn with each object's generator, as the stock pipelines do, or its ``mode``.
    ``strength`` is the pipelines' own (1: start from pure noise); ``max_sequence_length`` is Flux's T5
    prompt length.
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
            raise ConfigError(f"backbone.max_sequence_length={max_sequence_length}: Flux's T5 takes 1 to 512 tokens")
        self.source = pipeline
        self.resolution, self.steps = int(resolution), int(steps)
        equation7 = Leakage(strength=s, region=leakage_region, until=leakage_until)
        self.leakage = equation7 if leakage == "eq7" else None  # None: the stock pipeline's own inpainting
        self.w, self.prompt = float(w), prompt
        self.vae_latents, self.strength = vae_latents, float(strength)
        self.max_sequence_length = int(max_sequence_length)
        self.free_text_encoders = free_text_encoders
        self.family = pipeline.family
        self.device = device
        self.dtype = torch_dtype(auto_dtype(dtype, device, "bfloat16" if self.family == "flux" else "float16"))
        self.multiple = 16 if self.family == "flux" else 8
        if self.resolution % self.multiple:
            raise ConfigError(f"backbone.resolution={resolution}: {self.family} needs a multiple of {self.multiple}")
        if self.family == "flux" and self.w:
            log.warning("backbone.w=%s has no effect on Flux: its transformer does not take the mask, so the "
                        "two terms of eq. 11 are equal; running one pass per step", self.w)
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
                   self.max_sequence_length if self.family == "flux" else None)
            if key not in _LOADED:
                _LOADED.clear()  # free the previous backbone before loading the next
                pipe = self.source.load(self.device, self.dtype)
                pipe.set_progress_bar_config(disable=True)
                # the VAE stays in the pipeline's dtype, as the stock pipelines expect: SDXL's upcasts
                # itself to encode and decode (its VAE overflows in float16); SD's and Flux's feed it theirs
                self._pipe = pipe
                _LOADED[key] = (pipe, self._encode_prompt())
            self._pipe, self._embeddings = _LOADED[key]
        return self._pipe

    def _encode_prompt(self) -> dict:
        """The prompt's embeddings, computed once; both guidance halves get the same ones (eq. 11 guides
        on the mask only). The text encoders are then freed unless asked to keep them."""
        pipe = self._pipe
        with torch.no_grad():
            if self.family == "sd":
                embeds, _ = pipe.encode_prompt(self.prompt, self.device, 1, False)
                out = {"prompt_embeds": embeds, "negative_prompt_embeds": embeds}
            elif self.family == "sdxl":
                embeds, _, pooled, _ = pipe.encode_prompt(self.prompt, device=self.device,
                                                          do_classifier_free_guidance=False)
                out = {"prompt_embeds": embeds, "negative_prompt_embeds": embeds,
                       "pooled_prompt_embeds": pooled, "negative_pooled_prompt_embeds": pooled}
            else:
                embeds, pooled, _ = pipe.encode_prompt(self.prompt, prompt_2=None, device=self.device,
                                                       max_sequence_length=self.max_sequence_length)
                out = {"prompt_embeds": embeds, "pooled_prompt_embeds": pooled}
        if self.free_text_encoders:
            for name in ("text_encoder", "text_encoder_2"):
                if getattr(pipe, name, None) is not None:
                    pipe.register_modules(**{name: None})
        return out

    # -- latents -------------------------------------------------------------------------------
    def _encode(self, images: torch.Tensor) -> torch.Tensor:
        """Images in [−1, 1] → scaled latents, the posterior's mode (``vae_latents=mode``), in the VAE's
        dtype, or in float32 where the pipeline itself encodes so (SDXL's float16 VAE overflows)."""
        vae = self.pipe.vae
        upcast = self.family == "sdxl" and vae.dtype == torch.float16 and vae.config.force_upcast
        if upcast:
            vae.to(torch.float32)
        try:
            with torch.no_grad():
                latents = vae.encode(images.to(vae.device, vae.dtype)).latent_dist.mode()
        finally:
            if upcast:
                vae.to(torch.float16)
        shift = getattr(vae.config, "shift_factor", None) or 0.0
        return ((latents - shift) * vae.config.scaling_factor).to(self.dtype)

    def _condition_latents(self, x: torch.Tensor, seeds: Sequence[int]) -> torch.Tensor:
        """SD's latents of the whole condition image x (eq. 7's x0, the masked image of ∅ in eq. 11): the
        mode, or a posterior sample drawn by the pipeline's own encoder from a stream of each object's seed
        that the pipeline does not use."""
        if self.vae_latents == "mode":
            return self._encode(x)
        pipe = self.pipe
        generators = [torch_generator(seed, CONDITION_LATENTS_STREAM) for seed in seeds]
        with torch.no_grad():
            latents = pipe._encode_vae_image(x.to(pipe.vae.device, pipe.vae.dtype), generator=generators)
        return latents.to(self.dtype)

    def _latent_size(self, height: int, width: int) -> tuple[int, int]:
        factor = self.pipe.vae_scale_factor
        return height // factor, width // factor

    # -- the method --------------------------------------------------------------------------------
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
        if self.family == "flux":
            images = self._run_flux(pipe, x, area, area_latent, generators)
        else:
            images = self._run_sd(pipe, x, area, area_latent, seeds, generators)
        images = images.float().permute(0, 2, 3, 1).cpu().numpy()
        if not np.isfinite(images).all():  # NaN weights or a float16 overflow: every later object would fail too
            fix = "check its weights" if self.dtype == torch.float32 else "run it in float32 (runtime.dtype=float32)"
            raise ModelOutputError(f"backbone {self.source.describe()} in {str(self.dtype).removeprefix('torch.')} "
                                   f"produced NaN or infinite pixels: {fix}; the rows written so far are kept")
        return [np.clip(np.rint(image * 255), 0, 255).astype(np.uint8) for image in images]

    def _call(self, pipe, callback, **inputs):
        """The stock pipeline's ``__call__`` with the settings every family shares, eq. 7 as ``callback``."""
        batch = inputs["image"].shape[0]
        embeds = {k: v.repeat(batch, *[1] * (v.dim() - 1)) for k, v in self._embeddings.items()}
        with torch.no_grad():
            return pipe(
                strength=self.strength, num_inference_steps=self.steps, callback_on_step_end=callback,
                callback_on_step_end_tensor_inputs=["latents"], output_type="pt", **embeds, **inputs,
            ).images

    def _run_sd(self, pipe, x, area, area_latent, seeds, generators):
        draws = PipelineDraws()
        inputs = {}
        if self.vae_latents == "mode":
            # what the UNet's masked-image channels see, as the pipeline computes it, but the mode;
            # with `sample` the pipeline encodes it itself (its draw after the start noise)
            inputs["masked_image_latents"] = self._encode(x * (area < 0.5))
        x0 = self._condition_latents(x, seeds) if self.leakage or self.w else None
        callback = LeakageCallback(self.leakage, area_latent, noised_sd, draws, x0) if self.leakage else None
        hook = pipe.unet.register_forward_pre_hook(EmptyMaskHook(x0), with_kwargs=True) if self.w else None
        try:
            with draws.watching(pipe):
                return self._call(
                    pipe, callback, image=(x + 1) / 2, mask_image=area, height=x.shape[2], width=x.shape[3],
                    guidance_scale=guidance_scale(self.w), generator=generators, **inputs,
                )
        finally:
            if hook is not None:
                hook.remove()

    def _run_flux(self, pipe, x, area, area_latent, generators):
        draws = PipelineDraws()
        batch, channels = x.shape[0], pipe.vae.config.latent_channels
        h, w = area_latent.shape[-2:]
        # `sample`: the pipeline encodes the image itself (its first draw, before the start noise);
        # `mode`: it takes latents as they are
        image = (x + 1) / 2 if self.vae_latents == "sample" else self._encode(x)
        # its transformer never reads the masked-image latents (it only blends with the mask): zeros spare
        # the VAE pass that would encode them, the generator's last draw, so nothing else changes
        unused = torch.zeros(batch, channels, h, w, device=x.device, dtype=self.dtype)
        callback = None
        mask = area  # `stock`: the pipeline's own eq. 5 blend with M
        if self.leakage:
            area_packed = pipe._pack_latents(area_latent.expand(-1, channels, -1, -1), batch, channels, h, w)
            callback = LeakageCallback(self.leakage, area_packed, noised_flux, draws)
            mask = torch.ones_like(area)  # the pipeline's blend becomes a no-op: eq. 7 blends with M
        with draws.watching(pipe):
            return self._call(
                pipe, callback, image=image, mask_image=mask, masked_image_latents=unused, height=x.shape[2],
                width=x.shape[3], generator=generators, max_sequence_length=self.max_sequence_length,
            )
