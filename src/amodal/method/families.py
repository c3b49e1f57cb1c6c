"""The diffusers pipelines a backbone runs through: one adapter per family, saying only what differs.

Every family runs its stock pipeline's own denoising loop, which draws its randomness (start noise, VAE
posterior samples) from each object's generator in its own order, and changes it only through hooks:
eq. 7 (``leakage.py``) as ``callback_on_step_end`` after every step, eq. 11 (``guidance.py``) where the
denoiser sees the mask. What differs:

family      pipeline                           the denoiser sees M    own blend (eq. 5)  eq. 11
sd          StableDiffusionInpaintPipeline     5 more input channels  none               ∅ in its guided batch
sdxl        StableDiffusionXLInpaintPipeline   5 more input channels  none               the same
flux        FluxInpaintPipeline                no                     every step         inert: terms equal
sd3         StableDiffusion3InpaintPipeline    no                     every step         inert
flux_fill   FluxFillPipeline                   320 more channels      none               a second pass with ∅

Where the pipeline blends by itself, eq. 7 hands it an all-ones mask, which makes its blend a no-op, and
blends with M in the callback; ``leakage=stock`` leaves its own blend. Flux packs its latents in 2×2
patches, and eq. 7's M is packed the same way. ``tests/test_stock.py`` proves each family, with the
method's additions neutral, equal to calling its stock pipeline directly.

An adapter makes every call of its pipeline itself, from the pipeline, a frozen ``Settings`` and the prompt
embeddings: it runs without the inpainter. Which diffusers class each family is, and its tiny copy, is
``models/pipelines.py``'s table.
"""

from __future__ import annotations

from contextlib import contextmanager, nullcontext
from dataclasses import dataclass

import torch

from amodal.errors import ConfigError
from amodal.method.guidance import EmptyMaskHook, EmptyMaskPass, guidance_scale
from amodal.method.leakage import Leakage
from amodal.seeding import CONDITION_LATENTS_STREAM, torch_generator


@dataclass(frozen=True)
class Settings:
    """The method's settings a family calls its pipeline with (``DiffusionInpainter`` documents each):
    eq. 7 (``leakage``; None: the pipeline's own inpainting), eq. 11's ``w``, how images become latents,
    the pipelines' own ``steps`` and ``strength``, T5's prompt length, FLUX.1-Fill's guidance embedding,
    the dtype latents are handed over in, and the backbone as messages name it."""

    steps: int
    strength: float
    leakage: Leakage | None
    w: float
    vae_latents: str
    max_sequence_length: int
    distilled_guidance: float
    dtype: torch.dtype
    backbone: str


class PipelineDraws:
    """What the stock pipeline drew for itself in ``prepare_latents``: its start noise and, where it
    encodes the condition image there (Flux, SD3; SD with a 4-channel UNet), those latents. Eq. 7's x_t is
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


class ScaledNoiseDraws(PipelineDraws):
    """FluxFillPipeline's ``prepare_latents`` returns neither its noise nor the image latents: they are
    the arguments of the one ``scheduler.scale_noise`` call it makes, recorded there and packed 2×2 as
    the loop's latents are."""

    @contextmanager
    def watching(self, pipe):
        prepare, scheduler = pipe.prepare_latents, pipe.scheduler
        scale_noise = scheduler.scale_noise

        def recorded_scale_noise(sample, timestep, noise):
            self.image_latents, self.noise = (pipe._pack_latents(t, *t.shape) for t in (sample, noise))
            return scale_noise(sample, timestep, noise)

        def recorded(*args, **kwargs):
            scheduler.scale_noise = recorded_scale_noise
            try:
                return prepare(*args, **kwargs)
            finally:
                del scheduler.scale_noise

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


def noised_flow(scheduler, latents, noise, t):
    """Latents noised to timestep t by a flow-matching scheduler (Flux, SD3), as their pipelines do."""
    return scheduler.scale_noise(latents, torch.tensor([t]), noise)


@contextmanager
def posterior_mode(vae):
    """The VAE's posterior made a point mass during one pipeline call, so a pipeline that encodes images
    itself gets their mode. Its sampling still draws (zero spread times the draw): every later draw from
    the generators stays where it was."""
    encode = vae.encode

    def encode_mode(*args, **kwargs):
        out = encode(*args, **kwargs)
        out.latent_dist.std = torch.zeros_like(out.latent_dist.std)
        return out

    vae.encode = encode_mode
    try:
        yield
    finally:
        del vae.encode


