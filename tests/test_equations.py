"""Each equation of the method pinned on small hand-made tensors and images."""

import numpy as np
import pytest
import torch

from amodal.errors import ConfigError
from amodal.method.background import FlatBackground, HistogramBackground, colour_histogram
from amodal.method.condition import condition_image, noised_object, to_model_space
from amodal.method.guidance import EmptyMaskHook, EmptyMaskPass, guidance_scale, guided
from amodal.method.leakage import Leakage, leak


@pytest.fixture
def latents():
    g = torch.Generator().manual_seed(0)
    generated = torch.randn(2, 4, 6, 6, generator=g)
    known = torch.randn(2, 4, 6, 6, generator=g)
    area = torch.zeros(2, 1, 6, 6)
    area[:, :, 1:4, 2:5] = 1
    return generated, known, area


def test_eq7_with_s_zero_leaves_exactly_the_noised_condition_latents(latents):
    generated, known, area = latents
    for region in ("literal", "everywhere"):
        assert torch.equal(leak(generated, known, area, 0.0, region), known)


@pytest.mark.parametrize("s", [0.1, 0.3, 0.9, 1.0])
def test_literal_eq7_keeps_the_known_latents_outside_m_and_blends_inside(latents, s):
    generated, known, area = latents
    out = leak(generated, known, area, s, "literal")
    outside = (area == 0).expand_as(out)
    assert torch.equal(out[outside], known[outside])
    inside = ~outside
    assert torch.allclose(out[inside], s * generated[inside] + (1 - s) * known[inside])


def test_relaxed_leakage_changes_pixels_outside_m_too(latents):
    generated, known, area = latents
    out = leak(generated, known, area, 0.3, "everywhere")
    assert torch.allclose(out, 0.3 * generated + 0.7 * known)
    outside = (area == 0).expand_as(out)
    assert not torch.equal(out[outside], known[outside])


def test_s_one_is_plain_inpainting_eq5(latents):
    generated, known, area = latents
    assert torch.allclose(leak(generated, known, area, 1.0), area * generated + (1 - area) * known)


def test_leakage_until_limits_the_steps_and_bad_values_are_refused():
    leakage = Leakage(until=0.5)
    assert [leakage.applies(i, 20) for i in (0, 9, 10, 19)] == [True, True, False, False]
    assert not Leakage(until=0.0).applies(0, 20)
    with pytest.raises(ConfigError):
        Leakage(strength=1.5)
    with pytest.raises(ConfigError):
        Leakage(region="outside")


def test_eq11_guidance_is_the_formula_and_diffusers_scale_matches():
    c, u = torch.tensor([2.0, -1.0]), torch.tensor([0.5, 1.0])
    assert torch.allclose(guided(c, u, 0.75), 1.75 * c - 0.75 * u)
    g = guidance_scale(0.75)  # diffusers computes u + g (c - u)
    assert torch.allclose(u + g * (c - u), guided(c, u, 0.75))
    assert torch.equal(guided(c, u, 0.0), c)


def test_empty_mask_hook_gives_the_unconditional_half_the_empty_mask():
    condition_latents = torch.full((2, 4, 3, 3), 7.0)
    sample = torch.randn(4, 9, 3, 3)
    sample[:, 4] = 1.0  # the mask channel: M everywhere
    args, kwargs = EmptyMaskHook(condition_latents)(None, (sample, 10), {})
    new = args[0]
    assert torch.equal(new[:2, 4], torch.zeros(2, 3, 3))  # ∅ for the unconditional half
    assert torch.equal(new[:2, 5:], condition_latents)  # the unmasked condition image
    assert torch.equal(new[2:], sample[2:])  # the conditional half sees M untouched
    assert torch.equal(new[:, :4], sample[:, :4])
    assert EmptyMaskHook(condition_latents)(None, (torch.randn(2, 9, 3, 3), 10), {}) is None  # w = 0


class TokenDenoiser(torch.nn.Module):
    """A denoiser whose tokens are [latents (2) | condition (3)]: v = latents · (1 + Σ condition)."""

    def forward(self, hidden_states, timestep, return_dict=True):
        latents, condition = hidden_states[..., :2], hidden_states[..., 2:]
        return (latents * (1 + condition.sum(-1, keepdim=True)) + timestep,)


