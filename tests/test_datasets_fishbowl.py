"""FishBowl as SaVos distributes it: frames, a pickle of per-object, per-frame RLE masks (VM visible, FM
full) with OCC_R, and the test-subset list its evaluation reads (tests/formats.py)."""

import pickle

import numpy as np
import pytest

from amodal.data.fishbowl import FishbowlDataset
from amodal.errors import DatasetError
from amodal.eval.results import read_rows
from amodal.sample import ObjectKey
from tests.formats import FISHBOWL_FRAMES, fishbowl_frame, fishbowl_scene, write_fishbowl
from tests.helpers import in_process

EVERY_FRAME = [
    ObjectKey(f"{video}/{t:05d}", fish)
    for video, count in FISHBOWL_FRAMES.items()
    for t in range(count)
    for fish in fishbowl_scene(video, t)
]
OFFICIAL = [ObjectKey("00003/00002", "1"), ObjectKey("00010/00001", "4")]
"""What SaVos' evaluation scores: 0.1 < OCC_R < 0.7, listed with test = 1, not an object's first or
last frame. Fish 1 is out at frames 0 (its first), 1 (OCC_R 0.05), 3 (0.8), 4 (test = 0) and 5 (its
last); fish 4 at frames 0 and 3 (first, last) and 2 (not listed); fish 2, 3 and 5 are never occluded."""


def as_set(masks) -> set[bytes]:
    return {np.packbits(m).tobytes() for m in masks}


def test_with_the_filter_off_every_object_of_every_frame_loads_exactly(fishbowl_dataset):
    dataset = FishbowlDataset(root=str(fishbowl_dataset), official_filter=False)
    assert dataset.keys() == EVERY_FRAME and len(EVERY_FRAME) == 23  # video 00003 before 00010
    for key in dataset.keys():
        video, t = key.image_id.split("/")
        scene = fishbowl_scene(video, int(t))
        full, visible = scene[key.object_id]
        sample = dataset.load(key)
        assert np.array_equal(sample.image, fishbowl_frame(video, int(t)))  # frame t: the t-th file, 0000{t+1}.png
        assert np.array_equal(sample.amodal, full) and np.array_equal(sample.visible, visible)
        assert sample.category == f"fish{key.object_id}"
        assert sample.annotated_occlusion == pytest.approx(1 - visible.sum() / full.sum())
        assert sample.occlusion_rate == pytest.approx(sample.annotated_occlusion)
        assert as_set(sample.others) == as_set(v for fish, (_, v) in scene.items() if fish != key.object_id)


def test_the_official_filter_scores_what_savos_evaluation_scores(fishbowl_dataset):
    dataset = FishbowlDataset(root=str(fishbowl_dataset))
    assert dataset.keys() == OFFICIAL
    fish1 = dataset.load(OFFICIAL[0])
    assert fish1.occlusion_rate == pytest.approx(0.3)
    assert len(fish1.others) == 2  # fish 2 and 3 are not scored but still occlude
    assert dataset.load(OFFICIAL[1]).occlusion_rate == pytest.approx(0.5)


def test_each_objects_first_and_last_frame_is_dropped_even_where_the_list_has_them(tmp_path):
    root = write_fishbowl(tmp_path / "fishbowl", first_and_last_listed=True)
    assert FishbowlDataset(root=str(root)).keys() == OFFICIAL  # fish 1 at frames 0 (0.3) and 5 (0.5) stay out


def test_frame_stride_keeps_every_nth_frame(fishbowl_dataset):
    every_other = FishbowlDataset(root=str(fishbowl_dataset), official_filter=False, frame_stride=2).keys()
    assert sorted({k.image_id for k in every_other}) == [
        "00003/00000", "00003/00002", "00003/00004", "00010/00000", "00010/00002"
    ]
    assert FishbowlDataset(root=str(fishbowl_dataset), frame_stride=2).keys() == OFFICIAL[:1]


def test_occ_r_is_checked_against_the_masks_and_disagreements_are_counted(run_app, fishbowl_dataset):
    path = fishbowl_dataset / "test_data" / "test_data.pkl"
    data = pickle.loads(path.read_bytes())
    data["00003_1"][2]["OCC_R"] = 0.6  # the masks say 0.3
    path.write_bytes(pickle.dumps(data))
    metrics, run_dir = run_app("dataset=fishbowl", f"dataset.root={fishbowl_dataset}", "method=visible")
    rows = read_rows(run_dir / "results.jsonl")
    assert [(r["image_id"], r["object_id"]) for r in rows] == [tuple(k) for k in OFFICIAL]
    assert rows[0]["annotated_occlusion"] == 0.6 and rows[0]["occlusion_rate"] == pytest.approx(0.3)
    assert rows[1]["annotated_occlusion"] == pytest.approx(rows[1]["occlusion_rate"])
    assert metrics["counts"]["scored"] == 2 and metrics["counts"]["occlusion_disagreements"] == 1
    assert rows[0]["iou"] == pytest.approx(0.7)  # the visible mask covers 70 % of the fish


