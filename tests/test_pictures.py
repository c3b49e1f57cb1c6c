"""The panels in pictures/ (and W&B): every stage labelled, x and x̂₀ at the image's aspect ratio, and the
object's IoU, the visible mask's IoU and the occlusion rate above them, from the object's row."""

import numpy as np
import pytest

from amodal.eval import pictures
from amodal.eval.pictures import panel, panel_figure
from amodal.eval.results import read_rows
from amodal.sample import Prediction, Sample

H, W, VIEW = 40, 80, 32


def scene(view_box) -> tuple[Sample, Prediction]:
    """A 40 × 80 image; A a 20 × 40 box, V its left half (IoU(V, A) = 0.5, occlusion 50 %); Â = A ∪ a column.
    The view pictures are square (32 × 32), as the model sees them."""
    amodal = np.zeros((H, W), bool)
    amodal[10:30, 20:60] = True
    visible = amodal.copy()
    visible[:, 40:] = False
    predicted = amodal.copy()
    predicted[10:30, 60:70] = True
    image = np.random.default_rng(0).integers(0, 256, (H, W, 3), dtype=np.uint8)
    square = np.random.default_rng(1).integers(0, 256, (VIEW, VIEW, 3), dtype=np.uint8)
    sample = Sample("toy", "img", "obj", image, visible, amodal)
    prediction = Prediction(mask=predicted, pictures={"area": amodal, "condition": square, "inpainted": square},
                            view_box=view_box)
    return sample, prediction


def shown(figure) -> dict[str, np.ndarray]:
    return {ax.get_title(): ax.images[0].get_array() for ax in figure.axes}


def test_a_panel_labels_every_stage_and_says_the_rows_ious_and_occlusion():
    sample, prediction = scene((0, 0, W, H))
    row = {"iou": 0.8, "occlusion_rate": 0.5}  # the row's, whatever the masks say
    figure = panel_figure(sample, prediction, row)
    assert list(shown(figure)) == ["image I", "visible V", "area M", "condition x", r"inpainted $\hat{x}_0$",
                                   r"prediction $\hat{A}$", "ground truth A"]
    assert figure._suptitle.get_text() == ("toy image img object obj    IoU(Â, A) = 80.0%    IoU(V, A) = 50.0%    "
                                           "occlusion 50.0%")


@pytest.mark.parametrize("view_box,aspect", [((0, 0, W, H), W / H), ((20, 0, 60, 40), 1.0)])
def test_x_and_x0_are_stretched_back_to_the_part_of_the_image_the_view_shows(view_box, aspect):
    """The whole image at a square view comes back at the image's 2 : 1; a square crop stays square."""
    sample, prediction = scene(view_box)
    tiles = shown(panel_figure(sample, prediction, {"iou": 0.8, "occlusion_rate": 0.5}))
    height, width = tiles["image I"].shape[:2]
    assert width / height == W / H
    for label in ("condition x", r"inpainted $\hat{x}_0$"):
        height, width = tiles[label].shape[:2]
        assert width / height == pytest.approx(aspect, abs=1 / VIEW)


def test_without_ground_truth_a_panel_says_so():
    sample, prediction = scene((0, 0, W, H))
    sample.amodal = None
    figure = panel_figure(sample, prediction, {"iou": None, "occlusion_rate": None})
    assert "ground truth A" not in shown(figure)
    assert figure._suptitle.get_text().endswith("no ground truth A: not scored")
    picture = panel(sample, prediction, {"iou": None, "occlusion_rate": None})
    assert picture.dtype == np.uint8 and picture.ndim == 3 and picture.shape[2] == 3


def test_a_runs_panels_print_the_ious_of_its_rows(run_app, monkeypatch):
    captions = []

    def spy(sample, row):
        captions.append(text := real(sample, row))
        return text

    real = pictures.caption
    monkeypatch.setattr(pictures, "caption", spy)
    _, run_dir = run_app("method=area", "area=rect", "dataset.n_images=1", "output.pictures=3")
    rows = [r for r in read_rows(run_dir / "results.jsonl") if r.get("iou") is not None][:3]
    assert len(captions) == len(rows) == len(list((run_dir / "pictures").glob("*.png"))) == 3
    for text, row in zip(captions, rows):
        assert f"object {row['object_id']} " in text
        assert f"IoU(Â, A) = {100 * row['iou']:.1f}%" in text
        assert f"occlusion {100 * row['occlusion_rate']:.1f}%" in text
    assert len({row["iou"] for row in rows}) > 1 and all(row["iou"] < 0.99 for row in rows)  # not a constant