def test_empty_mask_pass_is_eq11_from_a_second_pass_with_the_empty_condition():
    """On hand-made tokens: the hook returns (1 + w)·v(M) − w·v(∅), where v(∅) has ∅'s condition in
    the last channels and the same latents and timestep; it runs once per call, not again on its own pass."""
    latents = torch.tensor([[[1.0, 2.0], [3.0, -1.0]]])  # 1 object, 2 tokens
    condition_m = torch.tensor([[[1.0, 0.0, 1.0], [0.0, 0.0, 0.0]]])
    empty = torch.tensor([[[0.5, 0.0, 0.0], [0.0, 0.0, 0.0]]])
    denoiser = TokenDenoiser()
    denoiser.register_forward_hook(EmptyMaskPass(2.0, lambda: empty), with_kwargs=True)
    (v,) = denoiser(hidden_states=torch.cat([latents, condition_m], -1), timestep=10.0, return_dict=False)
    v_m = latents * torch.tensor([[[3.0], [1.0]]]) + 10
    v_empty = latents * torch.tensor([[[1.5], [1.0]]]) + 10
    assert torch.equal(v, 3 * v_m - 2 * v_empty)
    assert torch.equal(v[:, 1], v_m[:, 1])  # a token whose condition ∅ leaves as it was: no guidance there


def test_histogram_background_draws_only_colours_of_the_visible_pixels():
    rng = np.random.default_rng(0)
    image = np.zeros((40, 40, 3), np.uint8)
    image[:, :] = (200, 10, 10)
    visible = np.zeros((40, 40), bool)
    visible[5:15, 5:15] = True
    image[5:15, 5:10] = (10, 200, 10)  # 50 green, 50 blue visible pixels
    image[5:15, 10:15] = (10, 10, 200)
    background = HistogramBackground(kernel=0)(image, visible, rng)
    colours = {tuple(c) for c in background.reshape(-1, 3)}
    assert colours <= {(10, 200, 10), (10, 10, 200)}  # never the red of the rest of the image
    green = (background[..., 1] == 200).mean()
    assert 0.45 < green < 0.55  # drawn by histogram frequency
    colours, counts = colour_histogram(image, visible)
    assert counts.tolist() == [50, 50]


def test_histogram_background_blur_is_smooth_and_seeded():
    image = np.random.default_rng(1).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    visible = np.ones((32, 32), bool)
    a = HistogramBackground(kernel=9)(image, visible, np.random.default_rng(5))
    b = HistogramBackground(kernel=9)(image, visible, np.random.default_rng(5))
    raw = HistogramBackground(kernel=0)(image, visible, np.random.default_rng(5))
    assert np.array_equal(a, b)
    assert np.abs(np.diff(a.astype(int), axis=0)).mean() < np.abs(np.diff(raw.astype(int), axis=0)).mean() / 3
    assert (FlatBackground((255, 255, 255))(image, visible, None) == 255).all()
    with pytest.raises(ConfigError):
        HistogramBackground(kernel=4)


def test_eq9_noise_has_scale_s_in_the_models_minus_one_to_one_space():
    grey = np.full((200, 200, 3), 127.5)  # 0 in model space: no clipping, x_obj = s·ε
    noise = np.random.default_rng(0).standard_normal(grey.shape)
    for s in (0.1, 0.3):
        x_obj = noised_object(grey, s, noise)
        assert np.allclose(x_obj, s * noise)
    image = np.random.default_rng(2).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    assert np.allclose(noised_object(image, 0.3, np.zeros(image.shape)), 0.7 * to_model_space(image))


def test_eq8_condition_is_noised_object_inside_v_and_background_outside():
    rng_image = np.random.default_rng(3)
    image = np.full((100, 100, 3), 128, np.uint8)
    visible = np.zeros((100, 100), bool)
    visible[20:80, 20:80] = True
    background = rng_image.integers(0, 256, (100, 100, 3), dtype=np.uint8)
    x = condition_image(image, visible, background, 0.3, np.random.default_rng(0))
    assert x.dtype == np.float32 and x.min() >= -1 and x.max() <= 1
    assert np.allclose(x[~visible], to_model_space(background)[~visible])
    inside = x[visible] - 0.7 * to_model_space(image)[visible]
    assert abs(inside.std() - 0.3) < 0.01 and abs(inside.mean()) < 0.01
