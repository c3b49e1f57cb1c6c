"""Our inpainter is the stock diffusers pipeline plus eqs. 7 and 11, nothing else.

Real backbones cannot be loaded here; what protects their users is that, on tiny random-weight
pipelines of the real classes (``models/tiny.py``),
- with the method's additions neutral (``leakage=stock``: no eq. 7 callback; w = 0; VAE latents
  sampled as the pipelines sample them), our x̂₀ is the stock pipeline's, called directly with the same
  condition image, mask, prompt and generators. Equal means bit-identical images here: both get
  contiguous NCHW images (a channels-last view, which the H×W×3 arrays give, made the VAE round
  differently: 1 grey level) and one prompt for the batch;
  SD3 differs from its stock pipeline in one deliberate place, the decoding (see its test);
- eq. 7 with s = 1 is diffusers' own eq. 5 blend, which pins x_t to the next timestep's noise level;
- the noise prediction ``scheduler.step`` receives is eq. 11, (1 + w)·ε(M) − w·ε(∅); on FLUX.1-Fill,
  which runs no guided batch, the velocity it receives is (1 + w)·v(M) − w·v(∅) from two passes.
"""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from amodal.method.families import FAMILIES, LeakageCallback, PipelineDraws, Settings, noised_sd
from amodal.method.inpaint import DiffusionInpainter
from amodal.method.leakage import Leakage
from amodal.models.loading import TinyPipeline
from amodal.models.pipelines import PIPELINES
from amodal.models.tiny import tiny_pipeline
from amodal.seeding import torch_generator
from tests.helpers import condition_batch

SIZE, STEPS = 64, 4
NEUTRAL = {"sd": {"guidance_scale": 1.0}, "sdxl": {"guidance_scale": 1.0}, "flux": {"max_sequence_length": 256},
           "sd3": {"guidance_scale": 1.0}, "flux_fill": {"max_sequence_length": 256}}
"""What the stock call needs to match the neutral method: no text guidance (SD, SDXL, SD3: the empty prompt in
both halves), and our T5 length; FLUX.1-Fill keeps its stock guidance embedding, 30."""


@pytest.fixture(scope="module")
def batch():
    """Three condition images x in [−1, 1], their areas M and seeds."""
    return condition_batch(SIZE, 1, [(8 + 6 * i, 44 + 4 * i, 12 + 4 * i, 52) for i in range(3)], [5, 6, 7])


def as_tensors(conditions, areas):
    """The same inputs as a user of the stock pipeline passes them: NCHW images in [0, 1], masks N×1×H×W."""
    image = (torch.from_numpy(np.stack(conditions)).permute(0, 3, 1, 2).contiguous() + 1) / 2
    mask = torch.from_numpy(np.stack(areas)).float()[:, None]
    return image, mask


def to_uint8(images: torch.Tensor) -> list[np.ndarray]:
    return list(np.clip(np.rint(images.permute(0, 2, 3, 1).numpy() * 255), 0, 255).astype(np.uint8))


def stock_output(family, conditions, areas, seeds, strength=1.0, dtype=torch.float32, output_type="pt", **extra):
    """The stock pipeline, a fresh copy with the same weights, called directly: no code of ours. One
    prompt for the whole batch, as ours encodes it once (a batch of three "" gives SDXL's pooled text
    embedding another rounding: 1 grey level in one pixel)."""
    pipe = tiny_pipeline(family, seed=0).to(dtype=dtype)
    assert type(pipe) is PIPELINES[family].pipeline
    pipe.set_progress_bar_config(disable=True)
    image, mask = as_tensors(conditions, areas)
    with torch.no_grad():
        out = pipe(prompt="", num_images_per_prompt=len(seeds), image=image, mask_image=mask, height=SIZE,
                   width=SIZE, strength=strength, num_inference_steps=STEPS,
                   generator=[torch_generator(s) for s in seeds], output_type=output_type, **extra)
    return pipe, out.images


