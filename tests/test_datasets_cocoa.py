"""COCO-A and BSDS-A: the COCOA JSON format, written by the test and real (tests/data/cocoa_demo)."""

import json
import logging
import shutil

import numpy as np
import pytest

from amodal.data import annotated
from amodal.data.cocoa import BsdsaDataset, CocoaDataset
from amodal.errors import ConfigError, DatasetError
from amodal.eval.results import read_rows
from amodal.sample import ObjectKey
from tests.formats import SCENE, image, write_cocoa
from tests.helpers import REPO, in_process

DEMO = REPO / "tests" / "data" / "cocoa_demo"
WALL, CAR, PERSON, TREE, SIGN = SCENE


def as_set(masks) -> set[bytes]:
    return {np.packbits(m).tobytes() for m in masks}


def test_every_thing_region_loads_with_exact_masks_and_the_files_rates(cocoa_dataset):
    dataset = CocoaDataset(root=str(cocoa_dataset))
    assert dataset.keys() == [ObjectKey("1", f"10_{i}") for i in (1, 2, 3, 4)] + [
        ObjectKey("2", "20_0"),
        ObjectKey("2", "20_1"),
    ]
    expected = [(SCENE[1:], SCENE), (SCENE[1:3], SCENE[1:3])]  # (evaluated things, all regions) per image
    cases = [
        (k, t, scene)
        for (things, scene), image_keys in zip(
            expected, (dataset.keys()[:4], dataset.keys()[4:]), strict=True
        )
        for k, t in zip(image_keys, things, strict=True)
    ]
    for key, thing, scene in cases:
        sample = dataset.load(key)
        assert sample.dataset == "cocoa" and sample.category == thing.name
        assert np.array_equal(sample.image, image(int(key.image_id)))
        assert sample.amodal.dtype == bool and np.array_equal(sample.amodal, thing.amodal)
        assert np.array_equal(sample.visible, thing.visible)
        assert sample.annotated_occlusion == pytest.approx(thing.rate)
        assert sample.occlusion_rate == pytest.approx(thing.rate)
        assert as_set(sample.others) == as_set(t.visible for t in scene if t is not thing)
    car = dataset.load(ObjectKey("1", "10_1"))
    assert car.occlusion_rate == pytest.approx(56 / 216)  # 8×7 of its 18×12 pixels are behind the person
    tree = dataset.load(ObjectKey("1", "10_3"))
    assert tree.amodal.sum() == 10 * 6 + 8 * 10  # both parts, clipped at the top, right and bottom borders
    assert tree.occlusion_rate == pytest.approx(18 / 140)


def test_stuff_is_a_switch_that_keeps_every_other_object_id(cocoa_dataset):
    things = CocoaDataset(root=str(cocoa_dataset)).keys()
    everything = CocoaDataset(root=str(cocoa_dataset), stuff=True).keys()
    assert [k for k in everything if k not in things] == [ObjectKey("1", "10_0")]
    assert [k for k in everything if k in things] == things
    wall = CocoaDataset(root=str(cocoa_dataset), stuff=True).load(ObjectKey("1", "10_0"))
    assert wall.category == "wall" and np.array_equal(wall.amodal, WALL.amodal)


def test_listing_decodes_nothing_and_each_image_is_decoded_once(cocoa_dataset, monkeypatch):
    calls = {"decode": 0, "read_image": 0}
    real_decode, real_read = annotated.decode, annotated.read_image

    def counting(name, real):
        def wrapper(*args, **kwargs):
            calls[name] += 1
            return real(*args, **kwargs)

        return wrapper

    monkeypatch.setattr(annotated, "decode", counting("decode", real_decode))
    monkeypatch.setattr(annotated, "read_image", counting("read_image", real_read))
    dataset = CocoaDataset(root=str(cocoa_dataset))
    assert len(dataset) == 6 and calls == {"decode": 0, "read_image": 0}
    for sample in dataset:
        assert sample.visible.any()
    # image 1: 5 regions (2 occluded: amodal + visible), image 2: 2 regions (1 occluded)
    assert calls == {"decode": 5 + 2 + 2 + 1, "read_image": 2}


def test_bsdsa_scores_the_first_annotator_as_the_amodalapi_does(bsdsa_dataset):
    dataset = BsdsaDataset(root=str(bsdsa_dataset))
    assert dataset.name == "bsdsa"
    first = [ObjectKey("1", f"10_{i}") for i in (1, 2, 3, 4)] + [ObjectKey("2", "20_0"), ObjectKey("2", "20_1")]
    assert dataset.keys() == first  # annotation 11, the second annotator of image 1, is left out
    car = dataset.load(ObjectKey("1", "10_1"))
    assert np.array_equal(car.amodal, CAR.amodal) and len(car.others) == 4


def test_bsdsa_with_every_annotator_gives_each_their_own_other_objects(bsdsa_dataset):
    dataset = BsdsaDataset(root=str(bsdsa_dataset), annotators="all")
    keys = dataset.keys()
    assert len(keys) == 4 + 1 + 2 and ObjectKey("1", "11_0") in keys
    big_car = dataset.load(ObjectKey("1", "11_0"))
    assert big_car.amodal.sum() == 24 * 19 and big_car.others == () and big_car.occlusion_rate == 0
    car = dataset.load(ObjectKey("1", "10_1"))
    assert np.array_equal(car.amodal, CAR.amodal) and len(car.others) == 4
    with pytest.raises(ConfigError, match=r"dataset.annotators=second: use first .* or all"):
        BsdsaDataset(root=str(bsdsa_dataset), annotators="second")