def test_a_missing_subset_list_is_one_line_and_loses_no_finished_work(run_app, fishbowl_dataset, tmp_path):
    overrides = ["dataset=fishbowl", f"dataset.root={fishbowl_dataset}", "method=visible"]
    _, run_dir = run_app(*overrides)
    finished = (run_dir / "results.jsonl").read_bytes()
    (fishbowl_dataset / "test_files" / "test_subtest.csv").unlink()
    result = in_process("amodal-run", *overrides, "logger=none", f"hydra.run.dir={run_dir}")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if "error" in line]
    assert errors == [
        "amodal-run: error: no FishBowl test-subset list (test_subtest.csv in SaVos' test_files.zip) at "
        f"{fishbowl_dataset / 'test_files' / 'test_subtest.csv'}: put it there or pass "
        "dataset.subset=/path/to/it; or set dataset.official_filter=false to score every frame"
    ]
    assert (run_dir / "results.jsonl").read_bytes() == finished
    assert len(FishbowlDataset(root=str(fishbowl_dataset), official_filter=False)) == 23


def test_a_subset_list_that_leaves_no_object_is_one_line(fishbowl_dataset):
    subset = fishbowl_dataset / "test_files" / "test_subtest.csv"
    subset.write_text(",v_id,obj_id,Type,frame_id,OCC_R,test\n0,99,1,fish1,2,0.3,1\n")
    with pytest.raises(DatasetError) as err:
        FishbowlDataset(root=str(fishbowl_dataset)).keys()
    assert str(err.value) == (
        f"{fishbowl_dataset / 'test_data' / 'test_data.pkl'}: none of its 23 objects is left to evaluate with "
        "dataset.official_filter=true; change that setting, or check that the files belong together"
    )


def test_a_foreign_subset_list_or_pickle_is_one_line(fishbowl_dataset):
    subset = fishbowl_dataset / "test_files" / "test_subtest.csv"
    subset.write_text("video,frame\n3,2\n")
    with pytest.raises(DatasetError, match=r"test_subtest.csv: the subset list has no column v_id, obj_id, "):
        FishbowlDataset(root=str(fishbowl_dataset)).keys()
    subset.write_text(",v_id,obj_id,frame_id,OCC_R\n0,3,1,two,0.3\n")
    with pytest.raises(DatasetError, match=r"test_subtest.csv: line 2 is not a row of numbers"):
        FishbowlDataset(root=str(fishbowl_dataset)).keys()
    path = fishbowl_dataset / "test_data" / "test_data.pkl"
    path.write_bytes(pickle.dumps({"noseparator": {0: {}}}))
    with pytest.raises(DatasetError, match=r"test_data.pkl: entry 'noseparator' is not '<video>_<object>'"):
        FishbowlDataset(root=str(fishbowl_dataset), official_filter=False).keys()
    path.write_bytes(pickle.dumps({"3_1": {0: {"VM": {}}}}))
    with pytest.raises(DatasetError, match=r"3_1 frame 0 has no 'VM' and 'FM' masks"):
        FishbowlDataset(root=str(fishbowl_dataset), official_filter=False).keys()
    path.write_bytes(b"not a pickle")
    with pytest.raises(DatasetError, match="is not a readable pickle"):
        FishbowlDataset(root=str(fishbowl_dataset), official_filter=False).keys()


def test_a_missing_frame_skips_only_the_objects_of_that_frame(run_app, fishbowl_dataset):
    folder = fishbowl_dataset / "test_data" / "test_frames" / "00010"
    for frame in sorted(folder.iterdir())[1:]:
        frame.unlink()
    metrics, _ = run_app(
        "dataset=fishbowl", f"dataset.root={fishbowl_dataset}", "method=visible", "dataset.official_filter=false",
        "eval.include_unoccluded=true",  # every object predicted: what is skipped is the missing frame's
    )
    assert metrics["counts"]["skipped"] == {
        f"frame folder {folder} has 1 image, so no frame {t} (frame t is its t-th image in name order)": 2
        for t in (1, 2, 3)
    }
    assert metrics["counts"]["scored"] == 23 - 6
