"""Every option of every config group composes and builds: a broken config is caught here, not by a user."""

from pathlib import Path

import pytest
import yaml
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.errors import MissingConfigException
from omegaconf import OmegaConf

from amodal.config import build, config_dir
from tests.helpers import cli, composed, in_process

OVERLAYS = ("experiment", "variant", "debug")  # @package _global_ configs, tested in test_experiments.py and below
# hydra/ holds launchers: not a group of amodal-run; paths/ holds folders, not a component
GROUPS = sorted(p.name for p in config_dir().iterdir() if p.is_dir() and p.name not in (*OVERLAYS, "hydra", "paths"))
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


SHARED = yaml.safe_load((config_dir() / "_backbone.yaml").read_text())
"""conf/_backbone.yaml: the method's settings every backbone extends."""
DEPARTS = {  # the shared settings a backbone sets otherwise, on purpose (its file says why)
    "flux": {"w", "dtype"}, "flux_fill": {"w", "dtype"}, "sd3": {"w", "dtype"},  # no mask input / bfloat16
    "tiny_flux": {"steps", "w", "dtype"}, "tiny_flux_fill": {"steps", "w", "dtype"},
    "tiny_sd3": {"steps", "w", "dtype"}, "tiny_sd": {"steps"}, "tiny_sdxl": {"steps"},  # 4 steps: code paths only
    "synthetic_sd": {"s", "vae_latents", "dtype"},  # tuned on its validation seed, trained on the mode, float32
}


@pytest.mark.parametrize("backbone", options("backbone"))
def test_every_backbone_extends_the_shared_settings_and_restates_none(backbone, tmp_path):
    """One copy of the method's settings: a backbone file names only its pipeline and what it changes, and
    composes to the shared values except where ``DEPARTS`` says it departs from them."""
    own = yaml.safe_load((config_dir() / "backbone" / f"{backbone}.yaml").read_text())
    assert own["defaults"] == ["/_backbone@_here_", "_self_"]
    assert {k for k in SHARED if k in own and own[k] == SHARED[k]} == set()  # a copy would drift
    with composed([f"backbone={backbone}"], tmp_path) as cfg:
        settings = OmegaConf.to_container(cfg.backbone)
    assert {k for k in SHARED if settings[k] != SHARED[k] and SHARED[k] != "???"} == DEPARTS.get(backbone, set())


def test_the_shared_backbone_settings_are_no_backbone_of_their_own():
    GlobalHydra.instance().clear()
    with initialize_config_dir(version_base="1.3", config_dir=str(config_dir())):
        with pytest.raises(MissingConfigException):
            compose("run", overrides=["backbone=_backbone"])
    GlobalHydra.instance().clear()


def test_paths_outputs_moves_the_runs_the_sweeps_and_the_cache(tmp_path):
    GlobalHydra.instance().clear()
    with initialize_config_dir(version_base="1.3", config_dir=str(config_dir())):
        cfg = compose("run", overrides=["paths.outputs=/scratch", "paths.checkpoints=/weights"],
                      return_hydra_config=True)
        default = compose("run", return_hydra_config=True)
    GlobalHydra.instance().clear()
    assert cfg.hydra.run.dir.startswith("/scratch/runs/") and cfg.hydra.sweep.dir.startswith("/scratch/multiruns/")
    assert cfg.cache.dir == cfg.method.cache.dir == "/scratch/cache"
    assert cfg.method.extractor.model.checkpoint_dir == "/weights"
    assert default.hydra.run.dir.startswith("outputs/runs/") and default.cache.dir == "outputs/cache"
    assert default.paths.data == "data" and default.method.extractor.model.checkpoint_dir == "checkpoints"


@pytest.mark.parametrize("overrides,name", [
    (["backbone=tiny_sd", "paths.outputs=/scratch", "paths.checkpoints=/w", "paths.data=/d"], "backbone=tiny_sd"),
    (["method=area", "dataset=kins", "paths.data=/mnt/datasets", "paths.cache=/c"],
     "method=area dataset=kins paths.data=datasets"),  # a path by its last part
])
def test_where_files_are_names_no_run_but_the_data_root_of_a_dataset_that_reads_it(overrides, name, tmp_path):
    """W&B's run name and tags, and the reports' labels, hold what acts on the masks: where the weights are
    found and outputs written does not; ``paths.data`` does for a dataset whose root it is."""
    from amodal.cli.run import run_identity

    with composed(overrides, tmp_path) as cfg:
        run_name, _, tags = run_identity(cfg)
    assert run_name == name and not [t for t in tags if t.startswith("paths")]


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
    backbones = ", ".join(options("backbone"))  # the shared conf/_backbone.yaml is no choice
    assert f"backbone: {backbones}\n" in groups and "_backbone" not in groups
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


