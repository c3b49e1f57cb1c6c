"""Panels of one object's way through the pipeline: image, V, M, condition, inpainting, Â and A."""

from __future__ import annotations

import cv2
import numpy as np

from amodal.sample import Prediction, Sample

COLOURS = {
    "visible": (64, 160, 255),
    "area": (255, 200, 0),
    "prediction": (255, 64, 64),
    "added": (255, 140, 0),
    "amodal": (64, 220, 64),
}


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


def _tile(picture: np.ndarray, label: str, height: int) -> np.ndarray:
    width = max(1, round(picture.shape[1] * height / picture.shape[0]))
    tile = cv2.resize(picture, (width, height), interpolation=cv2.INTER_AREA)
    cv2.rectangle(tile, (0, 0), (width, 18), (0, 0, 0), -1)
    cv2.putText(tile, label, (4, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (255, 255, 255), 1, cv2.LINE_AA)
    return tile


def panel(sample: Sample, prediction: Prediction, height: int = 256) -> np.ndarray:
    """One row of labelled tiles, uint8 RGB."""
    image = sample.image
    tiles = [("image", image), ("visible V", overlay(image, sample.visible, COLOURS["visible"]))]
    pictures = prediction.pictures
    if "area" in pictures:
        tiles.append(("area M", overlay(image, pictures["area"], COLOURS["area"])))
    for name, label in (("condition", "condition x"), ("inpainted", "inpainted x0")):
        if name in pictures:
            tiles.append((label, pictures[name]))
    tiles.append(("prediction", overlay(image, prediction.mask, COLOURS["prediction"])))
    if sample.amodal is not None:
        tiles.append(("ground truth A", overlay(image, sample.amodal, COLOURS["amodal"])))
    return tile_row(tiles, height)


def tile_row(tiles: list[tuple[str, np.ndarray]], height: int = 256) -> np.ndarray:
    """(label, picture) pairs side by side, each scaled to ``height`` and labelled: one uint8 RGB row."""
    separator = np.full((height, 4, 3), 255, np.uint8)
    row = []
    for label, picture in tiles:
        row += [_tile(picture, label, height), separator]
    return np.concatenate(row[:-1], axis=1)

