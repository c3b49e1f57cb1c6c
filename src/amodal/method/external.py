"""Predictions of another system (pix2gestalt, C2F-Seg, AmodalWild, a new method), scored by exactly our metric.

One of two forms:

    method.predictions=FILE.json   a COCO-style results list, one entry per object:
        {"image_id": 1, "object_id": "7_0", "segmentation": {"size": [h, w], "counts": "..."}}
        object_id as in results.jsonl (the annotation's "id" is accepted in its place); ids are matched as
        strings; the segmentation is RLE (compressed or list counts) or polygons, at the image's size.
    method.root=FOLDER             <root>/<image_id>/<object_id>.png, the predicted amodal mask, image-sized
        (inside: ≥ half its maximum): the layout of a ``folder`` dataset's ``amodal/`` and of a run's
        ``masks/`` (``output.save_masks=true``), with ids made file-name-safe the same way (``mask_path``).

``amodal-export`` writes the objects a run scores, for the other system to predict.

An entry that cannot be used (it names no object of the dataset, its RLE is malformed, it names an object
twice) is counted and named in one warning before the run. An object without a usable prediction (none
given, a duplicate, a mask of the wrong size) follows ``method.missing``: ``empty`` (the default) scores
it as an empty mask, IoU 0, its row saying ``"missing": true`` and why (``missing_reason``), because a
benchmark cannot let a method choose the objects it is scored on; ``skip`` skips it, the reason in its row.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from numbers import Integral
from pathlib import Path

import numpy as np
from PIL import Image

from amodal.data.base import ObjectDataset
from amodal.data.files import SoftMasks, mask_path, read_mask
from amodal.data.masks import decode
from amodal.errors import ConfigError, SampleError
from amodal.method.predictor import Predictor
from amodal.sample import ObjectKey, Prediction, Sample

log = logging.getLogger(__name__)

MISSING = ("empty", "skip")
"""``method.missing``: what an object without a usable prediction gets."""
NAMED = 3
"""How many bad entries of each kind the warning names."""


class ExternalPredictor(Predictor):
    name = "external"

    def __init__(self, root: str | None = None, predictions: str | None = None, missing: str = "empty",
                 name: str = "external") -> None:
        if missing not in MISSING:
            raise ConfigError(f"method.missing={missing}: use empty (score an object without a prediction as an "
                              "empty mask, IoU 0) or skip (leave it out, the reason in its row)")
        if root and predictions:
            raise ConfigError("method.root and method.predictions are both set: give one, the folder of "
                              "<image_id>/<object_id>.png masks or the JSON results file")
        if not root and not predictions:
            raise ConfigError("neither method.predictions nor method.root is set: pass method.predictions=FILE.json "
                              "(a COCO-style results list) or method.root=/path/to/predictions holding "
                              "<image_id>/<object_id>.png masks")
        self.source = PredictionFile(predictions) if predictions else MaskFolder(root)
        self.missing, self.name = missing, name

    def check_dataset(self, dataset: ObjectDataset) -> None:
        if isinstance(self.source, PredictionFile):
            self.source.check(dataset)

    def predict(self, samples: Sequence[Sample], seeds: Sequence[int]) -> list[Prediction]:
        return [self._predict(sample) for sample in samples]

    def _predict(self, sample: Sample) -> Prediction:
        try:
            return Prediction(mask=self.source.mask(sample))
        except SampleError as err:
            if self.missing == "skip":
                raise
            return Prediction(mask=np.zeros(sample.size, bool), row={"missing": True, "missing_reason": str(err)})


class MaskFolder:
    """``<root>/<image_id>/<object_id>.png``, one mask file per object."""

    def __init__(self, root: str) -> None:
        self.root = Path(root).expanduser()
        if self.root.is_file():
            hint = f", or pass it as method.predictions={root}" if self.root.suffix.lower() == ".json" else ""
            raise ConfigError(f"method.root={self.root} is a file, not a folder: point it at the folder holding "
                              f"<image_id>/<object_id>.png masks{hint}")
        if not self.root.is_dir():
            raise ConfigError(f"method.root={self.root} does not exist; point it at the folder of predicted masks")
        self._soft = SoftMasks()

    def mask(self, sample: Sample) -> np.ndarray:
        path = mask_path(self.root, sample.key)
        if not path.is_file():
            raise SampleError(f"no prediction for this object: expected {path}")
        return read_mask(path, sample.size, self._soft)


class PredictionFile:
    """A COCO-style results list, read and checked whole when the method is built; each object's mask is
    decoded (at its image's size) when the object is run."""

    def __init__(self, path: str) -> None:
        self.path = Path(path).expanduser()
        data = read_results(self.path)
        self.entries = len(data)
        self.malformed: list[str] = []
        found: dict[ObjectKey, list[tuple[int, object]]] = {}
        for index, entry in enumerate(data):
            try:
                key, segmentation = self._parse(index, entry)
            except SampleError as err:
                self.malformed.append(str(err))
                continue
            found.setdefault(key, []).append((index, segmentation))
        self.segmentations = {key: found[key][0] for key in found if len(found[key]) == 1}
        self.duplicates = {key: [index for index, _ in found[key]] for key in found if len(found[key]) > 1}
        if data and not found and all(isinstance(e, dict) and "score" in e for e in data):
            raise ConfigError(f"method.predictions={self.path} holds detection results (score, category_id, no "
                              "object_id): score them with eval.metric=ap (COCO AP/AR), or give each entry the "
                              "image_id and object_id of an object that amodal-export lists")

    def _parse(self, index: int, entry: object) -> tuple[ObjectKey, object]:
        what = f"entry {index}"
        if not isinstance(entry, dict):
            raise SampleError(f"{what} is a {type(entry).__name__}, not an object")
        object_key = "object_id" if "object_id" in entry else "id"
        ids = []
        for name in ("image_id", object_key):
            value = entry.get(name)
            if isinstance(value, bool) or not isinstance(value, (str, Integral)):
                shown = "image_id" if name == "image_id" else "object_id (or id)"
                raise SampleError(f"{what} has no {shown}" if value is None else
                                  f"{what}: {name} is {value!r}, not a string or an integer")
            ids.append(str(value))
        segmentation = entry.get("segmentation")
        if segmentation is None:
            raise SampleError(f"{what} has no segmentation")
        if not isinstance(segmentation, (dict, list)):
            raise SampleError(f"{what}: segmentation is a {type(segmentation).__name__}, not RLE or polygons")
        rles = [segmentation] if isinstance(segmentation, dict) else [s for s in segmentation if isinstance(s, dict)]
        for rle in rles:
            _check_rle(rle, what)
        return ObjectKey(*ids), segmentation

    def check(self, dataset: ObjectDataset) -> None:
        """One warning naming the entries that are not used: malformed, of no object of ``dataset``, or
        naming an object twice."""
        known = set(dataset.keys())
        entries = {key: 1 for key in self.segmentations} | {key: len(i) for key, i in self.duplicates.items()}
        unknown = [key for key in entries if key not in known]
        twice = [key for key in self.duplicates if key in known]
        limited = f" among the first {dataset.limit}" if dataset.limit else ""
        parts = [
            (len(self.malformed), "malformed", self.malformed),
            (sum(entries[k] for k in unknown), f"name no object{limited} of dataset {dataset.name}",
             [f"image {k.image_id} object {k.object_id}" for k in unknown]),
            (sum(entries[k] for k in twice), "name an object twice (none of them is used)",
             [f"image {k.image_id} object {k.object_id}: entries {', '.join(map(str, self.duplicates[k]))}"
              for k in twice]),
        ]
        unused = sum(count for count, _, _ in parts)
        if unused:
            said = "; ".join(f"{count} {kind} ({_named(items)})" for count, kind, items in parts if count)
            log.warning("%s: %d of its %d entries are not used: %s", self.path, unused, self.entries, said)

    def mask(self, sample: Sample) -> np.ndarray:
        key = sample.key
        if key in self.duplicates:
            indices = ", ".join(map(str, self.duplicates[key]))
            raise SampleError(f"{self.path.name} holds {len(self.duplicates[key])} predictions for this object "
                              f"(entries {indices}); none is used")
        if key not in self.segmentations:
            raise SampleError(f"no prediction for this object in {self.path}")
        index, segmentation = self.segmentations[key]
        return decode(segmentation, sample.size, f"{self.path.name} entry {index}: segmentation")


def read_results(path: Path) -> list:
    """The file's JSON list, refused in one line when there is no such file or it holds something else."""
    if path.is_dir():
        raise ConfigError(f"method.predictions={path} is a folder: pass the JSON results file, or use "
                          f"method.root={path} for a folder of <image_id>/<object_id>.png masks")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as err:
        raise ConfigError(f"method.predictions={path} does not exist; point it at the JSON results file") from err
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise ConfigError(f"method.predictions={path} is not a readable JSON file ({err})") from err
    if not isinstance(data, list):
        kind = {dict: "an object", str: "a string"}.get(type(data), type(data).__name__)
        hint = " (a ground-truth file?)" if isinstance(data, dict) and "annotations" in data else ""
        raise ConfigError(f"method.predictions={path} holds {kind}{hint}, not a list of results: write "
                          '[{"image_id": ..., "object_id": ..., "segmentation": ...}, ...], one entry per object')
    return data


def _check_rle(rle: dict, what: str) -> None:
    """Refuse an RLE whose counts do not make a mask of its own ``size`` (checked before pycocotools reads
    them), or that is larger than images may be (``runtime.max_image_pixels``)."""
    size = rle.get("size")
    if not (isinstance(size, (list, tuple)) and len(size) == 2
            and all(isinstance(v, Integral) and not isinstance(v, bool) and v > 0 for v in size)):
        raise SampleError(f"{what}: an RLE needs 'size': [height, width], it has {size!r}")
    if Image.MAX_IMAGE_PIXELS and size[0] * size[1] > Image.MAX_IMAGE_PIXELS:
        raise SampleError(f"{what}: an RLE of {size[1]}×{size[0]} (w×h) is larger than images may be "
                          f"(runtime.max_image_pixels={Image.MAX_IMAGE_PIXELS})")
    decode(rle, size, what)


def _named(items: list[str]) -> str:
    more = len(items) - NAMED
    return ", ".join(items[:NAMED]) + (f" and {more} more" if more > 0 else "")
