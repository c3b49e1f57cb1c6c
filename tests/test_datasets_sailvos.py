"""SAILVOS: COCO-style JSON, amodal masks as compressed RLE, uncompressed RLE or polygons."""

import json

import numpy as np
import pytest

from amodal.data.sailvos import SailvosDataset
from amodal.sample import ObjectKey
from tests.formats import SCENE, image, uncompressed_rle

THINGS = [t for t in SCENE if not t.stuff]


def test_every_encoding_decodes_to_the_exact_masks(sailvos_dataset):
    dataset = SailvosDataset(root=str(sailvos_dataset))
    assert dataset.keys() == [ObjectKey(i, f"{i}00{k}") for i in ("7", "8") for k in range(4)]
    for key in dataset.keys():
        thing = THINGS[int(key.object_id[-1])]
        sample = dataset.load(key)
        assert np.array_equal(sample.image, image(int(key.image_id)))  # found as .bmp
        assert np.array_equal(sample.amodal, thing.amodal) and np.array_equal(sample.visible, thing.visible)
        assert sample.annotated_occlusion == pytest.approx(thing.rate)
        assert sample.category == ("person", "car")[int(key.object_id[-1]) % 2]
        assert len(sample.others) == 3


def test_the_uncompressed_rle_writer_is_what_coco_reads():
    from pycocotools import mask as coco_mask

    for thing in SCENE:
        rle = uncompressed_rle(thing.amodal)
        decoded = coco_mask.decode(coco_mask.frPyObjects(rle, *rle["size"])).astype(bool)
        assert np.array_equal(decoded, thing.amodal)


def test_an_rle_of_another_size_skips_that_object_only(run_app, sailvos_dataset):
    path = sailvos_dataset / "valid.json"
    data = json.loads(path.read_text())
    bad = next(a for a in data["annotations"] if a["id"] == 7000)
    bad["visible_mask"] = {"size": [20, 30], "counts": bad["visible_mask"]["counts"]}
    path.write_text(json.dumps(data))
    metrics, _ = run_app("dataset=sailvos", f"dataset.root={sailvos_dataset}", "method=visible")
    ((reason, count),) = metrics["counts"]["skipped"].items()
    assert count == 1
    assert reason == (
        "valid.json: image 7 object 7000: visible_mask: RLE is 30×20 (w×h) but its image is 60×40; "
        "the annotation does not belong to this image file"
    )
    assert metrics["counts"]["scored"] == 7 and metrics["counts"]["occlusion_disagreements"] == 0


def test_an_image_of_another_size_than_the_file_states_is_refused(run_app, sailvos_dataset):
    path = sailvos_dataset / "valid.json"
    data = json.loads(path.read_text())
    data["images"][0]["height"] = 80
    path.write_text(json.dumps(data))
    metrics, _ = run_app("dataset=sailvos", f"dataset.root={sailvos_dataset}", "method=visible")
    ((reason, count),) = metrics["counts"]["skipped"].items()
    assert count == 4 and "000010.bmp is 60×40 (w×h) but valid.json says 60×80" in reason
