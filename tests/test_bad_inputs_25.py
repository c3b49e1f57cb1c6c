"""No silent wrong number, the data side (issue 25): names that never collide and never leave their
folder, malformed RLEs and mask modes refused or read as meant, polygons in bounded memory, files that are
not files, two images of one id, image paths outside the dataset, allocations a pickle asks for.

Each test says what today's bug was; each failed on the code before the fix.
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from pycocotools import mask as coco_mask

from amodal.data.annotations import read_json, read_pickle
from amodal.data.cocoa import CocoaDataset
from amodal.data.files import find_image, mask_path, picture_name, read_image, read_mask, safe_name
from amodal.data.fishbowl import FishbowlDataset
from amodal.data.folder import FolderDataset
from amodal.data.kins import KinsDataset
from amodal.data.masks import decode, encode
from amodal.data.synthetic import SyntheticDataset
from amodal.errors import ConfigError, DatasetError, SampleError
from amodal.method.external import ExternalPredictor
from amodal.method.inpainted_cache import InpaintedImageCache
from amodal.sample import ObjectKey
from amodal.train.checkpoint import load_checkpoint
from tests.formats import SCENE, rect_mask
from tests.helpers import REPO, in_process, write_png

CAR = SCENE[1]
HOSTILE_IDS = ["..", ".", "", "/abs", "/etc/passwd", "a/../../b", "../x", "a\\..\\b", "x" * 300, "é" * 200]


def read_rows(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "results.jsonl").read_text().splitlines()]


def finishes(function, seconds: float = 20.0):
    """``function()``'s result, or a failure when it has not returned after ``seconds`` (a FIFO read waits
    for a writer forever)."""
    outcome: dict = {}

    def target():
        try:
            outcome["value"] = function()
        except BaseException as err:  # noqa: BLE001  handed back to the test
            outcome["error"] = err

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still reading after {seconds} s (it hangs)"
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


# -- item 1: one name per id ---------------------------------------------------------------------------
def test_safe_name_keeps_plain_ids_and_gives_every_other_id_its_own_name():
    assert [safe_name(i) for i in ("scene00001", "12_0", "cat_1", "a.b-c")] == ["scene00001", "12_0", "cat_1",
                                                                               "a.b-c"]
    pairs = [("cat 1", "cat_1"), ("猫", "犬"), ("a/b", "a_b"), ("a b", "a  b"), ("x" * 81, "x" * 80),
             ("x" * 300, "x" * 301), ("cat 1", "cat_1~" + safe_name("cat 1").split("~")[1])]
    for first, second in pairs:
        assert safe_name(first) != safe_name(second), (first, second)
    assert safe_name("cat 1").startswith("cat_1~") and safe_name("cat 1") == safe_name("cat 1")  # stable
    names = [safe_name(i) for i in HOSTILE_IDS]
    assert len(set(names)) == len(names)
    assert safe_name("cat 1") == "cat_1~" + __import__("hashlib").blake2b(b"cat 1", digest_size=5).hexdigest()


def test_no_id_leaves_masks_the_cache_or_pictures_and_none_is_too_long(tmp_path):
    root = tmp_path / "run" / "masks"
    cache = InpaintedImageCache(tmp_path / "cache", {"backbone": {}})
    for image_id in HOSTILE_IDS:
        for object_id in HOSTILE_IDS:
            key = ObjectKey(image_id, object_id)
            for path, folder in ((mask_path(root, key), root), (cache._path("cocoa", key, 3), cache.root)):
                assert path.resolve().is_relative_to(folder.resolve()), (key, path)
                assert len(path.relative_to(folder).parts) == (2 if folder == root else 3)
                assert all(len(part.encode()) <= 255 for part in path.parts)
            picture = f"{picture_name(key)}.png"  # the runner's picture name
            assert "/" not in picture and len(picture.encode()) <= 255
    key = ObjectKey("x" * 300, "y" * 300)  # ENAMETOOLONG before: the name is cut and hashed
    path = mask_path(root, key)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"")


def test_a_run_over_ids_that_climb_writes_only_into_its_masks_and_pictures(run_app, cocoa_dataset, tmp_path):
    """Before: image id ``..`` wrote its masks into the run folder itself, ``a/../../b`` above it."""
    path = cocoa_dataset / "annotations" / "COCO_amodal_val2014.json"
    data = json.loads(path.read_text())
    for entry, annotation, image_id in zip(data["images"], data["annotations"], ("..", "a/../../b"), strict=True):
        entry["id"] = annotation["image_id"] = image_id
    path.write_text(json.dumps(data))
    run_dir = tmp_path / "deep" / "run"
    _, run_dir = run_app("dataset=cocoa", f"dataset.root={cocoa_dataset}", "method=visible", "output.save_masks=true",
                         "output.pictures=10", run_dir=run_dir)
    rows = read_rows(run_dir)
    assert {r["image_id"] for r in rows} == {"..", "a/../../b"} and not any(r.get("skipped") for r in rows)
    masks = sorted((run_dir / "masks").rglob("*.png"))
    assert len(masks) == sum(not r.get("unscored") for r in rows) > 0
    assert all(len(m.relative_to(run_dir / "masks").parts) == 2 for m in masks)
    assert sorted(p.name for p in run_dir.iterdir() if p.suffix == ".png") == []
    assert [p for p in (tmp_path / "deep").iterdir()] == [run_dir]
    again = run_app("dataset=cocoa", f"dataset.root={cocoa_dataset}", "method=external",
                    f"method.root={run_dir / 'masks'}", run_dir=tmp_path / "again")[1]
    assert {(r["image_id"], r["object_id"]): r["iou"] for r in read_rows(again)} == {
        (r["image_id"], r["object_id"]): r["iou"] for r in rows}


def test_external_never_reads_above_its_root(tmp_path):
    root = tmp_path / "predictions"
    (root / "img").mkdir(parents=True)
    write_png(tmp_path / "x.png", np.ones((8, 8), bool))  # where root/../x.png led before
    write_png(tmp_path / "b.png", np.ones((8, 8), bool))  # where root/a/../../b.png led
    predictor = ExternalPredictor(str(root), missing="skip")  # a missing file raises rather than scoring empty
    sample = SyntheticDataset(n_images=1, size=64).load(SyntheticDataset(n_images=1, size=64).keys()[0])
    for key in (ObjectKey("..", "x"), ObjectKey("img", "../../x"), ObjectKey("a/../..", "b"),
                ObjectKey("/abs", "x")):
        sample.image_id, sample.object_id = key
        path = mask_path(root, key)
        assert path.resolve().is_relative_to(root.resolve())
        with pytest.raises(SampleError, match="no prediction for this object: expected"):
            predictor.predict([sample], [0])


def write_folder(root: Path, ids: dict[str, list[str]]) -> list[ObjectKey]:
    """A folder dataset whose images and objects take the given ids, over synthetic scenes."""
    synthetic = SyntheticDataset(n_images=len(ids), seed=3, size=96)
    keys = []
    scenes: dict[str, list] = {}
    for key in synthetic.keys():
        scenes.setdefault(key.image_id, []).append(synthetic.load(key))
    for (image_id, object_ids), samples in zip(ids.items(), scenes.values(), strict=True):
        write_png(root / "images" / f"{image_id}.png", samples[0].image)
        for object_id, sample in zip(object_ids, samples, strict=False):
            write_png(root / "visible" / image_id / f"{object_id}.png", sample.visible)
            write_png(root / "amodal" / image_id / f"{object_id}.png", sample.amodal)
            keys.append(ObjectKey(image_id, object_id))
    return keys


def test_a_runs_own_masks_rescore_to_its_own_ious_when_ids_differ_only_in_cleaned_characters(run_app, tmp_path):
    """Before: ``cat 1`` and ``cat_1`` (and ``猫``, ``犬``) shared one file in masks/, so method=external read
    another object's mask and scored it (IoU 0.0 instead of the run's own)."""
    root = tmp_path / "folder"
    write_folder(root, {"猫": ["cat 1", "cat_1", "c"], "犬": ["cat 1", "cat_1", "c"]})
    dataset = ["dataset=folder", f"dataset.root={root}", "eval.include_unoccluded=true"]
    _, own = run_app(*dataset, "method=visible", "output.save_masks=true", run_dir=tmp_path / "own")
    _, again = run_app(*dataset, "method=external", f"method.root={own / 'masks'}", run_dir=tmp_path / "again")
    first, second = read_rows(own), read_rows(again)
    assert len(first) == 6 and not any(r.get("skipped") for r in first + second)
    assert {(r["image_id"], r["object_id"]): r["iou"] for r in first} == {
        (r["image_id"], r["object_id"]): r["iou"] for r in second}
    assert len(set(r["iou"] for r in first)) > 1  # the objects differ, so a swapped mask would show
    assert len(list((own / "masks").rglob("*.png"))) == 6


def write_cocoa_file(path: Path, images: list[dict], annotations: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"images": images, "annotations": annotations}))
    return path


def cocoa_entry(image_id, name: str = "000001.png") -> dict:
    return {"id": image_id, "file_name": name, "height": 40, "width": 60}


def cocoa_annotation(annotation_id, image_id) -> dict:
    region = {"segmentation": [2, 3, 20, 3, 20, 15, 2, 15], "name": "car"}
    return {"id": annotation_id, "image_id": image_id, "regions": [region]}


def test_images_with_ids_1_and_text_1_are_refused_naming_both(tmp_path, cocoa_dataset):
    """Before: both became image "1"; the first took every annotation of both, the second was dropped."""
    images = cocoa_dataset / "val2014"
    path = write_cocoa_file(tmp_path / "a.json", [cocoa_entry(1), cocoa_entry("1", "000002.png")],
                            [cocoa_annotation(10, 1), cocoa_annotation(20, "1")])
    with pytest.raises(DatasetError, match=r"a.json: image 0 has id 1 and image 1 has id '1', one id once read "
                                           "as text; give each its own id"):
        CocoaDataset(annotations=str(path), images=str(images)).keys()
    path = write_cocoa_file(tmp_path / "b.json", [cocoa_entry(1), cocoa_entry(1, "000002.png")],
                            [cocoa_annotation(10, 1)])
    with pytest.raises(DatasetError, match="b.json: images 0 and 1 both have id 1; each needs its own id"):
        CocoaDataset(annotations=str(path), images=str(images)).keys()


def test_kins_objects_with_ids_1_and_text_1_in_one_image_are_refused(tmp_path, kins_dataset):
    path = next(kins_dataset.rglob("update_test_2020.json"))
    data = json.loads(path.read_text())
    first = data["annotations"][0]
    data["annotations"].append({**first, "id": str(first["id"])})
    path.write_text(json.dumps(data))
    with pytest.raises(DatasetError, match=rf"has id {first['id']} and image \S+ annotation \d+ has id "
                                           rf"'{first['id']}', one id once read as text"):
        KinsDataset(root=str(kins_dataset)).keys()


def test_fishbowl_frames_5_and_text_5_of_one_object_are_refused(fishbowl_dataset):
    path = fishbowl_dataset / "test_data" / "test_data.pkl"
    data = pickle.loads(path.read_bytes())
    name = next(iter(data))
    t = next(iter(data[name]))
    data[name][str(t)] = data[name][t]
    path.write_bytes(pickle.dumps(data))
    with pytest.raises(DatasetError, match=rf"{name} has frames {t} and '{t}', one frame number twice"):
        FishbowlDataset(root=str(fishbowl_dataset), official_filter=False).keys()


# -- item 2: compressed RLE that covers too few or too many pixels --------------------------------------
def test_a_compressed_rle_that_does_not_cover_its_image_is_refused():
    """Before: too few pixels decoded to uninitialised memory (another visible area on every run), too many
    wrote past the mask."""
    mask = rect_mask([(10, 5, 30, 20)])
    good = encode(mask)
    assert np.array_equal(decode(good, (40, 60), "x"), mask)
    half = {"size": [40, 60], "counts": encode(mask[:20])["counts"]}  # the top half's runs: 1200 pixels
    more = {"size": [40, 60], "counts": encode(np.zeros((80, 60), bool))["counts"]}
    for bad, total in ((half, ", its runs add up to 1200"), (more, ", its runs add up to 4800")):
        for counts in (bad["counts"], bad["counts"].encode()):  # str, and bytes as FishBowl stores them
            with pytest.raises(SampleError, match=f"x: a compressed RLE's 'counts' must decode to run lengths ≥ 0 "
                                                  f"that add up to height × width = 2400{total}$"):
                decode({"size": [40, 60], "counts": counts}, (40, 60), "x")
    for garbage in (good["counts"][:-1] + "p", "e<?i0 1", good["counts"] + "\x7f"):  # cut off, outside 48..111
        with pytest.raises(SampleError, match="x: a compressed RLE's 'counts' must decode to run lengths"):
            decode({"size": [40, 60], "counts": garbage}, (40, 60), "x")


def test_a_short_compressed_rle_in_a_cocoa_file_skips_only_its_object(cocoa_dataset):
    path = cocoa_dataset / "annotations" / "COCO_amodal_val2014.json"
    data = json.loads(path.read_text())
    car = data["annotations"][1]["regions"][0]
    car["visible_mask"]["counts"] = encode(CAR.visible[:20])["counts"]
    path.write_text(json.dumps(data))
    dataset = CocoaDataset(root=str(cocoa_dataset))
    with pytest.raises(SampleError, match="image 2 object 20_0: visible_mask: a compressed RLE's 'counts'"):
        dataset.load(ObjectKey("2", "20_0"))
    assert dataset.load(ObjectKey("2", "20_1")).visible.sum() == SCENE[2].visible.sum()


# -- item 5: mask files by mode --------------------------------------------------------------------------
def test_mask_files_are_read_by_their_mode(tmp_path):
    """Before: CMYK read as RGBA (its ink, inverted, or empty), and a shape drawn only in alpha on white
    read as the whole image."""
    mask = rect_mask([(10, 5, 40, 30)])
    shape = np.where(mask, 255, 0).astype(np.uint8)
    white = np.full_like(shape, 255)
    cmyk = np.stack([np.zeros_like(shape)] * 3 + [255 - shape], axis=2)  # white inside, black ink outside
    files = {
        "cmyk.tiff": Image.fromarray(cmyk, mode="CMYK"),
        "cmyk.jpg": Image.fromarray(cmyk, mode="CMYK"),
        "la_alpha.png": Image.fromarray(np.stack([white, shape], axis=2), mode="LA"),
        "rgba_alpha.png": Image.fromarray(np.stack([white] * 3 + [shape], axis=2), mode="RGBA"),
        "rgba_black_alpha.png": Image.fromarray(np.stack([0 * white] * 3 + [shape], axis=2), mode="RGBA"),
        "rgba_colour.png": Image.fromarray(np.stack([shape] * 3 + [white], axis=2), mode="RGBA"),
        "la_colour.png": Image.fromarray(np.stack([shape, np.full_like(shape, 128)], axis=2), mode="LA"),
        "grey.png": Image.fromarray(shape),
        "rgb.png": Image.fromarray(np.stack([shape, 0 * shape, 0 * shape], axis=2)),
        "one_bit.png": Image.fromarray(mask),
    }
    for name, image in files.items():
        image.save(tmp_path / name)
        assert Image.open(tmp_path / name).mode == image.mode, name
        assert np.array_equal(read_mask(tmp_path / name), mask), name
    opaque_black = Image.fromarray(np.stack([0 * white] * 3 + [white], axis=2), mode="RGBA")
    opaque_black.save(tmp_path / "empty.png")  # an empty mask stays empty
    assert not read_mask(tmp_path / "empty.png").any()
    for mode in ("YCbCr", "LAB"):
        Image.new(mode, (60, 40)).save(tmp_path / f"{mode}.tiff")
        with pytest.raises(SampleError, match=f"mask file .*{mode}.tiff has mode {mode}, which is not read as a "
                                              "mask"):
            read_mask(tmp_path / f"{mode}.tiff")


# -- item 7: polygons with very many points -------------------------------------------------------------
def test_a_polygon_of_a_million_points_neither_crashes_nor_takes_more_than_bounded_memory():
    """Before: 1e6 points inside the ±one-image bound segfaulted (20k points took 1.7 GB); under this 1 GiB
    address-space limit it crashed. Now the zigzag is refused before pycocotools sees it, and a circle of
    1e6 points (short edges) is rasterised within the limit."""
    script = """
