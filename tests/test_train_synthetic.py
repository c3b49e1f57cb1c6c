"""Training the synthetic backbone: masks and pairs built as documented, the loss falls in a few steps,
and a run that stops and resumes from its checkpoint ends exactly where an uninterrupted one does."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from amodal.cli import train_synthetic
from amodal.config import train_config_dir
from amodal.errors import ConfigError
from amodal.loggers import WandbLogger
from amodal.method.area import convex_hull_area
from amodal.models.synthetic_sd import NOISE_SCHEDULE, training_scheduler
from amodal.train import trainer as train_module
from amodal.train.card import model_card
from amodal.train.masks import KINDS, draw_mask
from amodal.train.pairs import PairMaker, object_views, overfilled
from amodal.train.phases import MIN_SNR_GAMMA, leaked_mix, leaked_targets, min_snr_weight
from amodal.train.trainer import Trainer

TINY = [
    "data.scenes=2", "data.validation_scenes=1", "data.validation_items=8", "data.view=32",
    "vae.block_out_channels=[8,16]", "vae.norm_num_groups=4", "vae.batch_size=4", "vae.crop=16",
    "unet.block_out_channels=[16,32]", "unet.norm_num_groups=8", "unet.batch_size=4",
    "vae.warmup=5", "unet.warmup=5", "vae.lr=3e-3", "unet.lr=2e-3", "logger.mode=disabled", "progress=false",
]


def tiny_config(*overrides):
    GlobalHydra.instance().clear()
    with initialize_config_dir(version_base="1.3", config_dir=str(train_config_dir())):
        cfg = compose("synthetic", overrides=[*TINY, *overrides])
    GlobalHydra.instance().clear()
    return cfg


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models gain nothing from threads, and on a shared CPU they thrash."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def views():
    return object_views(seed=1000, scenes=2, scene_size=256, view=32, context=(1.6, 2.6), progress=False)


def test_every_mask_kind_is_a_bool_mask_and_the_hull_kinds_hold_what_they_promise(views):
    rng = np.random.default_rng(0)
    hidden = [(a & ~v).sum() for a, v in zip(views.amodal, views.visible, strict=True)]
    i = int(np.argmax(hidden))  # the most hidden object
    visible, amodal = views.visible[i], views.amodal[i]
    assert (amodal & ~visible).any()
    for kind in KINDS:
        mask = draw_mask(kind, visible, amodal, views.amodal[0], rng)
        assert mask.dtype == bool and mask.shape == visible.shape
    hull_hidden = draw_mask("hull_hidden", visible, amodal, amodal, rng)
    assert np.all(hull_hidden[convex_hull_area(visible)]) and np.all(hull_hidden[amodal & ~visible])
    assert np.array_equal(draw_mask("hull", visible, amodal, amodal, rng), convex_hull_area(visible))
    assert not draw_mask("empty", visible, amodal, amodal, rng).any()
    with pytest.raises(ValueError, match="unknown mask kind"):
        draw_mask("lasso", visible, amodal, amodal, rng)


def test_a_pair_is_the_whole_object_on_the_background_with_the_mask_greyed_out(views):
    maker = PairMaker(views, {"hull_hidden": 1.0}, occluder=0.0)
    pair = maker(0, np.random.default_rng(3))
    assert np.array_equal(pair.masked[pair.mask], np.zeros_like(pair.masked[pair.mask]))
    assert np.array_equal(pair.masked[~pair.mask], pair.target[~pair.mask])
    assert pair.target.min() >= -1 and pair.target.max() <= 1
    again = maker(0, np.random.default_rng(3))
    assert np.array_equal(pair.target, again.target) and np.array_equal(pair.mask, again.mask)


def test_a_few_steps_from_scratch_make_both_losses_fall(tmp_path):
    cfg = tiny_config("vae.steps=40", "unet.steps=40", "checkpoint_every=10")
    trainer = Trainer(cfg, tmp_path / "run", progress=False)
    trainer.run()
    for phase, drop in (("vae", 0.95), ("unet", 0.8)):
        losses = [v for _, v in trainer.histories[phase].loss]
        validation = [v for _, v in trainer.histories[phase].validation]  # fixed held-out batch
        assert len(losses) == 40 and len(validation) == 4
        assert np.mean(losses[-10:]) < np.mean(losses[:10]), phase
        assert validation[-1] < drop * validation[0], phase
    assert (tmp_path / "run" / "pipeline" / "model_index.json").is_file()
    assert (tmp_path / "run" / "loss.png").stat().st_size > 0


def test_an_interrupted_run_resumes_to_the_same_weights(tmp_path, monkeypatch):
    cfg = tiny_config("vae.steps=6", "unet.steps=8", "checkpoint_every=4")
    straight = Trainer(cfg, tmp_path / "straight", progress=False).run().unet.state_dict()

    real = train_module.step_rng

    def crash_at_unet_step_6(seed, phase, step):
        if phase == "unet" and step == 6:
            raise KeyboardInterrupt
        return real(seed, phase, step)

    monkeypatch.setattr(train_module, "step_rng", crash_at_unet_step_6)
    with pytest.raises(KeyboardInterrupt):
        Trainer(cfg, tmp_path / "resumed", progress=False).run()
    monkeypatch.setattr(train_module, "step_rng", real)
    resumed = Trainer(cfg, tmp_path / "resumed", progress=False)
    weights = resumed.run().unet.state_dict()
    assert [s for s, _ in resumed.histories["unet"].loss] == list(range(1, 9))
    for name, value in straight.items():
        assert torch.allclose(value, weights[name], atol=1e-6), name


def test_resuming_with_another_recipe_is_refused_in_one_line(tmp_path):
    run = tmp_path / "run"
    Trainer(tiny_config("vae.steps=4", "unet.steps=4", "checkpoint_every=4"), run, progress=False).run()
    more = tiny_config("vae.steps=4", "unet.steps=6", "checkpoint_every=4")
    more_steps = Trainer(more, run, progress=False)
    assert more_steps._load_checkpoint("unet")["step"] == 4  # steps may grow
    other = Trainer(tiny_config("vae.steps=4", "unet.steps=4", "vae.lr=1e-2"), run, progress=False)
    with pytest.raises(ConfigError, match="differs in: vae"):
        other.run()


def test_a_new_unet_recipe_reuses_the_autoencoder_but_not_the_unet(tmp_path):
    run = tmp_path / "run"
    Trainer(tiny_config("vae.steps=4", "unet.steps=4", "checkpoint_every=4"), run, progress=False).run()
    other = Trainer(tiny_config("vae.steps=4", "unet.steps=4", "unet.lr=1e-2"), run, progress=False)
    assert other._load_checkpoint("vae")["step"] == 4
    with pytest.raises(ConfigError, match="differs in: unet"):
        other._load_checkpoint("unet")


def test_leaked_pairs_mix_the_condition_in_as_eq_7_does_and_are_asked_for_y():
    y = torch.full((2, 1, 2, 2), 2.0)
    x = torch.full((2, 1, 2, 2), -1.0)
    mask = torch.tensor([[[[1.0, 0.0], [1.0, 0.0]]]]).expand(2, 1, 2, 2)
    share = torch.tensor([0.25, 1.0])[:, None, None, None]
    mixed = leaked_mix(y, x, mask, share)
    assert torch.equal(mixed[0, 0], torch.tensor([[-0.25, -1.0], [-0.25, -1.0]]))  # 0.25·2 + 0.75·(−1)
    assert torch.equal(mixed[1, 0], torch.tensor([[2.0, -1.0], [2.0, -1.0]]))  # outside M: x, as eq. 7
    alpha_bar = torch.tensor([0.99, 0.36])  # the leaked pair at a small timestep: SNR 99
    noise = torch.randn(2, 1, 2, 2, generator=torch.Generator().manual_seed(0))
    a = alpha_bar[:, None, None, None]
    noisy = a.sqrt() * mixed + (1 - a).sqrt() * noise
    leaked = torch.tensor([True, False])
    target, weight = leaked_targets(noise, noisy, y, SimpleNamespace(alphas_cumprod=alpha_bar), torch.arange(2), leaked)
    x0 = (noisy[:1] - (1 - a[:1]).sqrt() * target[:1]) / a[:1].sqrt()
    assert torch.allclose(x0, y[:1], atol=1e-4)  # ε* takes the leaked latents to y
    assert torch.equal(target[1], noise[1])  # a plain pair keeps ε
    assert weight[0].item() == pytest.approx(MIN_SNR_GAMMA / 99) and weight[1].item() == 1.0


def test_leaked_pairs_are_weighted_min_snr_gamma_over_snr_at_hand_picked_timesteps():
    """Min-SNR by diffusers' compute_snr on SD's schedule equals min(SNR, γ)/SNR, SNR = ᾱ/(1 − ᾱ), with ᾱ
    computed here from the schedule's definition (scaled_linear betas)."""
    assert NOISE_SCHEDULE["beta_schedule"] == "scaled_linear"
    betas = np.linspace(NOISE_SCHEDULE["beta_start"] ** 0.5, NOISE_SCHEDULE["beta_end"] ** 0.5,
                        NOISE_SCHEDULE["num_train_timesteps"]) ** 2
    t = torch.tensor([0, 3, 20, 60, 120, 500, 999])
    alpha_bar = np.cumprod(1 - betas)[t.numpy()]
    snr = alpha_bar / (1 - alpha_bar)
    assert (snr > MIN_SNR_GAMMA).sum() >= 3 and (snr < MIN_SNR_GAMMA).sum() >= 2  # both sides of γ
    expected = np.minimum(snr, MIN_SNR_GAMMA) / snr
    schedule = training_scheduler()
    assert np.allclose(min_snr_weight(schedule, t).numpy(), expected, rtol=1e-4, atol=0)
    leaked = torch.tensor([True, False, True, True, False, True, True])
    noise = torch.randn(7, 1, 2, 2, generator=torch.Generator().manual_seed(1))
    _, weight = leaked_targets(noise, noise, torch.zeros_like(noise), schedule, t, leaked)
    assert np.allclose(weight.numpy(), np.where(leaked.numpy(), expected, 1.0), rtol=1e-4, atol=0)


