"""Every option of every config group composes and builds: a broken config is caught here, not by a user."""

from pathlib import Path

import pytest

from amodal.config import build, config_dir
from tests.helpers import cli, composed, in_process

OVERLAYS = ("experiment", "variant", "debug")  # @package _global_ configs, tested in test_experiments.py and below
# hydra/ holds launchers: not a group of amodal-run
GROUPS = sorted(p.name for p in config_dir().iterdir() if p.is_dir() and p.name not in (*OVERLAYS, "hydra"))
NEEDS = {("dataset", "folder"): "folder_dataset"}
EXTRA = {  # the defaults of these need real weights
    ("method", "inpaint"): ["backbone=tiny_sd", "extractor=tiny_sam"],
    ("method", "sam_modal"): ["extractor=tiny_sam"],
    ("method", "sam2_modal"): ["extractor=tiny_sam2"],
}
FORMATS = ("cocoa", "bsdsa", "kins", "fishbowl", "sailvos")
NEEDS.update({("dataset", name): f"{name}_dataset" for name in FORMATS})  # tiny files in each format
FOLDER = {("method", "external"): "method.root"}  # options that need an existing folder


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (config_dir() / group).glob("*.yaml"))


@pytest.mark.parametrize("group,option", [(g, o) for g in GROUPS for o in options(g)])
def test_every_option_of_every_group_builds(group, option, tmp_path, request):
    overrides = [f"{group}={option}", *EXTRA.get((group, option), [])]
    if (group, option) in NEEDS:
        root: Path = request.getfixturevalue(NEEDS[group, option])
        overrides.append(f"dataset.root={root}")
    if (group, option) in FOLDER:
        overrides.append(f"{FOLDER[group, option]}={tmp_path}")
    with composed(overrides, tmp_path) as cfg:
        component = build(cfg[group], group)
    assert type(component).__module__.startswith("amodal.")


def test_config_groups_are_the_documented_contract():
    assert {"dataset", "method", "area", "logger"} <= set(GROUPS)


@pytest.mark.parametrize("variant", options("variant"))
def test_every_variant_composes_into_a_method_that_builds(variant, tmp_path):
    """A variant is a named row of a paper table; with tiny models in place of the real ones it builds."""
    tiny = ["backbone=tiny_sd", "extractor=tiny_sam2" if variant == "sam2" else "extractor=tiny_sam"]
    with composed([f"variant={variant}", *tiny], tmp_path) as cfg:
        method = build(cfg.method, "method")
    expected = {"sam": "ModalPredictor", "sam2": "ModalPredictor"}.get(variant, "InpaintPredictor")
    assert type(method).__name__ == expected


@pytest.mark.parametrize("extra", [[], ["experiment=quickstart"], ["logger=wandb", "output.pictures=4"]])
def test_debug_fast_is_a_few_objects_no_pictures_no_wandb_one_small_view(extra, tmp_path):
    with composed(["debug=fast", "backbone=tiny_sd", *extra], tmp_path) as cfg:
        assert cfg.dataset.limit == 4 and cfg.view.size == cfg.backbone.resolution == 128
        if extra[:1] == ["logger=wandb"]:  # the command line still wins
            assert cfg.logger._target_.endswith("WandbLogger") and cfg.output.pictures == 4
        else:
            assert cfg.logger._target_ == "amodal.loggers.RunLogger" and cfg.output.pictures == 0


def test_debug_fast_runs(tmp_path):
    result = in_process("amodal-run", "debug=fast", "method=area", f"hydra.run.dir={tmp_path / 'run'}")
    assert result.returncode == 0, result.stderr
    assert len((tmp_path / "run" / "results.jsonl").read_text().splitlines()) == 4
    assert not (tmp_path / "run" / "pictures").exists() and not (tmp_path / "run" / "wandb").exists()


def test_help_lists_the_groups_of_amodal_run_and_not_the_training_config():
    groups = in_process("amodal-run", "--help").stdout.split("== Configuration groups ==")[1].split("== Config ==")[0]
    assert "area: depth, hull, rect" in groups and "debug: fast" in groups
    assert "train" not in groups
    training = cli("amodal-train-synthetic", "--help")  # its config, from its own root, still composes
    assert training.returncode == 0 and "amodal-train-synthetic is powered by Hydra" in training.stdout
    assert "unet:" in training.stdout and "vae:" in training.stdout


