"""KINS (Qi et al., "Amodal Instance Segmentation with KINS Dataset"), the 2020 release.

``update_{train,test}_2020.json`` is a COCO-style file over KITTI's object images
(``training/image_2``, ``testing/image_2``): each annotation holds ``a_segm`` (amodal polygons),
``i_segm`` (visible, "inmodal", polygons), ``a_area``, ``i_area`` and ``category_id``. The file states no
occlusion rate; 1 − |V|/|A| comes from the masks. Objects are annotations, ids the annotation ``id``.
"""

from __future__ import annotations

from collections.abc import Iterable

from amodal.data.annotated import AnnotatedDataset, AnnotatedImage, Region
from amodal.data.annotations import locate, root_path
from amodal.data.cocolike import read_instances

HINT = "; a KINS file has 'images' and 'annotations' with 'a_segm' and 'i_segm'"


class KinsDataset(AnnotatedDataset):
    name = "kins"
    mask_keys = ("a_segm", "i_segm")

    def __init__(
        self,
        root: str | None = None,
        annotations: str | None = None,
        images: str | None = None,
        split: str = "test",
        limit: int | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__(limit=limit)
        self.name = name or self.name
        self.root = root_path(root, "KINS")
        file = f"update_{split}_2020.json"
        self.annotations = locate(
            annotations, self.root, (file, f"annotations/{file}"), "annotations", "KINS annotation file"
        )
        kitti = "testing" if split == "test" else "training"
        self.images_dir = locate(
            images, self.root, (f"{kitti}/image_2", "image_2"), "images", "KITTI image folder"
        )

    def read_images(self) -> Iterable[AnnotatedImage]:
        def region(annotation: dict, category: str) -> Region:
            return Region(
                object_id=str(annotation["id"]),
                amodal=annotation["a_segm"],
                visible=annotation["i_segm"],
                category=category,
            )

        return read_instances(self.annotations, self.images_dir, region, ("a_segm", "i_segm"), HINT)