class OneWeight:
    """A phase of one parameter w, pulled towards 2 by its loss, that records the weight each step trains
    from and the one each validation sees."""

    name = "unet"

    def __init__(self, cfg):
        self.ema_decay = float(cfg.unet.ema_decay)
        self.settings = OmegaConf.create({"steps": 12, "lr": 0.1, "warmup": 2})
        self.model = torch.nn.Linear(1, 1, bias=False)
        torch.nn.init.constant_(self.model.weight, -1.0)
        self.trained_from, self.validated_on = [], []

    def batch(self, rng):
        return {"x": torch.tensor([[rng.uniform(0.5, 1.5)]], dtype=torch.float32)}

    def loss(self, batch):
        self.trained_from.append(self.model.weight.detach().clone())
        return (self.model(batch["x"]) - 2 * batch["x"]).pow(2).mean()

    def validate(self):
        self.validated_on.append(self.model.weight.detach().clone())
        return self.model.weight.item()


def test_the_ema_follows_diffusers_rule_with_the_configured_decay_and_validation_runs_on_it(tmp_path):
    cfg = tiny_config("unet.ema_decay=0.5", "checkpoint_every=4")
    phase = OneWeight(cfg)
    averaged = Trainer(cfg, tmp_path / "run", progress=False).train_phase(phase)
    live = torch.load(tmp_path / "run" / "checkpoints" / "unet.pt", weights_only=True)["model"]["weight"]
    weights = [w.item() for w in phase.trained_from] + [live.item()]  # w_0 … w_12, after each step
    assert len(set(weights)) == 13
    average, by_step = weights[0], {}
    for n in range(1, 13):  # the n-th update: the first copies w, then min(decay, n/(n + 9)): 0.5 from n = 9 on
        decay = 0.0 if n == 1 else min(0.5, n / (n + 9))
        average = decay * average + (1 - decay) * weights[n]
        by_step[n] = average
    assert averaged.weight.item() == pytest.approx(average, rel=1e-6, abs=0)  # the model returned holds the EMA
    seen = [w.item() for w in phase.validated_on]
    assert seen == pytest.approx([by_step[4], by_step[8], by_step[12]], rel=1e-6, abs=0)
    # the training weights come back bit for bit after each validation: the same steps as a run validating once
    once = OneWeight(cfg)
    Trainer(tiny_config("unet.ema_decay=0.5", "checkpoint_every=12"), tmp_path / "once", progress=False).train_phase(
        once)
    assert len(once.validated_on) == 1
    assert all(torch.equal(a, b) for a, b in zip(phase.trained_from, once.trained_from, strict=True))


