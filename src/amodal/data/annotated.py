"""Datasets of annotated images: per object an amodal and a visible mask, stored as polygons or RLE.

COCO-A, BSDS-A, KINS, FishBowl and SAILVOS differ only in how their files list images and objects.
Each reads its file(s) into ``AnnotatedImage`` records whose masks stay *undecoded*; listing the
objects decodes nothing, and an image's masks are decoded together when one of its objects is
loaded (the others' visible masks come with every sample), then cached while its objects run.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from amodal.data.base import ObjectDataset
from amodal.data.files import find_image, read_image
from amodal.data.masks import decode
from amodal.errors import DatasetError, SampleError
from amodal.lru import LRUCache
from amodal.sample import ObjectKey, Sample


@dataclass(slots=True)
class Region:
    """One annotated object, masks as stored in the file."""

    object_id: str
    amodal: Any
    visible: Any = None
    """None: the file marks the object as unoccluded, so its visible mask is its amodal mask."""
    category: str = ""
    annotated_occlusion: float | None = None
    evaluated: bool = True
    """False: listed only as another object of the image (an occluder), not evaluated (e.g. stuff)."""


@dataclass(slots=True)
class AnnotatedImage:
    """An image and its regions as one annotation (one annotator) describes them."""

    image_id: str
    file: Path
    source: Path
    """The annotation file, named in errors."""
    regions: list[Region] = field(default_factory=list)
    size: tuple[int, int] | None = None
    """(height, width) the file states, checked against the image file; None where it states none."""
    group: str = ""
    """Which regions are one image's objects; the image id unless several annotators label one image."""


@dataclass
class _Decoded:
    image: np.ndarray
    file: Path
    masks: dict[str, tuple[np.ndarray, np.ndarray] | SampleError]