import resource
resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
import numpy as np
from amodal.data.masks import decode
from amodal.errors import SampleError
rng = np.random.default_rng(0)
H, W, n = 480, 640, 1_000_000
zigzag = np.stack([rng.uniform(-W, 2 * W, n), rng.uniform(-H, 2 * H, n)], axis=1).ravel().tolist()
try:
    decode([zigzag], (H, W), "f.json: image 1 object 2: segmentation")
except SampleError as err:
    print(err)
angle = np.linspace(0, 2 * np.pi, n, endpoint=False)
circle = np.stack([320 + 100 * np.cos(angle), 240 + 100 * np.sin(angle)], axis=1).ravel().tolist()
print(int(decode(circle, (H, W), "circle").sum()))
"""
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    refused, area = result.stdout.splitlines()
    assert refused.startswith("f.json: image 1 object 2: segmentation: the polygon is too long to rasterise in "
                              "bounded memory: its 1000000 points' edges take work ")
    assert "over the limit of 1,048,576 for a 640×480 (w×h) image" in refused
    assert abs(int(area) - np.pi * 100**2) < 0.01 * np.pi * 100**2


def test_normal_polygons_rasterise_exactly_as_pycocotools():
    rng = np.random.default_rng(7)
    for points in (3, 8, 50, 400, 3000):
        centre, radius = rng.uniform(100, 380, 2), rng.uniform(20, 90)
        angle = np.sort(rng.uniform(0, 2 * np.pi, points))
        ring = radius * rng.uniform(0.5, 1.0, points)
        polygon = np.stack([centre[0] + ring * np.cos(angle), centre[1] + ring * np.sin(angle)], 1).ravel().tolist()
        reference = coco_mask.decode(coco_mask.merge(coco_mask.frPyObjects([polygon], 480, 640))).astype(bool)
        assert np.array_equal(decode(polygon, (480, 640), "x"), reference)


def test_a_zigzag_polygon_over_the_work_limit_in_a_cocoa_file_skips_only_its_object(cocoa_dataset):
    path = cocoa_dataset / "annotations" / "COCO_amodal_val2014.json"
    data = json.loads(path.read_text())
    zigzag = np.stack([np.tile([-50, 110], 3000), np.linspace(-30, 70, 6000)], axis=1).ravel().tolist()
    data["annotations"][1]["regions"][0]["segmentation"] = zigzag  # the car: 6000 points across the image
    path.write_text(json.dumps(data))
    dataset = CocoaDataset(root=str(cocoa_dataset))
    with pytest.raises(SampleError, match="object 20_0: segmentation: the polygon is too long to rasterise in "
                                          "bounded memory: its 6000 points' edges take work"):
        dataset.load(ObjectKey("2", "20_0"))
    assert dataset.load(ObjectKey("2", "20_1")).amodal.sum() == SCENE[2].amodal.sum()


# -- item 8: malformed annotation files and checkpoints -------------------------------------------------
def test_deeply_nested_json_is_one_line(tmp_path):
    """Before: RecursionError with a traceback."""
    path = tmp_path / "deep.json"
    path.write_text("[" * 200_000 + "]" * 200_000)
    with pytest.raises(DatasetError, match=f"{path} nests its JSON too deeply to read"):
        read_json(path)
    result = in_process("amodal-run", "dataset=cocoa", f"dataset.annotations={path}", f"dataset.images={tmp_path}",
                        "method=visible", "logger=none", f"hydra.run.dir={tmp_path / 'run'}")
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2 and len(lines) == 1 and "nests its JSON too deeply" in lines[0], result.stderr


@pytest.mark.parametrize(("spoil", "message"), [
    (lambda data: data["images"][0].update(height="tall"),
     "image 0's 'height' is 'tall', expected a whole number of pixels"),
    (lambda data: data["images"][1].update(width=None), "image 1's 'width' is None, expected a whole number"),
    (lambda data: data["images"][0].update(file_name=None),
     "image 0's 'file_name' is None, expected the image's file name"),
    (lambda data: data["annotations"][1].update(regions=None), "image 2's 'regions' is NoneType, expected a list"),
    (lambda data: data["annotations"][1]["regions"][0].update(occlude_rate="half"),
     "image 2 region 0's occlusion rate is 'half', expected a number"),
])
def test_malformed_cocoa_fields_refuse_the_dataset_in_one_line(cocoa_dataset, spoil, message):
    """Before: ValueError / TypeError tracebacks from int(), Path / None and enumerate(None)."""
    path = cocoa_dataset / "annotations" / "COCO_amodal_val2014.json"
    data = json.loads(path.read_text())
    spoil(data)
    path.write_text(json.dumps(data))
    with pytest.raises(DatasetError, match=rf"{path}: {message}"):
        CocoaDataset(root=str(cocoa_dataset)).keys()


def test_a_sailvos_occlusion_rate_that_is_no_number_is_one_line(sailvos_dataset):
    from amodal.data.sailvos import SailvosDataset

    path = next(sailvos_dataset.rglob("valid.json"))
    data = json.loads(path.read_text())
    data["annotations"][0]["occlude_rate"] = None
    path.write_text(json.dumps(data))
    with pytest.raises(DatasetError, match=rf"{path}: annotation \S+'s 'occlude_rate' is null"):
        SailvosDataset(root=str(sailvos_dataset), max_occlusion=0.75).keys()
    data["annotations"][0]["occlude_rate"] = [0.5]
    path.write_text(json.dumps(data))
    with pytest.raises(DatasetError, match=rf"{path}: annotation \S+'s occlusion rate is \[0.5\], expected a number"):
        SailvosDataset(root=str(sailvos_dataset)).keys()


def test_a_checkpoint_that_is_not_one_or_is_cut_off_is_one_line_naming_it(tmp_path):
    """Before: a foreign dict gave a KeyError in the trainer, 'hello' a KeyError from torch.load, and zero
    bytes said nothing but '()'."""
    path = tmp_path / "unet.pt"
    torch.save({"weights": torch.zeros(2)}, path)
    with pytest.raises(ConfigError, match=f"{path} is not a training checkpoint of amodal-train-synthetic "
                                          r"\(has no step, model, .*fingerprint\); delete it"):
        load_checkpoint(path, torch.device("cpu"))
    torch.save([1, 2], path)
    with pytest.raises(ConfigError, match="is not a training checkpoint of amodal-train-synthetic"):
        load_checkpoint(path, torch.device("cpu"))
    path.write_bytes(b"hello")
    with pytest.raises(ConfigError, match=f"{path} is not a readable checkpoint \\(5 bytes, cut off or not a file "
                                          "torch.save wrote"):
        load_checkpoint(path, torch.device("cpu"))
    path.write_bytes(b"")
    with pytest.raises(ConfigError, match=f"{path} is not a readable checkpoint \\(it is empty"):
        load_checkpoint(path, torch.device("cpu"))
    path.write_bytes(bytes(64))
    with pytest.raises(ConfigError, match=f"{path} is not a (readable|training) checkpoint") as refused:
        load_checkpoint(path, torch.device("cpu"))
    assert "never holds" not in str(refused.value)  # garbage is not called hostile


def test_a_cut_off_file_of_training_views_is_one_line_naming_it(tmp_path):
    """Before: a zipfile.BadZipFile (or KeyError) traceback from np.load."""
    from amodal.train.pairs import FIELDS, ObjectViews

    path = tmp_path / "views-seed0-n2-s64-v32.npz"
    views = ObjectViews(**{name: np.zeros((1, 4, 4, 3) if name in ("image", "rendering") else (1, 4, 4), np.uint8)
                           for name in FIELDS})
    views.save(path)
    assert np.array_equal(ObjectViews.load(path).alpha, views.alpha)
    whole = path.read_bytes()
    for spoiled in (whole[: len(whole) // 2], b"", b"hello"):
        path.write_bytes(spoiled)
        with pytest.raises(ConfigError, match=f"{path} is not a readable file of training views .*; delete it"):
            ObjectViews.load(path)
    np.savez(path, image=np.zeros(2))
    with pytest.raises(ConfigError, match=f"{path} is not a readable file of training views \\(KeyError"):
        ObjectViews.load(path)


# -- item 10: FIFOs and other files that are not files ---------------------------------------------------
def test_a_fifo_among_the_masks_skips_its_object_instead_of_hanging(folder_dataset):
    masks = sorted((folder_dataset / "visible" / "scene00000").glob("*.png"))
    fifo = masks[0]
    fifo.unlink()
    os.mkfifo(fifo)
    dataset = FolderDataset(str(folder_dataset))
    key = ObjectKey("scene00000", fifo.stem)
    with pytest.raises(SampleError, match=f"mask file {fifo} is a FIFO \\(named pipe\\), not a regular file"):
        finishes(lambda: dataset.load(key))
    assert finishes(lambda: dataset.load(ObjectKey("scene00000", masks[1].stem))).visible.any()


def test_a_fifo_image_or_annotation_file_is_refused_instead_of_hanging(tmp_path):
    os.mkfifo(tmp_path / "x.png")
    with pytest.raises(SampleError, match="image file .*x.png is a FIFO"):
        finishes(lambda: read_image(tmp_path / "x.png"))
    os.mkfifo(tmp_path / "a.json")
    with pytest.raises(DatasetError, match="annotation file .*a.json is a FIFO"):
        finishes(lambda: read_json(tmp_path / "a.json"))
    with pytest.raises(DatasetError, match="annotation file .*a.json is a FIFO"):
        finishes(lambda: CocoaDataset(annotations=str(tmp_path / "a.json"), images=str(tmp_path)).keys())
    os.mkfifo(tmp_path / "p.pkl")
    with pytest.raises(DatasetError, match="annotation file .*p.pkl is a FIFO"):
        finishes(lambda: read_pickle(tmp_path / "p.pkl"))


# -- item 11: x.png beside x.jpg ---------------------------------------------------------------------------
def test_two_images_of_one_stem_are_one_line_naming_both(folder_dataset, tmp_path):
    """Before: the folder dataset listed the image's objects twice (a duplicate-key traceback), and finding an
    image by its stem took whichever suffix came first."""
    Image.open(folder_dataset / "images" / "scene00001.png").convert("RGB").save(
        folder_dataset / "images" / "scene00001.jpg")
    with pytest.raises(DatasetError, match="images: scene00001.jpg and scene00001.png are both image scene00001; "
                                           "keep one of them"):
        FolderDataset(str(folder_dataset)).keys()
    result = in_process("amodal-run", "dataset=folder", f"dataset.root={folder_dataset}", "method=visible",
                        "logger=none", f"hydra.run.dir={tmp_path / 'run'}")
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2 and len(lines) == 1 and "are both image scene00001" in lines[0], result.stderr
    with pytest.raises(SampleError, match="scene00001.jpg and scene00001.png are both image scene00001"):
        find_image(folder_dataset / "images", "scene00001")
    assert find_image(folder_dataset / "images", "scene00000") == folder_dataset / "images" / "scene00000.png"
    per_image = tmp_path / "per_image"  # COCOA's per-image files find their image by the file's stem
    per_image.mkdir()
    for suffix in (".png", ".jpg"):
        Image.fromarray(np.zeros((40, 60, 3), np.uint8)).save(per_image / f"a{suffix}")
    (per_image / "a.json").write_text(json.dumps({"regions": [{"segmentation": [2, 3, 20, 3, 20, 15, 2, 15]}]}))
    with pytest.raises(DatasetError, match="a.jpg and a.png are both image a; keep one of them"):
        CocoaDataset(root=str(per_image)).keys()


# -- item 14: image paths outside the dataset's image folder -----------------------------------------------
@pytest.mark.parametrize("where", ["absolute", "climbing"])
def test_a_file_name_outside_the_image_folder_is_refused_and_never_read(cocoa_dataset, tmp_path, where):
    """Before: an absolute file_name (it tried /etc/hostname) or ../ was read wherever it pointed."""
    outside = tmp_path / "secret.png"
    Image.open(cocoa_dataset / "val2014" / "000002.png").save(outside)  # a readable image of the right size
    name = str(outside) if where == "absolute" else "../../secret.png"
    path = cocoa_dataset / "annotations" / "COCO_amodal_val2014.json"
    data = json.loads(path.read_text())
    data["images"][1]["file_name"] = name
    path.write_text(json.dumps(data))
    dataset = CocoaDataset(root=str(cocoa_dataset))
    with pytest.raises(SampleError, match="lies outside the image folder .*val2014 .*refused, nothing read"):
        dataset.load(ObjectKey("2", "20_0"))
    assert dataset.load(ObjectKey("1", "10_1")).image.shape == (40, 60, 3)  # image 1 is where it should be


# -- doubt: a pickle asking for memory it does not hold ------------------------------------------------------
def test_a_pickle_asking_for_a_bytearray_of_16_gib_is_refused_without_allocating(tmp_path):
    """Before: the allow-list let ``bytearray(2**34)`` allocate 16 GiB (a MemoryError under this 1 GiB limit)."""
    path = tmp_path / "test_data.pkl"
    path.write_bytes(b"\x80\x02c__builtin__\nbytearray\n\x8a\x05\x00\x00\x00\x00\x04\x85R.")  # bytearray(2**34)
    script = f"""
import resource
resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
from pathlib import Path
from amodal.data.annotations import read_pickle
try:
    read_pickle(Path({str(path)!r}))
except Exception as err:
    print(type(err).__name__, err)
"""
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert result.stdout.strip() == (f"DatasetError {path} asks for bytearray(17179869184), a bytearray of a size "
                                     "rather than of its content, which an annotation file never holds: refused; use "
                                     "the dataset's official file"), result.stdout + result.stderr
    for protocol in range(0, pickle.HIGHEST_PROTOCOL + 1):  # a bytearray as pickle writes it still loads
        path.write_bytes(pickle.dumps({"a": bytearray(b"\x00\x01xyz")}, protocol=protocol))
        assert read_pickle(path) == {"a": bytearray(b"\x00\x01xyz")}


def test_two_objects_whose_ids_join_alike_get_two_pictures():
    """Image ``a__b``'s object ``c`` and image ``a``'s object ``b__c``: one panel overwrote the other when the
    ids were joined by ``__``, which a safe name may hold."""
    names = {picture_name(ObjectKey("a__b", "c")), picture_name(ObjectKey("a", "b__c")),
             picture_name(ObjectKey("a+b", "c")), picture_name(ObjectKey("a", "b+c"))}
    assert len(names) == 4
