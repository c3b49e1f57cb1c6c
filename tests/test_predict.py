"""``amodal-predict`` on in-the-wild inputs: any size, JPEG, RGBA and greyscale; the mask it writes holds V
where V lies in the photo, and more."""

import numpy as np
from PIL import Image

from amodal.data.files import read_mask
from amodal.data.synthetic import SyntheticDataset
from tests.helpers import cli, in_process

SCENE_AT = (200, 100)
"""Where the synthetic scene lies in the photo (x, y)."""


def make_inputs(tmp_path, size=(640, 427)):
    """A JPEG photo of a size no model works at, a synthetic scene inside it, and the visible mask of the
    scene's most occluded object as an RGBA PNG, as editors export masks; and that object's amodal mask."""
    width, height = size
    image = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    scenes = SyntheticDataset(n_images=1, size=192)
    sample = max((scenes.load(k) for k in scenes.keys()), key=lambda s: s.occlusion_rate)
    x, y = SCENE_AT
    image[y:y + 192, x:x + 192] = sample.image
    Image.fromarray(image).save(tmp_path / "photo.jpg", quality=90)
    visible, amodal = np.zeros((height, width), bool), np.zeros((height, width), bool)
    visible[y:y + 192, x:x + 192], amodal[y:y + 192, x:x + 192] = sample.visible, sample.amodal
    mask = np.zeros((height, width, 4), np.uint8)
    mask[visible] = 255
    Image.fromarray(mask).save(tmp_path / "mask.png")
    return tmp_path / "photo.jpg", tmp_path / "mask.png", visible, amodal


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / (a | b).sum())


def test_predict_writes_a_mask_of_exactly_the_images_size(tmp_path):
    image, mask, visible, truth = make_inputs(tmp_path)
    out = tmp_path / "out"
    result = cli("amodal-predict", f"image={image}", f"visible={mask}", f"out={out}", "experiment=quickstart",
                 "intermediates=true")
    assert result.returncode == 0, result.stderr
    amodal = read_mask(out / "photo_amodal.png")
    assert amodal.shape == (427, 640)
    assert amodal[visible].all()  # every visible pixel, where it lies in the photo
    assert amodal.sum() > visible.sum()  # and what the model drew beyond it,
    assert iou(amodal, truth) > iou(visible, truth)  # where the object is hidden (measured: 0.64 against 0.33)
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
    ok = in_process("amodal-predict", f"image={tmp_path / 'grey.png'}", f"visible={tmp_path / 'm.png'}",
                    f"out={tmp_path / 'o'}", "method=area")
    assert ok.returncode == 0, ok.stderr
    assert read_mask(tmp_path / "o" / "grey_amodal.png").sum() == 20 * 30
    Image.fromarray(np.zeros((20, 20), np.uint8)).save(tmp_path / "small.png")
    wrong = in_process("amodal-predict", f"image={tmp_path / 'grey.png'}", f"visible={tmp_path / 'small.png'}",
                       f"out={tmp_path / 'o'}", "method=area")
    assert wrong.returncode == 2 and "20×20" in wrong.stderr and "Traceback" not in wrong.stderr
    Image.fromarray(np.zeros((50, 70), np.uint8)).save(tmp_path / "empty.png")
    empty = in_process("amodal-predict", f"image={tmp_path / 'grey.png'}", f"visible={tmp_path / 'empty.png'}",
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
    result = in_process("amodal-predict", f"image={tmp_path / 'grey.png'}", f"visible={tmp_path / 'l.png'}",
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
