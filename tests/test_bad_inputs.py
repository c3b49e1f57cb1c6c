"""Bad data costs one skipped row, never the run (issue 18, the data side).

``CASES`` is the matrix: each case writes a dataset (in its real format, tests/formats.py) or an input
with one bad thing in it, runs the real console script, and checks the exit status, the one line that
names the bad thing (no traceback), that the rows written before are unchanged and what the new rows
say. The tests after it check what a case cannot show from outside: exact pixels, memory, what runs.
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from amodal.data.annotations import read_pickle
from amodal.data.cocoa import CocoaDataset
from amodal.data.files import PILLOW_MAX_IMAGE_PIXELS, SoftMasks, limit_image_pixels, read_image, read_mask
from amodal.data.folder import FolderDataset
from amodal.data.masks import decode, encode
from amodal.errors import ConfigError, DatasetError, SampleError
from amodal.eval.evaluator import Evaluator
from amodal.train.checkpoint import load_checkpoint, save_atomic
from tests.formats import SCENE, rect_mask
from tests.helpers import REPO, composed, in_process, write_png

CAR = SCENE[1]
MARKER = "ran-code"
"""The file a hostile pickle tries to create: its absence proves that nothing ran."""


@dataclass
class Case:
    command: list[str]
    """The console script and its arguments."""
    line: str
    """What the one line says (a fatal error on stderr, else one warning in the log; "": the row says it)."""
    status: int = 0
    run_dir: Path | None = None
    """The run folder whose rows must survive; None for amodal-predict."""
    first: list[str] | None = None
    """Overrides of a first, good run into ``run_dir`` whose rows the bad run must keep."""
    check: Callable[[list[dict]], None] = lambda rows: None
    """Asserts on the rows the bad run added (or, for amodal-predict, on its files)."""
    forbidden: list[Path] = field(default_factory=list)
    """Files that must not exist afterwards."""
    spoil: Callable[[], None] = lambda: None
    """What goes bad between the first run and the second."""


def rows_by_object(rows: list[dict]) -> dict[str, dict]:
    return {row["object_id"]: row for row in rows}


def edit_cocoa(root: Path, edit: Callable[[dict], None]) -> None:
    path = root / "annotations" / "COCO_amodal_val2014.json"
    data = json.loads(path.read_text())
    edit(data["annotations"][1]["regions"])  # image 2: the car (20_0) and the person (20_1)
    path.write_text(json.dumps(data))


def amodal_run(run_dir: Path, *overrides: str) -> list[str]:
    return ["amodal-run", *overrides, "logger=none", "output.progress=false", f"hydra.run.dir={run_dir}"]


def scored_in_first_image(dataset) -> int:
    """How many objects of the dataset's first image a run scores: a ``dataset.limit`` that keeps a first run
    inside that image (the limit counts scored objects)."""
    first = dataset.keys()[0].image_id
    return sum(Evaluator().predicts(dataset.load(k)) for k in dataset.keys() if k.image_id == first)


def past_first_image(rows: list[dict], first: str = "scene00000") -> list[dict]:
    """The second run's rows less the first image's unoccluded objects after its last scored one, which the first
    run's limit (counting scored objects) stops before: recorded now, unscored."""
    rest = [r for r in rows if r["image_id"] != first]
    assert all(r.get("unscored", "").startswith("unoccluded") for r in rows if r["image_id"] == first)
    return rest


def cocoa_runs(root: Path, run_dir: Path) -> tuple[list[str], list[str]]:
    """The first run's overrides (image 1's objects up to its last scored one) and the full run, on COCO-A with
    method=visible."""
    overrides = ["dataset=cocoa", f"dataset.root={root}", "method=visible"]
    limit = scored_in_first_image(CocoaDataset(root=str(root)))
    return [*overrides, f"dataset.limit={limit}"], amodal_run(run_dir, *overrides)


