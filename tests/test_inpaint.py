"""The inpainter on tiny real pipelines: eq. 7 and eq. 11 inside the actual denoising loops, batching,
determinism, and loading a pipeline saved to disk through the real loading code."""

import numpy as np
import pytest
import torch

from amodal.method.inpaint import DiffusionInpainter
from amodal.models.loading import PretrainedPipeline, TinyPipeline
from amodal.models.pipelines import PIPELINES
from amodal.models.tiny import tiny_pipeline
from tests.helpers import condition_batch

FAMILIES = list(PIPELINES)
SEES_MASK = {"sd", "sdxl", "flux_fill"}  # the denoiser takes M: eq. 11 acts
SIZE = 64


@pytest.fixture(scope="module")
def batch():
    return condition_batch(SIZE, 0, [(8 + 4 * i, 40 + 4 * i, 16, 48) for i in range(3)], [11, 22, 33])


def inpainter(family, **settings):
    """The latents these tests compare with are the VAE's mode (``encoded``): no posterior sampling."""
    settings = {"resolution": SIZE, "steps": 3, "w": 1.5 if family in SEES_MASK else 0.0, "vae_latents": "mode",
                **settings}
    return DiffusionInpainter(TinyPipeline(family), **settings)


def final_latents(inp, conditions, areas, seeds):
    """The latents the VAE decodes at the end, in the same scaled space as ``Family.encode``."""
    vae = inp.pipe.vae
    seen = []
    decode = vae.decode

    def spy(z, *args, **kwargs):
        seen.append(z.clone())
        return decode(z, *args, **kwargs)

    vae.decode = spy
    try:
        inp.inpaint(conditions, areas, seeds)
    finally:
        del vae.decode
    (z,) = seen
    shift = getattr(vae.config, "shift_factor", None) or 0.0
    return (z - shift) * vae.config.scaling_factor


def latent_area(inp, areas):
    area = torch.from_numpy(np.stack(areas)).float()[:, None]
    return torch.nn.functional.interpolate(area, size=inp._latent_size(SIZE, SIZE), mode="nearest")


def encoded(inp, conditions):
    x = torch.from_numpy(np.stack(conditions)).permute(0, 3, 1, 2).contiguous()
    return inp.family.encode(inp.pipe, inp.settings, x)


@pytest.mark.parametrize("family", FAMILIES)
def test_s_zero_ends_on_the_condition_latents_exactly(family, batch):
    inp = inpainter(family, s=0.0)
    z = final_latents(inp, *batch)
    assert torch.allclose(z, encoded(inp, batch[0]), atol=1e-5)


@pytest.mark.parametrize("family", FAMILIES)
def test_literal_leakage_keeps_the_outside_of_m_and_relaxed_leakage_does_not(family, batch):
    inp = inpainter(family, s=0.5)
    x0 = encoded(inp, batch[0])
    outside = (latent_area(inp, batch[1]) == 0).expand_as(x0)
    z = final_latents(inp, *batch)
    assert torch.allclose(z[outside], x0[outside], atol=1e-5)
    assert not torch.allclose(z[~outside], x0[~outside], atol=1e-3)
    relaxed = final_latents(inpainter(family, s=0.5, leakage_region="everywhere"), *batch)
    assert not torch.allclose(relaxed[outside], x0[outside], atol=1e-3)


@pytest.mark.parametrize("family", ["sd", "sdxl"])
def test_mask_guidance_gives_the_unconditional_half_the_empty_mask(family, batch):
    inp = inpainter(family, w=2.0)
    seen = []
    hook = inp.pipe.unet.register_forward_hook(lambda m, args, kwargs, out: seen.append(args[0].clone()),
                                               with_kwargs=True)
    conditions, areas, seeds = batch
    try:
        inp.inpaint(conditions, areas, seeds)
    finally:
        hook.remove()  # the pipeline is shared within the process
    x0 = encoded(inp, conditions)
    m = latent_area(inp, areas)
    assert len(seen) == len(inp.pipe.scheduler.timesteps)
    for sample in seen:
        assert sample.shape[0] == 6  # two passes per object
        assert torch.equal(sample[:3, 4:5], torch.zeros_like(m))  # ∅
        assert torch.allclose(sample[:3, 5:], x0)  # the whole condition image
        assert torch.equal(sample[3:, 4:5], m)  # M


