import numpy as np
import pytest

from amodal.data.folder import FolderDataset
from amodal.errors import DatasetError
from tests.helpers import write_png


def test_folder_dataset_reads_images_and_masks(folder_dataset):
    dataset = FolderDataset(str(folder_dataset))
    keys = dataset.keys()
    assert keys and keys[0].image_id == "scene00000"
    sample = dataset.load(keys[0])
    assert sample.image.shape == (128, 128, 3) and sample.visible.dtype == bool
    assert sample.amodal is not None and len(sample.others) >= 1


def test_missing_root_and_image_without_masks_are_one_clear_line(tmp_path):
    with pytest.raises(DatasetError, match="dataset.root is not set"):
        FolderDataset(None)
    with pytest.raises(DatasetError, match="does not exist"):
        FolderDataset(str(tmp_path / "nowhere"))
    write_png(tmp_path / "d" / "images" / "lonely.png", np.zeros((8, 8, 3), np.uint8))
    (tmp_path / "d" / "visible").mkdir()
    with pytest.raises(DatasetError, match="lonely.png has no masks"):
        FolderDataset(str(tmp_path / "d")).keys()


def test_greyscale_and_rgba_inputs_are_converted(tmp_path):
    root = tmp_path / "d"
    write_png(root / "images" / "g.png", np.full((6, 9), 77, np.uint8))
    rgba = np.zeros((6, 9, 4), np.uint8)
    rgba[2:4, 3:5] = 255
    write_png(root / "visible" / "g" / "0.png", rgba)
    sample = FolderDataset(str(root)).load(FolderDataset(str(root)).keys()[0])
    assert sample.image.shape == (6, 9, 3) and (sample.image == 77).all()
    assert sample.visible.sum() == 4 and sample.amodal is None
