"""SAILVOS as distributed: COCO-style valid.json whose file_name is relative to the dataset folder, amodal
masks as compressed RLE, uncompressed RLE or polygons (tests/formats.py)."""

import json
import shutil

import numpy as np
import pytest
from pycocotools import mask as coco_mask

from amodal.data.sailvos import SailvosDataset
from amodal.errors import ConfigError, DatasetError
from amodal.eval.results import read_rows
from amodal.sample import ObjectKey
from tests.formats import SAILVOS_THINGS, image, write_sailvos

KEYS = [ObjectKey(i, f"{i}00{k}") for i in ("7", "8") for k in range(len(SAILVOS_THINGS))]
HIDDEN = {"7004", "8004"}
"""The cat, 80 % hidden."""


def as_set(masks) -> set[bytes]:
    return {np.packbits(m).tobytes() for m in masks}


@pytest.mark.parametrize("layout", ["distributed", "images"])
def test_every_encoding_decodes_to_the_exact_masks_in_either_layout(tmp_path, layout):
    root = write_sailvos(tmp_path / "sailvos", layout=layout)
    dataset = SailvosDataset(root=str(root))
    assert dataset.keys() == KEYS
    for key in dataset.keys():
        thing = SAILVOS_THINGS[int(key.object_id[-1])]
        sample = dataset.load(key)
        assert np.array_equal(sample.image, image(int(key.image_id)))
        assert np.array_equal(sample.amodal, thing.amodal) and np.array_equal(sample.visible, thing.visible)
        assert sample.annotated_occlusion == pytest.approx(thing.rate)
        assert sample.category == ("person", "car")[int(key.object_id[-1]) % 2]
        assert as_set(sample.others) == as_set(t.visible for t in SAILVOS_THINGS if t is not thing)


def test_a_distributed_folder_scores_with_visible_exactly_as_pycocotools_decodes(run_app, sailvos_dataset):
    metrics, run_dir = run_app("dataset=sailvos", f"dataset.root={sailvos_dataset}", "method=visible",
                               "eval.include_unoccluded=true")  # every object scored, the unoccluded ones too
    data = json.loads((sailvos_dataset / "valid.json").read_text())
    annotations = {str(a["id"]): a for a in data["annotations"]}
    rows = read_rows(run_dir / "results.jsonl")
    assert sorted((r["image_id"], r["object_id"]) for r in rows) == sorted(tuple(k) for k in KEYS)
    for row in rows:
        annotation = annotations[row["object_id"]]
        amodal = _pycocotools(annotation["segmentation"])
        visible = _pycocotools(annotation["visible_mask"])
        intersection, union = int((amodal & visible).sum()), int((amodal | visible).sum())
        assert (row["intersection"], row["union"]) == (intersection, union)
        assert row["iou"] == intersection / union
        assert row["occlusion_rate"] == pytest.approx(1 - intersection / amodal.sum(), abs=1e-12)
        assert row["annotated_occlusion"] == pytest.approx(annotation["occlude_rate"])
    assert metrics["counts"]["scored"] == 10 and metrics["counts"]["occlusion_disagreements"] == 0


def _pycocotools(segmentation) -> np.ndarray:
    """pycocotools' own reading of a COCO segmentation, none of ours."""
    if isinstance(segmentation, list):  # polygons, one object in several parts
        rle = coco_mask.merge(coco_mask.frPyObjects(segmentation, 40, 60))
    elif isinstance(segmentation["counts"], list):  # uncompressed RLE
        rle = coco_mask.frPyObjects(segmentation, *segmentation["size"])
    else:
        rle = segmentation
    return coco_mask.decode(rle).astype(bool)


