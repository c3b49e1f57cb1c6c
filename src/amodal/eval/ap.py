"""COCO AP/AR of detection-style amodal results (``eval.metric=ap``), as amodal instance segmentation methods
(AISFormer, on KINS) report them: pycocotools' ``COCOeval`` on the amodal masks.

Detections are a COCO results list: ``{"image_id", "category_id" (or "category", a name), "score",
"segmentation"}`` (RLE or polygons at the image's size), no object ids. The ground truth is every object the
dataset lists (``dataset.limit`` applies), unoccluded ones included as the KINS protocol counts them, its
amodal mask the instance; objects that cannot be loaded or have an empty amodal mask are left out and
counted. A detection's ``category_id`` is read through the dataset's category table where the file numbers
its categories (KINS, SAILVOS), else it must be the category's name, as ``category`` may be.
"""

from __future__ import annotations

import contextlib
import io
import logging
from collections import Counter
from numbers import Real

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from amodal.data.base import ObjectDataset
from amodal.data.masks import decode, encode
from amodal.errors import ConfigError, SampleError

log = logging.getLogger(__name__)

STATS = ("ap", "ap50", "ap75", "ap_small", "ap_medium", "ap_large",
         "ar1", "ar10", "ar100", "ar_small", "ar_medium", "ar_large")
"""``COCOeval.stats`` in its order, as fractions (−1 where COCOeval has nothing to average becomes None)."""
NAMED = 3


def ground_truth(dataset: ObjectDataset) -> tuple[dict, Counter]:
    """COCO's ground-truth dict of the dataset's amodal masks (image and category ids numbered from 1), and
    the objects left out by reason."""
    images, annotations, categories, left_out = {}, [], {}, Counter()
    for key in dataset.keys():
        try:
            sample = dataset.load(key)
        except SampleError as err:
            log.warning("leaving out %s/%s: %s", key.image_id, key.object_id, err)
            left_out["cannot be loaded"] += 1
            continue
        if not sample.amodal.any():
            left_out["empty amodal mask"] += 1
            continue
        height, width = sample.size
        image = images.setdefault(sample.image_id, {"id": len(images) + 1, "height": height, "width": width,
                                                    "image_id": sample.image_id})
        category = categories.setdefault(sample.category, len(categories) + 1)
        annotations.append({"id": len(annotations) + 1, "image_id": image["id"], "category_id": category,
                            "segmentation": encode(sample.amodal), "area": float(sample.amodal.sum()), "iscrowd": 0})
    coco = {"images": list(images.values()), "annotations": annotations,
            "categories": [{"id": i, "name": name} for name, i in categories.items()]}
    return coco, left_out


def detections(entries: list, truth: dict, category_names: dict[str, str]) -> tuple[list[dict], list[str]]:
    """The entries as COCO results on ``truth``'s ids, and the reasons the others are not used."""
    images = {image["image_id"]: image for image in truth["images"]}
    categories = {c["name"]: c["id"] for c in truth["categories"]}
    results, bad = [], []
    for index, entry in enumerate(entries):
        what = f"entry {index}"
        try:
            if not isinstance(entry, dict):
                raise SampleError(f"{what} is a {type(entry).__name__}, not an object")
            image = images.get(str(entry.get("image_id")))
            if image is None:
                raise SampleError(f"{what}: image {entry.get('image_id')} has no object of the dataset")
            named = entry["category"] if "category" in entry else category_names.get(
                str(entry.get("category_id")), str(entry.get("category_id")))
            if str(named) not in categories:
                raise SampleError(f"{what}: category {named} is not one of the dataset's objects'")
            score = entry.get("score")
            if isinstance(score, bool) or not isinstance(score, Real) or not np.isfinite(score):
                raise SampleError(f"{what}: score is {score!r}, not a number")
            mask = decode(entry.get("segmentation"), (image["height"], image["width"]), what)
        except SampleError as err:
            bad.append(str(err))
            continue
        results.append({"image_id": image["id"], "category_id": categories[str(named)], "score": float(score),
                        "segmentation": encode(mask)})
    return results, bad


def average_precision(dataset: ObjectDataset, entries: list, source: str = "the results") -> dict:
    """metrics.json of ``eval.metric=ap``: COCO's twelve AP/AR numbers of the detections on the amodal masks."""
    truth, left_out = ground_truth(dataset)
    if not truth["annotations"]:
        raise ConfigError(f"dataset {dataset.name} has no object with an amodal mask to compute AP against")
    results, bad = detections(entries, truth, getattr(dataset, "category_names", {}))
    if bad:
        more = len(bad) - NAMED
        log.warning("%s: %d of its %d entries are not used: %s%s", source, len(bad), len(entries),
                    ", ".join(bad[:NAMED]), f" and {more} more" if more > 0 else "")
    stats = [-1.0] * len(STATS)
    if results:
        with contextlib.redirect_stdout(io.StringIO()):  # COCOeval prints as it goes
            gt = COCO()
            gt.dataset = truth
            gt.createIndex()
            evaluation = COCOeval(gt, gt.loadRes(results), iouType="segm")
            evaluation.evaluate()
            evaluation.accumulate()
            evaluation.summarize()
        stats = evaluation.stats.tolist()
    return {
        "metric": "ap",
        **{name: None if value < 0 else value for name, value in zip(STATS, stats)},
        "counts": {"images": len(truth["images"]), "objects": len(truth["annotations"]),
                   "categories": len(truth["categories"]), "detections": len(results), "unused_entries": len(bad),
                   "left_out": dict(sorted(left_out.items()))},
    }