class AnnotatedDataset(ObjectDataset):
    """Base class: subclasses read their file(s) in ``read_images``; listing and loading live here."""

    mask_keys = ("amodal mask", "visible mask")
    """How the file calls the two masks, for errors."""
    annotations: Path
    """The annotation file (or folder) the subclass reads, named in errors."""
    category_names: dict[str, str] = {}
    """Category id → name, where the file numbers its categories (COCO-style files); read with the objects."""
    images_dir: Path | None = None
    """The folder the annotations' image file names are relative to; no image is read from outside it."""
    standard_annotations: tuple[str, ...] = ()
    """The dataset's standard layout: where its annotation file lies under ``dataset.root`` as distributed,
    the first that exists wins; ``{split}`` (and the dataset's own fields) filled in by ``standard``."""
    standard_images: tuple[str, ...] = ()
    """Where its image folder lies under ``dataset.root``, likewise."""

    @staticmethod
    def standard(places: tuple[str, ...], **fields: str) -> list[str]:
        """The places of a standard layout for these fields (``split=...``)."""
        return [place.format(**fields) for place in places]

    def __init__(self, limit: int | None = None) -> None:
        super().__init__(limit=limit)
        self._images: dict[str, AnnotatedImage] | None = None
        self._decoded: LRUCache[_Decoded | SampleError] = LRUCache(size=2)

    def read_images(self) -> Iterable[AnnotatedImage]:
        raise NotImplementedError

    def group_of(self, key: ObjectKey) -> str:
        """The group (``AnnotatedImage.group``) an object belongs to."""
        return key.image_id

    def filters(self) -> dict[str, object]:
        """The ``dataset.<key>: value`` settings that leave some objects unevaluated, named when none is left."""
        return {}

    def image_root(self) -> Path | None:
        """The folder every image file must lie in (``images_dir``)."""
        return self.images_dir

    def image_file(self, image: AnnotatedImage) -> Path:
        """The file of an image; raises ``SampleError`` when there is none or it lies outside the image
        folder (only its objects are skipped)."""
        return existing_image(inside(image.file, self.image_root(), image.source))

    @property
    def images(self) -> dict[str, AnnotatedImage]:
        if self._images is None:
            images: dict[str, AnnotatedImage] = {}
            for image in self.read_images():
                image.group = image.group or image.image_id
                if image.group in images:
                    raise DatasetError(
                        f"{image.source}: image {image.image_id} is annotated twice under one id; "
                        "each image (and annotator) must appear once"
                    )
                objects: set[str] = set()
                for region in image.regions:
                    if region.object_id in objects:
                        raise DatasetError(f"{image.source}: image {image.image_id} has two objects with id "
                                           f"{region.object_id}; each object needs its own id")
                    objects.add(region.object_id)
                images[image.group] = image
            self._images = images
        return self._images

    def _list_objects(self) -> list[ObjectKey]:
        keys = [
            ObjectKey(image.image_id, region.object_id)
            for image in self.images.values()
            for region in image.regions
            if region.evaluated
        ]
        if not keys:  # refused before the run starts, so nothing already in results.jsonl is touched
            listed = sum(len(image.regions) for image in self.images.values())
            settings = " ".join(f"dataset.{k}={_setting(v)}" for k, v in self.filters().items())
            if listed and settings:
                raise DatasetError(
                    f"{self.annotations}: none of its {listed} objects is left to evaluate with {settings}; "
                    "change that setting, or check that the files belong together"
                )
            raise DatasetError(f"{self.annotations} lists no object to evaluate; is it the right file?")
        return keys

    def load(self, key: ObjectKey) -> Sample:
        image = self.images.get(self.group_of(key))
        region = (
            None if image is None else next((r for r in image.regions if r.object_id == key.object_id), None)
        )
        if image is None or region is None:
            raise SampleError(f"object {key.object_id} of image {key.image_id} is not in the annotations")
        decoded = self._decoded.get(image.group, lambda: self._decode(image))
        if isinstance(decoded, SampleError):
            raise decoded
        own = decoded.masks[key.object_id]
        if isinstance(own, SampleError):
            raise own
        visible, amodal = own
        others = tuple(
            masks[0]
            for object_id, masks in decoded.masks.items()
            if object_id != key.object_id and not isinstance(masks, SampleError)
        )
        return Sample(
            dataset=self.name,
            image_id=key.image_id,
            object_id=key.object_id,
            image=decoded.image,
            visible=visible,
            amodal=amodal,
            category=region.category,
            others=others,
            annotated_occlusion=region.annotated_occlusion,
            image_file=str(decoded.file),
        )

    def _decode(self, image: AnnotatedImage) -> _Decoded | SampleError:
        """The image and every region's (visible, amodal) masks; a region that fails holds its error,
        so only that object is skipped."""
        try:
            file = self.image_file(image)
            pixels = read_image(file)
        except SampleError as err:
            return err
        shape = pixels.shape[:2]
        if image.size is not None and tuple(image.size) != shape:
            return SampleError(
                f"image file {file} is {shape[1]}×{shape[0]} (w×h) but {image.source.name} says "
                f"{image.size[1]}×{image.size[0]}; are dataset.images the original, unresized images?"
            )
        masks: dict[str, tuple[np.ndarray, np.ndarray] | SampleError] = {}
        for region in image.regions:
            what = f"{image.source.name}: image {image.image_id} object {region.object_id}"
            try:
                amodal = decode(region.amodal, shape, f"{what}: {self.mask_keys[0]}")
                visible = (
                    amodal
                    if region.visible is None
                    else decode(region.visible, shape, f"{what}: {self.mask_keys[1]}")
                )
                masks[region.object_id] = (visible, amodal)
            except SampleError as err:
                masks[region.object_id] = err
        return _Decoded(pixels, file, masks)


def _setting(value: object) -> str:
    """A config value as it is written on the command line (``false``, ``null``, ``0.75``)."""
    if isinstance(value, bool) or value is None:
        return {True: "true", False: "false", None: "null"}[value]
    return str(value)


def inside(path: Path, root: Path | None, source: Path) -> Path:
    """``path`` when, as written, it lies in ``root``; an absolute ``file_name``, or one that climbs out with
    ``..``, is refused before anything is read (links inside the folder are followed: they are the
    user's choice)."""
    if root is None:
        return path
    folder = os.path.normpath(os.path.abspath(root))
    if os.path.commonpath([folder, os.path.normpath(os.path.abspath(path))]) != folder:
        raise SampleError(f"image file {path} lies outside the image folder {root} (an absolute file name or one "
                          f"climbing out with '..' in {source.name}): refused, nothing read")
    return path


def existing_image(path: Path) -> Path:
    """``path``, or the image of that name with a usual suffix when the file names it without one."""
    if path.is_file():
        return path
    found = find_image(path.parent, path.name) if path.parent.is_dir() else None
    return found or path
