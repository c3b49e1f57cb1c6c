"""SD3.5 and FLUX.1-Fill beyond the stock-equivalence proofs of ``test_stock.py``: what FLUX.1-Fill's adapter
records and runs per step, SD3's resolution, and ``experiment=backbones`` beside the paper's Table 1."""

import numpy as np
import pytest
import torch
import yaml

from amodal.config import config_dir
from amodal.errors import ConfigError
from amodal.method.families import ScaledNoiseDraws
from amodal.method.inpaint import DiffusionInpainter
from amodal.models.loading import TinyPipeline
from amodal.models.tiny import tiny_pipeline
from amodal.seeding import torch_generator
from tests.helpers import composed, condition_batch

SIZE, STEPS = 64, 3
LATENT_TOKENS = 64  # FLUX.1-Fill's packed latent channels, before the masked image's (64) and the mask's (256)


@pytest.fixture(scope="module")
def batch():
    return condition_batch(SIZE, 2, [(10 + 8 * i, 50, 6, 40 + 8 * i) for i in range(2)], [3, 4])


@pytest.mark.parametrize("strength", [1.0, 0.6])
def test_flux_fill_draws_are_the_noise_and_image_latents_its_loop_starts_from(batch, strength):
    """FluxFillPipeline returns neither; what ``ScaledNoiseDraws`` records must be its own: x0 is its
    posterior sample of the image (each generator's first draw), and its first latents are
    σ₀·noise + (1 − σ₀)·x0 (pure noise at strength 1). Eq. 7's x_t is built from these two."""
    conditions, areas, seeds = batch
    pipe = tiny_pipeline("flux_fill", seed=0)
    pipe.set_progress_bar_config(disable=True)
    image = (torch.from_numpy(np.stack(conditions)).permute(0, 3, 1, 2).contiguous() + 1) / 2
    mask = torch.from_numpy(np.stack(areas)).float()[:, None]
    starts = []
    hook = pipe.transformer.register_forward_pre_hook(
        lambda module, args, kwargs: starts.append(kwargs["hidden_states"][..., :LATENT_TOKENS].clone()),
        with_kwargs=True)
    draws = ScaledNoiseDraws()
    with draws.watching(pipe), torch.no_grad():
        pipe(prompt="", num_images_per_prompt=len(seeds), image=image, mask_image=mask, height=SIZE, width=SIZE,
             strength=strength, num_inference_steps=STEPS, generator=[torch_generator(s) for s in seeds],
             max_sequence_length=16, output_type="latent")
    hook.remove()
    with torch.no_grad():
        x0 = pipe._encode_vae_image(pipe.image_processor.preprocess(image), [torch_generator(s) for s in seeds])
    assert torch.equal(draws.image_latents, pipe._pack_latents(x0, *x0.shape))
    sigma = pipe.scheduler.sigmas[pipe.scheduler.begin_index]
    assert torch.allclose(starts[0], sigma * draws.noise + (1 - sigma) * draws.image_latents, atol=1e-6)
    if strength == 1.0:
        assert torch.equal(starts[0], draws.noise)
    assert "scale_noise" not in vars(pipe.scheduler) and "prepare_latents" not in vars(pipe)  # restored


