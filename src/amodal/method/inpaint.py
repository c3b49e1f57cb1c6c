"""Inpainting with a pretrained diffusion model, leakage conditioning (eq. 7) and mask guidance (eq. 11).

The stock diffusers pipelines run the denoising loop; this module changes it only through their hooks:
- ``callback_on_step_end`` replaces the latents after each step by eq. 7 (``leakage.py``), with
  x_t = the condition image's latents noised to the next step by the scheduler's own noising;
- for SD-family UNets (9 input channels) a forward pre-hook gives the unconditional half of the guided
  batch the empty mask ∅ (``guidance.py``), so diffusers' guidance with g = 1 + w is eq. 11.
Flux's transformer does not take the mask: the pipeline only blends with it after each step (eq. 5).
Here it gets an all-ones mask, which makes its own blend a no-op, and eq. 7 does the blending with M.

The same code serves SD1.5, SD2, SDXL and Flux; only the latent layout differs (Flux packs 2×2 patches).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from amodal.config import auto_dtype
from amodal.errors import ConfigError
from amodal.method.guidance import EmptyMaskHook, guidance_scale
from amodal.method.leakage import Leakage
from amodal.models.loading import PipelineSource, torch_dtype
from amodal.seeding import torch_generator

log = logging.getLogger(__name__)

_LOADED: dict[tuple, tuple] = {}
"""The last loaded pipeline of this process and its prompt embeddings: the jobs of a multirun that
share a backbone (a sweep over s, w, areas, datasets) load it once."""


class DiffusionInpainter:
    """One backbone (``conf/backbone/<name>.yaml``): a pipeline and the method's settings for it.

    ``s`` is the leakage strength of eq. 7, ``w`` the mask-guidance weight of eq. 11, ``steps`` the
    denoising steps, ``resolution`` the side of the (square) view the model sees.
    """

    def __init__(
        self,
        pipeline: PipelineSource,
        resolution: int = 512,
        steps: int = 20,
        s: float = 0.3,
        w: float = 7.5,
        leakage_region: str = "literal",
        leakage_until: float = 1.0,
        prompt: str = "",
        device: str = "cpu",
        dtype: str = "float32",
        free_text_encoders: bool = True,
    ) -> None:
        if steps < 1:
            raise ConfigError(f"backbone.steps={steps}: use at least 1 denoising step")
        if w < 0:
            raise ConfigError(f"backbone.w={w}: the guidance weight of eq. 11 must be ≥ 0 (0 = no guidance)")
        self.source = pipeline
        self.resolution, self.steps = int(resolution), int(steps)
        self.leakage = Leakage(strength=s, region=leakage_region, until=leakage_until)
        self.w, self.prompt = float(w), prompt
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
            key = (self.source.identity(), str(self.device), self.dtype, self.prompt, self.free_text_encoders)
            if key not in _LOADED:
                _LOADED.clear()  # free the previous backbone before loading the next
                pipe = self.source.load(self.device, self.dtype)
                pipe.set_progress_bar_config(disable=True)
                vae = pipe.vae
                if self.dtype == torch.float16 and getattr(vae.config, "force_upcast", False):
                    vae.to(torch.float32)  # SDXL's VAE overflows in fp16; the pipeline upcasts it too
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
                                                       max_sequence_length=256)
                out = {"prompt_embeds": embeds, "pooled_prompt_embeds": pooled}
        if self.free_text_encoders:
            for name in ("text_encoder", "text_encoder_2"):
                if getattr(pipe, name, None) is not None:
                    pipe.register_modules(**{name: None})
        return out

    # -- latents -------------------------------------------------------------------------------
    def _encode(self, images: torch.Tensor) -> torch.Tensor:
        """Images in [−1, 1] → scaled latents (the distribution's mode: no sampling noise)."""
        vae = self.pipe.vae
        with torch.no_grad():
            latents = vae.encode(images.to(vae.device, vae.dtype)).latent_dist.mode()
        shift = getattr(vae.config, "shift_factor", None) or 0.0
        return ((latents - shift) * vae.config.scaling_factor).to(self.dtype)

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
        x = torch.from_numpy(np.stack(conditions)).permute(0, 3, 1, 2).to(self.device)
        area = torch.from_numpy(np.stack(areas)).to(torch.float32)[:, None].to(self.device)
        generators = [torch_generator(seed) for seed in seeds]
        x0 = self._encode(x)
        noise = torch.cat([torch.randn((1, *x0.shape[1:]), generator=g) for g in generators]).to(x0)
        area_latent = F.interpolate(area, size=self._latent_size(height, width), mode="nearest").to(self.dtype)
        if self.family == "flux":
            images = self._run_flux(pipe, x, x0, noise, area_latent, generators)
        else:
            images = self._run_sd(pipe, x, area, x0, noise, area_latent, generators)
        images = images.float().permute(0, 2, 3, 1).cpu().numpy()
        return [np.clip(np.rint(image * 255), 0, 255).astype(np.uint8) for image in images]

    def _leakage_callback(self, x0, noise, area_latent, add_noise):
        """``callback_on_step_end`` applying eq. 7 after step i, with x_t at the next step's timestep.
        Steps are the loop's iterations (PNDM, SD1.5's scheduler, runs one more than asked for)."""

        def callback(pipe, i, t, kwargs):
            timesteps = pipe.scheduler.timesteps
            if not self.leakage.applies(i, len(timesteps)):
                return {}
            known = add_noise(pipe.scheduler, x0, noise, timesteps[i + 1]) if i + 1 < len(timesteps) else x0
            return {"latents": self.leakage(kwargs["latents"], known, area_latent).to(kwargs["latents"].dtype)}

        return callback

    def _run_sd(self, pipe, x, area, x0, noise, area_latent, generators):
        masked = self._encode(x * (area < 0.5))  # what the UNet's masked-image channels see, as the pipeline does

        def add_noise(scheduler, latents, noise, t):
            return scheduler.add_noise(latents, noise, torch.tensor([t]))

        batch = x.shape[0]
        embeds = {k: v.repeat(batch, *[1] * (v.dim() - 1)) for k, v in self._embeddings.items()}
        hook = pipe.unet.register_forward_pre_hook(EmptyMaskHook(x0), with_kwargs=True) if self.w else None
        try:
            with torch.no_grad():
                out = pipe(
                    image=(x + 1) / 2, mask_image=area, masked_image_latents=masked,
                    height=x.shape[2], width=x.shape[3], strength=1.0, num_inference_steps=self.steps,
                    guidance_scale=guidance_scale(self.w), generator=generators, latents=noise,
                    callback_on_step_end=self._leakage_callback(x0, noise, area_latent, add_noise),
                    callback_on_step_end_tensor_inputs=["latents"], output_type="pt", **embeds,
                )
        finally:
            if hook is not None:
                hook.remove()
        return out.images

    def _run_flux(self, pipe, x, x0, noise, area_latent, generators):
        batch, channels, h, w = x0.shape

        def pack(t):
            return pipe._pack_latents(t, batch, channels, h, w)

        def add_noise(scheduler, latents, noise, t):
            return scheduler.scale_noise(latents, torch.tensor([t]), noise)

        embeds = {k: v.repeat(batch, *[1] * (v.dim() - 1)) for k, v in self._embeddings.items()}
        ones = torch.ones(batch, 1, x.shape[2], x.shape[3], device=x.device)  # the pipeline's blend: a no-op
        with torch.no_grad():
            out = pipe(
                image=x0, mask_image=ones, masked_image_latents=x0, height=x.shape[2], width=x.shape[3],
                strength=1.0, num_inference_steps=self.steps, generator=generators, latents=noise,
                callback_on_step_end=self._leakage_callback(
                    pack(x0), pack(noise), pack(area_latent.expand(-1, channels, -1, -1)), add_noise),
                callback_on_step_end_tensor_inputs=["latents"], output_type="pt", max_sequence_length=256,
                **embeds,
            )
        return out.images