@pytest.mark.parametrize("family", ["sd", "sdxl"])
def test_w_zero_is_one_unguided_pass_per_step(family, batch):
    inp = inpainter(family, w=0.0)
    seen = []
    hook = inp.pipe.unet.register_forward_hook(lambda m, args, kwargs, out: seen.append(args[0].shape[0]),
                                               with_kwargs=True)
    try:
        inp.inpaint(*batch)
    finally:
        hook.remove()
    assert seen == [3] * len(inp.pipe.scheduler.timesteps)


def test_a_multirun_loads_a_backbone_once_and_another_backbone_replaces_it():
    first, second = inpainter("sd", s=0.1), inpainter("sd", s=0.9, w=0.0)
    assert first.pipe is second.pipe  # same weights: loaded once per process
    third = inpainter("sdxl")
    assert third.pipe is not first.pipe


@pytest.mark.parametrize("family,title", [("flux", "Flux"), ("sd3", "SD3")])
def test_flux_and_sd3_ignore_w_because_their_transformer_does_not_see_the_mask(family, title, caplog):
    assert inpainter(family, w=1.5).w == 0.0
    assert f"no effect on {title}" in caplog.text
    assert inpainter("flux_fill", w=1.5).w == 1.5  # FLUX.1-Fill's does


@pytest.mark.parametrize("vae_latents", ["sample", "mode"])
@pytest.mark.parametrize("family", FAMILIES)
def test_same_seed_is_bit_identical_and_a_batch_matches_one_by_one(family, vae_latents, batch):
    conditions, areas, seeds = batch
    inp = inpainter(family, vae_latents=vae_latents)
    first = inp.inpaint(conditions, areas, seeds)
    assert all(np.array_equal(a, b) for a, b in zip(first, inp.inpaint(conditions, areas, seeds)))
    one_by_one = [inp.inpaint([c], [a], [s])[0] for c, a, s in zip(conditions, areas, seeds)]
    for together, alone in zip(first, one_by_one):
        # CPU matrix kernels may round differently for another batch size: at most one grey level
        assert np.abs(together.astype(int) - alone).max() <= 1
    other_seed = inp.inpaint(conditions[:1], areas[:1], [999])[0]
    assert not np.array_equal(other_seed, first[0])


def test_a_pipeline_saved_to_disk_loads_through_the_real_loading_code(tmp_path, batch):
    tiny_pipeline("sd", seed=0).save_pretrained(tmp_path / "tiny-sd")
    source = PretrainedPipeline("sd", str(tmp_path / "tiny-sd"), local_files_only=True)
    source.check()
    loaded = DiffusionInpainter(source, resolution=SIZE, steps=3, w=1.5)
    in_memory = inpainter("sd", vae_latents="sample")
    for a, b in zip(loaded.inpaint(*batch), in_memory.inpaint(*batch)):
        assert np.array_equal(a, b)


def quantized(module) -> bool:
    return any(type(m).__name__ == "QLinear" for m in module.modules())


@pytest.mark.parametrize("family,t5,clip", [("flux", "text_encoder_2", "text_encoder"),
                                            ("flux_fill", "text_encoder_2", "text_encoder"),
                                            ("sd3", "text_encoder_3", "text_encoder_2")])
def test_8_bit_transformer_and_t5_as_the_paper_ran_flux(family, t5, clip, tmp_path, batch):
    """Loaded from disk with quantize=qint8: the transformer and the T5 encoder in 8 bits, CLIP not (SD3's
    second CLIP sits where Flux's T5 does)."""
    pytest.importorskip("optimum.quanto", reason="optimum-quanto is not installed")
    tiny_pipeline(family, seed=0).save_pretrained(tmp_path / family)
    source = PretrainedPipeline(family, str(tmp_path / family), local_files_only=True, quantize="qint8")
    inp = DiffusionInpainter(source, resolution=SIZE, steps=2, w=1.5 if family in SEES_MASK else 0.0,
                             free_text_encoders=False)
    images = inp.inpaint(*batch)
    assert quantized(inp.pipe.transformer) and quantized(getattr(inp.pipe, t5))
    assert not quantized(getattr(inp.pipe, clip))
    assert len(images) == 3 and images[0].shape == (SIZE, SIZE, 3) and images[0].dtype == np.uint8