class Family:
    """How one family's stock pipeline is called: its prompt embeddings and a batch through its loop.
    Its name is the family's in ``models/pipelines.py``, which says the pipeline class."""

    name = ""
    title = ""  # in messages
    multiple = 8  # the view's side must be a multiple of the VAE's factor times the denoiser's patch
    takes_mask = True  # whether the denoiser sees M: eq. 11 acts only then
    uses_t5 = False  # whether ``max_sequence_length`` changes the prompt embeddings
    upcasts_vae = False  # whether the pipeline runs a float16 VAE in float32
    gpu_dtype = "float16"  # what runtime.dtype=auto runs on CUDA

    def prompt_embeddings(self, pipe, prompt: str, device, max_sequence_length: int) -> dict:
        """The keyword arguments that hand the pipeline the prompt, encoded once for one object."""
        raise NotImplementedError

    def run(self, pipe, settings: Settings, embeddings: dict, x: torch.Tensor, area: torch.Tensor,
            area_latent: torch.Tensor, seeds, generators) -> torch.Tensor:
        """x̂₀ of a batch, N×3×H×W in [0, 1], from x (N×3×H×W in [−1, 1], eq. 8) and M at pixel and at latent
        resolution (N×1×…, nearest), with the settings, one object's prompt embeddings
        (``prompt_embeddings``), the seeds and their generators."""
        raise NotImplementedError

    def encode(self, pipe, settings: Settings, images: torch.Tensor) -> torch.Tensor:
        """Images in [−1, 1] → scaled latents, the posterior's mode (``vae_latents=mode``), in the VAE's
        dtype, or in float32 where the pipeline itself encodes so (SDXL's float16 VAE overflows)."""
        vae = pipe.vae
        upcast = self.upcasts_vae and vae.dtype == torch.float16 and vae.config.force_upcast
        if upcast:
            vae.to(torch.float32)
        try:
            with torch.no_grad():
                latents = vae.encode(images.to(vae.device, vae.dtype)).latent_dist.mode()
        finally:
            if upcast:
                vae.to(torch.float16)
        shift = getattr(vae.config, "shift_factor", None) or 0.0
        return ((latents - shift) * vae.config.scaling_factor).to(settings.dtype)

    def call(self, pipe, settings: Settings, embeddings: dict, callback, output_type: str = "pt", **inputs):
        """The stock pipeline's ``__call__`` with the settings every family shares, the prompt embeddings
        repeated for the batch, eq. 7 as ``callback``."""
        batch = inputs["image"].shape[0]
        embeds = {k: v.repeat(batch, *[1] * (v.dim() - 1)) for k, v in embeddings.items()}
        with torch.no_grad():
            return pipe(
                strength=settings.strength, num_inference_steps=settings.steps, callback_on_step_end=callback,
                callback_on_step_end_tensor_inputs=["latents"], output_type=output_type, **embeds, **inputs,
            ).images


class StableDiffusion(Family):
    """SD1.5 / SD2 inpainting: a 9-channel UNet ([latents | M | masked-image latents]), no blend of its
    own, text guidance on a doubled batch, whose unconditional half gets ∅ for eq. 11."""

    name, title = "sd", "SD"

    def prompt_embeddings(self, pipe, prompt, device, max_sequence_length):
        embeds, _ = pipe.encode_prompt(prompt, device, 1, False)
        return {"prompt_embeds": embeds, "negative_prompt_embeds": embeds}

    def condition_latents(self, pipe, settings, x, seeds) -> torch.Tensor:
        """The latents of the whole condition image x (eq. 7's x0, the masked image of ∅ in eq. 11): the
        mode, or a posterior sample drawn by the pipeline's own encoder from a stream of each object's seed
        that the pipeline does not use."""
        if settings.vae_latents == "mode":
            return self.encode(pipe, settings, x)
        generators = [torch_generator(seed, CONDITION_LATENTS_STREAM) for seed in seeds]
        with torch.no_grad():
            latents = pipe._encode_vae_image(x.to(pipe.vae.device, pipe.vae.dtype), generator=generators)
        return latents.to(settings.dtype)

    def run(self, pipe, settings, embeddings, x, area, area_latent, seeds, generators):
        draws = PipelineDraws()
        inputs = {}
        if settings.vae_latents == "mode":
            # what the UNet's masked-image channels see, as the pipeline computes it, but the mode;
            # with `sample` the pipeline encodes it itself (its draw after the start noise)
            inputs["masked_image_latents"] = self.encode(pipe, settings, x * (area < 0.5))
        leakage, w = settings.leakage, settings.w
        x0 = self.condition_latents(pipe, settings, x, seeds) if leakage or w else None
        callback = LeakageCallback(leakage, area_latent, noised_sd, draws, x0) if leakage else None
        hook = pipe.unet.register_forward_pre_hook(EmptyMaskHook(x0), with_kwargs=True) if w else None
        try:
            with draws.watching(pipe):
                return self.call(
                    pipe, settings, embeddings, callback, image=(x + 1) / 2, mask_image=area,
                    height=x.shape[2], width=x.shape[3], guidance_scale=guidance_scale(w), generator=generators,
                    **inputs,
                )
        finally:
            if hook is not None:
                hook.remove()


