"""FishBowl: frames and a pickle of per-object, per-frame RLE masks (VM visible, FM full)."""

import pickle

import numpy as np
import pytest

from amodal.data.fishbowl import FishbowlDataset
from amodal.errors import DatasetError
from amodal.sample import ObjectKey
from tests.formats import FISH, FRAMES, image


def test_every_object_of_every_frame_is_a_sample(fishbowl_dataset):
    dataset = FishbowlDataset(root=str(fishbowl_dataset))
    assert dataset.keys() == [ObjectKey(f"3/{t:05d}", o) for t in range(4) for o in ("1", "2")] + [
        ObjectKey(f"10/{t:05d}", o) for t in range(2) for o in ("1", "4")
    ]  # video 3 before 10
    for key in dataset.keys():
        video, t = key.image_id.split("/")
        thing = FISH[f"{video}_{key.object_id}"]
        sample = dataset.load(key)
        assert np.array_equal(sample.image, image(100 * int(video) + int(t)))
        assert np.array_equal(sample.amodal, thing.amodal) and np.array_equal(sample.visible, thing.visible)
        assert sample.occlusion_rate == pytest.approx(thing.rate)
        other = next(v for name, v in FISH.items() if name.startswith(f"{video}_") and v is not thing)
        assert len(sample.others) == 1 and np.array_equal(sample.others[0], other.visible)


def test_frame_stride_keeps_every_nth_frame(fishbowl_dataset):
    keys = FishbowlDataset(root=str(fishbowl_dataset), frame_stride=2).keys()
    assert sorted({k.image_id for k in keys}) == ["10/00000", "3/00000", "3/00002"]
    assert sum(FRAMES.values()) == 6


def test_a_foreign_pickle_is_one_line(fishbowl_dataset):
    path = fishbowl_dataset / "test_data" / "test_data.pkl"
    path.write_bytes(pickle.dumps({"noseparator": {0: {}}}))
    with pytest.raises(DatasetError, match=r"test_data.pkl: entry 'noseparator' is not '<video>_<object>'"):
        FishbowlDataset(root=str(fishbowl_dataset)).keys()
    path.write_bytes(pickle.dumps({"3_1": {0: {"VM": {}}}}))
    with pytest.raises(DatasetError, match=r"3_1 frame 0 has no 'VM' and 'FM' masks"):
        FishbowlDataset(root=str(fishbowl_dataset)).keys()
    path.write_bytes(b"not a pickle")
    with pytest.raises(DatasetError, match="is not a readable pickle"):
        FishbowlDataset(root=str(fishbowl_dataset)).keys()
