"""The inpainting cache: a sweep after inpainting reuses x̂₀; any setting that changes x̂₀ misses."""

import json

from amodal.config import build
from amodal.eval.results import read_rows
from tests.helpers import composed, in_process

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


def retrain(weights) -> None:
    """New weights of the same size (the same architecture), written a second later than the old."""
    import os

    before = weights.stat()
    weights.write_bytes(bytes(255 - b for b in weights.read_bytes()))
    os.utime(weights, ns=(before.st_atime_ns, before.st_mtime_ns + 1_000_000_000))


def test_weights_retrained_into_the_same_folder_miss_the_cache(tmp_path):
    from amodal.method.inpainted_cache import InpaintedImageCache

    model = tmp_path / "pipeline"
    (model / "unet").mkdir(parents=True)
    weights = model / "unet" / "diffusion_pytorch_model.safetensors"
    weights.write_bytes(b"first")
    settings = {"backbone": {"pipeline": {"model": str(model)}, "device": "cpu"}}
    before = InpaintedImageCache(tmp_path / "cache", settings).root
    assert InpaintedImageCache(tmp_path / "cache", settings).root == before  # nothing changed: the same entry
    retrain(weights)
    assert InpaintedImageCache(tmp_path / "cache", settings).root != before
    hub = {"backbone": {"pipeline": {"model": "org/not-a-folder"}, "device": "cpu"}}
    assert InpaintedImageCache(tmp_path / "cache", hub).settings["backbone"]["weights"] is None
    assert not InpaintedImageCache(tmp_path / "cache", hub).enabled  # not downloaded: see below


def hub_snapshot(cache, commit: str) -> None:
    """``org/model`` in a Hugging Face cache as a download of revision main at ``commit`` leaves it."""
    repo = cache / "models--org--model"
    (repo / "snapshots" / commit).mkdir(parents=True)
    (repo / "snapshots" / commit / "model_index.json").write_text("{}")
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text(commit)


def test_new_weights_under_the_same_name_are_loaded_again_and_miss_the_disk_cache(tmp_path, monkeypatch):
    """The pipeline a process keeps (a notebook, a multirun) is keyed by its weights, not only their name:
    weights retrained into the same folder, or a later download of the same hub revision, are loaded anew."""
    import huggingface_hub.constants

    from amodal.method.inpainted_cache import InpaintedImageCache
    from amodal.models.loading import PretrainedPipeline

    folder = tmp_path / "pipeline" / "unet"
    folder.mkdir(parents=True)
    (folder / "diffusion_pytorch_model.safetensors").write_bytes(b"first")
    local = PretrainedPipeline("sd", str(tmp_path / "pipeline"))
    before = local.identity()
    assert local.identity() == before
    retrain(folder / "diffusion_pytorch_model.safetensors")
    assert local.identity() != before

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    hub = PretrainedPipeline("sd", "org/model")
    settings = {"backbone": {"pipeline": {"model": "org/model"}, "device": "cpu"}}
    # not downloaded yet: which weights the run will download is unknown, so the cache is off for it,
    # unless the revision is a commit
    assert not InpaintedImageCache(tmp_path / "cache", settings).enabled
    pinned = {"backbone": {"pipeline": {"model": "org/model", "revision": "c" * 40}, "device": "cpu"}}
    assert InpaintedImageCache(tmp_path / "cache", pinned).enabled
    hub_snapshot(tmp_path / "hub", "a" * 40)
    assert InpaintedImageCache(tmp_path / "cache", settings).enabled
    before, key = hub.identity(), InpaintedImageCache(tmp_path / "cache", settings).root
    assert InpaintedImageCache(tmp_path / "cache", settings).settings["backbone"]["weights"] == "a" * 40
    hub_snapshot(tmp_path / "hub", "b" * 40)  # `huggingface-cli download org/model` again, main has moved
    assert hub.identity() != before
    assert InpaintedImageCache(tmp_path / "cache", settings).root != key


