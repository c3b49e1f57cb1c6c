"""COCO-style instance files (KINS, SAILVOS): ``images``, ``annotations`` and ``categories`` lists.

Objects are listed image by image in the order of ``images``; an annotation is one object, its id the
annotation's ``id``. How an annotation holds its masks is the caller's ``region`` function.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

from amodal.data.annotated import AnnotatedImage, Region
from amodal.data.annotations import file_name, image_size, read_json, require, require_list, text_id
from amodal.errors import DatasetError


def load_instances(path: Path, hint: str) -> dict:
    """The file's JSON, refused in one line unless it has ``images`` and ``annotations``."""
    data = read_json(path)
    require(data, ["images", "annotations"], path, "the file", hint)
    return data


def category_names(data: dict) -> dict[str, str]:
    """The file's ``categories`` as category id (a string) → name."""
    names = {}
    for category in data.get("categories") or []:
        if isinstance(category, dict) and "id" in category:
            names[str(category["id"])] = str(category.get("name", category["id"]))
    return names


def read_instances(
    data: dict,
    path: Path,
    images_dir: Path,
    region: Callable[[dict, str], Region],
    needs: tuple[str, ...],
    hint: str,
) -> Iterator[AnnotatedImage]:
    """Each image of ``data`` (``load_instances(path)``) with its regions; ``region(annotation, category
    name)`` makes one, and every annotation must hold the keys ``needs`` lists."""
    categories = category_names(data)
    by_image: dict[str, list[tuple[int, dict]]] = {}
    for index, annotation in enumerate(require_list(data, "annotations", path, "the file", hint)):
        require(annotation, ["id", "image_id", *needs], path, f"annotation {index}", hint)
        by_image.setdefault(str(annotation["image_id"]), []).append((index, annotation))
    image_ids: dict[str, tuple[int, object]] = {}
    for index, entry in enumerate(require_list(data, "images", path, "the file", hint)):
        require(entry, ["id", "file_name"], path, f"image {index}", hint)
        image_id = text_id(entry["id"], index, image_ids, path, "image")
        annotations = by_image.pop(image_id, [])
        if not annotations:
            continue
        size = image_size(entry, path, f"image {index}", hint)
        file = file_name(entry, path, f"image {index}", hint)
        regions, object_ids = [], {}
        for position, annotation in annotations:
            text_id(annotation["id"], position, object_ids, path, f"image {image_id}'s annotation")
            category = annotation.get("category_id")
            regions.append(
                region(annotation, "" if category is None else categories.get(str(category), str(category)))
            )
        yield AnnotatedImage(
            image_id=image_id,
            file=images_dir / file,
            source=path,
            regions=regions,
            size=size,
        )
    if by_image:
        raise DatasetError(
            f"{path}: annotations refer to image {next(iter(by_image))}, which is not in 'images'"
        )
