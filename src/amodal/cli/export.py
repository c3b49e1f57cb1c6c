"""``amodal-export``: the objects amodal-run would score, as one JSON file another system can run on, so that
its predictions come back under our ids and ``method=external`` scores exactly those objects.

    amodal-export dataset=cocoa paths.data=/datasets out=cocoa_objects.json
    amodal-export dataset=kins dataset.limit=100 out=kins_first100.json
    amodal-export dataset=cocoa eval.include_unoccluded=true out=cocoa_all.json

The file: ``{"dataset", "include_unoccluded", "limit", "objects": [...], "left_out": {reason: count}}``, each
object ``{"image_id", "object_id", "image" (the image file, absolute), "height", "width", "visible" (compressed
RLE, COCO's {"size", "counts"}), "bbox" ([x, y, w, h] of the visible mask, COCO's box), "occlusion_rate"
(null without ground truth), "category"}``, in the order amodal-run runs them. Objects a run would not predict
are left out and counted by reason: unoccluded ones unless ``eval.include_unoccluded``, those with an empty
mask, those that cannot be loaded. Images that exist only in memory (synthetic scenes) are written as PNGs
(``images=``, by default ``<out's stem>_images/`` beside ``out``), named by ``data.files.safe_name``.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf
from pycocotools import mask as coco_mask

from amodal.cli.command_line import check_run_settings
from amodal.cli.errors import one_line_errors, storage_errors
from amodal.config import build, config_dir
from amodal.data.base import ObjectDataset
from amodal.data.files import limit_image_pixels, safe_name, save_png, write_atomic
from amodal.data.masks import encode
from amodal.errors import ConfigError, SampleError
from amodal.eval.evaluator import skip_reason
from amodal.eval.metrics import is_unoccluded
from amodal.sample import Sample

log = logging.getLogger("amodal")

UNOCCLUDED = "unoccluded (eval.include_unoccluded=false)"
UNLOADABLE = "cannot be loaded"


def object_entry(sample: Sample, image_file: Path) -> dict:
    """What another system needs to predict one object."""
    height, width = sample.size
    visible = encode(sample.visible)
    return {
        "image_id": sample.image_id,
        "object_id": sample.object_id,
        "image": str(image_file),
        "height": height,
        "width": width,
        "visible": visible,
        "bbox": [int(v) for v in coco_mask.toBbox({**visible, "counts": visible["counts"].encode()})],
        "occlusion_rate": sample.occlusion_rate,
        "category": sample.category,
    }


def export(dataset: ObjectDataset, include_unoccluded: bool, images_dir: Path) -> dict:
    """The export of ``dataset``: the objects a run predicts, and how many were left out, by reason."""
    objects, left_out = [], Counter()
    written: dict[str, Path] = {}
    for key in dataset.keys():
        if len(objects) == dataset.limit:  # dataset.limit counts the objects a run scores, as the runner does
            break
        try:
            sample = dataset.load(key)
        except SampleError as err:
            log.warning("leaving out %s/%s: %s", key.image_id, key.object_id, err)
            left_out[UNLOADABLE] += 1
            continue
        reason = skip_reason(sample)
        if reason is None and not include_unoccluded and is_unoccluded(sample.occlusion_rate):
            reason = UNOCCLUDED
        if reason is not None:
            left_out[reason] += 1
            continue
        image_file = Path(sample.image_file) if sample.image_file else written.get(sample.image_id)
        if image_file is None:  # a generated image: written once, as a PNG
            image_file = written[sample.image_id] = images_dir / f"{safe_name(sample.image_id)}.png"
            save_png(image_file, sample.image)
        objects.append(object_entry(sample, image_file.resolve()))
    return {"dataset": dataset.name, "include_unoccluded": include_unoccluded, "limit": dataset.limit,
            "objects": objects, "left_out": dict(sorted(left_out.items()))}


def run_export(cfg: DictConfig) -> dict:
    """Build the dataset as amodal-run does, export it and write ``out``; returns what was written."""
    if OmegaConf.is_missing(cfg, "out") or not cfg.out:
        raise ConfigError("out= is missing: amodal-export dataset=cocoa out=objects.json")
    limit_image_pixels(cfg.runtime.max_image_pixels)
    out = Path(cfg.out).expanduser()
    if out.is_dir():
        raise ConfigError(f"out={out} is a folder: name the JSON file to write, e.g. out={out / 'objects.json'}")
    images_dir = Path(cfg.images).expanduser() if cfg.get("images") else out.parent / f"{out.stem}_images"
    dataset = build(cfg.dataset, "dataset")
    exported = export(dataset, bool(cfg.eval.include_unoccluded), images_dir)
    write_atomic(out, json.dumps(exported, ensure_ascii=False) + "\n")
    return exported


@hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="export")
@one_line_errors("amodal-export", hydra_task=True)
def _hydra_main(cfg: DictConfig) -> None:
    with storage_errors(str(cfg.out), "free space or choose another out="):
        exported = run_export(cfg)
    left = ", ".join(f"{n} {reason}" for reason, n in exported["left_out"].items())
    print(f"{cfg.out}: {len(exported['objects'])} objects of {exported['dataset']}"
          + (f" (left out: {left})" if left else ""))


def main() -> None:
    check_run_settings("amodal-export")
    _hydra_main()


if __name__ == "__main__":
    main()
