"""Every dataset reads from its files alone: ``dataset.annotations=… dataset.images=…`` without a root.

The configs default ``dataset.root`` to ``${paths.data}/<name>``; here that folder does not exist, as
for a user who keeps the files elsewhere."""

import numpy as np
import pytest

from amodal.config import build
from amodal.errors import DatasetError
from tests.helpers import composed

FILES = {  # dataset → (fixture, {option: path under the fixture's folder})
    "cocoa": ("cocoa_dataset", {"annotations": "annotations/COCO_amodal_val2014.json", "images": "val2014"}),
    "bsdsa": (
        "bsdsa_dataset",
        {"annotations": "annotations/BSDS_amodal_test.json", "images": "BSR/BSDS500/data/images/test"},
    ),
    "kins": ("kins_dataset", {"annotations": "update_test_2020.json", "images": "testing/image_2"}),
    "fishbowl": (
        "fishbowl_dataset",
        {
            "annotations": "test_data/test_data.pkl",
            "images": "test_data/test_frames",
            "subset": "test_files/test_subtest.csv",
        },
    ),
    "sailvos": ("sailvos_dataset", {"annotations": "valid.json", "images": "."}),
}


def _build(name: str, options: dict[str, str], tmp_path):
    overrides = [f"dataset={name}", f"paths.data={tmp_path / 'nowhere'}"]
    overrides += [f"dataset.{option}={value}" for option, value in options.items()]
    with composed(overrides, tmp_path / "run") as cfg:
        return build(cfg.dataset, "dataset")


@pytest.mark.parametrize("name", sorted(FILES))
def test_the_files_alone_load_without_a_root(name, tmp_path, request):
    fixture, paths = FILES[name]
    folder = request.getfixturevalue(fixture)
    dataset = _build(name, {option: str(folder / path) for option, path in paths.items()}, tmp_path)
    assert dataset.root is None and len(dataset) > 0
    sample = dataset.load(dataset.keys()[0])
    assert sample.image.shape[:2] == sample.amodal.shape and np.any(sample.amodal)


def test_a_missing_root_is_still_refused_where_something_is_looked_up_under_it(kins_dataset, tmp_path):
    with pytest.raises(DatasetError) as err:
        _build("kins", {"annotations": str(kins_dataset / "update_test_2020.json")}, tmp_path)
    assert str(err.value) == (
        f"dataset.root={tmp_path / 'nowhere' / 'kins'} does not exist or is not a folder; point it at the KINS folder"
    )


def test_fishbowl_files_without_the_subset_list_say_how_to_go_on(fishbowl_dataset, tmp_path):
    files = {
        "annotations": str(fishbowl_dataset / "test_data" / "test_data.pkl"),
        "images": str(fishbowl_dataset / "test_data" / "test_frames"),
    }
    with pytest.raises(DatasetError) as err:
        _build("fishbowl", files, tmp_path)
    assert str(err.value) == (
        f"dataset.root={tmp_path / 'nowhere' / 'fishbowl'} does not exist or is not a folder; point it at the "
        "FishBowl folder, or pass dataset.subset=/path/to/test_subtest.csv (the official filter's list); "
        "or set dataset.official_filter=false to score every frame"
    )
    assert len(_build("fishbowl", {**files, "official_filter": "false"}, tmp_path)) == 23
