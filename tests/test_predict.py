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
    for kind in ("overlay", "area"):  # at the image's size
        assert Image.open(out / f"photo_{kind}.png").size == (640, 427)
    for kind in ("condition", "inpainted"):  # at the model's view, a 64 px crop, and named so
        assert Image.open(out / f"photo_{kind}_crop64x64.png").size == (64, 64)
    assert sorted(p.suffix for p in out.iterdir()) == [".png"] * 5  # and no empty predict.log


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


def test_the_overlay_shows_what_the_method_added_in_a_colour_of_its_own(tmp_path):
    """An L-shaped V on a grey image; method=area predicts its hull, which adds the triangle in the bend."""
    from amodal.eval.pictures import COLOURS

    image = np.full((96, 128, 3), 100, np.uint8)
    Image.fromarray(image).save(tmp_path / "grey.png")
    visible = np.zeros((96, 128), bool)
    visible[20:70, 20:40] = visible[50:70, 20:100] = True
    Image.fromarray(visible.astype(np.uint8) * 255).save(tmp_path / "l.png")
    result = cli("amodal-predict", f"image={tmp_path / 'grey.png'}", f"visible={tmp_path / 'l.png'}",
                 f"out={tmp_path / 'o'}", "method=area")
    assert result.returncode == 0, result.stderr
    overlay = np.asarray(Image.open(tmp_path / "o" / "grey_overlay.png"))
    added = read_mask(tmp_path / "o" / "grey_amodal.png") & ~visible
    assert added.sum() > 200

    def tint(colour):
        return tuple((0.55 * 100 + 0.45 * np.asarray(colour, np.float32)).astype(np.uint8))

    assert tuple(overlay[40, 50]) == tint(COLOURS["added"]) and added[40, 50]  # inside Â \ V
    assert tuple(overlay[60, 30]) == tint(COLOURS["visible"])  # inside V
    assert tuple(overlay[10, 110]) == (100, 100, 100)  # outside both
