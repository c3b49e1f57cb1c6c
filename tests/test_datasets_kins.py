"""KINS, both releases: 2020 (a_segm / i_segm polygons of several parts) and the first (instances_*.json:
segmentation polygons, inmodal_seg RLE), told apart by their keys."""

import json

import numpy as np
import pytest
from pycocotools import mask as coco_mask

from amodal.data.kins import KinsDataset
from amodal.errors import DatasetError
from amodal.eval.results import read_rows
from amodal.sample import ObjectKey
from tests.formats import SCENE, image, write_kins
from tests.helpers import in_process

THINGS = [t for t in SCENE if not t.stuff]


@pytest.mark.parametrize("layout,file,keys", [("2020", "update_test_2020.json", ("a_segm", "i_segm")),
                                              ("instances", "instances_val.json", ("segmentation", "inmodal_seg"))])
def test_either_release_is_told_by_its_keys_and_loads_exact_masks(tmp_path, layout, file, keys):
    """Objects are annotations with exact masks (2020: from several polygons; the first release: a polygon
    and an RLE), whichever layout the file has; errors name the file's own keys."""
    root = write_kins(tmp_path / "kins", layout=layout)
    dataset = KinsDataset(root=str(root))
    assert dataset.annotations == root / file
    assert dataset.keys() == [ObjectKey(i, f"{i}0{k}") for i in ("3", "4") for k in range(4)]
    for key in dataset.keys():
        thing = THINGS[int(key.object_id[-1])]
        sample = dataset.load(key)
        assert np.array_equal(sample.image, image(int(key.image_id)))
        assert np.array_equal(sample.amodal, thing.amodal) and np.array_equal(sample.visible, thing.visible)
        assert sample.category == ("cyclist", "car")[int(key.object_id[-1]) % 2]
        assert sample.annotated_occlusion is None  # KINS states none: the rate is the masks'
        assert sample.occlusion_rate == pytest.approx(thing.rate)
        assert len(sample.others) == 3
    assert dataset.mask_keys == keys
    tree = dataset.load(ObjectKey("3", "302"))
    assert tree.visible.sum() == 3 * 6 + 4 * 6 + 8 * 10  # the sign splits the first part in two


def test_the_first_release_scores_with_visible_exactly_as_pycocotools_decodes(run_app, tmp_path):
    root = write_kins(tmp_path / "kins", layout="instances")
    annotations = root / "instances_val.json"
    metrics, run_dir = run_app(  # the files alone, no dataset.root: the default root does not exist
        "dataset=kins",
        f"paths.data={tmp_path / 'nowhere'}",
        f"dataset.annotations={annotations}",
        f"dataset.images={root / 'testing' / 'image_2'}",
        "method=visible",
        "eval.include_unoccluded=true",  # every object scored, the unoccluded ones too
    )
    data = json.loads(annotations.read_text())
    size = {str(i["id"]): (i["height"], i["width"]) for i in data["images"]}
    by_id = {str(a["id"]): a for a in data["annotations"]}
    rows = read_rows(run_dir / "results.jsonl")
    assert len(rows) == 8 and metrics["counts"]["scored"] == 8
    for row in rows:
        annotation = by_id[row["object_id"]]
        height, width = size[row["image_id"]]
        amodal = coco_mask.decode(coco_mask.merge(coco_mask.frPyObjects(annotation["segmentation"], height, width)))
        visible = coco_mask.decode(annotation["inmodal_seg"])
        amodal, visible = amodal.astype(bool), visible.astype(bool)
        intersection, union = int((amodal & visible).sum()), int((amodal | visible).sum())
        assert (row["intersection"], row["union"]) == (intersection, union)
        assert row["iou"] == intersection / union
        assert row["occlusion_rate"] == pytest.approx(1 - intersection / amodal.sum(), abs=1e-12)


def test_an_unknown_layout_is_one_line(kins_dataset):
    path = kins_dataset / "update_test_2020.json"
    data = json.loads(path.read_text())
    for annotation in data["annotations"]:
        annotation["amodal"] = annotation.pop("a_segm")
    path.write_text(json.dumps(data))
    with pytest.raises(DatasetError) as err:
        KinsDataset(root=str(kins_dataset)).keys()
    message = str(err.value)
    assert message.startswith(f"{path}: unknown KINS layout, annotation 0 has keys a_area, a_bbox, amodal, ")
    assert "'a_segm' and 'i_segm' (update_*_2020.json) or 'segmentation' and 'inmodal_seg'" in message
    assert "\n" not in message


def test_layout_options_point_anywhere(kins_dataset, tmp_path):
    moved = tmp_path / "elsewhere.json"
    (kins_dataset / "update_test_2020.json").rename(moved)
    with pytest.raises(
        DatasetError, match=r"no KINS annotation file at .*update_test_2020.json: .*dataset.annotations="
    ):
        KinsDataset(root=str(kins_dataset))
    dataset = KinsDataset(annotations=str(moved), images=str(kins_dataset / "testing" / "image_2"))
    assert len(dataset) == 8


@pytest.mark.parametrize("layout,visible", [("2020", "i_segm"), ("instances", "inmodal_seg")])
def test_an_annotation_without_its_masks_names_the_file_and_the_key(tmp_path, layout, visible):
    root = write_kins(tmp_path / "kins", layout=layout)
    path = next(root.glob("*.json"))
    data = json.loads(path.read_text())
    del data["annotations"][5][visible]
    path.write_text(json.dumps(data))
    with pytest.raises(DatasetError) as err:
        KinsDataset(root=str(root)).keys()
    assert str(err.value).startswith(f"{path}: annotation 5 has no '{visible}'")


def test_a_missing_image_skips_its_objects_and_the_run_goes_on(run_app, kins_dataset):
    (kins_dataset / "testing" / "image_2" / "000004.png").unlink()
    metrics, _ = run_app("dataset=kins", f"dataset.root={kins_dataset}", "method=visible")
    ((reason, count),) = metrics["counts"]["skipped"].items()
    assert (
        count == 4
        and reason == f"image file {kins_dataset / 'testing' / 'image_2' / '000004.png'} does not exist"
    )
    # image 3's four objects: the car and the tree occluded and scored, the other two unoccluded, not predicted
    assert metrics["counts"]["scored"] == metrics["n"] == 2 and sum(metrics["counts"]["unscored"].values()) == 2


def test_a_wrong_root_is_one_line_on_the_command_line(tmp_path):
    result = in_process(
        "amodal-run",
        "dataset=kins",
        f"dataset.root={tmp_path}",
        "logger=none",
        f"hydra.run.dir={tmp_path / 'run'}",
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if "error" in line]
    assert errors == [
        f"amodal-run: error: no KINS annotation file at {tmp_path / 'update_test_2020.json'}: "
        "put it there or pass dataset.annotations=/path/to/it"
    ]