class Recorder:
    """A run logger (amodal.loggers' interface) that keeps what it is given."""

    def __init__(self):
        self.started, self.logged, self.finished = None, [], False

    def start(self, **run):
        self.started = run

    def log_scalars(self, values, step):
        self.logged.append((step, values))

    def finish(self):
        self.finished = True


def test_the_run_logger_gets_every_steps_loss_and_learning_rate_and_each_validation(tmp_path):
    cfg = tiny_config("vae.steps=2", "unet.steps=3", "checkpoint_every=2")
    recorder = Recorder()
    trainer = Trainer(cfg, tmp_path / "run", progress=False, logger=recorder)
    trainer.run()
    assert recorder.started["run_dir"] == tmp_path / "run" and recorder.started["tags"] == ["train-synthetic"]
    assert recorder.started["config"]["unet"]["steps"] == 3 and recorder.finished
    for phase in ("vae", "unet"):
        losses = [(step, v[f"{phase}/loss"]) for step, v in recorder.logged if f"{phase}/loss" in v]
        validations = [(step, v[f"{phase}/validation"]) for step, v in recorder.logged if f"{phase}/validation" in v]
        assert losses == trainer.histories[phase].loss and validations == trainer.histories[phase].validation
    rates = [v["unet/lr"] for _, v in recorder.logged if "unet/lr" in v]
    assert rates == pytest.approx([2e-3 * 2 / 5, 2e-3 * 3 / 5, 2e-3 * 4 / 5])  # after steps 1–3 of a 5-step warm-up
    assert train_synthetic.run_logger(cfg) is None  # logger.mode=disabled
    offline = train_synthetic.run_logger(tiny_config("logger.mode=offline", "logger.project=p"))
    assert isinstance(offline, WandbLogger) and (offline.mode, offline.project) == ("offline", "p")