@pytest.mark.parametrize("override,message", [
    ("runtime.seed=abc", "runtime.seed=abc: expected a whole number"),
    ("runtime.sed=1", "runtime.sed=1: runtime has no key 'sed'; its keys: device, dtype, seed, batch_size, "
                      "max_image_pixels, threads"),
    ("+eval.bucket=[0.5]",
     "+eval.bucket=[0.5]: eval has no key 'bucket'; its keys: metric, include_unoccluded, buckets"),
    ("shard.count=two", "shard.count=two: expected a whole number"),
    ("runtime.threads=many", "runtime.threads=many: expected a whole number or null"),
    ("eval.buckets=[0.5,half]", "eval.buckets=[0.5,half]: expected a list of numbers"),
    ("output.progress=maybe", "output.progress=maybe: expected true or false"),
    ("runtime.seed=1,2,x", "runtime.seed=x: expected a whole number"),  # each value of a sweep
])
def test_a_run_setting_of_an_unknown_name_or_another_type_is_one_line_naming_the_full_key(override, message):
    from amodal.config import check_overrides
    from amodal.errors import ConfigError

    with pytest.raises(ConfigError) as refused:
        check_overrides(["-m", "method=visible", override])
    assert str(refused.value) == message


@pytest.mark.parametrize("overrides", [["runtime.seed=7", "shard.index=range(0,4)", "shard.count=4"],
                                       ["eval.buckets=[0.5]", "runtime.threads=null", "output.pictures=0"],
                                       ["runtime.seed=${oc.env:SEED,0}", "~runtime.threads", "dataset.limit=x"]])
def test_run_settings_of_the_right_names_and_types_pass(overrides):
    from amodal.config import check_overrides

    check_overrides(overrides)  # dataset.* has no schema here: its component's annotations check it (build)


@pytest.mark.parametrize("setting,key", [("runtime: {seed: abc}", "runtime.seed"), ("runtime: {sed: 1}", "runtime.sed"),
                                         ("eval: {include_unoccluded: often}", "eval.include_unoccluded")])
def test_hydra_itself_composes_the_run_settings_against_their_schema(setting, key, tmp_path):
    """The schema is in run.yaml's defaults list: a setting that reaches Hydra without the command-line check
    (a study of the user's, from their own config folder) is refused by Hydra, naming its key, not run."""
    (tmp_path / "experiment").mkdir()
    (tmp_path / "experiment" / "mine.yaml").write_text(f"# @package _global_\n{setting}\n")
    GlobalHydra.instance().clear()
    with initialize_config_dir(version_base="1.3", config_dir=str(config_dir())):
        with pytest.raises(Exception) as refused:
            compose("run", overrides=[f"hydra.searchpath=[file://{tmp_path}]", "experiment=mine"])
        assert f"full_key: {key}" in str(refused.value.__cause__ or refused.value)
        cfg = compose("run", overrides=["runtime.seed=3", "output.progress=no"])
    GlobalHydra.instance().clear()
    assert cfg.runtime.seed == 3 and cfg.output.progress is False  # converted by the schema, not by bool("no")


@pytest.mark.parametrize("module", ["run", "predict", "export"])
def test_every_app_on_run_yaml_refuses_a_bad_run_setting_in_one_line_with_exit_2(module, monkeypatch, capsys):
    import importlib

    main = importlib.import_module(f"amodal.cli.{module}").main
    monkeypatch.setattr("sys.argv", [f"amodal-{module}", "runtime.sed=1"])
    with pytest.raises(SystemExit) as stopped:
        main()
    assert stopped.value.code == 2
    assert capsys.readouterr().err == (f"amodal-{module}: error: runtime.sed=1: runtime has no key 'sed'; its keys: "
                                       "device, dtype, seed, batch_size, max_image_pixels, threads\n")


def test_the_installed_command_refuses_a_wrong_type_and_an_unknown_key_in_one_line():
    for override, says in (("runtime.seed=abc", "runtime.seed=abc: expected a whole number"),
                           ("runtime.sed=1", "runtime.sed=1: runtime has no key 'sed'")):
        done = cli("amodal-run", override, "method=visible", "logger=none")
        assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
        (line,) = done.stderr.strip().splitlines()
        assert line.startswith(f"amodal-run: error: {says}")