def test_a_multirun_over_extractors_runs_the_diffusion_model_once_per_object(tmp_path):
    """The issue's sweep, extractor=tiny_sam,tiny_sam2 in one process: the first job inpaints each object
    (a cache miss is one call of the diffusion pipeline), the second only reads x̂₀ back."""
    sweep = tmp_path / "sweep"
    result = in_process("amodal-run", "-m", *QUICK, "logger=none", "output.progress=false",
                        f"cache.dir={tmp_path / 'c'}", "extractor=tiny_sam,tiny_sam2", f"hydra.sweep.dir={sweep}")
    assert result.returncode == 0, result.stderr
    metrics = [json.loads((sweep / job / "metrics.json").read_text()) for job in "01"]
    assert [m["objects_inpainted"] for m in metrics] == [2, 0]
    assert [m["inpaint_cache"]["hits"] for m in metrics] == [0, 2]


def test_an_unreadable_entry_is_a_miss_and_is_replaced(tmp_path, caplog):
    """A truncated entry, garbage, and an entry of another size: each read is a miss (one warning in all),
    and the next put writes a good entry over it."""
    import numpy as np
    from PIL import Image

    from amodal.method.inpainted_cache import InpaintedImageCache
    from amodal.sample import ObjectKey

    cache = InpaintedImageCache(tmp_path / "cache", {"backbone": {"device": "cpu"}})
    image = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    breakages = {
        "truncated": lambda path: path.write_bytes(path.read_bytes()[: path.stat().st_size // 2]),
        "garbage": lambda path: path.write_bytes(b"\x89PNG but not really" * 20),
        "another size": lambda path: Image.fromarray(image[:16]).save(path),
    }
    for i, (name, breaking) in enumerate(breakages.items()):
        key = ObjectKey("img", str(i))
        cache.put("d", key, 7, image)
        assert np.array_equal(cache.get("d", key, 7, (32, 32)), image)
        breaking(cache._path("d", key, 7))
        assert cache.get("d", key, 7, (32, 32)) is None, name
        cache.put("d", key, 7, image)
        assert np.array_equal(cache.get("d", key, 7, (32, 32)), image), name
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "is unreadable" in warnings[0] and "img/0-7.png" in warnings[0]
    assert json.loads((cache.root / "settings.json").read_text()) == cache.settings
    assert not list(tmp_path.rglob("*.tmp"))  # written through temporary files, none left behind


def test_a_full_cache_disk_warns_once_and_the_cache_still_serves_what_it_holds(tmp_path, caplog, monkeypatch):
    import errno

    import numpy as np

    from amodal.method import inpainted_cache as cache_module
    from amodal.sample import ObjectKey

    cache = cache_module.InpaintedImageCache(tmp_path / "cache", {"backbone": {"device": "cpu"}})
    image = np.zeros((8, 8, 3), np.uint8)
    cache.put("d", ObjectKey("img", "held"), 0, image)

    def full(path, data):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(cache_module, "write_atomic", full)
    for i in range(3):
        cache.put("d", ObjectKey("img", str(i)), 0, image)  # no exception: the run carries on
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "No space left on device" in warnings[0] and "cache.dir" in warnings[0]
    assert cache.get("d", ObjectKey("img", "held"), 0, (8, 8)) is not None
    assert cache.get("d", ObjectKey("img", "1"), 0, (8, 8)) is None


def test_a_resumed_run_counts_the_inpainting_of_all_its_processes(run_app, tmp_path):
    """objects_inpainted and the cache counters come from the rows: a run stopped after one object and
    resumed counts both objects; a second run on the same cache counts two hits."""
    quick = [*QUICK, "backbone.steps=2", "output.pictures=0"]
    run_app(*[o for o in quick if o != "dataset.limit=2"], "dataset.limit=1", run_dir=tmp_path / "run")
    metrics, run_dir = run_app(*quick, run_dir=tmp_path / "run")
    assert len(read_rows(run_dir / "results.jsonl")) == 2
    assert metrics["objects_inpainted"] == 2 and metrics["inpaint_cache"] == {"hits": 0, "misses": 2}
    again, _ = run_app(*quick, run_dir=tmp_path / "again")
    assert again["objects_inpainted"] == 0 and again["inpaint_cache"] == {"hits": 2, "misses": 0}
    assert json.loads((run_dir / "metrics.json").read_text())["objects_inpainted"] == 2