def test_the_learning_rate_warms_up_linearly_then_falls_by_a_cosine_to_a_tenth():
    optimizer = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=2.0)
    schedule = train_module.cosine_schedule(optimizer, steps=10, warmup=4)
    rates = []
    for _ in range(10):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    assert rates[:4] == pytest.approx([0.5, 1.0, 1.5, 2.0])  # step s of the warm-up: (s + 1)/warmup of the peak
    cosine = [2.0 * (0.1 + 0.9 * 0.5 * (1 + np.cos(np.pi * (s - 3) / 6))) for s in range(4, 10)]
    assert rates[4:] == pytest.approx(cosine) and rates[-1] == pytest.approx(0.2)  # a tenth at the last step


def test_an_overfilled_target_paints_the_mask_outside_the_object_with_the_nearest_object_colour():
    target = np.zeros((4, 5, 3), np.float32)
    target[:, :2] = np.arange(4, dtype=np.float32)[:, None, None]  # object: columns 0–1, one colour per row
    target[:, 2:] = -1.0  # background
    amodal = np.zeros((4, 5), bool)
    amodal[:, :2] = True
    mask = np.zeros((4, 5), bool)
    mask[:, :4] = True  # the mask covers the object and two background columns; column 4 stays outside
    filled = overfilled(target, amodal, mask)
    rows = np.arange(4, dtype=np.float32)
    assert np.array_equal(filled[:, 2, 0], rows) and np.array_equal(filled[:, 3, 0], rows)  # nearest: same row
    assert np.array_equal(filled[:, :2], target[:, :2])  # the object itself unchanged
    assert np.array_equal(filled[:, 4], target[:, 4])  # outside the mask unchanged