# -- item 1: a NaN polygon coordinate --------------------------------------------------------------
def nan_polygon(tmp_path: Path, request) -> Case:
    root = request.getfixturevalue("cocoa_dataset")

    def spoil(regions):
        regions[0]["segmentation"][3] = float("nan")  # the car's first y

    edit_cocoa(root, spoil)
    first, command = cocoa_runs(root, tmp_path / "run")

    def check(rows):
        car, person = rows_by_object(rows)["20_0"], rows_by_object(rows)["20_1"]
        assert car["skipped"] == ("COCO_amodal_val2014.json: image 2 object 20_0: segmentation: "
                                  "polygon point 1 has y=nan, not a finite number")
        assert person["unscored"].startswith("unoccluded") and person["visible_area"] == person["amodal_area"] > 0

    return Case(command, "image 2 object 20_0: segmentation: polygon point 1 has y=nan", run_dir=tmp_path / "run",
                first=first, check=check)


# -- item 4: an image over the decompression-bomb limit ----------------------------------------------
def huge_image_in_a_dataset(tmp_path: Path, request) -> Case:
    root = request.getfixturevalue("folder_dataset")  # two 128 × 128 scenes (16,384 pixels)
    first = scored_in_first_image(FolderDataset(str(root)))  # scene00000's
    big = rect_mask([(60, 50, 120, 90)]).repeat(4, axis=0).repeat(4, axis=1)  # 240 × 160 (w×h), last in order
    write_png(root / "images" / "zbig.png", np.full((*big.shape, 3), 90, np.uint8))
    write_png(root / "visible" / "zbig" / "0.png", big)
    write_png(root / "amodal" / "zbig" / "0.png", big)
    # the limit in the first run's overrides too: a resume may raise runtime.max_image_pixels, not lower it
    overrides = ["dataset=folder", f"dataset.root={root}", "method=visible", "runtime.max_image_pixels=20000"]
    command = amodal_run(tmp_path / "run", *overrides)

    def check(rows):
        rows = past_first_image(rows)
        assert {r["image_id"] for r in rows} == {"scene00001", "zbig"}
        big = [r for r in rows if r["image_id"] == "zbig"]
        assert len(big) == 1 and "zbig.png is too large to decode" in big[0]["skipped"]
        assert "(38,400 pixels, more than runtime.max_image_pixels=20000," in big[0]["skipped"]
        scene = [r for r in rows if r["image_id"] == "scene00001"]  # 16384 pixels: scored (unoccluded: not predicted)
        assert all(r["iou"] is not None or r["unscored"].startswith("unoccluded") for r in scene)
        assert any(r["iou"] is not None for r in scene)

    return Case(command, "zbig.png is too large to decode", run_dir=tmp_path / "run",
                first=[*overrides, f"dataset.limit={first}"], check=check)


def huge_image_in_predict(tmp_path: Path, request) -> Case:
    mask = np.zeros((100, 100), bool)
    mask[20:50, 30:60] = True
    write_png(tmp_path / "big.png", np.zeros((100, 100, 3), np.uint8))
    write_png(tmp_path / "mask.png", mask)
    out = tmp_path / "out"
    command = ["amodal-predict", f"image={tmp_path / 'big.png'}", f"visible={tmp_path / 'mask.png'}", f"out={out}",
               "method=visible", "runtime.max_image_pixels=5000"]

    def check(rows):
        assert not list(out.glob("*.png"))

    return Case(command, "big.png is too large to decode", status=2, check=check)


# -- item 6: 16-bit images and soft masks -------------------------------------------------------------
def soft(mask: np.ndarray) -> np.ndarray:
    """A 0/250 mask with soft edges, as a blurred or JPEG-saved mask has them: 130 along its top edge
    (inside: ≥ 125) and 120 just below its bottom edge (outside)."""
    below = np.zeros_like(mask)
    below[1:] = mask[:-1]
    values = np.where(mask, 250, 0).astype(np.uint8)
    values[mask & ~below] = 130
    values[below & ~mask] = 120
    return values


def sixteen_bit(image: np.ndarray) -> np.ndarray:
    return (image.mean(axis=2) * 257).astype(np.uint16)


