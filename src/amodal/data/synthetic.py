"""Synthetic scenes with exact ground truth: the embedded default dataset.

Each scene is a textured background with textured shapes (ellipses, polygons, stars, rings, rounded
rectangles, crescents) drawn back to front, so later shapes occlude earlier ones. Every object comes
with its exact amodal mask and its *unoccluded rendering* (the object alone on black), which the
oracle method uses to prove the geometry of the whole loop. Scenes are a pure function of
(``seed``, scene index): the same seed gives the same pixels on every machine.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from amodal.data.base import ObjectDataset, others_of
from amodal.errors import ConfigError
from amodal.lru import LRUCache
from amodal.sample import ObjectKey, Sample

SHAPES = ("ellipse", "polygon", "star", "ring", "rounded_rect", "crescent")
TEXTURES = ("stripes", "checker", "gradient", "dots", "mottled")
SPLITS = {"test": (), "train": (1,), "val": (2,)}
"""Disjoint random streams: the scenes of one seed differ between splits (test is the default)."""
MIN_OBJECT_VALUE = 24
"""Every channel of every object pixel is at least this, so an object never renders as black."""


@dataclass
class Scene:
    image: np.ndarray  # uint8 H×W×3
    amodal: list[np.ndarray]  # bool H×W per object, back to front
    visible: list[np.ndarray]
    unoccluded: list[np.ndarray]  # uint8 H×W×3: each object alone on black
    shapes: list[str]


def _colour(rng: np.random.Generator) -> np.ndarray:
    """A saturated colour away from black (HSV with high value)."""
    hsv = np.array([[[rng.integers(0, 180), rng.integers(90, 256), rng.integers(110, 256)]]], np.uint8)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0].astype(np.float32)


def _texture(kind: str, rng: np.random.Generator, size: int) -> np.ndarray:
    """A full-frame uint8 texture; the object shows it through its mask."""
    a, b = _colour(rng), _colour(rng)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    angle = rng.uniform(0, np.pi)
    u = xx * np.cos(angle) + yy * np.sin(angle)
    if kind == "stripes":
        period = rng.uniform(10, 40)
        t = (np.sin(2 * np.pi * u / period) > 0).astype(np.float32)
    elif kind == "checker":
        cell = rng.uniform(10, 32)
        v = -xx * np.sin(angle) + yy * np.cos(angle)
        t = ((np.floor(u / cell) + np.floor(v / cell)) % 2).astype(np.float32)
    elif kind == "gradient":
        t = (u - u.min()) / max(float(np.ptp(u)), 1.0)
    elif kind == "dots":
        cell = rng.uniform(14, 30)
        v = -xx * np.sin(angle) + yy * np.cos(angle)
        du, dv = (u % cell) - cell / 2, (v % cell) - cell / 2
        t = (du**2 + dv**2 < (cell / 3.5) ** 2).astype(np.float32)
    else:  # mottled: smooth low-frequency noise
        low = rng.random((6, 6)).astype(np.float32)
        t = cv2.resize(low, (size, size), interpolation=cv2.INTER_CUBIC)
        t = np.clip((t - t.min()) / max(float(np.ptp(t)), 1e-6), 0, 1)
    image = a[None, None, :] * (1 - t[..., None]) + b[None, None, :] * t[..., None]
    image += rng.normal(0, 4, size=image.shape).astype(np.float32)
    return np.clip(image, MIN_OBJECT_VALUE, 255).astype(np.uint8)


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A muted, smooth background with some low-contrast clutter, distinct from the objects."""
    corners = rng.uniform(40, 200, size=(2, 2, 3)).astype(np.float32)
    image = cv2.resize(corners, (size, size), interpolation=cv2.INTER_LINEAR)
    low = rng.normal(0, 18, size=(8, 8, 3)).astype(np.float32)
    image += cv2.resize(low, (size, size), interpolation=cv2.INTER_CUBIC)
    for _ in range(int(rng.integers(2, 6))):  # faint clutter strokes
        p1 = tuple(int(v) for v in rng.integers(0, size, 2))
        p2 = tuple(int(v) for v in rng.integers(0, size, 2))
        shade = float(rng.uniform(-25, 25))
        cv2.line(image, p1, p2, (shade + 128,) * 3, int(rng.integers(2, 8)))
    image += rng.normal(0, 3, size=image.shape).astype(np.float32)
    return np.clip(image, 0, 255).astype(np.uint8)


