"""SAILVOS (Hu et al., "SAIL-VOS: Semantic Amodal Instance Level Video Object Segmentation").

COCO-style ``{train,valid}.json``: ``images`` whose ``file_name`` is relative to the dataset folder,
``<video>/images/<frame>.bmp`` as distributed (``<video>/<frame>`` under ``images/`` in older copies;
with or without a suffix), and ``annotations`` with ``segmentation`` (amodal, RLE or polygons),
``visible_mask`` (absent: unoccluded), ``occlude_rate`` and ``category_id``. An image is looked for
where ``file_name`` says relative to ``dataset.root``, then under ``<root>/images/``; ``dataset.images``
replaces both. Objects are annotations, ids the annotation ``id``.

``max_occlusion: 0.75`` evaluates only objects whose ``occlude_rate`` is at most 0.75, as published
SAILVOS evaluations do; the others stay in the scene as occluders.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from amodal.data.annotated import AnnotatedDataset, AnnotatedImage, Region, existing_image, inside
from amodal.data.annotations import locate, rate, root_path
from amodal.data.cocolike import category_names, load_instances, read_instances
from amodal.errors import ConfigError, DatasetError, SampleError

HINT = "; a SAILVOS file has 'images' and 'annotations' with 'segmentation' and 'visible_mask'"


class SailvosDataset(AnnotatedDataset):
    name = "sailvos"
    mask_keys = ("segmentation", "visible_mask")
    standard_annotations = ("{split}.json", "annotations/{split}.json")
    """No standard image folder: ``file_name`` is relative to ``dataset.root`` itself."""

    def __init__(
        self,
        root: str | None = None,
        annotations: str | None = None,
        images: str | None = None,
        split: str = "valid",
        max_occlusion: float | None = None,
        limit: int | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__(limit=limit)
        self.name = name or self.name
        if max_occlusion is not None and not 0 <= max_occlusion <= 1:
            raise ConfigError(
                f"dataset.max_occlusion={max_occlusion}: use a rate in [0, 1] (0.75 as published), or null for all"
            )
        self.max_occlusion = None if max_occlusion is None else float(max_occlusion)
        self.root = root_path(root, "SAILVOS", needed=not (annotations and images))
        self.annotations = locate(
            annotations,
            self.root,
            self.standard(self.standard_annotations, split=split),
            "annotations",
            "SAILVOS annotation file",
        )
        self.images_dir = (
            locate(images, None, (), "images", "SAILVOS image folder") if images else None
        )
        if self.images_dir is None and self.root is None:
            raise DatasetError(
                "dataset.root is not set: SAILVOS' file_name is relative to the dataset folder; "
                "pass dataset.root=/path/to/sailvos or dataset.images=/path/to/the/images"
            )

    def filters(self) -> dict[str, object]:
        return {} if self.max_occlusion is None else {"max_occlusion": self.max_occlusion}

    def image_root(self) -> Path | None:
        return self.images_dir or self.root

    def image_file(self, image: AnnotatedImage) -> Path:
        if self.images_dir is not None or self.root is None:
            return super().image_file(image)
        relative = inside(image.file, self.root, image.source).relative_to(self.root)
        candidates = [image.file, self.root / "images" / relative]
        for candidate in candidates:
            found = existing_image(candidate)
            if found.is_file():
                return found
        raise SampleError(
            f"image file {' nor '.join(str(c) for c in candidates)} does not exist; SAILVOS' file_name is "
            "relative to dataset.root (or pass dataset.images=)"
        )

    def read_images(self) -> Iterable[AnnotatedImage]:
        limit = self.max_occlusion

        def region(annotation: dict, category: str) -> Region:
            occlusion = rate(annotation.get("occlude_rate"), self.annotations, f"annotation {annotation['id']}", hint)
            if limit is not None and occlusion is None:
                raise DatasetError(f"{self.annotations}: annotation {annotation['id']}'s 'occlude_rate' is null{hint}")
            return Region(
                object_id=str(annotation["id"]),
                amodal=annotation["segmentation"],
                visible=annotation.get("visible_mask"),
                category=category,
                annotated_occlusion=occlusion,
                evaluated=limit is None or occlusion <= limit,
            )

        needs, hint = ("segmentation",), HINT
        if limit is not None:
            needs, hint = ("segmentation", "occlude_rate"), f"{HINT}; dataset.max_occlusion filters on 'occlude_rate'"
        data = load_instances(self.annotations, hint)
        self.category_names = category_names(data)
        return read_instances(data, self.annotations, self.images_dir or self.root, region, needs, hint)