def soft_masks_and_a_16_bit_image(tmp_path: Path, request) -> Case:
    root = request.getfixturevalue("folder_dataset")
    dataset = FolderDataset(str(root))
    first = scored_in_first_image(dataset)  # scene00000's
    scene = [dataset.load(k) for k in dataset.keys() if k.image_id == "scene00001"]
    Image.fromarray(sixteen_bit(scene[0].image)).save(root / "images" / "scene00001.png")
    for sample in scene:
        write_png(root / "visible" / "scene00001" / f"{sample.object_id}.png", soft(sample.visible))
        write_png(root / "amodal" / "scene00001" / f"{sample.object_id}.png", soft(sample.amodal))
    overrides = ["dataset=folder", f"dataset.root={root}", "method=visible"]
    command = amodal_run(tmp_path / "run", *overrides)
    values = soft(scene[0].visible)
    count = int(((values != 0) & (values != 250)).sum())

    def check(rows):
        rows = past_first_image(rows)
        assert [r["object_id"] for r in rows] == [s.object_id for s in scene]
        for row, sample in zip(rows, scene, strict=True):  # the soft edges cut where the binary masks end
            assert row["visible_area"] == sample.visible.sum()
            assert row["amodal_area"] == sample.amodal.sum()
            if sample.occlusion_rate == 0:  # unoccluded: not predicted (eval.include_unoccluded=false)
                assert row["unscored"].startswith("unoccluded")
            else:
                assert row["iou"] == pytest.approx((sample.visible & sample.amodal).sum() / sample.amodal.sum())

    mask_file = root / "visible" / "scene00001" / f"{scene[0].object_id}.png"
    return Case(command, f"mask {mask_file} is not binary: {count} of its", run_dir=tmp_path / "run",
                first=[*overrides, f"dataset.limit={first}"], check=check)


def soft_mask_and_a_16_bit_image_in_predict(tmp_path: Path, request) -> Case:
    mask = rect_mask([(10, 5, 40, 30)])
    image = np.random.default_rng(0).integers(0, 65536, mask.shape, dtype=np.uint16)
    Image.fromarray(image).save(tmp_path / "deep.png")
    write_png(tmp_path / "soft.png", soft(mask))
    out = tmp_path / "out"
    command = ["amodal-predict", f"image={tmp_path / 'deep.png'}", f"visible={tmp_path / 'soft.png'}", f"out={out}",
               "method=visible"]
    count = int(((soft(mask) != 0) & (soft(mask) != 250)).sum())

    def check(rows):
        assert np.array_equal(read_mask(out / "deep_amodal.png"), mask)

    return Case(command, f"soft.png is not binary: {count} of its {mask.size} pixels", check=check)


# -- item 11: a 2-point amodal polygon ----------------------------------------------------------------
def two_point_polygon(tmp_path: Path, request) -> Case:
    root = request.getfixturevalue("cocoa_dataset")

    def spoil(regions):
        regions[1]["segmentation"] = [12, 8, 30, 25]  # the person: a diagonal, not its box

    edit_cocoa(root, spoil)
    first, command = cocoa_runs(root, tmp_path / "run")
    reason = ("COCO_amodal_val2014.json: image 2 object 20_1: segmentation: the polygon has 2 points, fewer than "
              "the 3 that enclose a pixel")

    def check(rows):
        assert rows_by_object(rows)["20_1"]["skipped"] == reason
        assert rows_by_object(rows)["20_0"]["iou"] == pytest.approx(CAR.visible.sum() / CAR.amodal.sum())

    return Case(command, "object 20_1: segmentation: the polygon has 2 points", run_dir=tmp_path / "run",
                first=first, check=check)


# -- item 12: a visible mask outside its amodal mask ---------------------------------------------------
def visible_outside_amodal(tmp_path: Path, request) -> Case:
    root = request.getfixturevalue("cocoa_dataset")
    stray = rect_mask([(40, 30, 45, 35)])  # 25 pixels far from the car

    def spoil(regions):
        regions[0]["visible_mask"] = encode(CAR.visible | stray)

    edit_cocoa(root, spoil)
    first, command = cocoa_runs(root, tmp_path / "run")

    def check(rows):
        car, person = rows_by_object(rows)["20_0"], rows_by_object(rows)["20_1"]
        assert car["visible_outside_amodal"] == 25 and car["visible_area"] == CAR.visible.sum() + 25
        assert person["visible_outside_amodal"] == 0

    return Case(command, "", run_dir=tmp_path / "run", first=first, check=check)


