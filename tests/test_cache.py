"""The inpainting cache: a sweep after inpainting reuses x̂₀; any setting that changes x̂₀ misses."""

import json

from amodal.config import build
from tests.conftest import cli, composed

QUICK = ["experiment=quickstart", "dataset.n_images=1", "dataset.limit=2"]


def cache_folder(tmp_path, *overrides):
    with composed([*QUICK, "method=inpaint", *overrides], tmp_path) as cfg:
        return build(cfg.method.cache, "cache").root


CHANGES = [
    "area=rect", "background=white", "background.kernel=5", "method.condition.object_noise=0.2",
    "view.mode=image", "view.context=3", "backbone=tiny_sdxl", "backbone.s=0.5", "backbone.w=0",
    "backbone.steps=3", "backbone.resolution=128", "backbone.leakage_region=everywhere",
    "backbone.leakage_until=0.5", "backbone.pipeline.revision=v2", "backbone.prompt=a photo", "runtime.seed=1",
    "backbone.dtype=bfloat16", "runtime.device=cuda", "dataset.seed=1", "dataset.size=256",
]


def test_every_setting_that_changes_the_inpainting_changes_the_key(tmp_path):
    base = cache_folder(tmp_path)
    folders = {change: cache_folder(tmp_path, change) for change in CHANGES}
    assert all(folder != base for folder in folders.values())
    assert len(set(folders.values())) == len(CHANGES)


def test_settings_that_do_not_change_the_inpainting_keep_the_key(tmp_path):
    base = cache_folder(tmp_path)
    for change in ("extractor.margin=2", "runtime.batch_size=4", "dataset.limit=1", "output.pictures=0",
                   "logger=none", "runtime.device=cuda:1"):
        if change.startswith("runtime.device"):
            assert cache_folder(tmp_path, change) == cache_folder(tmp_path, "runtime.device=cuda")
        else:
            assert cache_folder(tmp_path, change) == base, change


def test_weights_retrained_into_the_same_folder_miss_the_cache(tmp_path):
    from amodal.method.cache import InpaintCache

    model = tmp_path / "pipeline"
    (model / "unet").mkdir(parents=True)
    weights = model / "unet" / "diffusion_pytorch_model.safetensors"
    weights.write_bytes(b"first")
    settings = {"backbone": {"pipeline": {"model": str(model)}, "device": "cpu"}}
    before = InpaintCache(tmp_path / "cache", settings).root
    assert InpaintCache(tmp_path / "cache", settings).root == before  # nothing changed: the same entry
    weights.write_bytes(b"second, retrained")
    assert InpaintCache(tmp_path / "cache", settings).root != before
    hub = {"backbone": {"pipeline": {"model": "org/not-a-folder"}, "device": "cpu"}}
    assert InpaintCache(tmp_path / "cache", hub).settings["backbone"]["weights"] is None


def test_a_multirun_over_extractors_runs_the_diffusion_model_once_per_object(tmp_path):
    """The issue's sweep, extractor=tiny_sam,tiny_sam2 in one process: the first job inpaints each object
    (a cache miss is one call of the diffusion pipeline), the second only reads x̂₀ back."""
    sweep = tmp_path / "sweep"
    result = cli("amodal-run", "-m", *QUICK, "logger=none", "output.progress=false", f"cache.dir={tmp_path / 'c'}",
                 "extractor=tiny_sam,tiny_sam2", f"hydra.sweep.dir={sweep}")
    assert result.returncode == 0, result.stderr
    metrics = [json.loads((sweep / job / "metrics.json").read_text()) for job in "01"]
    assert [m["objects_inpainted"] for m in metrics] == [2, 0]
    assert [m["inpaint_cache"]["hits"] for m in metrics] == [0, 2]