def test_a_file_of_stuff_only_is_one_line_that_names_the_switch(tmp_path, cocoa_dataset):
    path = cocoa_dataset / "annotations" / "COCO_amodal_val2014.json"
    data = json.loads(path.read_text())
    for annotation in data["annotations"]:
        for region in annotation["regions"]:
            region["isStuff"] = 1
    path.write_text(json.dumps(data))
    with pytest.raises(DatasetError) as err:
        CocoaDataset(root=str(cocoa_dataset)).keys()
    assert str(err.value) == (
        f"{path}: none of its 7 objects is left to evaluate with dataset.stuff=false; "
        "change that setting, or check that the files belong together"
    )
    assert len(CocoaDataset(root=str(cocoa_dataset), stuff=True)) == 7
    path.write_text(json.dumps({"images": data["images"], "annotations": []}))
    with pytest.raises(DatasetError, match=r"COCO_amodal_val2014.json lists no object to evaluate; is it the right"):
        CocoaDataset(root=str(cocoa_dataset)).keys()


def test_the_real_demo_data_loads_and_its_rates_agree_with_occlude_rate():
    dataset = CocoaDataset(root=str(DEMO))
    assert len(dataset) == 47  # 48 regions in the 5 files, one of them stuff
    assert len(CocoaDataset(root=str(DEMO), stuff=True)) == 48
    regions = {}
    for path in DEMO.glob("*.json"):
        data = json.loads(path.read_text())
        for index, region in enumerate(data["regions"]):
            regions[str(data["image_id"]), f"{data['id']}_{index}"] = region
    occluded = 0
    for sample in dataset:
        region = regions[sample.image_id, sample.object_id]
        assert sample.amodal.sum() == region["area"]
        assert abs(sample.occlusion_rate - region["occlude_rate"]) < 1e-6
        assert sample.category == region["name"].strip()
        assert sample.image.shape[:2] == sample.visible.shape
        occluded += "visible_mask" in region
    assert occluded == 24


def test_a_single_per_image_file_loads_with_its_image_beside_it():
    dataset = CocoaDataset(annotations=str(DEMO / "3.json"))
    assert len(dataset) == 18 and {k.image_id for k in dataset.keys()} == {"6608"}
    assert ObjectKey("6608", "12_3") not in dataset.keys()  # the stuff region
    sample = dataset.load(ObjectKey("6608", "12_6"))
    assert sample.category == "monitor" and sample.image.shape == (480, 640, 3)


def test_the_cli_scores_every_thing_region_of_the_demo(tmp_path):
    result = in_process(
        "amodal-run",
        "dataset=cocoa",
        f"dataset.root={DEMO}",
        "method=visible",
        "eval.include_unoccluded=true",  # every region predicted and scored (by default unoccluded ones are not)
        "logger=none",
        "output.progress=false",
        "output.pictures=0",
        f"hydra.run.dir={tmp_path / 'run'}",
    )
    assert result.returncode == 0, result.stderr
    rows = read_rows(tmp_path / "run" / "results.jsonl")
    assert len(rows) == 47 and not any(r.get("skipped") for r in rows)
    assert all(
        r["dataset"] == "cocoa" and abs(r["annotated_occlusion"] - r["occlusion_rate"]) < 1e-6 for r in rows
    )
    assert all(r["iou"] == 1.0 for r in rows if r["occlusion_rate"] == 0)
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["counts"]["scored"] == 47 and metrics["counts"]["occlusion_disagreements"] == 0
    assert metrics["n"] == 47 and metrics["counts"]["unoccluded"] == 23 and 0.4 < metrics["miou"] < 0.95


def test_rates_that_disagree_with_the_masks_are_counted_and_warned_once(run_app, tmp_path, caplog):
    root = write_cocoa(tmp_path / "wrong", rates={"car": 0.5})
    with caplog.at_level(logging.WARNING, logger="amodal.runner"):
        metrics, run_dir = run_app("dataset=cocoa", f"dataset.root={root}", "method=visible")
    assert metrics["counts"]["occlusion_disagreements"] == 2  # the car of each image
    warnings = [r for r in caplog.records if "differs from 1 − |V|/|A|" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].getMessage().startswith("2 objects")
    car = next(r for r in read_rows(run_dir / "results.jsonl") if r["object_id"] == "10_1")
    assert car["annotated_occlusion"] == 0.5 and car["occlusion_rate"] == pytest.approx(56 / 216)


def test_a_missing_or_malformed_annotation_file_is_one_line(tmp_path, cocoa_dataset):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError) as err:
        CocoaDataset(root=str(tmp_path / "empty"))
    message = str(err.value)
    assert f"{tmp_path / 'empty' / 'annotations' / 'COCO_amodal_val2014.json'}" in message
    assert "dataset.annotations=" in message and "\n" not in message
    annotations = cocoa_dataset / "annotations" / "COCO_amodal_val2014.json"
    annotations.write_text(json.dumps({"images": []}))
    with pytest.raises(DatasetError, match=r"COCO_amodal_val2014.json: the file has no 'annotations'"):
        CocoaDataset(root=str(cocoa_dataset)).keys()
    annotations.write_text('{"images": [], "annotations": [{"image_id": 1}]}')
    with pytest.raises(DatasetError, match=r"annotation 0 has no 'regions'"):
        CocoaDataset(root=str(cocoa_dataset)).keys()
    annotations.write_text("{not json")
    with pytest.raises(DatasetError, match="is not valid JSON"):
        CocoaDataset(root=str(cocoa_dataset)).keys()
    shutil.rmtree(cocoa_dataset / "val2014")
    with pytest.raises(DatasetError, match=r"no COCO-A image folder at .*val2014: .* dataset.images="):
        CocoaDataset(root=str(cocoa_dataset))