# -- item 13: a pickle that runs code when read --------------------------------------------------------
class RunsCode:
    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return os.system, (f"touch {self.path}",)


def pickle_that_runs_code(tmp_path: Path, request) -> Case:
    root = request.getfixturevalue("fishbowl_dataset")
    path = root / "test_data" / "test_data.pkl"
    overrides = ["dataset=fishbowl", f"dataset.root={root}", "method=visible"]
    command = amodal_run(tmp_path / "run", *overrides)

    def check(rows):
        assert rows == []

    return Case(command, f"{path} asks to load posix.system", status=2, run_dir=tmp_path / "run", first=overrides,
                check=check, forbidden=[tmp_path / MARKER],
                spoil=lambda: path.write_bytes(pickle.dumps({"3_1": {0: RunsCode(tmp_path / MARKER)}})))


CASES = [
    nan_polygon,
    huge_image_in_a_dataset,
    huge_image_in_predict,
    soft_masks_and_a_16_bit_image,
    soft_mask_and_a_16_bit_image_in_predict,
    two_point_polygon,
    visible_outside_amodal,
    pickle_that_runs_code,
]


@pytest.mark.parametrize("make", CASES, ids=lambda make: make.__name__)
def test_a_bad_input_costs_one_line_and_no_finished_row(make, tmp_path, request, run_app):
    case = make(tmp_path, request)
    before = b""
    if case.first is not None:
        run_app(*case.first, run_dir=case.run_dir)
        before = (case.run_dir / "results.jsonl").read_bytes()
        assert before
    case.spoil()
    result = in_process(*case.command)
    output = result.stdout + result.stderr
    assert result.returncode == case.status, output
    assert "Traceback" not in output
    if case.status:
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and case.line in lines[0], result.stderr
    elif case.line:
        warnings = [line for line in output.splitlines() if case.line in line and "WARNING" in line]
        assert len(warnings) == 1, output
    rows = []
    if case.run_dir is not None:
        after = (case.run_dir / "results.jsonl").read_bytes()
        assert after.startswith(before)  # the rows of the first run, byte for byte
        rows = [json.loads(line) for line in after[len(before) :].splitlines()]
    case.check(rows)
    for path in case.forbidden:
        assert not path.exists()


# -- what the cases cannot show from outside ---------------------------------------------------------
def test_nan_inf_and_huge_coordinates_are_a_sample_error_without_running_out_of_memory():
    """pycocotools, handed these, allocates without bound or crashes (under this 2 GiB limit it
    segfaults); they must be refused before it sees them."""
    script = """
import resource
resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))
from amodal.data.masks import decode
from amodal.errors import SampleError
for bad in (float("nan"), float("inf"), -float("inf"), 1e12, -1e12):
    for index in range(4):
        polygon = [10.0, 10.0, 200.0, 10.0, 200.0, 300.0, 10.0, 300.0]
        polygon[index] = bad
        try:
            decode([polygon], (480, 640), "f.json: image 1 object 2: segmentation")
        except SampleError as err:
            print(err)
"""
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 20 and all(line.startswith("f.json: image 1 object 2: segmentation: polygon point ")
                                    for line in lines)
    assert lines[1] == "f.json: image 1 object 2: segmentation: polygon point 0 has y=nan, not a finite number"
    assert lines[12] == ("f.json: image 1 object 2: segmentation: polygon point 0 has x=1e+12, more than one image "
                         "size outside the 640×480 (w×h) image; are the coordinates in pixels of this image?")


def test_a_polygon_may_run_past_the_border_by_up_to_one_image_size():
    corners = [-60.0, -40.0, 120.0, -40.0, 120.0, 80.0, -60.0, 80.0]  # every corner one image size out
    assert decode(corners, (40, 60), "x").all()
    with pytest.raises(SampleError, match="x=-60.5, more than one image size outside the 60×40"):
        decode([-60.5, 0, 10, 0, 10, 10], (40, 60), "x")


def test_a_polygon_that_encloses_no_pixel_says_so():
    with pytest.raises(SampleError, match="x: the polygon has 1 point, fewer than the 3"):
        decode([[5, 5]], (40, 60), "x")
    with pytest.raises(SampleError, match="x: the polygon encloses no pixel of the 60×40"):
        decode([2, 2, 10, 10, 20, 20], (40, 60), "x")  # three points on one line
    assert decode([[5, 5], [2, 2, 10, 2, 10, 10, 2, 10]], (40, 60), "x").sum() == 64  # a stray point is dropped