def _polygon(center: np.ndarray, radii: np.ndarray, rotation: float) -> np.ndarray:
    angles = rotation + np.linspace(0, 2 * np.pi, len(radii), endpoint=False)
    points = center[None, :] + radii[:, None] * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    return np.round(points).astype(np.int32)


def _shape_mask(kind: str, rng: np.random.Generator, center: np.ndarray, radius: float, size: int) -> np.ndarray:
    canvas = np.zeros((size, size), np.uint8)
    rotation = float(rng.uniform(0, 2 * np.pi))
    c = tuple(int(v) for v in np.round(center))
    if kind == "ellipse":
        axes = (int(radius), int(radius * rng.uniform(0.45, 1.0)))
        cv2.ellipse(canvas, c, axes, np.degrees(rotation), 0, 360, 1, -1)
    elif kind == "polygon":
        sides = int(rng.integers(3, 9))
        cv2.fillPoly(canvas, [_polygon(center, np.full(sides, radius), rotation)], 1)
    elif kind == "star":
        tips = int(rng.integers(4, 8))
        radii = np.tile([radius, radius * rng.uniform(0.4, 0.6)], tips)
        cv2.fillPoly(canvas, [_polygon(center, radii, rotation)], 1)
    elif kind == "ring":
        cv2.circle(canvas, c, int(radius), 1, -1)
        cv2.circle(canvas, c, int(radius * rng.uniform(0.35, 0.6)), 0, -1)
    elif kind == "rounded_rect":
        half = np.array([radius, radius * rng.uniform(0.4, 0.9)])
        corner = float(min(half) * 0.35)
        box = cv2.boxPoints(((float(center[0]), float(center[1])), tuple(2 * (half - corner)), np.degrees(rotation)))
        cv2.fillPoly(canvas, [np.round(box).astype(np.int32)], 1)
        cv2.polylines(canvas, [np.round(box).astype(np.int32)], True, 1, thickness=max(1, int(2 * corner)))
    else:  # crescent
        cv2.circle(canvas, c, int(radius), 1, -1)
        offset = radius * rng.uniform(0.45, 0.7) * np.array([np.cos(rotation), np.sin(rotation)])
        cv2.circle(canvas, tuple(int(v) for v in np.round(center + offset)), int(radius * 0.85), 0, -1)
    return canvas.astype(bool)


def _occlusion(visible: np.ndarray, amodal: np.ndarray) -> float:
    return 1.0 - visible.sum() / max(int(amodal.sum()), 1)


