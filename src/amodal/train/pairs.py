"""Training pairs for the synthetic backbone: what the method will ask, with the answer it should give.

At inference (``method/pipeline.py``) the model sees an object-centred crop around M = hull(V), in
which everything but V's pixels is replaced by the histogram background x_bck (§4.2), and it inpaints
M. So a training pair is built from the same crop of a synthetic scene:

- the *target* y is the object's unoccluded rendering composited, with its anti-aliased edge, on the
  histogram background that the method would build from V: the completed object on the very
  background the method will show around it;
- the *mask* is drawn from several kinds (``masks.py``), chiefly hull(V) ∪ hidden part and
  hull(V), so that completing an occluded shape inside M is what the model learns;
- the *masked image* is y outside the mask and 0 (mid-grey) inside, as diffusers' pipeline makes it.

Objects are taken from scenes of a training seed that no evaluation uses, each crop framed the way
``ViewSpec(mode="crop")`` frames it at inference (with a random context factor); an extra occluder
(another object's outline) is laid over half of them to vary the occlusions beyond the scenes' own.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from amodal.data.synthetic import render_scene
from amodal.errors import ConfigError
from amodal.method.area import convex_hull_area
from amodal.method.background import HistogramBackground
from amodal.method.condition import condition_image, to_model_space
from amodal.method.view import ViewSpec
from amodal.morphology import dilate
from amodal.seeding import TRAINING_VIEWS_STREAM, numpy_rng
from amodal.train.masks import KINDS, draw_mask, place_occluder

log = logging.getLogger(__name__)

FIELDS = ("image", "rendering", "alpha", "amodal", "visible")


@dataclass
class ObjectViews:
    """N objects, each at its crop: the scene image, the object's rendering premultiplied by its
    coverage (uint8), the coverage itself (``alpha``, uint8), and A and V (bool)."""

    image: np.ndarray  # N×h×w×3 uint8
    rendering: np.ndarray  # N×h×w×3 uint8
    alpha: np.ndarray  # N×h×w uint8
    amodal: np.ndarray  # N×h×w bool
    visible: np.ndarray  # N×h×w bool

    def __len__(self) -> int:
        return len(self.image)

    def save(self, path: Path) -> None:
        np.savez_compressed(path, **{name: getattr(self, name) for name in FIELDS})

    @classmethod
    def load(cls, path: Path) -> ObjectViews:
        """Views saved by ``save``; a cut-off or foreign file is refused in one line naming it."""
        try:
            with np.load(path, allow_pickle=False) as data:
                return cls(**{name: data[name] for name in FIELDS})
        except Exception as err:  # np.load raises anything a cut-off or foreign file provokes
            reason = str(err).strip().split(". ")[0] or type(err).__name__
            raise ConfigError(f"{path} is not a readable file of training views ({type(err).__name__}: {reason}); "
                              "delete it to render the views afresh") from None


def _render(job: tuple[int, int, int]):
    return render_scene(*job)


def object_views(seed: int, scenes: int, scene_size: int, view: int, context: tuple[float, float],
                 min_visible: int = 64, progress: bool = True, workers: int = 0) -> ObjectViews:
    """Every object of scenes 0..scenes−1 of ``seed`` with at least ``min_visible`` visible pixels,
    cropped around hull(V) as the method's view does, with a context factor drawn from ``context``.
    Scenes are rendered in ``workers`` processes (0: in this one); the result does not depend on it."""
    rng = numpy_rng(seed, TRAINING_VIEWS_STREAM)
    jobs = [(seed, index, scene_size) for index in range(scenes)]
    with multiprocessing.get_context("fork").Pool(workers) if workers > 0 else contextlib.nullcontext() as pool:
        rendered = pool.imap(_render, jobs, chunksize=4) if pool else map(_render, jobs)
        scenes_in_order = tqdm(rendered, total=scenes, desc="rendering scenes", unit="scene", disable=not progress)
        out = _crop_objects(scenes_in_order, view, context, min_visible, rng)
    return ObjectViews(**{name: np.stack(values) for name, values in out.items()})


def _crop_objects(scenes, view: int, context: tuple[float, float], min_visible: int,
                  rng: np.random.Generator) -> dict[str, list]:
    out: dict[str, list] = {name: [] for name in FIELDS}
    for scene in scenes:
        for amodal, visible, unoccluded in zip(scene.amodal, scene.visible, scene.unoccluded, strict=True):
            if visible.sum() < min_visible:
                continue
            spec = ViewSpec(mode="crop", context=float(rng.uniform(*context)), size=view)
            crop = spec.make(convex_hull_area(visible))
            coverage = crop.image(amodal.astype(np.uint8) * 255)
            out["image"].append(crop.image(scene.image))
            out["rendering"].append(crop.image(unoccluded))
            out["alpha"].append(coverage)
            out["amodal"].append(crop.mask(amodal))
            out["visible"].append(crop.mask(visible))
    return out


def dihedral(array: np.ndarray, k: int, flip: bool) -> np.ndarray:
    """One of the 8 symmetries of the square, on the first two axes."""
    out = np.rot90(array, k, axes=(0, 1))
    return np.ascontiguousarray(out[:, ::-1] if flip else out)


@dataclass
class Pair:
    target: np.ndarray  # y: float32 h×w×3 in [−1, 1]
    mask: np.ndarray  # bool h×w
    masked: np.ndarray  # y ⊙ (1 − mask): float32 h×w×3
    condition: np.ndarray  # eq. 8's x for this object (the VAE learns to encode it too)
    focus: np.ndarray  # bool h×w: the object and the mask, grown by 2 px (weighted up in the VAE's loss)
    amodal: np.ndarray  # A, bool h×w

    def filled(self) -> np.ndarray:
        """y overfilled to the mask (``overfilled``); made only for the pairs that ask for it."""
        return overfilled(self.target, self.amodal, self.mask)


def overfilled(target: np.ndarray, amodal: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """y with every pixel of mask \\ A given the colour of its nearest object pixel: the object grown to
    fill the mask, the wrong answer (hull filling) a weak model draws and then sees again through eq. 7."""
    if not amodal.any():
        return target.copy()
    _, labels = cv2.distanceTransformWithLabels((~amodal).astype(np.uint8), cv2.DIST_L2, 5,
                                                labelType=cv2.DIST_LABEL_PIXEL)
    rows, columns = np.nonzero(amodal)  # object pixels: each has its own label, the nearest one of the others
    nearest = np.zeros(rows.size + 1, np.int64)
    nearest[labels[amodal]] = np.arange(rows.size)
    index = nearest[labels]
    grown = target[rows[index], columns[index]]
    return np.where((mask & ~amodal)[..., None], grown, target).astype(np.float32)


class PairMaker:
    """Draws training pairs from ``ObjectViews``: a pure function of (item, generator)."""

    def __init__(self, views: ObjectViews, mask_weights: dict[str, float], occluder: float = 0.5,
                 object_noise: float = 0.3, background_kernel: int = 21) -> None:
        unknown = set(mask_weights) - set(KINDS)
        if unknown:
            raise ValueError(f"unknown mask kinds {sorted(unknown)}; use {', '.join(KINDS)}")
        self.views = views
        self.kinds = list(mask_weights)
        weights = np.asarray([mask_weights[k] for k in self.kinds], np.float64)
        self.weights = weights / weights.sum()
        self.occluder, self.object_noise = occluder, object_noise
        self.background = HistogramBackground(kernel=background_kernel)

    def __call__(self, index: int, rng: np.random.Generator) -> Pair:
        views = self.views
        k, flip, channels = int(rng.integers(4)), bool(rng.integers(2)), rng.permutation(3)

        def get(name: str, i: int) -> np.ndarray:
            array = dihedral(getattr(views, name)[i], k, flip)
            return array[..., channels] if array.ndim == 3 else array

        image, rendering, alpha = get("image", index), get("rendering", index), get("alpha", index)
        amodal, visible = get("amodal", index), get("visible", index)
        other = get("amodal", int(rng.integers(len(views))))
        if rng.random() < self.occluder:  # a further occluder, unless it would hide (almost) everything
            cover = place_occluder(amodal, other, rng)
            if (visible & ~cover).sum() >= 0.25 * visible.sum():
                visible = visible & ~cover
        background = self.background(image, visible, rng)
        coverage = alpha.astype(np.float32)[..., None] / 255.0
        target = to_model_space(np.clip(rendering + (1.0 - coverage) * background, 0, 255))
        kind = self.kinds[int(rng.choice(len(self.kinds), p=self.weights))]
        mask = draw_mask(kind, visible, amodal, other, rng)
        masked = np.where(mask[..., None], 0.0, target).astype(np.float32)
        condition = condition_image(image, visible, background, self.object_noise, rng)
        focus = dilate(amodal | mask, 2)
        target = target.astype(np.float32)
        return Pair(target, mask, masked, condition, focus, amodal)


def images_for_vae(pair: Pair, rng: np.random.Generator) -> np.ndarray:
    """The autoencoder must encode what the method feeds it: targets, condition images (noised V on the
    background, eqs. 8–9) and masked images (grey holes). One of the three, at random."""
    choice = rng.choice(3, p=[0.4, 0.4, 0.2])
    return (pair.target, pair.condition, pair.masked)[choice]


def random_crop(image: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    h, w = image.shape[:2]
    y, x = int(rng.integers(0, h - size + 1)), int(rng.integers(0, w - size + 1))
    return image[y : y + size, x : x + size]

