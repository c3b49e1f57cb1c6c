"""COCO-A and BSDS-A (Zhu et al., "Semantic Amodal Segmentation"): the COCOA JSON format.

    {"images": [{"id", "file_name", "height", "width", ...}],
     "annotations": [{"id", "image_id", "regions": [
         {"segmentation": [x1, y1, x2, y2, ...],          amodal mask: one flat polygon
          "visible_mask": {"size": [h, w], "counts": ...}, compressed RLE, only where occluded
          "invisible_mask": {...}, "occlude_rate", "order", "isStuff", "name", "area"}, ...]}]}

A region without ``visible_mask`` is unoccluded: its visible mask is its amodal mask. A *per-image*
annotation file (one annotation object with ``regions``, as COCOA's per-image files and deocclusion's
demo data are) or a folder of them loads too; its image is the file of the same name beside it (or
named by the annotation's ``url``).

Ids: the image id is the file's ``image_id``; an object is ``<annotation id>_<region index>``, so the
same region keeps its id whatever is filtered. BSDS-A labels each image by several annotators, one
annotation each. ``annotators: first`` (the default) keeps the first annotation of each image in file
order, as the official amodalAPI evaluation does (``gt[0]``); with ``annotators: all`` every annotator's
regions are objects of their own, and the other objects a sample carries are that annotator's. Stuff
regions (``isStuff``) are evaluated only with ``stuff: true`` (the amodalAPI's ``onlyThings``); they
always count as other objects of their image.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from amodal.data.annotated import AnnotatedDataset, AnnotatedImage, Region
from amodal.data.annotations import (
    file_name,
    image_size,
    locate,
    natural_key,
    rate,
    read_json,
    require,
    require_list,
    root_path,
    text_id,
)
from amodal.data.files import find_image, require_regular
from amodal.errors import ConfigError, DatasetError, SampleError
from amodal.sample import ObjectKey

HINT = "; a COCOA file has 'images' and 'annotations' whose items hold 'regions'"


class CocoaDataset(AnnotatedDataset):
    """COCO-A: ``COCO_amodal_{split}2014.json`` over COCO 2014 images."""

    name = "cocoa"
    mask_keys = ("segmentation", "visible_mask")
    title = "COCO-A"
    standard_annotations = ("annotations/COCO_amodal_{split}2014.json", "COCO_amodal_{split}2014.json")
    standard_images = ("{split}2014",)

    def __init__(
        self,
        root: str | None = None,
        annotations: str | None = None,
        images: str | None = None,
        split: str = "val",
        stuff: bool = False,
        annotators: str = "first",
        limit: int | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__(limit=limit)
        self.name = name or self.name
        if annotators not in ("all", "first"):
            raise ConfigError(f"dataset.annotators={annotators}: use first (the official protocol) or all")
        self.stuff, self.annotators, self.split = bool(stuff), annotators, split
        what = f"{self.title} annotation file"
        path = locate(annotations, None, (), "annotations", what) if annotations else None
        per_image = path is not None and self._is_per_image(path)
        self.root = root_path(root, self.title, needed=path is None or not (images or per_image))
        if path is None:
            standard = self.standard(self.standard_annotations, split=split)
            if (
                self.root is not None
                and not any((self.root / p).exists() for p in standard)
                and any(self.root.glob("*.json"))
            ):
                path = self.root  # a folder of per-image annotation files
            else:
                path = locate(None, self.root, standard, "annotations", what)
            per_image = self._is_per_image(path)
        self.annotations, self.per_image = path, per_image
        if images:
            self.images_dir = locate(images, None, (), "images", f"{self.title} image folder")
        elif self.per_image:
            self.images_dir = self.annotations if self.annotations.is_dir() else self.annotations.parent
        else:
            standard_images = self.standard(self.standard_images, split=split)
            self.images_dir = locate(None, self.root, standard_images, "images", f"{self.title} image folder")

    @staticmethod
    def _is_per_image(path: Path) -> bool:
        """A folder of per-image files, or one: it starts with its annotation object (peeking avoids
        parsing a big file twice)."""
        if path.is_dir():
            return True
        require_regular(path, "annotation", DatasetError)
        with path.open("rb") as handle:
            head = handle.read(1 << 16)
        return b'"regions"' in head and b'"annotations"' not in head

    def filters(self) -> dict[str, object]:
        return {} if self.stuff else {"stuff": False}

    def group_of(self, key: ObjectKey) -> str:
        return f"{key.image_id}#{key.object_id.rsplit('_', 1)[0]}"

    def read_images(self) -> Iterable[AnnotatedImage]:
        if self.per_image:
            files = (
                sorted(self.annotations.glob("*.json"), key=lambda p: natural_key(p.stem))
                if self.annotations.is_dir()
                else [self.annotations]
            )
            if not files:
                raise DatasetError(f"{self.annotations} holds no .json annotation files")
            seen: set[str] = set()
            for path in files:
                image = self._per_image(path)
                if self.annotators == "first" and image.image_id in seen:
                    continue
                seen.add(image.image_id)
                yield image
            return
        path = self.annotations
        data = read_json(path)
        require(data, ["images", "annotations"], path, "the file", HINT)
        by_image: dict[str, list[tuple[int, dict]]] = {}
        for index, annotation in enumerate(require_list(data, "annotations", path, "the file", HINT)):
            require(annotation, ["image_id", "regions"], path, f"annotation {index}", HINT)
            by_image.setdefault(str(annotation["image_id"]), []).append((index, annotation))
        image_ids: dict[str, tuple[int, object]] = {}
        for index, entry in enumerate(require_list(data, "images", path, "the file", HINT)):
            require(entry, ["id", "file_name"], path, f"image {index}", HINT)
            image_id = text_id(entry["id"], index, image_ids, path, "image")
            annotations = by_image.pop(image_id, [])
            if self.annotators == "first":
                annotations = annotations[:1]
            size = image_size(entry, path, f"image {index}", HINT)
            file = file_name(entry, path, f"image {index}", HINT)
            for position, annotation in annotations:
                yield self._image(
                    image_id,
                    self.images_dir / file,
                    annotation,
                    str(annotation.get("id", position)),
                    path,
                    size,
                )
        if by_image:
            image_id = next(iter(by_image))
            raise DatasetError(f"{path}: annotations refer to image {image_id}, which is not in 'images'")

    def _per_image(self, path: Path) -> AnnotatedImage:
        data = read_json(path)
        require(data, ["regions"], path, "the file", "; a per-image COCOA file holds 'regions'")
        image_id = str(data.get("image_id", path.stem))
        candidates = [path.stem] + ([Path(str(data["url"])).stem] if data.get("url") else [])
        try:
            file = next(
                (f for f in (find_image(self.images_dir, c) for c in candidates) if f is not None),
                self.images_dir / f"{path.stem}.jpg",
            )
        except SampleError as err:  # x.png beside x.jpg: which one the annotation means is unknown
            raise DatasetError(str(err)) from None
        return self._image(image_id, file, data, str(data.get("id", path.stem)), path, None)

    def _image(
        self,
        image_id: str,
        file: Path,
        annotation: dict,
        annotation_id: str,
        source: Path,
        size: tuple[int, int] | None,
    ) -> AnnotatedImage:
        regions = []
        if not isinstance(annotation["regions"], list):
            kind = type(annotation["regions"]).__name__
            raise DatasetError(f"{source}: image {image_id}'s 'regions' is {kind}, expected a list{HINT}")
        for index, region in enumerate(annotation["regions"]):
            if not isinstance(region, dict):
                raise DatasetError(f"{source}: image {image_id} region {index} is not a JSON object{HINT}")
            occlusion = rate(region.get("occlude_rate"), source, f"image {image_id} region {index}", HINT)
            regions.append(
                Region(
                    object_id=f"{annotation_id}_{index}",
                    amodal=region.get("segmentation"),
                    visible=region.get("visible_mask"),
                    category=str(region.get("name", "")).strip(),
                    annotated_occlusion=occlusion,
                    evaluated=self.stuff or not region.get("isStuff", 0),
                )
            )
        return AnnotatedImage(
            image_id=image_id,
            file=file,
            source=source,
            regions=regions,
            size=size,
            group=f"{image_id}#{annotation_id}",
        )


class BsdsaDataset(CocoaDataset):
    """BSDS-A: ``BSDS_amodal_{split}.json`` over the BSDS500 images (``BSR/BSDS500/data/images/<split>``)."""

    name = "bsdsa"
    title = "BSDS-A"
    standard_annotations = ("annotations/BSDS_amodal_{split}.json", "BSDS_amodal_{split}.json")
    standard_images = ("BSR/BSDS500/data/images/{split}", "images/{split}")

    def __init__(
        self,
        root: str | None = None,
        annotations: str | None = None,
        images: str | None = None,
        split: str = "test",
        stuff: bool = False,
        annotators: str = "first",
        limit: int | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__(root, annotations, images, split, stuff, annotators, limit, name)