class StableDiffusionXL(StableDiffusion):
    """SDXL inpainting: SD's loop with two text encoders and a pooled embedding; its float16 VAE overflows,
    so the pipeline encodes and decodes in float32."""

    name, title = "sdxl", "SDXL"
    upcasts_vae = True

    def prompt_embeddings(self, pipe, prompt, device, max_sequence_length):
        embeds, _, pooled, _ = pipe.encode_prompt(prompt, device=device, do_classifier_free_guidance=False)
        return {"prompt_embeds": embeds, "negative_prompt_embeds": embeds,
                "pooled_prompt_embeds": pooled, "negative_pooled_prompt_embeds": pooled}


class BlendsWithMask(Family):
    """A pipeline whose denoiser never sees M: it only blends with M after every step (eq. 5), so the two
    terms of eq. 11 are equal. With eq. 7 it gets an all-ones mask, which makes its blend a no-op, and
    eq. 7 blends with M; with ``leakage=stock`` its own blend runs."""

    takes_mask = False
    uses_t5 = True
    multiple = 16
    gpu_dtype = "bfloat16"  # Flux and SD3 overflow in float16

    def layout(self, pipe, latents: torch.Tensor) -> torch.Tensor:
        """N×C×h×w latents as the loop holds them."""
        return latents

    def options(self, settings: Settings) -> dict:
        """The family's own keyword arguments to the pipeline."""
        return {"max_sequence_length": settings.max_sequence_length}

    def run(self, pipe, settings, embeddings, x, area, area_latent, seeds, generators):
        draws = PipelineDraws()
        batch, channels = x.shape[0], pipe.vae.config.latent_channels
        # `sample`: the pipeline encodes the image itself (its first draw, before the start noise);
        # `mode`: it takes latents as they are
        image = (x + 1) / 2 if settings.vae_latents == "sample" else self.encode(pipe, settings, x)
        # its denoiser never reads the masked-image latents: zeros spare the VAE pass that would encode them,
        # the generator's last draw, so nothing else changes
        unused = torch.zeros(batch, channels, *area_latent.shape[-2:], device=x.device, dtype=settings.dtype)
        callback = None
        mask = area  # `stock`: the pipeline's own eq. 5 blend with M
        if settings.leakage:
            area_layout = self.layout(pipe, area_latent.expand(-1, channels, -1, -1))
            callback = LeakageCallback(settings.leakage, area_layout, noised_flow, draws)
            mask = torch.ones_like(area)  # the pipeline's blend becomes a no-op: eq. 7 blends with M
        with draws.watching(pipe):
            return self.call(
                pipe, settings, embeddings, callback, image=image, mask_image=mask, masked_image_latents=unused,
                height=x.shape[2], width=x.shape[3], generator=generators, **self.options(settings),
            )


class Flux(BlendsWithMask):
    """FLUX.1-schnell through FluxInpaintPipeline: 16-channel latents packed in 2×2 patches, CLIP's pooled
    embedding and T5's sequence, no guidance of any kind."""

    name, title = "flux", "Flux"

    def layout(self, pipe, latents):
        return pipe._pack_latents(latents, *latents.shape)

    def prompt_embeddings(self, pipe, prompt, device, max_sequence_length):
        embeds, pooled, _ = pipe.encode_prompt(prompt, prompt_2=None, device=device,
                                               max_sequence_length=max_sequence_length)
        return {"prompt_embeds": embeds, "pooled_prompt_embeds": pooled}