def test_a_shift_past_the_frame_leaves_nothing():
    from amodal.morphology import shifted

    mask = np.ones((8, 8), bool)
    assert not shifted(mask, 0, 9).any() and not shifted(mask, -8, 0).any()
    assert shifted(mask, 2, -3).sum() == 6 * 5


def test_the_model_card_states_the_command_and_whether_pairs_were_leaked():
    summary = {phase: {"steps": 10, "final_loss": 0.5, "validation": 0.25, "minutes": 1.0} for phase in ("vae", "unet")}
    plain = model_card(tiny_config("unet.leakage.chance=0"), summary, ["seed=3"])
    leaked = model_card(tiny_config("unet.leakage.chance=0.5"), summary, ["seed=3"])
    assert "amodal-train-synthetic seed=3" in plain and "| UNet | 10 | 0.5000 | 0.2500" in plain
    assert "No leaked pairs" in plain and "Leaked pairs (odds 0.5)" in leaked and "No leaked pairs" not in leaked
    assert "overfilled" not in leaked and "on the CPU" in leaked
    assert "`view.mode=crop backbone.resolution=32`" in plain  # TINY trains at a 32 px view
    wide = model_card(tiny_config("data.view=48"), summary, [])
    assert "backbone.resolution=48`" in wide and "a 48 px view → 24×24 latents" in wide
    again = model_card(tiny_config(), summary, ["device=cuda", "seed=3", "device=cpu"])
    assert "amodal-train-synthetic seed=3 device=cpu\n" in again
    overfilled_card = model_card(tiny_config("unet.leakage.chance=0.5", "unet.leakage.fill=0.25"), summary, [])
    assert "In a share 0.25 of them the λ part is y overfilled" in overfilled_card


def test_unet_init_starts_from_another_runs_pipeline_and_a_bad_one_is_one_line(tmp_path):
    first = Trainer(tiny_config("vae.steps=4", "unet.steps=4", "checkpoint_every=4"), tmp_path / "a", progress=False)
    trained = first.run().unet.state_dict()
    # a fine-tuning run of 0 UNet steps (same autoencoder recipe, so it trains the same one) ends where it began
    second = Trainer(tiny_config("vae.steps=4", "unet.steps=0", f"unet.init={tmp_path / 'a' / 'pipeline'}",
                                 "unet.masks={hull:1.0}"), tmp_path / "b", progress=False)
    started = second.run().unet.state_dict()
    assert all(torch.allclose(trained[k], started[k]) for k in trained)
    bad = Trainer(tiny_config("vae.steps=4", "unet.steps=2", f"unet.init={tmp_path}"), tmp_path / "c", progress=False)
    with pytest.raises(ConfigError, match="no UNet there"):
        bad.run()