def stock_images(family, conditions, areas, seeds, strength=1.0, dtype=torch.float32, **extra):
    """The stock pipeline's images; SD3's final latents decoded with the VAE's shift (``test_sd3_…``)."""
    if family != "sd3":
        return to_uint8(stock_output(family, conditions, areas, seeds, strength, dtype, **extra)[1].float())
    pipe, latents = stock_output(family, conditions, areas, seeds, strength, dtype, output_type="latent", **extra)
    vae = pipe.vae
    with torch.no_grad():
        images = vae.decode(latents / vae.config.scaling_factor + vae.config.shift_factor, return_dict=False)[0]
    return to_uint8(pipe.image_processor.postprocess(images, output_type="pt").float())


def neutral(family, **settings):
    """The method with its additions neutral: no eq. 7, no guidance, the VAE sampled as the pipelines do."""
    settings = {"resolution": SIZE, "steps": STEPS, "leakage": "stock", "w": 0.0, "vae_latents": "sample",
                **settings}
    return DiffusionInpainter(TinyPipeline(family, seed=0), **settings)


@pytest.mark.parametrize("strength", [1.0, 0.5])
def test_sd_with_neutral_additions_is_the_stock_inpainting_pipeline(batch, strength):
    """Identical, bit for bit: the pipeline draws its start noise, then the masked image's posterior
    sample, from each object's generator, and nothing of ours draws from it in between. Also with a
    strength below 1, where it first samples the image's latents to noise them."""
    ours = neutral("sd", strength=strength).inpaint(*batch)
    stock = stock_images("sd", *batch, strength=strength, guidance_scale=1.0)
    assert all(np.array_equal(a, b) for a, b in zip(ours, stock))
    # control: the posterior's mode instead of its sample is visibly another image
    mode = neutral("sd", vae_latents="mode").inpaint(*batch)
    assert all(np.abs(a.astype(int) - b).mean() > 0.5 for a, b in zip(mode, stock))


@pytest.mark.parametrize("strength", [1.0, 0.9999])
def test_sdxl_with_neutral_additions_is_the_stock_inpainting_pipeline(batch, strength):
    """Identical, bit for bit, at the paper's strength 1 (pure noise) and at SDXL's stock 0.9999."""
    ours = neutral("sdxl", strength=strength).inpaint(*batch)
    stock = stock_images("sdxl", *batch, strength=strength, guidance_scale=1.0)
    assert all(np.array_equal(a, b) for a, b in zip(ours, stock))
    mode = neutral("sdxl", vae_latents="mode").inpaint(*batch)
    assert all(np.abs(a.astype(int) - b).mean() > 0.5 for a, b in zip(mode, stock))


@pytest.mark.parametrize("strength", [1.0, 0.6])
def test_flux_with_neutral_additions_is_the_stock_inpainting_pipeline(batch, strength):
    """Identical, bit for bit, at the paper's strength 1 and Flux's stock 0.6: the pipeline samples the
    image's latents, then its start noise, and blends with M by its own eq. 5 after every step. Ours
    hands it zeros as masked-image latents, which its transformer never reads; the VAE pass they spare
    was the generator's last draw."""
    ours = neutral("flux", strength=strength).inpaint(*batch)
    stock = stock_images("flux", *batch, strength=strength, max_sequence_length=256)
    assert all(np.array_equal(a, b) for a, b in zip(ours, stock))
    mode = neutral("flux", vae_latents="mode").inpaint(*batch)
    assert all(np.abs(a.astype(int) - b).mean() > 0.5 for a, b in zip(mode, stock))