class StableDiffusion3(BlendsWithMask):
    """Stable Diffusion 3.5 through StableDiffusion3InpaintPipeline: a 16-channel MMDiT that blends like
    Flux, with CLIP-L, CLIP-G and T5. Both halves of its text guidance would get the same empty prompt,
    which makes guidance a no-op: ``guidance_scale`` = 1, one pass per step."""

    name, title = "sd3", "SD3"

    def prompt_embeddings(self, pipe, prompt, device, max_sequence_length):
        embeds, _, pooled, _ = pipe.encode_prompt(prompt, None, None, device=device, do_classifier_free_guidance=False,
                                                  max_sequence_length=max_sequence_length)
        return {"prompt_embeds": embeds, "pooled_prompt_embeds": pooled}

    def options(self, settings):
        return {**super().options(settings), "guidance_scale": 1.0, "output_type": "latent"}

    def run(self, pipe, settings, embeddings, x, area, area_latent, seeds, generators):
        if pipe.transformer.config.in_channels != pipe.vae.config.latent_channels:
            raise ConfigError(f"backbone {settings.backbone}: its SD3 transformer takes the mask as input "
                              "channels, which the sd3 family (SD3.5, blending with M) would hand an all-ones mask; "
                              "such a model needs a family of its own (docs/backbones.md)")
        latents = super().run(pipe, settings, embeddings, x, area, area_latent, seeds, generators)
        # decoded by the inverse of the pipeline's own encoding, (latents − shift)·scale: diffusers 0.42's
        # StableDiffusion3InpaintPipeline decodes latents / scale, without the shift (diffusers#13611)
        vae = pipe.vae
        with torch.no_grad():
            images = vae.decode(latents / vae.config.scaling_factor + vae.config.shift_factor, return_dict=False)[0]
        return pipe.image_processor.postprocess(images, output_type="pt")


class FluxFill(Flux):
    """FLUX.1-Fill-dev through FluxFillPipeline: its transformer reads M and the masked image as 320 more
    input channels per packed token and the pipeline does not blend. Guidance-distilled: its
    ``guidance_scale`` is an embedding, one pass per step (``backbone.distilled_guidance``); eq. 11 is a
    second pass with ∅ (``EmptyMaskPass``). It encodes the image and the masked image itself, and takes
    no latents for them beside an image: ``vae_latents=mode`` makes its VAE's posterior a point mass."""

    name, title = "flux_fill", "FLUX.1-Fill"
    takes_mask = True

    def empty_condition(self, pipe, draws: PipelineDraws) -> torch.Tensor:
        """∅ as the transformer reads it: the whole condition image's latents (the pipeline's own x0, packed)
        and an all-zero mask (each 8×8 pixel block folded into 64 channels, packed 2×2)."""
        latents = draws.image_latents
        mask_channels = 4 * pipe.vae_scale_factor**2
        return torch.cat([latents, latents.new_zeros(*latents.shape[:2], mask_channels)], dim=2)

    def run(self, pipe, settings, embeddings, x, area, area_latent, seeds, generators):
        draws = ScaledNoiseDraws()
        callback = None
        if settings.leakage:
            area_layout = self.layout(pipe, area_latent.expand(-1, pipe.vae.config.latent_channels, -1, -1))
            callback = LeakageCallback(settings.leakage, area_layout, noised_flow, draws)
        hook = None
        if settings.w:
            guidance = EmptyMaskPass(settings.w, lambda: self.empty_condition(pipe, draws))
            hook = pipe.transformer.register_forward_hook(guidance, with_kwargs=True)
        mode = posterior_mode(pipe.vae) if settings.vae_latents == "mode" else nullcontext()
        try:
            with draws.watching(pipe), mode:
                return self.call(
                    pipe, settings, embeddings, callback, image=(x + 1) / 2, mask_image=area,
                    height=x.shape[2], width=x.shape[3], generator=generators,
                    guidance_scale=settings.distilled_guidance, max_sequence_length=settings.max_sequence_length,
                )
        finally:
            if hook is not None:
                hook.remove()


FAMILIES = {family.name: family for family in (StableDiffusion(), StableDiffusionXL(), Flux(), StableDiffusion3(),
                                               FluxFill())}