def test_vae_init_keeps_another_runs_autoencoder_and_its_scale_at_another_view(tmp_path):
    first = Trainer(tiny_config("vae.steps=4", "unet.steps=2", "checkpoint_every=4"), tmp_path / "a", progress=False)
    trained = first.run().vae
    # 0 autoencoder steps from it, at a 48 px view instead of 32: the same weights and latent scale
    second = Trainer(tiny_config("data.view=48", "vae.steps=0", f"vae.init={tmp_path / 'a' / 'pipeline'}",
                                 "unet.steps=2"), tmp_path / "b", progress=False)
    kept = second.run().vae
    assert all(torch.equal(v, kept.state_dict()[k]) for k, v in trained.state_dict().items())
    assert kept.config.scaling_factor == trained.config.scaling_factor
    assert second.run_dir.joinpath("pipeline", "unet", "config.json").read_text().count('"sample_size": 24')
    # fine-tuning it (steps > 0) changes it and sets its scale anew
    tuned = Trainer(tiny_config("data.view=48", "vae.steps=2", f"vae.init={tmp_path / 'a' / 'pipeline'}",
                                "unet.steps=0"), tmp_path / "c", progress=False).run().vae
    assert tuned.config.scaling_factor != trained.config.scaling_factor
    bad = Trainer(tiny_config("vae.steps=0", f"vae.init={tmp_path}"), tmp_path / "d", progress=False)
    with pytest.raises(ConfigError, match="no autoencoder there"):
        bad.run()


def test_any_number_of_data_workers_yields_the_same_batches_in_step_order():
    def make(rng):
        return {"value": torch.from_numpy(rng.standard_normal(3))}

    alone = list(train_module.step_batches(train_module.StepBatches(make, 5, "unet", 3, 10), workers=0))
    shared = list(train_module.step_batches(train_module.StepBatches(make, 5, "unet", 3, 10), workers=2))
    assert [step for step, _ in alone] == [step for step, _ in shared] == list(range(3, 10))
    for (_, a), (_, b) in zip(alone, shared, strict=True):
        assert torch.equal(a["value"], b["value"])
    assert not torch.equal(alone[0][1]["value"], alone[1][1]["value"])  # each step its own draw


def test_scenes_rendered_in_worker_processes_give_the_same_views():
    one = object_views(1000, 2, 128, 32, (1.6, 2.6), progress=False)
    two = object_views(1000, 2, 128, 32, (1.6, 2.6), progress=False, workers=2)
    assert len(one) > 0
    for name in ("image", "rendering", "alpha", "amodal", "visible"):
        assert np.array_equal(getattr(one, name), getattr(two, name)), name


def test_a_run_with_data_workers_trains_the_same_weights_as_one_without(tmp_path):
    cfg = tiny_config("vae.steps=3", "unet.steps=4", "checkpoint_every=4", "unet.leakage.chance=0.5",
                      "unet.leakage.fill=0.5")
    alone = Trainer(cfg, tmp_path / "alone", progress=False).run().unet.state_dict()
    shared = Trainer(tiny_config("vae.steps=3", "unet.steps=4", "checkpoint_every=4", "unet.leakage.chance=0.5",
                                 "unet.leakage.fill=0.5", "workers=2"), tmp_path / "shared", progress=False)
    weights = shared.run().unet.state_dict()
    for name, value in alone.items():
        assert torch.allclose(value, weights[name], atol=1e-6), name


def test_asking_for_a_gpu_where_there_is_none_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # as on a machine without one
    assert train_module.resolve_device("auto").type == "cpu"
    with pytest.raises(ConfigError, match="device=cuda: no CUDA GPU is visible here; use device=cpu"):
        Trainer(tiny_config("device=cuda"), tmp_path / "run", progress=False)
    with pytest.raises(ConfigError, match="device='tpu'"):
        train_module.resolve_device("tpu")


@pytest.mark.gpu
def test_a_few_steps_on_the_gpu_make_the_unet_loss_fall_and_save_a_cpu_pipeline(tmp_path):
    cfg = tiny_config("vae.steps=20", "unet.steps=40", "checkpoint_every=10", "device=cuda", "workers=2")
    trainer = Trainer(cfg, tmp_path / "run", progress=False)
    pipe = trainer.run()
    validation = [v for _, v in trainer.histories["unet"].validation]
    assert validation[-1] < 0.9 * validation[0]
    assert pipe.unet.device.type == "cpu" and (tmp_path / "run" / "pipeline" / "model_index.json").is_file()