def test_an_uncompressed_rle_that_does_not_cover_its_image_is_refused():
    """pycocotools would read past runs that fall short (it returns uninitialised memory)."""
    for counts in ([], [10, 20], [-1, 2401], [1.5, 2398.5]):
        with pytest.raises(SampleError, match="must be whole run lengths ≥ 0 that add up to height × width = 2400"):
            decode({"size": [40, 60], "counts": counts}, (40, 60), "x")


@pytest.mark.parametrize("file_format", ["PNG", "TIFF"])
def test_16_bit_greyscale_is_scaled_to_8_bits_not_saturated(tmp_path, file_format):
    values = np.arange(0, 65536, 64, dtype=np.uint16).reshape(32, 32)
    path = tmp_path / f"deep.{file_format.lower()}"
    Image.fromarray(values).save(path, format=file_format)  # mode I;16
    Image.fromarray(values.astype(np.int32)).save(tmp_path / "int.tiff")  # mode I, as older Pillow opens them
    expected = np.repeat(np.rint(values / 257).astype(np.uint8)[:, :, None], 3, axis=2)
    assert np.array_equal(read_image(path), expected)
    assert np.array_equal(read_image(tmp_path / "int.tiff"), expected)


def test_palette_greyscale_alpha_and_32_bit_images_keep_their_values(tmp_path):
    palette = Image.new("P", (4, 3))
    palette.putpalette([0, 0, 0, 200, 10, 30] + [0] * 762)
    palette.putpixel((1, 2), 1)
    palette.save(tmp_path / "p.png")
    expected = np.zeros((3, 4, 3), np.uint8)
    expected[2, 1] = (200, 10, 30)
    assert np.array_equal(read_image(tmp_path / "p.png"), expected)
    Image.fromarray(np.full((3, 4, 2), 77, np.uint8), mode="LA").save(tmp_path / "la.png")
    assert (read_image(tmp_path / "la.png") == 77).all()
    Image.fromarray(np.full((3, 4), 2**31 - 1, np.int32)).save(tmp_path / "i32.tiff")  # 32-bit: by 2³¹ − 1
    assert (read_image(tmp_path / "i32.tiff") == 255).all()


def test_a_mask_is_inside_from_half_its_maximum_and_soft_masks_are_reported_once(tmp_path, caplog):
    write_png(tmp_path / "labels.png", np.array([[0, 1], [1, 0]], np.uint8))  # 0/1 masks read as meant
    with caplog.at_level("WARNING"):
        assert np.array_equal(read_mask(tmp_path / "labels.png"), [[False, True], [True, False]])
    assert not caplog.records
    mask = rect_mask([(10, 5, 40, 30)])
    write_png(tmp_path / "a.png", soft(mask))
    write_png(tmp_path / "b.png", soft(mask))
    reported = SoftMasks()
    with caplog.at_level("WARNING"):
        assert np.array_equal(read_mask(tmp_path / "a.png", soft=reported), mask)
        assert np.array_equal(read_mask(tmp_path / "b.png", soft=reported), mask)
    (record,) = caplog.records
    assert f"mask {tmp_path / 'a.png'} is not binary: 60 of its 2400 pixels" in record.getMessage()
    assert "thresholded at half their maximum (here: inside from 125)" in record.getMessage()


