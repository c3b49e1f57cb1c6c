"""The run folder after faults (issue 25 items 3, 4, 6, 9, 13 and its doubts; issue 26 item 7): a resumed,
merged or cached run gives the numbers of a clean run on the same objects, with nothing stale and no file
outside the folder written. The one-line errors of the same items are cases of tests/test_bad_runs.py."""

from __future__ import annotations

import json
import shutil
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from amodal.data.files import mask_path, read_mask
from amodal.errors import ConfigError
from amodal.eval.results import read_rows, row_key
from tests.formats import write_cocoa
from tests.helpers import in_process

VISIBLE = ["method=visible", "dataset.n_images=1"]
TINY = ["method=inpaint", "backbone=tiny_sd", "extractor=tiny_sam", "backbone.steps=2", "output.pictures=0"]
MEASURED = ("seconds", "peak_memory_mb")


def scored(rows: list[dict]) -> dict:
    """Each object's row without what is measured (time, memory), by its key."""
    return {row_key(r): {k: v for k, v in r.items() if k not in MEASURED} for r in rows}


# item 13: links inside the run folder are replaced, never written through

def test_a_linked_mask_or_panel_is_replaced_and_its_target_left_as_it_was(run_app, tmp_path):
    outputs = [*VISIBLE, "output.save_masks=true", "output.pictures=2"]
    _, run_dir = run_app(*outputs)
    target = tmp_path / "precious.png"
    target.write_bytes(b"not the run's to write")
    files = sorted((run_dir / "masks").rglob("*.png")) + sorted((run_dir / "pictures").glob("*.png"))
    assert len(files) > 2
    for file in files:
        file.unlink()
        file.symlink_to(target)
    (run_dir / "results.jsonl").unlink()
    run_app(*outputs)
    assert target.read_bytes() == b"not the run's to write"
    assert not any(f.is_symlink() for f in files)
    for row in read_rows(run_dir / "results.jsonl"):
        if not row.get("unscored"):
            assert read_mask(mask_path(run_dir / "masks", row_key(row))).sum() == row["predicted_area"]


# item 4: a mask or panel that an older run left broken is predicted again on resume

def test_a_resume_predicts_again_the_objects_whose_mask_or_panel_was_left_broken(run_app, tmp_path):
    outputs = [*VISIBLE, "output.save_masks=true", "output.pictures=2"]
    _, clean = run_app(*outputs, run_dir=tmp_path / "clean")
    shutil.copytree(clean, tmp_path / "run")
    run = tmp_path / "run"
    masks = sorted((run / "masks").rglob("*.png"))
    masks[0].write_bytes(b"")  # what a full disk left under the old writer (open, then no space)
    masks[1].write_bytes(masks[1].read_bytes()[:40])  # cut short
    masks[2].unlink()
    panel = sorted((run / "pictures").glob("*.png"))[0]
    panel.write_bytes(b"")
    (run / "metrics.json").unlink()
    metrics, _ = run_app(*outputs, run_dir=run)
    assert scored(read_rows(run / "results.jsonl")) == scored(read_rows(clean / "results.jsonl"))
    for mask in masks:
        assert mask.read_bytes() == (clean / mask.relative_to(run)).read_bytes()
    assert panel.read_bytes() == (clean / panel.relative_to(run)).read_bytes()
    assert len(list((run / "pictures").glob("*.png"))) == 2
    assert metrics["miou"] == json.loads((clean / "metrics.json").read_text())["miou"]


# item 6: raising runtime.max_image_pixels tries the objects it skipped again; lowering it is refused