@pytest.mark.parametrize("w,passes", [(0.0, 1), (1.5, 2)])
def test_flux_fill_runs_one_transformer_pass_per_step_and_a_second_with_the_empty_mask(batch, w, passes):
    """w = 0: the stock pipeline's one pass per step. w > 0: a second pass on the same latents whose
    condition is ∅ — an all-zero mask and the whole image's latents in place of the masked image's."""
    inp = DiffusionInpainter(TinyPipeline("flux_fill"), resolution=SIZE, steps=STEPS, w=w)
    transformer = inp.pipe.transformer
    inputs = []
    forward = transformer.forward

    def counted(*args, **kwargs):
        inputs.append(kwargs["hidden_states"].clone())
        return forward(*args, **kwargs)

    transformer.forward = counted
    try:
        inp.inpaint(*batch)
    finally:
        del transformer.forward  # the pipeline is shared within the process
    assert len(inputs) == passes * STEPS
    mask_channels = 4 * inp.pipe.vae_scale_factor**2
    for with_m, *rest in zip(*[iter(inputs)] * passes):
        assert with_m[..., -mask_channels:].abs().sum() > 0  # M
        for empty in rest:
            assert torch.equal(empty[..., :LATENT_TOKENS], with_m[..., :LATENT_TOKENS])  # the same latents
            assert not empty[..., -mask_channels:].any()  # ∅: the all-zero mask
            masked_image = slice(LATENT_TOKENS, -mask_channels)
            assert not torch.equal(empty[..., masked_image], with_m[..., masked_image])  # the whole image


def test_sd3_needs_a_resolution_its_patches_divide():
    with pytest.raises(ConfigError, match="backbone.resolution=72: sd3 needs a multiple of 16"):
        DiffusionInpainter(TinyPipeline("sd3"), resolution=72)


def experiment(name: str) -> dict:
    return yaml.safe_load((config_dir() / "experiment" / f"{name}.yaml").read_text())


FAMILY = {"ours_sd15": "sd", "ours_sd2": "sd", "ours_sdxl": "sdxl", "ours_flux": "flux", "ours_sd3": "sd3",
          "ours_flux_fill": "flux_fill"}


def test_experiment_backbones_sweeps_six_backbones_on_the_five_datasets(tmp_path):
    params = experiment("backbones")["hydra"]["sweeper"]["params"]
    assert params["dataset"].split(",") == ["cocoa", "bsdsa", "kins", "fishbowl", "sailvos"]
    assert params["variant"].split(",") == list(FAMILY)
    for variant, family in FAMILY.items():
        with composed(["experiment=backbones", f"variant={variant}"], tmp_path) as cfg:
            assert cfg.backbone.pipeline.family == family and cfg.method.extractor.model.size == "vit_h"


def test_experiment_backbones_sets_the_papers_table1_beside_and_marks_the_rows_without_a_paper_number():
    """Each swept backbone has a row in each table; the paper's four carry main.yaml's Table 1 values
    (transcribed once), SD3.5 and FLUX.1-Fill none, and their labels and the captions say so."""
    paper_rows = {r["match"]["variant"]: r["values"] for table in experiment("main")["paper"]
                  if table["table"] == "Table 1" for r in table["rows"] if "match" in r}
    tables = experiment("backbones")["paper"]
    assert [t["table"] for t in tables] == ["Backbones", "Backbones (≤ 50 %)"]
    for table in tables:
        rows = {r["match"]["variant"]: r for r in table["rows"]}
        assert list(rows) == list(FAMILY)
        assert "no paper number" in table["caption"]
        for variant, row in rows.items():
            if variant in ("ours_sd3", "ours_flux_fill"):
                assert row["values"] == [None] * 5 and "no paper number" in row["label"]
            else:
                assert row["values"] == paper_rows[variant]


def test_an_sd3_transformer_that_takes_the_mask_is_refused_not_fed_an_all_ones_mask(batch):
    """A 33-channel SD3 inpainting transformer ([latents | M | masked image]) would read the all-ones mask
    eq. 7 hands the sd3 family's blend: refused in one line instead."""
    from diffusers import SD3Transformer2DModel

    class MaskChannels(TinyPipeline):
        def load(self, device, dtype):
            pipe = super().load(device, dtype)
            config = {**pipe.transformer.config, "in_channels": 33}
            pipe.register_modules(transformer=SD3Transformer2DModel.from_config(config))
            return pipe

    inp = DiffusionInpainter(MaskChannels("sd3", seed=1), resolution=SIZE, steps=1)
    with pytest.raises(ConfigError, match="takes the mask as input channels") as err:
        inp.inpaint(*batch)
    assert "\n" not in str(err.value)
