"""Panels of one object's way through the pipeline: image, V, M, condition x, inpainting x̂₀, Â and A, under
the object's IoU, the visible mask's IoU and its occlusion rate."""

from __future__ import annotations

import cv2
import numpy as np

from amodal.eval.metrics import iou
from amodal.sample import Prediction, Sample

COLOURS = {
    "visible": (64, 160, 255),
    "area": (255, 200, 0),
    "prediction": (255, 64, 64),
    "added": (255, 140, 0),
    "amodal": (64, 220, 64),
}
DPI = 100


def overlay(image: np.ndarray, mask: np.ndarray, colour: tuple[int, int, int], alpha: float = 0.45) -> np.ndarray:
    """The image with the mask tinted and outlined."""
    out = image.astype(np.float32).copy()
    out[mask] = (1 - alpha) * out[mask] + alpha * np.asarray(colour, np.float32)
    out = out.astype(np.uint8)
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    cv2.drawContours(out, contours, -1, colour, thickness=max(1, image.shape[0] // 256))
    return out


def prediction_overlay(image: np.ndarray, visible: np.ndarray, prediction: np.ndarray) -> np.ndarray:
    """The image with V tinted blue and what the method added to it, Â \\ V, in a colour of its own."""
    return overlay(overlay(image, visible, COLOURS["visible"]), prediction & ~visible, COLOURS["added"])


def _format_rate(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


def caption(sample: Sample, row: dict) -> str:
    """What a panel says about its object: ids, IoU(Â, A) (its row's), IoU(V, A) (the visible mask as the
    prediction, what the method has to beat) and the occlusion rate, in percent as every report."""
    ids = f"{sample.dataset} image {sample.image_id} object {sample.object_id}"
    if sample.amodal is None:
        return f"{ids}    no ground truth A: not scored"
    visible_iou = iou(sample.visible, sample.amodal)
    return (f"{ids}    IoU(Â, A) = {_format_rate(row.get('iou'))}    IoU(V, A) = {_format_rate(visible_iou)}    "
            f"occlusion {_format_rate(row.get('occlusion_rate'))}")


def at_image_aspect(picture: np.ndarray, view_box: tuple[int, int, int, int] | None) -> np.ndarray:
    """A picture at the model's view stretched back to the shape of the part of the image it shows (the whole
    image resized to a square view comes back at the image's aspect ratio), at its own height."""
    if view_box is None:
        return picture
    x0, y0, x1, y1 = view_box
    height = picture.shape[0]
    width = max(1, round(height * (x1 - x0) / (y1 - y0)))
    if width == picture.shape[1]:
        return picture
    return cv2.resize(picture, (width, height), interpolation=cv2.INTER_AREA if width < picture.shape[1] else
                      cv2.INTER_CUBIC)


def tiles(sample: Sample, prediction: Prediction) -> list[tuple[str, np.ndarray]]:
    """(label, picture) of each stage the method went through, in the order of the pipeline."""
    image, pictures = sample.image, prediction.pictures
    shown = [("image I", image), ("visible V", overlay(image, sample.visible, COLOURS["visible"]))]
    if "area" in pictures:
        shown.append(("area M", overlay(image, pictures["area"], COLOURS["area"])))
    for name, label in (("condition", "condition x"), ("inpainted", r"inpainted $\hat{x}_0$")):
        if name in pictures:
            shown.append((label, at_image_aspect(pictures[name], prediction.view_box)))
    shown.append((r"prediction $\hat{A}$", overlay(image, prediction.mask, COLOURS["prediction"])))
    if sample.amodal is not None:
        shown.append(("ground truth A", overlay(image, sample.amodal, COLOURS["amodal"])))
    return shown


def _tile(picture: np.ndarray, label: str, height: int) -> np.ndarray:
    width = max(1, round(picture.shape[1] * height / picture.shape[0]))
    tile = cv2.resize(picture, (width, height), interpolation=cv2.INTER_AREA)
    cv2.rectangle(tile, (0, 0), (width, 18), (0, 0, 0), -1)
    cv2.putText(tile, label, (4, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (255, 255, 255), 1, cv2.LINE_AA)
    return tile


def tile_row(tiles: list[tuple[str, np.ndarray]], height: int = 256) -> np.ndarray:
    """(label, picture) pairs side by side, each scaled to ``height`` and labelled: one uint8 RGB row (the
    galleries of amodal-compare, drawn by OpenCV: many panels, fast)."""
    separator = np.full((height, 4, 3), 255, np.uint8)
    row = []
    for label, picture in tiles:
        row += [_tile(picture, label, height), separator]
    return np.concatenate(row[:-1], axis=1)


def _at_height(picture: np.ndarray, height: int) -> np.ndarray:
    width = max(1, round(picture.shape[1] * height / picture.shape[0]))
    shrink = height < picture.shape[0]
    return cv2.resize(picture, (width, height), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def panel_figure(sample: Sample, prediction: Prediction, row: dict, height: int = 256):
    """A matplotlib figure: one row of labelled pictures, each at its own aspect ratio, under the caption."""
    from matplotlib.figure import Figure

    shown = tiles(sample, prediction)
    aspects = [picture.shape[1] / picture.shape[0] for _, picture in shown]
    inches = height / DPI
    figure = Figure(figsize=(inches * sum(aspects) + 0.1 * len(shown), inches + 0.6), dpi=DPI)
    axes = figure.subplots(1, len(shown), gridspec_kw={"width_ratios": aspects, "wspace": 0.04})
    for ax, (label, picture) in zip(np.atleast_1d(axes), shown):
        ax.imshow(_at_height(picture, height), interpolation="none")  # resized once by OpenCV: fast
        ax.set_title(label, fontsize=9)
        ax.set_axis_off()
    figure.suptitle(caption(sample, row), fontsize=10)
    figure.subplots_adjust(left=0.005, right=0.995, bottom=0.01, top=1 - 0.55 / (inches + 0.6))
    return figure


def panel(sample: Sample, prediction: Prediction, row: dict, height: int = 256) -> np.ndarray:
    """The panel as an uint8 RGB picture (pictures/ and W&B)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(panel_figure(sample, prediction, row, height))
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[:, :, :3].copy()