def test_a_raised_pixel_limit_scores_the_objects_it_skipped_and_a_lowered_one_is_refused(run_app, tmp_path):
    cocoa = [*VISIBLE[:1], "dataset=cocoa", f"dataset.root={write_cocoa(tmp_path / 'cocoa')}"]
    try:
        small, run = run_app(*cocoa, "runtime.max_image_pixels=100")
        assert small["counts"]["objects"] == sum(small["counts"]["skipped"].values()) > 0
        assert all("runtime.max_image_pixels" in r["skipped"] for r in read_rows(run / "results.jsonl"))
        raised, _ = run_app(*cocoa)
        clean, _ = run_app(*cocoa, run_dir=tmp_path / "clean")
        assert scored(read_rows(run / "results.jsonl")) == scored(read_rows(tmp_path / "clean" / "results.jsonl"))
        assert raised["counts"] == clean["counts"] and raised["counts"]["skipped"] == {}
        assert raised["miou"] == clean["miou"] is not None
        with pytest.raises(ConfigError, match=r"differs in: runtime.max_image_pixels \(100 here vs 89478485 in the "
                                              r"folder\)\); resume with the same config \(a resume may raise"):
            run_app(*cocoa, "runtime.max_image_pixels=100")
    finally:
        Image.MAX_IMAGE_PIXELS = 89478485


# doubt: a resume with a lower dataset.limit counts every row of the folder, and says so

def test_a_resume_with_a_lower_limit_counts_every_row_and_says_so(run_app, tmp_path, caplog):
    from amodal.eval.runs import load_run

    six, run = run_app(*VISIBLE, "dataset.n_images=2", "dataset.limit=6")
    _, alone = run_app(*VISIBLE, "dataset.n_images=2", "dataset.limit=3", run_dir=tmp_path / "alone")
    three, _ = run_app(*VISIBLE, "dataset.n_images=2", "dataset.limit=3")
    # the rows the first run wrote beyond what limit 3 selects (3 scored objects and the unscored ones before)
    beyond = len(read_rows(run / "results.jsonl")) - len(read_rows(alone / "results.jsonl"))
    assert beyond >= 3 and six["n"] == 6 and three["n"] == 6  # metrics.json counts every row of the folder
    assert three["counts"] == six["counts"] and three["miou"] == six["miou"]
    assert three["rows_beyond_limit"] == beyond and "rows_beyond_limit" not in six
    assert any(f"{beyond} rows of" in r.getMessage() and "dataset.limit does not select" in r.getMessage()
               for r in caplog.records)
    assert load_run(run).status == f"{beyond} rows beyond its last dataset.limit, counted"


# issue 26 item 7: a refused resume names the key as typed, and in a multirun the sweep folder

def test_a_refused_resume_names_the_key_that_differs(run_app, tmp_path):
    run_app("method=area", "area=hull", "dataset.n_images=1", "dataset.limit=2")
    with pytest.raises(ConfigError, match=r'differs in: area \("amodal.method.area.RectArea" here vs '
                                          r'"amodal.method.area.HullArea" in the folder\)\); resume with the same '
                                          r"config or choose a new hydra.run.dir$"):
        run_app("method=area", "area=rect", "dataset.n_images=1", "dataset.limit=2")
    with pytest.raises(ConfigError, match=r"differs in: dataset.n_images \(2 here vs 1 in the folder\)"):
        run_app("method=area", "area=hull", "dataset.n_images=2", "dataset.limit=2")


def test_a_refused_resume_in_a_multirun_points_at_the_sweep_folder(tmp_path):
    sweep = [*VISIBLE[1:], "method=area", "dataset.limit=2", "logger=none", "output.progress=false",
             f"hydra.sweep.dir={tmp_path / 'sweep'}"]
    assert in_process("amodal-run", "-m", *sweep, "area=hull").returncode == 0
    refused = in_process("amodal-run", "-m", *sweep, "area=rect")
    assert refused.returncode == 2
    assert refused.stderr.strip().endswith("resume with the same config or choose a new hydra.sweep.dir")
    assert "differs in: area (" in refused.stderr and "Traceback" not in refused.stderr


# doubt: amodal-merge writes each file whole, results.jsonl last

def test_a_merge_killed_midway_merges_again(run_app, tmp_path, monkeypatch):
    from amodal.eval import merge as merge_module

    shards = [run_app(*VISIBLE, "shard.count=2", f"shard.index={i}", run_dir=tmp_path / f"shard{i}")[1] for i in (0, 1)]
    killed = KeyboardInterrupt("kill -9")

    def dies(*args, **kwargs):
        raise killed

    monkeypatch.setattr(merge_module, "_write_unsharded_config", dies)
    with pytest.raises(KeyboardInterrupt):
        merge_module.merge(shards, tmp_path / "merged")
    assert not (tmp_path / "merged" / "results.jsonl").exists()
    monkeypatch.undo()
    metrics = merge_module.merge(shards, tmp_path / "merged")
    rows = read_rows(tmp_path / "merged" / "results.jsonl")
    assert scored(rows) == scored(read_rows(shards[0] / "results.jsonl") + read_rows(shards[1] / "results.jsonl"))
    assert metrics["counts"]["objects"] == len(rows)
    assert not list((tmp_path / "merged").glob(".*.tmp"))