@pytest.mark.parametrize("overrides,backbone,extractor,run", [
    (["runtime.device=cpu"], "float32", "float32", "float32"),
    (["runtime.device=cuda"], "float16", "float16", "float16"),
    (["runtime.device=cuda", "backbone=flux", "extractor=sam2"], "bfloat16", "bfloat16", "float16"),
    (["runtime.device=cpu", "backbone=flux"], "float32", "float32", "float32"),
    (["runtime.device=cuda", "runtime.dtype=float32"], "float32", "float32", "float32"),  # explicit values win
    (["runtime.device=cuda", "runtime.dtype=bfloat16"], "bfloat16", "bfloat16", "bfloat16"),
])
def test_auto_dtype_is_resolved_in_the_config_that_keys_the_cache_and_the_resume_check(
        overrides, backbone, extractor, run, tmp_path):
    from amodal.eval.run_folder import result_fingerprint

    with composed(["backbone=sdxl", "extractor=sam", *overrides], tmp_path) as cfg:
        assert cfg.method.inpainter.dtype == backbone
        assert cfg.method.cache.settings.backbone.dtype == backbone  # what the inpainting cache hashes
        assert cfg.method.extractor.dtype == extractor
        fingerprint = result_fingerprint(cfg)
    assert fingerprint["method"]["inpainter"]["dtype"] == backbone and fingerprint["dtype"] == run


def test_auto_dtype_from_python_follows_the_device_and_the_family():
    import torch

    from amodal.method.inpaint import DiffusionInpainter
    from amodal.models.loading import TinyPipeline

    assert DiffusionInpainter(TinyPipeline("sd"), resolution=64, dtype="auto", device="cpu").dtype == torch.float32
    assert DiffusionInpainter(TinyPipeline("sd"), resolution=64, dtype="auto", device="cuda").dtype == torch.float16
    assert DiffusionInpainter(TinyPipeline("flux"), resolution=64, w=0, dtype="auto",
                              device="cuda").dtype == torch.bfloat16
    assert DiffusionInpainter(TinyPipeline("flux"), resolution=64, w=0, dtype="float16",
                              device="cuda").dtype == torch.float16


@pytest.mark.parametrize("build_with", ["backbone", "extractor", "depth"])
def test_a_dtype_no_one_knows_is_refused_in_one_line_naming_its_key(build_with):
    from amodal.errors import ConfigError
    from amodal.method.inpaint import DiffusionInpainter
    from amodal.method.segment import PointPromptExtractor
    from amodal.models.depth import DepthEstimator, DepthModel
    from amodal.models.loading import TinyPipeline
    from amodal.models.sam import TinySamModel

    builders = {  # each names the key a user sets
        "backbone": ("runtime.dtype", lambda: DiffusionInpainter(TinyPipeline("sd"), resolution=64, dtype="half")),
        "extractor": ("extractor.dtype", lambda: PointPromptExtractor(TinySamModel(), dtype="half")),
        "depth": ("area.dtype", lambda: DepthEstimator(DepthModel("tiny"), dtype="half")),
    }
    key, make = builders[build_with]
    with pytest.raises(ConfigError, match=rf"^{key}='half': use auto, float32, float16 or bfloat16$"):
        make()


@pytest.mark.filterwarnings("ignore:CUDA is not available:UserWarning")  # no GPU here: autocast is built, off
def test_half_precision_acts_on_a_gpu_only():
    import torch

    from amodal.config import half_precision

    assert isinstance(half_precision("cuda:0", torch.float16), torch.autocast)
    assert half_precision("cuda", torch.bfloat16).fast_dtype == torch.bfloat16
    assert not isinstance(half_precision("cpu", torch.bfloat16), torch.autocast)  # a CPU runs float32 as it is
    assert not isinstance(half_precision("cuda", torch.float32), torch.autocast)
