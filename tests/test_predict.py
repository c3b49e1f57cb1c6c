"""``amodal-predict`` on in-the-wild inputs: any size, JPEG, RGBA and greyscale."""

import numpy as np
from PIL import Image

from amodal.data.files import read_mask
from tests.conftest import cli


def make_inputs(tmp_path, size=(640, 427)):
    width, height = size
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    Image.fromarray(image).save(tmp_path / "photo.jpg", quality=90)
    mask = np.zeros((height, width, 4), np.uint8)  # an RGBA mask, as editors export them
    mask[100:300, 200:400] = 255
    Image.fromarray(mask).save(tmp_path / "mask.png")
    return tmp_path / "photo.jpg", tmp_path / "mask.png"


def test_predict_writes_a_mask_of_exactly_the_images_size(tmp_path):
    image, mask = make_inputs(tmp_path)
    out = tmp_path / "out"
    result = cli("amodal-predict", f"image={image}", f"visible={mask}", f"out={out}", "experiment=quickstart",
                 "intermediates=true")
    assert result.returncode == 0, result.stderr
    amodal = read_mask(out / "photo_amodal.png")
    assert amodal.shape == (427, 640)
    assert amodal[100:300, 200:400].mean() > 0.5  # the visible part is in the amodal mask
    for kind in ("overlay", "area", "condition", "inpainted"):
        assert (out / f"photo_{kind}.png").is_file()
    assert Image.open(out / "photo_overlay.png").size == (640, 427)


def test_greyscale_image_and_bad_masks_are_handled(tmp_path):
    Image.fromarray(np.full((50, 70), 90, np.uint8)).save(tmp_path / "grey.png")
    mask = np.zeros((50, 70), np.uint8)
    mask[10:30, 10:40] = 1
    Image.fromarray(mask).save(tmp_path / "m.png")
    ok = cli("amodal-predict", f"image={tmp_path / 'grey.png'}", f"visible={tmp_path / 'm.png'}",
             f"out={tmp_path / 'o'}", "method=area")
    assert ok.returncode == 0, ok.stderr
    assert read_mask(tmp_path / "o" / "grey_amodal.png").sum() == 20 * 30
    Image.fromarray(np.zeros((20, 20), np.uint8)).save(tmp_path / "small.png")
    wrong = cli("amodal-predict", f"image={tmp_path / 'grey.png'}", f"visible={tmp_path / 'small.png'}",
                f"out={tmp_path / 'o'}", "method=area")
    assert wrong.returncode == 2 and "20×20" in wrong.stderr and "Traceback" not in wrong.stderr
    Image.fromarray(np.zeros((50, 70), np.uint8)).save(tmp_path / "empty.png")
    empty = cli("amodal-predict", f"image={tmp_path / 'grey.png'}", f"visible={tmp_path / 'empty.png'}",
                f"out={tmp_path / 'o'}", "method=area")
    assert empty.returncode == 2 and "is empty" in empty.stderr