def test_an_image_over_max_image_pixels_is_refused_before_it_is_decoded(tmp_path, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", Image.MAX_IMAGE_PIXELS)  # put back afterwards
    write_png(tmp_path / "i.png", np.zeros((100, 100, 3), np.uint8))
    limit_image_pixels(6000)  # 10000 pixels: over the limit but not twice over it, where Pillow only warns
    with pytest.raises(SampleError, match=r"image file .*i.png is too large to decode \(10,000 pixels, more than "
                                          r"runtime.max_image_pixels=6000, the decompression-bomb guard\)"):
        read_image(tmp_path / "i.png")
    with pytest.raises(SampleError, match=r"mask file .*i.png is too large to decode"):
        read_mask(tmp_path / "i.png")
    limit_image_pixels(None)
    assert read_image(tmp_path / "i.png").shape == (100, 100, 3)
    for bad in (0, -5, "abc", True, float("inf")):
        with pytest.raises(ConfigError, match="runtime.max_image_pixels="):
            limit_image_pixels(bad)


def test_max_image_pixels_is_pillows_limit_by_default(tmp_path):
    with composed([], tmp_path) as cfg:
        assert cfg.runtime.max_image_pixels == PILLOW_MAX_IMAGE_PIXELS


def test_a_pickle_that_names_anything_but_plain_data_is_refused_in_one_line_and_runs_nothing(tmp_path):
    marker, path = tmp_path / MARKER, tmp_path / "test_data.pkl"
    hostile = {
        "posix.system": RunsCode(marker),
        "builtins.eval": type("Eval", (), {"__reduce__": lambda self: (eval, (f"open({str(marker)!r}, 'w')",))})(),
        "numpy._core.multiarray._reconstruct": np.array([None], dtype=object),
    }
    for name, payload in hostile.items():
        for protocol in (0, 2, pickle.HIGHEST_PROTOCOL):
            path.write_bytes(pickle.dumps({"3_1": {0: {"VM": payload}}}, protocol=protocol))
            with pytest.raises(DatasetError) as refused:
                read_pickle(path)
            message = str(refused.value)
            assert message.startswith(f"{path} asks to load {name}, which") and "\n" not in message
            assert not marker.exists()


def test_fishbowl_pickles_as_savos_writes_them_load(tmp_path):
    """SaVos's preprocessing (FishBowl/FishBowl_dataset/Data_Preprocess1.ipynb) stores per object and frame
    RLEs with bytes counts, boxes of numpy ints, OCC_R and IoU as numpy floats (or None) and a str."""
    from pycocotools import mask as coco_mask

    rle = coco_mask.encode(np.asfortranarray(rect_mask([(2, 3, 20, 15)])[:, :, None].astype(np.uint8)))
    frame = {"FM_bx": [np.int64(3), np.int64(14), np.int64(2), np.int64(19)], "FM": rle, "VM": rle,
             "VM_bx": [np.int64(3), np.int64(14), np.int64(2), np.int64(19)], "OCC_R": np.float64(0.0),
             "IoU": np.float64(0.93), "loss_mask_weight": rle, "fish_type": "MediumFishB"}
    data = {"00003_1": {5: frame, 6: {**frame, "IoU": None}}, "00003_2": {5: frame}}
    for protocol in range(2, pickle.HIGHEST_PROTOCOL + 1):
        (tmp_path / "test_data.pkl").write_bytes(pickle.dumps(data, protocol=protocol))
        loaded = read_pickle(tmp_path / "test_data.pkl")
        assert loaded == data and type(loaded["00003_1"][5]["OCC_R"]) is np.float64


def test_a_training_checkpoint_that_names_anything_but_tensors_and_plain_data_is_refused(tmp_path):
    marker, path = tmp_path / MARKER, tmp_path / "unet.pt"
    model = torch.nn.Linear(2, 2)
    optimizer = torch.optim.AdamW(model.parameters())
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    optimizer.step()
    schedule.step()
    state = {"step": 4, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
             "schedule": schedule.state_dict(), "ema": None, "loss": [(1, 0.5)], "validation": [(4, 0.25)],
             "seconds": 1.5, "fingerprint": {"seed": 0, "vae": {"lr": 0.001}}}  # what Trainer saves
    save_atomic(state, path)
    loaded = load_checkpoint(path, torch.device("cpu"))
    assert loaded["step"] == 4 and torch.equal(loaded["model"]["weight"], model.weight)
    assert loaded["optimizer"]["param_groups"] == optimizer.state_dict()["param_groups"]
    torch.save({**state, "ema": RunsCode(marker)}, path)
    with pytest.raises(ConfigError, match=f"{path} names posix.system, which a training checkpoint never holds"):
        load_checkpoint(path, torch.device("cpu"))
    assert not marker.exists()
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(ConfigError, match=f"{path} is not a readable checkpoint"):
        load_checkpoint(path, torch.device("cpu"))