@pytest.mark.parametrize("strength", [1.0, 0.6])
def test_sd3_with_neutral_additions_is_the_stock_inpainting_pipeline(batch, strength):
    """Identical, bit for bit, at the paper's strength 1 and SD3's stock 0.6: the pipeline samples the
    image's latents, then its start noise, and blends with M after every step (eq. 5), as Flux's does.
    Ours hands it zeros as masked-image latents, which its 16-channel transformer never reads (the VAE
    pass they spare was the generator's last draw), and guidance_scale 1.

    The one deliberate difference is the decoding: ours inverts the pipeline's own encoding
    (latents − shift)·scale, whereas diffusers 0.42's StableDiffusion3InpaintPipeline decodes
    latents / scale and drops the shift (diffusers#13611). Its own images are visibly off."""
    ours = neutral("sd3", strength=strength).inpaint(*batch)
    stock = stock_images("sd3", *batch, strength=strength, guidance_scale=1.0)
    assert all(np.array_equal(a, b) for a, b in zip(ours, stock))
    _, unshifted = stock_output("sd3", *batch, strength=strength, guidance_scale=1.0)
    assert all(np.abs(a.astype(int) - b).mean() > 1 for a, b in zip(ours, to_uint8(unshifted)))
    mode = neutral("sd3", vae_latents="mode").inpaint(*batch)
    assert all(np.abs(a.astype(int) - b).mean() > 0.5 for a, b in zip(mode, stock))


def test_sd3_text_guidance_with_the_empty_prompt_is_a_no_op_so_ours_runs_one_pass(batch):
    """Both halves of SD3's text guidance would get the empty prompt, so its stock guidance_scale 7 gives
    the image of guidance_scale 1 (to 1 grey level: a batch of six rounds otherwise than three) at twice
    the transformer passes. Ours runs g = 1: one pass of the batch per step."""
    guided, unguided = (stock_images("sd3", *batch, guidance_scale=g) for g in (7.0, 1.0))
    assert all(np.abs(a.astype(int) - b).max() <= 1 for a, b in zip(guided, unguided))
    inp = neutral("sd3", leakage="eq7")
    batches = []
    hook = inp.pipe.transformer.register_forward_pre_hook(
        lambda module, args, kwargs: batches.append(kwargs["hidden_states"].shape[0]), with_kwargs=True)
    try:
        inp.inpaint(*batch)
    finally:
        hook.remove()
    assert batches == [len(batch[2])] * STEPS


@pytest.mark.parametrize("strength,distilled", [(1.0, 30.0), (0.6, 3.5)])
def test_flux_fill_with_neutral_additions_is_the_stock_fill_pipeline(batch, strength, distilled):
    """Identical, bit for bit: FluxFillPipeline samples the image's latents, its start noise, then the
    masked image's latents from each object's generator; its transformer reads M and the masked image,
    and it blends nothing. ``distilled_guidance`` is its guidance_scale, an embedding: its stock 30, and
    3.5, with the stock strength 1 and 0.6."""
    ours = neutral("flux_fill", strength=strength, distilled_guidance=distilled).inpaint(*batch)
    stock = stock_images("flux_fill", *batch, strength=strength, guidance_scale=distilled, max_sequence_length=256)
    assert all(np.array_equal(a, b) for a, b in zip(ours, stock))
    mode = neutral("flux_fill", strength=strength, vae_latents="mode", distilled_guidance=distilled).inpaint(*batch)
    assert all(np.abs(a.astype(int) - b).mean() > 0.5 for a, b in zip(mode, stock))