def render_scene(
    seed: int,
    index: int,
    size: int = 512,
    objects: tuple[int, int] = (3, 6),
    max_occlusion: float = 0.7,
    min_area: float = 0.006,
    split: str = "test",
) -> Scene:
    """Scene ``index`` of ``seed``: objects are placed back to front, each new one partly covering
    earlier ones while keeping every earlier object's occlusion at most ``max_occlusion``; each object
    covers at least ``min_area`` of the image."""
    count = _object_count(seed, index, objects, split)
    rng = np.random.default_rng([seed, index, 1, *SPLITS[split]])
    image = _background(rng, size)
    amodal: list[np.ndarray] = []
    visible: list[np.ndarray] = []
    textures: list[np.ndarray] = []
    shapes: list[str] = []
    for _ in range(count):
        kind = SHAPES[int(rng.integers(len(SHAPES)))]
        best: tuple[float, np.ndarray] | None = None
        for _attempt in range(40):
            radius = float(rng.uniform(0.09, 0.24) * size)
            if amodal and rng.random() < 0.85:  # near an earlier object, to occlude part of it
                rates = [_occlusion(v, a) for v, a in zip(visible, amodal)]
                j = int(np.argmin(rates)) if rng.random() < 0.6 else int(rng.integers(len(amodal)))
                ys, xs = np.nonzero(amodal[j])
                anchor = np.array([xs.mean(), ys.mean()])
                direction = rng.normal(size=2)
                direction /= np.linalg.norm(direction) + 1e-9
                reach = np.sqrt(amodal[j].sum() / np.pi) + radius
                center = anchor + direction * reach * rng.uniform(0.35, 1.1)
            else:
                center = rng.uniform(0.25 * size, 0.75 * size, size=2)
            mask = _shape_mask(kind, rng, center, radius, size)
            if mask.sum() < min_area * size * size:
                continue
            worst = max((_occlusion(v & ~mask, a) for v, a in zip(visible, amodal)), default=0.0)
            if worst <= max_occlusion:
                best = (worst, mask)
                break
            if best is None or worst < best[0]:
                best = (worst, mask)
        if best is None:  # every attempt was too small: a plain disc in the middle
            disc = np.zeros((size, size), np.uint8)
            cv2.circle(disc, (size // 2, size // 2), size // 6, 1, -1)
            best = (0.0, disc.astype(bool))
        mask = best[1]
        visible = [v & ~mask for v in visible]
        amodal.append(mask)
        visible.append(mask.copy())
        texture = _texture(TEXTURES[int(rng.integers(len(TEXTURES)))], rng, size)
        image[mask] = texture[mask]
        textures.append(texture)
        shapes.append(kind)
    unoccluded = [np.where(a[..., None], t, 0).astype(np.uint8) for a, t in zip(amodal, textures)]
    return Scene(image=image, amodal=amodal, visible=visible, unoccluded=unoccluded, shapes=shapes)


def _object_count(seed: int, index: int, objects: tuple[int, int], split: str = "test") -> int:
    """Drawn from its own stream so listing the objects needs no rendering."""
    low, high = objects
    return int(np.random.default_rng([seed, index, 0, *SPLITS[split]]).integers(low, high + 1))


_SCENES: LRUCache[Scene] = LRUCache(size=16)
"""Scenes rendered in this process, by everything that draws them: the jobs of a multirun, each with a
dataset of its own, render each scene once (16: the default n_images; about 7 MB a scene at 512 px)."""


def read_only(scene: Scene) -> Scene:
    """The scene with its arrays locked, as scenes are shared: what changes one raises (``load`` hands out
    copies), so that nothing leaks into another object or run."""
    for array in (scene.image, *scene.amodal, *scene.visible, *scene.unoccluded):
        array.setflags(write=False)
    return scene


class SyntheticDataset(ObjectDataset):
    """``n_images`` seeded scenes of ``size``×``size`` pixels with 3–6 objects each."""

    name = "synthetic"
    extras = ("unoccluded",)

    def __init__(
        self,
        n_images: int = 16,
        seed: int = 0,
        size: int = 512,
        objects: tuple[int, int] | list[int] = (3, 6),
        max_occlusion: float = 0.7,
        split: str = "test",
        limit: int | None = None,
    ) -> None:
        super().__init__(limit=limit)
        if split not in SPLITS:
            raise ConfigError(f"dataset.split={split!r}: use one of {', '.join(SPLITS)}")
        self.split = split
        if n_images < 1 or size < 64:
            raise ConfigError(f"dataset: need n_images ≥ 1 and size ≥ 64, got n_images={n_images} size={size}")
        low, high = objects
        if not 1 <= low <= high:
            raise ConfigError(f"dataset.objects={list(objects)}: need [min, max] with 1 ≤ min ≤ max")
        self.n_images, self.seed, self.size = n_images, seed, size
        self.objects = (int(low), int(high))
        self.max_occlusion = max_occlusion

    def _list_objects(self) -> list[ObjectKey]:
        keys = []
        for index in range(self.n_images):
            for obj in range(_object_count(self.seed, index, self.objects, self.split)):
                keys.append(ObjectKey(f"scene{index:05d}", f"{obj}"))
        return keys

    def scene(self, image_id: str) -> Scene:
        index = int(image_id.removeprefix("scene"))
        args = (self.seed, index, self.size, self.objects, self.max_occlusion, self.split)
        return _SCENES.get(args, lambda: read_only(render_scene(*args[:5], split=self.split)))

    def load(self, key: ObjectKey) -> Sample:
        """The object with arrays of its own (copies of the shared scene's: writable, as every dataset's)."""
        scene = self.scene(key.image_id)
        i = int(key.object_id)
        return Sample(
            dataset=self.name,
            image_id=key.image_id,
            object_id=key.object_id,
            image=scene.image.copy(),
            visible=scene.visible[i].copy(),
            amodal=scene.amodal[i].copy(),
            category=scene.shapes[i],
            others=tuple(mask.copy() for mask in others_of(scene.visible, i)),
            extras={"unoccluded": scene.unoccluded[i].copy()},
        )
