"""SAILVOS (Hu et al., "SAIL-VOS: Semantic Amodal Instance Level Video Object Segmentation").

COCO-style ``{train,valid}.json``: ``images`` whose ``file_name`` is ``<video>/<frame>`` (with or without
a suffix), ``annotations`` with ``segmentation`` (amodal, RLE or polygons), ``visible_mask`` (absent:
unoccluded), ``occlude_rate`` and ``category_id``. Objects are annotations, ids the annotation ``id``.
"""

from __future__ import annotations

from collections.abc import Iterable

from amodal.data.annotated import AnnotatedDataset, AnnotatedImage, Region
from amodal.data.annotations import locate, root_path
from amodal.data.cocolike import load_instances, read_instances

HINT = "; a SAILVOS file has 'images' and 'annotations' with 'segmentation' and 'visible_mask'"


class SailvosDataset(AnnotatedDataset):
    name = "sailvos"
    mask_keys = ("segmentation", "visible_mask")

    def __init__(
        self,
        root: str | None = None,
        annotations: str | None = None,
        images: str | None = None,
        split: str = "valid",
        limit: int | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__(limit=limit)
        self.name = name or self.name
        self.root = root_path(root, "SAILVOS")
        self.annotations = locate(
            annotations,
            self.root,
            (f"{split}.json", f"annotations/{split}.json"),
            "annotations",
            "SAILVOS annotation file",
        )
        self.images_dir = locate(images, self.root, ("images", "Images"), "images", "SAILVOS image folder")

    def read_images(self) -> Iterable[AnnotatedImage]:
        def region(annotation: dict, category: str) -> Region:
            occlusion = annotation.get("occlude_rate")
            return Region(
                object_id=str(annotation["id"]),
                amodal=annotation["segmentation"],
                visible=annotation.get("visible_mask"),
                category=category,
                annotated_occlusion=None if occlusion is None else float(occlusion),
            )

        data = load_instances(self.annotations, HINT)
        return read_instances(data, self.annotations, self.images_dir, region, ("segmentation",), HINT)
