"""KINS (Qi et al., "Amodal Instance Segmentation with KINS Dataset") over KITTI's object images.

Two releases, told apart by the keys of their annotations (both COCO-style files):

- 2020, ``update_{train,test}_2020.json``: ``a_segm`` (amodal polygons) and ``i_segm`` (visible,
  "inmodal", polygons), with ``a_area``, ``i_area``, ``oco_id``, ``ico_id``.
- the first release, ``instances_{train,val}.json`` (``val`` is the test split), as deocclusion and the
  KINS reference code read it: ``segmentation`` (amodal polygons) and ``inmodal_seg`` (visible RLE).

Images are KITTI's ``training/image_2`` and ``testing/image_2``. Neither file states an occlusion rate;
1 − |V|/|A| comes from the masks. Objects are annotations, ids the annotation ``id``.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from amodal.data.annotated import AnnotatedDataset, AnnotatedImage, Region
from amodal.data.annotations import locate, root_path
from amodal.data.cocolike import category_names, load_instances, read_instances
from amodal.errors import DatasetError

LAYOUTS = {"2020": ("a_segm", "i_segm"), "instances": ("segmentation", "inmodal_seg")}
"""Layout → the keys of (amodal, visible) mask in each annotation."""
HINT = (
    "; a KINS file has 'images' and 'annotations' with 'a_segm' and 'i_segm' (update_*_2020.json) "
    "or 'segmentation' and 'inmodal_seg' (instances_*.json)"
)


def layout_of(annotation: object, path: Path) -> str:
    """The release a file is in, from the keys of its first annotation."""
    keys = annotation if isinstance(annotation, dict) else {}
    for layout, masks in LAYOUTS.items():
        if all(key in keys for key in masks):
            return layout
    raise DatasetError(
        f"{path}: unknown KINS layout, annotation 0 has keys {', '.join(sorted(keys)) or 'none'}{HINT}"
    )


class KinsDataset(AnnotatedDataset):
    name = "kins"
    mask_keys = LAYOUTS["2020"]
    standard_annotations = ("update_{split}_2020.json", "annotations/update_{split}_2020.json",
                            "instances_{release}.json", "annotations/instances_{release}.json")
    standard_images = ("{kitti}/image_2", "image_2", "images/{release}")
    """``release``: the first release's split (its val is the test split); ``kitti``: KITTI's folder."""

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
        self.root = root_path(root, "KINS", needed=not (annotations and images))
        fields = {"split": split, "release": "val" if split == "test" else split,  # instances_val.json: test
                  "kitti": "testing" if split == "test" else "training"}
        self.annotations = locate(
            annotations, self.root, self.standard(self.standard_annotations, **fields), "annotations",
            "KINS annotation file",
        )
        self.images_dir = locate(
            images, self.root, self.standard(self.standard_images, **fields), "images", "KITTI image folder"
        )

    def read_images(self) -> Iterable[AnnotatedImage]:
        data = load_instances(self.annotations, HINT)
        self.category_names = category_names(data)
        annotations = data["annotations"]
        if isinstance(annotations, list) and annotations:
            self.mask_keys = LAYOUTS[layout_of(annotations[0], self.annotations)]
        return read_instances(
            data, self.annotations, self.images_dir, _region(self.mask_keys), self.mask_keys, HINT
        )


def _region(mask_keys: tuple[str, str]):
    amodal, visible = mask_keys

    def region(annotation: dict, category: str) -> Region:
        return Region(
            object_id=str(annotation["id"]),
            amodal=annotation[amodal],
            visible=annotation[visible],
            category=category,
        )

    return region
