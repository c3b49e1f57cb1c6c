"""The user's own data: a folder of images and one PNG mask per object.

    root/images/<image_id>.{png,jpg}
    root/visible/<image_id>/<object_id>.png
    root/amodal/<image_id>/<object_id>.png     (optional: without it, masks are predicted, not scored)

Masks: inside where the value is at least half the mask's maximum (0/1, 0/255 and palette masks as
meant); a dataset with soft masks (gradients, JPEG artefacts) is warned about once (``SoftMasks``).
"""

from __future__ import annotations

from pathlib import Path

from amodal.data.base import ObjectDataset
from amodal.data.files import IMAGE_SUFFIXES, SoftMasks, find_image, read_image, read_mask
from amodal.errors import DatasetError, SampleError
from amodal.lru import LRUCache
from amodal.sample import ObjectKey, Sample


class FolderDataset(ObjectDataset):
    name = "folder"

    def __init__(self, root: str | None, limit: int | None = None, name: str = "folder") -> None:
        super().__init__(limit=limit)
        self.name = name
        if not root:
            raise DatasetError(
                "dataset.root is not set: pass dataset.root=/path/to/folder holding images/ and visible/"
            )
        self.root = Path(root).expanduser()
        if not self.root.is_dir():
            raise DatasetError(
                f"dataset.root={self.root} does not exist; point it at a folder with images/ and visible/"
            )
        for sub in ("images", "visible"):
            if not (self.root / sub).is_dir():
                raise DatasetError(
                    f"{self.root}: no {sub}/ folder; the layout is images/<id>.png, visible/<id>/<obj>.png"
                )
        self.has_amodal = (self.root / "amodal").is_dir()
        self._images: LRUCache = LRUCache(size=2)
        self._soft = SoftMasks()

    def _list_objects(self) -> list[ObjectKey]:
        keys = []
        images = sorted(p for p in (self.root / "images").iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not images:
            raise DatasetError(f"{self.root / 'images'} holds no images ({', '.join(IMAGE_SUFFIXES)})")
        by_stem: dict[str, Path] = {}
        for image in images:
            if image.stem in by_stem:
                raise DatasetError(f"{self.root / 'images'}: {by_stem[image.stem].name} and {image.name} are both "
                                   f"image {image.stem}; keep one of them (or rename one)")
            by_stem[image.stem] = image
        for image in images:
            masks = sorted((self.root / "visible" / image.stem).glob("*.png"))
            if not masks:
                raise DatasetError(
                    f"image {image.name} has no masks in {self.root / 'visible' / image.stem}/: "
                    "add <object_id>.png visible masks or move the image out of images/"
                )
            keys.extend(ObjectKey(image.stem, mask.stem) for mask in masks)
        return keys

    def _image(self, image_id: str):
        def load():
            path = find_image(self.root / "images", image_id)
            if path is None:
                raise DatasetError(f"no image {image_id}.* in {self.root / 'images'}")
            image = read_image(path)
            folder = self.root / "visible" / image_id
            visible: dict[str, object] = {}
            for mask in sorted(folder.glob("*.png")):
                try:
                    visible[mask.stem] = read_mask(mask, image.shape[:2], self._soft)
                except SampleError as err:  # only this object is skipped; its neighbours load
                    visible[mask.stem] = err
            return image, visible, path

        return self._images.get(image_id, load)

    def load(self, key: ObjectKey) -> Sample:
        image, visible, file = self._image(key.image_id)
        own = visible[key.object_id]
        if isinstance(own, SampleError):
            raise own
        amodal = None
        if self.has_amodal:
            path = self.root / "amodal" / key.image_id / f"{key.object_id}.png"
            if path.is_file():
                amodal = read_mask(path, image.shape[:2], self._soft)
        return Sample(
            dataset=self.name,
            image_id=key.image_id,
            object_id=key.object_id,
            image=image,
            visible=own,
            amodal=amodal,
            others=tuple(m for k, m in visible.items() if k != key.object_id and not isinstance(m, SampleError)),
            image_file=str(file),
        )