# item 3: the inpainting cache follows the data and the code

def test_an_image_replaced_under_its_id_is_inpainted_again(run_app, tmp_path):
    root = write_cocoa(tmp_path / "cocoa")
    cocoa = [*TINY, "dataset=cocoa", f"dataset.root={root}", "dataset.limit=3"]
    first, _ = run_app(*cocoa, run_dir=tmp_path / "first")
    again, _ = run_app(*cocoa, run_dir=tmp_path / "again")
    assert first["inpaint_cache"]["misses"] == again["inpaint_cache"]["hits"] > 0
    assert again["inpaint_cache"]["misses"] == 0
    image = root / "val2014" / "000001.png"
    pixels = np.asarray(Image.open(image))
    Image.fromarray(255 - pixels).save(image)  # the same id, other pixels
    replaced, run = run_app(*cocoa, run_dir=tmp_path / "replaced")
    rows = read_rows(run / "results.jsonl")
    of_image_1 = [r for r in rows if r.get("inpaint_cache") and str(r["image_id"]) == "1"]
    assert of_image_1 and all(r["inpaint_cache"] == "miss" for r in of_image_1)
    assert all(r["inpaint_cache"] == "hit" for r in rows if r.get("inpaint_cache") and str(r["image_id"]) != "1")


def test_a_component_of_ones_own_whose_code_changed_misses_the_cache(tmp_path):
    """Each root is computed in a new process, as each run is."""
    import subprocess
    import sys

    import amodal
    from tests.helpers import REPO

    module = tmp_path / "mine" / "my_inpainter.py"
    module.parent.mkdir()
    module.write_text("class Mine:\n    strength = 1\n")
    script = ("import json, sys; from amodal.method.inpainted_cache import InpaintedImageCache as C; "
              "c = C(sys.argv[1], {'backbone': {'_target_': 'my_inpainter.Mine', 'device': 'cpu'}}); "
              "print(json.dumps([str(c.root), c.settings.get('code')]))")

    def cache() -> tuple[str, dict]:
        done = subprocess.run([sys.executable, "-c", script, str(tmp_path / "cache")], capture_output=True,
                              text=True, env={"PYTHONPATH": f"{module.parent}:{REPO / 'src'}"}, check=True)
        return tuple(json.loads(done.stdout))

    before, stamps = cache()
    assert cache()[0] == before  # unchanged: the same entries
    module.write_text("class Mine:\n    strength = 2\n")
    assert cache()[0] != before
    assert set(stamps) == {"amodal", "my_inpainter.Mine"} and stamps["amodal"].startswith(amodal.__version__ + "+")


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares ``width`` × ``height`` pixels in a few bytes: what a decompression bomb shows."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


# item 9: a decompression bomb in the cache is a miss, its size read from its header

def test_a_decompression_bomb_in_the_cache_is_a_miss(tmp_path, caplog):
    from amodal.method.inpainted_cache import InpaintedImageCache
    from amodal.sample import ObjectKey

    cache = InpaintedImageCache(tmp_path / "cache", {"backbone": {"device": "cpu"}})
    image = np.zeros((32, 32, 3), np.uint8)
    key = ObjectKey("img", "0")
    for side in (11000, 30000):  # over Pillow's limit (a warning), twice over it (an error)
        cache.put("d", key, 7, image)
        cache._path("d", key, 7).write_bytes(png_header_only(side, side))
        assert cache.get("d", key, 7, (32, 32)) is None
    cache.put("d", key, 7, image)
    assert np.array_equal(cache.get("d", key, 7, (32, 32)), image)
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "11000×11000, not 32×32" in warnings[0]
