"""The evaluation loop: dataset × method → results.jsonl, metrics.json, masks and pictures.

It knows only the interfaces (``ObjectDataset``, ``Predictor``, ``RunLogger``), never a concrete class.
Each object's row is flushed as soon as it is scored, so a crash loses nothing that was finished and a
re-run into the same folder starts where the last one stopped.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from amodal.data.base import ObjectDataset, Shard
from amodal.data.files import mask_path, safe_name, save_png, write_atomic, write_mask
from amodal.errors import SampleError
from amodal.eval.metrics import (
    ANNOTATION_TOLERANCE,
    BUCKETS,
    UNOCCLUDED,
    counts_in_miou,
    is_unoccluded,
    mask_overlap,
    summarize,
)
from amodal.eval.pictures import panel
from amodal.eval.results import FILENAME, ResultsLog
from amodal.loggers import RunLogger
from amodal.memory import peak_memory_mb
from amodal.method.predictor import Predictor
from amodal.sample import ObjectKey, Prediction, Sample
from amodal.seeding import object_seed

log = logging.getLogger(__name__)


@dataclass
class RunSettings:
    seed: int = 0
    batch_size: int = 1
    shard: Shard = field(default_factory=Shard)
    buckets: Sequence[float] = BUCKETS
    include_unoccluded: bool = False
    save_masks: bool = False
    pictures: int = 4
    device: str = "cpu"
    progress: bool = True


def skip_reason(sample: Sample) -> str | None:
    """Why an object cannot be evaluated, or None. Such objects are recorded and counted, never scored."""
    if sample.amodal is not None and not sample.amodal.any():
        return "empty amodal mask"  # first: an unoccluded object's V is its A, so both are empty
    if not sample.visible.any():
        return "empty visible mask"
    return None


def object_row(sample: Sample, seed: int) -> dict:
    """What results.jsonl says about an object before any prediction: ids, areas, occlusion rates."""
    row = {
        "dataset": sample.dataset,
        "image_id": sample.image_id,
        "object_id": sample.object_id,
        "category": sample.category,
        "seed": seed,
        "visible_area": int(sample.visible.sum()),
        "occlusion_rate": None,
        "iou": None,
    }
    if sample.amodal is not None:
        row.update(occlusion_rate=sample.occlusion_rate, amodal_area=int(sample.amodal.sum()),
                   visible_outside_amodal=int((sample.visible & ~sample.amodal).sum()))  # > 0: a faulty annotation
    if sample.annotated_occlusion is not None:
        row["annotated_occlusion"] = float(sample.annotated_occlusion)
    return row


def score_row(sample: Sample, prediction: Prediction, seed: int) -> dict:
    row = object_row(sample, seed)
    row["predicted_area"] = int(prediction.mask.sum())
    if sample.amodal is not None:
        intersection, union = mask_overlap(prediction.mask, sample.amodal)
        row.update(iou=intersection / union if union else 1.0, intersection=intersection, union=union)
    return row


def _skip_row(dataset: str, key: ObjectKey, reason: str) -> dict:
    return {"dataset": dataset, "image_id": key.image_id, "object_id": key.object_id, "skipped": reason}


class Runner:
    def __init__(
        self,
        dataset: ObjectDataset,
        predictor: Predictor,
        run_dir: str | Path,
        settings: RunSettings,
        logger: RunLogger | None = None,
    ) -> None:
        self.dataset, self.predictor, self.settings = dataset, predictor, settings
        self.run_dir = Path(run_dir)
        self.logger = logger or RunLogger()
        self.pictures_dir = self.run_dir / "pictures"
        self.masks_dir = self.run_dir / "masks"

    def run(self) -> dict:
        settings = self.settings
        with ResultsLog(self.run_dir / FILENAME) as results:
            todo = [key for key in self.dataset.keys(settings.shard) if key not in results]
            if len(results.rows):
                log.info("resuming: %d objects done, %d to go", len(results.rows), len(todo))
            n_pictures = len(list(self.pictures_dir.glob("*.png"))) if self.pictures_dir.exists() else 0
            # the bar's mIoU is metrics.json's: the same rows (resumed ones too), the same format as its table
            counted = [r["iou"] for r in results.rows if counts_in_miou(r, settings.include_unoccluded)]
            iou_sum, iou_count = sum(counted), len(counted)
            bar = tqdm(total=len(todo), desc=f"{self.predictor.name} on {self.dataset.name}", unit="obj",
                       disable=not settings.progress, dynamic_ncols=True)
            for start in range(0, len(todo), settings.batch_size):
                batch = todo[start : start + settings.batch_size]
                for sample, prediction, seconds, seed in self._predict(batch, results):
                    row = score_row(sample, prediction, seed) | prediction.row
                    row["seconds"] = seconds
                    row["peak_memory_mb"] = peak_memory_mb(settings.device)
                    results.append(row)
                    if settings.save_masks or sample.amodal is None:
                        write_mask(self._mask_path(sample.key), prediction.mask)
                    if n_pictures < settings.pictures:
                        picture = panel(sample, prediction)
                        name = f"{safe_name(sample.image_id)}__{safe_name(sample.object_id)}"
                        save_png(self.pictures_dir / f"{name}.png", picture)
                        self.logger.log_picture(name, picture)
                        n_pictures += 1
                    if counts_in_miou(row, settings.include_unoccluded):
                        iou_sum, iou_count = iou_sum + row["iou"], iou_count + 1
                if iou_count:
                    bar.set_postfix_str(f"mIoU {100 * iou_sum / iou_count:.1f}", refresh=False)
                bar.update(len(batch))
            bar.close()
            metrics = summarize(results.rows, settings.buckets, settings.include_unoccluded)
        if metrics["counts"]["occlusion_disagreements"]:
            log.warning(
                "%d objects' occlusion rate in the annotation file differs from 1 − |V|/|A| of their masks "
                "by more than %.0f%%; buckets use the masks' rate (both are in results.jsonl)",
                metrics["counts"]["occlusion_disagreements"], 100 * ANNOTATION_TOLERANCE,
            )
        write_atomic(self.run_dir / "metrics.json", json.dumps(metrics, indent=2, ensure_ascii=False) + "\n")
        self.logger.log_metrics(metrics)
        return metrics

    def _mask_path(self, key: ObjectKey) -> Path:
        return mask_path(self.masks_dir, key)

    def _load(self, keys: Sequence[ObjectKey], results: ResultsLog) -> list[Sample]:
        samples = []
        for key in keys:
            try:
                sample = self.dataset.load(key)
            except SampleError as err:
                log.warning("skipping %s/%s: %s", key.image_id, key.object_id, err)
                results.append(_skip_row(self.dataset.name, key, str(err)))
                continue
            reason = skip_reason(sample)
            if reason is not None:
                results.append(_skip_row(sample.dataset, key, reason))
                continue
            if not self.settings.include_unoccluded and is_unoccluded(sample.occlusion_rate):
                # it would not be scored, so it is not predicted (half of COCO-A's objects)
                row = object_row(sample, object_seed(self.settings.seed, key))
                results.append({**row, "seconds": None, "unscored": UNOCCLUDED})
                continue
            samples.append(sample)
        return samples

    def _predict(self, keys: Sequence[ObjectKey], results: ResultsLog):
        """(sample, prediction, seconds per object, seed) for each loadable object of a batch; an object
        the method refuses (``SampleError``) is recorded as skipped and its batch-mates still run."""
        samples = self._load(keys, results)
        if not samples:
            return []
        seeds = [object_seed(self.settings.seed, s.key) for s in samples]
        try:
            start = time.perf_counter()
            predictions = self.predictor.predict(samples, seeds)
            seconds = (time.perf_counter() - start) / len(samples)
            return [(s, p, seconds, seed) for s, p, seed in zip(samples, predictions, seeds)]
        except SampleError as err:
            if len(samples) == 1:
                log.warning("skipping %s/%s: %s", samples[0].image_id, samples[0].object_id, err)
                results.append(_skip_row(samples[0].dataset, samples[0].key, str(err)))
                return []
        out = []
        for sample in samples:  # find the one that failed; the others are predicted alone
            out += self._predict([sample.key], results)
        return out