def adapter_alone(family, settings, conditions, areas, seeds):
    """x̂₀ from the family's adapter with a fresh tiny pipeline and a settings object: no inpainter."""
    adapter, pipe = FAMILIES[family], tiny_pipeline(family, seed=0)
    pipe.set_progress_bar_config(disable=True)
    x = torch.from_numpy(np.stack(conditions)).permute(0, 3, 1, 2).contiguous()
    area = torch.from_numpy(np.stack(areas)).float()[:, None]
    area_latent = F.interpolate(area, size=(SIZE // pipe.vae_scale_factor,) * 2, mode="nearest")
    with torch.no_grad():
        embeddings = adapter.prompt_embeddings(pipe, "", "cpu", settings.max_sequence_length)
    generators = [torch_generator(s) for s in seeds]
    return to_uint8(adapter.run(pipe, settings, embeddings, x, area, area_latent, seeds, generators).float())


@pytest.mark.parametrize("family", list(PIPELINES))
def test_an_adapter_with_a_pipeline_alone_is_the_stock_pipeline_and_the_inpainters(family, batch):
    """A family adapter needs a pipeline and a frozen ``Settings``, nothing of the inpainter's: with the
    additions neutral it gives the stock image, bit for bit; with eq. 7, eq. 11 (where the denoiser sees
    M), the mode, strength 0.6 and T5's 77 tokens, the inpainter's image under the same settings."""
    settings = Settings(steps=STEPS, strength=1.0, leakage=None, w=0.0, vae_latents="sample",
                        max_sequence_length=256, distilled_guidance=30.0, dtype=torch.float32,
                        backbone=f"tiny-{family}")
    stock = stock_images(family, *batch, **NEUTRAL[family])
    assert all(np.array_equal(a, b) for a, b in zip(adapter_alone(family, settings, *batch), stock))
    with pytest.raises(AttributeError):
        settings.w = 1.0  # frozen: an adapter cannot change the method's settings for the next batch
    w = 1.5 if FAMILIES[family].takes_mask else 0.0
    method = {"s": 0.3, "w": w, "vae_latents": "mode", "strength": 0.6, "max_sequence_length": 77,
              "distilled_guidance": 3.5}
    inp = DiffusionInpainter(TinyPipeline(family, seed=0), resolution=SIZE, steps=STEPS, **method)
    settings = Settings(steps=STEPS, strength=0.6, leakage=Leakage(strength=0.3), w=w, vae_latents="mode",
                        max_sequence_length=77, distilled_guidance=3.5, dtype=torch.float32, backbone=f"tiny-{family}")
    ours = adapter_alone(family, settings, *batch)
    assert all(np.array_equal(a, b) for a, b in zip(ours, inp.inpaint(*batch)))
    assert all(np.abs(a.astype(int) - b).mean() > 0.5 for a, b in zip(ours, stock))  # the additions act


@pytest.mark.parametrize("family", sorted(PIPELINES))
def test_in_float16_too_the_neutral_method_is_the_stock_pipeline(family, batch):
    """Identical in float16 as well: the VAE stays in the pipeline's dtype (SDXL's pipeline upcasts it
    to encode and decode by itself), where an upcast of ours once broke SD and Flux in float16."""
    ours = neutral(family, dtype="float16").inpaint(*batch)
    stock = stock_images(family, *batch, dtype=torch.float16, **NEUTRAL[family])
    assert all(np.array_equal(a, b) for a, b in zip(ours, stock))


@pytest.mark.parametrize("family", ["sd", "sdxl", "flux_fill"])
def test_eq7_that_never_applies_leaves_the_stock_image(family, batch):
    """Eq. 7 switched on but for no step (``leakage_until=0``): on SD, SDXL and FLUX.1-Fill, which blend
    nothing of their own, still the stock image, bit for bit, so preparing eq. 7 (the condition latents,
    the recorded noise) takes no draw from the generators the pipeline draws from. (On Flux and SD3
    eq. 7 replaces the pipeline's own eq. 5 blend, so there it would be no blend at all.)"""
    idle = neutral(family, leakage="eq7", s=0.3, leakage_until=0.0).inpaint(*batch)
    assert all(np.array_equal(a, b) for a, b in zip(idle, stock_images(family, *batch, **NEUTRAL[family])))


@pytest.mark.parametrize("strength", [1.0, 0.6])
@pytest.mark.parametrize("family,blends", [("sd", False), ("flux_fill", False), ("flux", True), ("sd3", True)])
def test_stock_leakage_and_s_one_differ_without_a_blend_of_the_pipelines_own_and_coincide_with_one(
        family, blends, batch, strength):
    """``leakage=stock`` is not s = 1. SD's 9-channel pipeline and FLUX.1-Fill blend nothing (the
    denoiser sees M), while s = 1 is eq. 5 after every step; FluxInpaintPipeline's and SD3's own step
    already is eq. 5, so there the two agree, to 1 grey level (the rounding of x_t + M·(x̃_t − x_t)
    against M·x̃_t + (1 − M)·x_t)."""
    stock, s_one = (neutral(family, leakage=lk, s=1.0, strength=strength).inpaint(*batch) for lk in ("stock", "eq7"))
    if blends:
        assert all(np.abs(a.astype(int) - b).max() <= 1 for a, b in zip(stock, s_one))
    else:
        assert all(np.abs(a.astype(int) - b).mean() > 1 for a, b in zip(stock, s_one))


class CurrentTimestep(LeakageCallback):
    """A wrong eq. 7: x_t noised to the timestep just denoised, not the level the latents now have."""

    def known(self, scheduler, timesteps, i):
        return self.add_noise(scheduler, self.draws.image_latents, self.draws.noise, timesteps[i])


@pytest.mark.parametrize("strength", [1.0, 0.5])
def test_eq7_with_s_one_is_diffusers_eq5_blend_on_a_4_channel_unet(batch, strength):
    """On a 4-channel UNet the SD pipeline blends by eq. 5 after every step, with the condition image
    noised to the NEXT timestep. Our callback with s = 1, the pipeline's own blend made a no-op (an
    all-ones mask), gives the same final latents: equal to 1e-5 (eq. 7 computes x_t + s·M·(x̃_t − x_t),
    which rounds differently from M·x̃_t + (1 − M)·x_t). Noising to the current timestep instead fails.
    With strength < 1 the loop starts later in the schedule, and x_t follows it."""
    conditions, areas, seeds = batch
    pipe = tiny_pipeline("sd", seed=0, unet_channels=4)
    pipe.set_progress_bar_config(disable=True)
    image, mask = as_tensors(conditions, areas)
    area = F.interpolate(mask, size=(SIZE // pipe.vae_scale_factor,) * 2, mode="nearest")

    def final_latents(mask_image, callback=None):
        with torch.no_grad():
            return pipe(prompt=[""] * len(seeds), image=image, mask_image=mask_image, height=SIZE, width=SIZE,
                        strength=strength, num_inference_steps=STEPS, guidance_scale=1.0,
                        generator=[torch_generator(s) for s in seeds], callback_on_step_end=callback,
                        output_type="latent").images

    stock = final_latents(mask)

    def ours(callback_class):
        draws = PipelineDraws()
        with draws.watching(pipe):
            return final_latents(torch.ones_like(mask), callback_class(Leakage(strength=1.0), area, noised_sd, draws))

    assert torch.allclose(ours(LeakageCallback), stock, atol=1e-5)
    assert (ours(CurrentTimestep) - stock).abs().max() > 1e-2  # the control: a timestep off is caught


def scheduler_inputs(inp: DiffusionInpainter, conditions, areas, seeds) -> list[tuple]:
    """(model output, timestep, latents) of every ``scheduler.step`` call while ``inp`` inpaints the batch."""
    pipe, received = inp.pipe, []
    step = pipe.scheduler.step

    def spy(model_output, timestep, sample, *args, **kwargs):
        received.append((model_output.clone(), timestep, sample.clone()))
        return step(model_output, timestep, sample, *args, **kwargs)

    pipe.scheduler.step = spy
    try:
        inp.inpaint(conditions, areas, seeds)
    finally:
        del pipe.scheduler.step  # the pipeline is shared within the process
    return received


def test_the_noise_prediction_the_scheduler_receives_is_eq11(batch):
    """With w = 2: ε(M) and ε(∅) from separate UNet calls (∅: the all-zero mask, the whole condition
    image as the masked image), guided by eq. 11, equal what ``scheduler.step`` gets, to 1e-5."""
    conditions, areas, seeds = batch
    w = 2.0
    inp = DiffusionInpainter(TinyPipeline("sd", seed=0), resolution=SIZE, steps=STEPS, w=w, vae_latents="mode")
    pipe = inp.pipe
    received = scheduler_inputs(inp, conditions, areas, seeds)

    x = torch.from_numpy(np.stack(conditions)).permute(0, 3, 1, 2).contiguous()
    m = torch.from_numpy(np.stack(areas)).float()[:, None]
    m_latent = F.interpolate(m, size=(SIZE // pipe.vae_scale_factor,) * 2, mode="nearest")
    masked, whole = (inp.family.encode(pipe, inp.settings, images) for images in (x * (m < 0.5), x))
    text = tiny_pipeline("sd", seed=0).encode_prompt("", "cpu", len(seeds), False)[0]
    assert len(received) == len(pipe.scheduler.timesteps)
    for noise_prediction, t, latents in received:
        z = pipe.scheduler.scale_model_input(latents, t)
        with torch.no_grad():
            eps_m = pipe.unet(torch.cat([z, m_latent, masked], 1), t, encoder_hidden_states=text).sample
            eps_empty = pipe.unet(torch.cat([z, torch.zeros_like(m_latent), whole], 1), t,
                                  encoder_hidden_states=text).sample
        assert torch.allclose(noise_prediction, (1 + w) * eps_m - w * eps_empty, atol=1e-5)
        # the control: the halves swapped (∅ guided towards, M away from) is caught
        assert not torch.allclose(noise_prediction, (1 + w) * eps_empty - w * eps_m, atol=1e-3)


def flux_fill_condition(pipe, pixels, mask):
    """What FLUX.1-Fill's transformer reads beside the latents, built by the stock pipeline's own
    ``prepare_mask_latents`` from ``pixels`` (the VAE's posterior mode, as ``vae_latents=mode`` gives)."""
    with torch.no_grad():
        latents = pipe.vae.encode(pixels).latent_dist.mode()
    mask_tokens, latent_tokens = pipe.prepare_mask_latents(mask, latents, len(pixels), 16, 1, SIZE, SIZE,
                                                           torch.float32, "cpu", None)
    return torch.cat([latent_tokens, mask_tokens], dim=2)


def test_the_velocity_flux_fills_scheduler_receives_is_eq11_from_two_passes(batch):
    """With w = 2 on FLUX.1-Fill: v(M) and v(∅) from separate transformer calls, with conditions the stock
    pipeline lays out itself (M: the masked image and M; ∅: the whole condition image and the all-zero
    mask), guided by eq. 11, equal the velocity ``scheduler.step`` gets, to 1e-5. The two terms differ,
    so eq. 11 changes FLUX.1-Fill's prediction, unlike FLUX.1-schnell's."""
    conditions, areas, seeds = batch
    w = 2.0
    inp = DiffusionInpainter(TinyPipeline("flux_fill", seed=0), resolution=SIZE, steps=STEPS, w=w,
                             vae_latents="mode")
    pipe = inp.pipe
    received = scheduler_inputs(inp, conditions, areas, seeds)

    image, mask = as_tensors(conditions, areas)
    x = pipe.image_processor.preprocess(image)  # [−1, 1], as the pipeline sees it
    mask = pipe.mask_processor.preprocess(mask)
    condition_m = flux_fill_condition(pipe, x * (1 - mask), mask)
    condition_empty = flux_fill_condition(pipe, x, torch.zeros_like(mask))
    text, pooled, text_ids = tiny_pipeline("flux_fill", seed=0).encode_prompt("", None, device="cpu",
                                                                              num_images_per_prompt=len(seeds),
                                                                              max_sequence_length=256)
    image_ids = pipe._prepare_latent_image_ids(len(seeds), SIZE // 16, SIZE // 16, "cpu", torch.float32)
    embedding = torch.full([len(seeds)], inp.distilled_guidance)

    def velocity(latents, t, condition):
        with torch.no_grad():
            return pipe.transformer(hidden_states=torch.cat([latents, condition], dim=2),
                                    timestep=t.expand(len(seeds)) / 1000, guidance=embedding,
                                    pooled_projections=pooled, encoder_hidden_states=text, txt_ids=text_ids,
                                    img_ids=image_ids, return_dict=False)[0]

    assert len(received) == STEPS
    for v_guided, t, latents in received:
        v_m, v_empty = velocity(latents, t, condition_m), velocity(latents, t, condition_empty)
        assert (v_m - v_empty).abs().max() > 1e-2  # M reaches the prediction: eq. 11 can act
        assert torch.allclose(v_guided, (1 + w) * v_m - w * v_empty, atol=1e-5)
        # the control: the halves swapped (∅ guided towards, M away from) is caught
        assert not torch.allclose(v_guided, (1 + w) * v_empty - w * v_m, atol=1e-3)