def test_dataset_images_replaces_the_places_file_name_is_looked_for(run_app, sailvos_dataset, tmp_path):
    moved = tmp_path / "frames"
    shutil.move(sailvos_dataset / "ah_1_mcs_1", moved / "ah_1_mcs_1")
    assert len(SailvosDataset(root=str(sailvos_dataset), images=str(moved))) == 10
    assert np.array_equal(
        SailvosDataset(root=str(sailvos_dataset), images=str(moved)).load(KEYS[0]).image, image(7)
    )
    metrics, _ = run_app("dataset=sailvos", f"dataset.root={sailvos_dataset}", "method=visible")
    missing = {
        f"image file {sailvos_dataset / name} nor {sailvos_dataset / 'images' / name} does not exist; SAILVOS' "
        "file_name is relative to dataset.root (or pass dataset.images=)": 5
        for name in ("ah_1_mcs_1/images/000010.bmp", "ah_1_mcs_1/images/000011.bmp")
    }
    assert metrics["counts"]["skipped"] == missing


def test_max_occlusion_keeps_what_published_evaluations_keep(sailvos_dataset):
    kept = SailvosDataset(root=str(sailvos_dataset), max_occlusion=0.75).keys()
    assert kept == [k for k in KEYS if k.object_id not in HIDDEN]
    car = SailvosDataset(root=str(sailvos_dataset), max_occlusion=0.75).load(kept[0])
    assert len(car.others) == 4  # the hidden cat still occludes
    unoccluded = SailvosDataset(root=str(sailvos_dataset), max_occlusion=0).keys()
    assert [k.object_id[-1] for k in unoccluded] == ["1", "3", "1", "3"]  # the person and the sign
    with pytest.raises(ConfigError, match=r"dataset.max_occlusion=75: use a rate in \[0, 1\]"):
        SailvosDataset(root=str(sailvos_dataset), max_occlusion=75)


def test_a_filter_without_rates_or_that_leaves_nothing_is_one_line(sailvos_dataset):
    path = sailvos_dataset / "valid.json"
    data = json.loads(path.read_text())
    for annotation in data["annotations"]:
        annotation["occlude_rate"] = 0.9
    path.write_text(json.dumps(data))
    with pytest.raises(DatasetError) as err:
        SailvosDataset(root=str(sailvos_dataset), max_occlusion=0.75).keys()
    assert str(err.value) == (
        f"{path}: none of its 10 objects is left to evaluate with dataset.max_occlusion=0.75; "
        "change that setting, or check that the files belong together"
    )
    del data["annotations"][3]["occlude_rate"]
    path.write_text(json.dumps(data))
    assert len(SailvosDataset(root=str(sailvos_dataset))) == 10  # the rate matters only to the filter
    with pytest.raises(DatasetError, match=r"annotation 3 has no 'occlude_rate' .*max_occlusion filters on"):
        SailvosDataset(root=str(sailvos_dataset), max_occlusion=0.75).keys()


def test_an_rle_of_another_size_skips_that_object_only(run_app, sailvos_dataset):
    path = sailvos_dataset / "valid.json"
    data = json.loads(path.read_text())
    bad = next(a for a in data["annotations"] if a["id"] == 7000)
    bad["visible_mask"] = {"size": [20, 30], "counts": bad["visible_mask"]["counts"]}
    path.write_text(json.dumps(data))
    metrics, _ = run_app("dataset=sailvos", f"dataset.root={sailvos_dataset}", "method=visible",
                         "eval.include_unoccluded=true")  # every other object scored
    ((reason, count),) = metrics["counts"]["skipped"].items()
    assert count == 1
    assert reason == (
        "valid.json: image 7 object 7000: visible_mask: RLE is 30×20 (w×h) but its image is 60×40; "
        "the annotation does not belong to this image file"
    )
    assert metrics["counts"]["scored"] == 9 and metrics["counts"]["occlusion_disagreements"] == 0


def test_an_image_of_another_size_than_the_file_states_is_refused(run_app, sailvos_dataset):
    path = sailvos_dataset / "valid.json"
    data = json.loads(path.read_text())
    data["images"][0]["height"] = 80
    path.write_text(json.dumps(data))
    metrics, _ = run_app("dataset=sailvos", f"dataset.root={sailvos_dataset}", "method=visible")
    ((reason, count),) = metrics["counts"]["skipped"].items()
    assert count == 5 and "000010.bmp is 60×40 (w×h) but valid.json says 60×80" in reason
