"""Scoring a run, as detectron2's evaluators do: ``reset``, then ``process`` each object as it is
predicted (its row of results.jsonl), then ``evaluate`` once at the end (metrics.json, from the rows).

The evaluator decides which objects are scored: one with an empty mask cannot be (``skipped``), and an
unoccluded one is not unless ``eval.include_unoccluded`` (``unscored``, and so not predicted either).
Every row, resumed ones included, is kept, so the running mIoU of the progress bar and metrics.json's
come from the same rows by the same rule (``metrics.counts_in_miou``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from amodal.eval.metrics import (
    BUCKETS,
    UNOCCLUDED,
    counts_in_miou,
    hidden_iou,
    is_unoccluded,
    mask_overlap,
    summarize,
)
from amodal.sample import ObjectKey, Prediction, Sample


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


def skipped_row(dataset: str, key: ObjectKey, reason: str) -> dict:
    return {"dataset": dataset, "image_id": key.image_id, "object_id": key.object_id, "skipped": reason}


class Evaluator:
    """Per-object IoU against the ground-truth amodal mask A; mIoU and mIoU_occ overall, in cumulative
    occlusion buckets and per category (``metrics.summarize``). ``reset``, then per object ``process`` (a
    prediction) or ``screen`` and ``skip`` (an object not predicted), then ``evaluate``."""

    def __init__(self, buckets: Sequence[float] = BUCKETS, include_unoccluded: bool = False) -> None:
        self.buckets, self.include_unoccluded = tuple(buckets), bool(include_unoccluded)
        self.reset()

    def reset(self, rows: Iterable[dict] = ()) -> None:
        """Start from ``rows`` (those of a resumed run), or from nothing."""
        self.rows: list[dict] = []
        self._iou_sum, self._iou_count = 0.0, 0
        for row in rows:
            self._keep(row)

    def _keep(self, row: dict) -> dict:
        self.rows.append(row)
        if counts_in_miou(row, self.include_unoccluded):
            self._iou_sum, self._iou_count = self._iou_sum + row["iou"], self._iou_count + 1
        return row

    def screen(self, sample: Sample, seed: int) -> dict | None:
        """The row of an object that is not to be predicted (one that cannot be evaluated, or that would not
        be scored: half of COCO-A's objects are unoccluded), kept; None for an object to predict."""
        reason = skip_reason(sample)
        if reason is not None:
            return self._keep(skipped_row(sample.dataset, sample.key, reason))
        if not self.predicts(sample):
            return self._keep({**object_row(sample, seed), "seconds": None, "unscored": UNOCCLUDED})
        return None

    def predicts(self, sample: Sample) -> bool:
        """Whether an object is to be predicted and scored (what ``dataset.limit`` counts): it can be evaluated,
        and is occluded unless ``include_unoccluded``."""
        if skip_reason(sample) is not None:
            return False
        return self.include_unoccluded or not is_unoccluded(sample.occlusion_rate)

    def skip(self, dataset: str, key: ObjectKey, reason: str) -> dict:
        """The row of an object that the dataset or the method refused (``SampleError``), kept."""
        return self._keep(skipped_row(dataset, key, reason))

    def process(self, sample: Sample, prediction: Prediction, seed: int, **measured) -> dict:
        """The object's row: its ids and areas, its IoU and the IoU of its hidden part (``iou_occ``, None
        where nothing is hidden) where A is known, what the method adds
        (``prediction.row``) and what the runner ``measured`` (seconds, peak memory)."""
        row = object_row(sample, seed)
        row["predicted_area"] = int(prediction.mask.sum())
        if sample.amodal is not None:
            intersection, union = mask_overlap(prediction.mask, sample.amodal)
            row.update(iou=intersection / union if union else 1.0, intersection=intersection, union=union,
                       iou_occ=hidden_iou(prediction.mask, sample.amodal, sample.visible))
        return self._keep(row | prediction.row | measured)

    @property
    def miou(self) -> float | None:
        """The mIoU of the rows so far (the progress bar's), None before one is scored."""
        return self._iou_sum / self._iou_count if self._iou_count else None

    def evaluate(self) -> dict:
        """metrics.json, from every row."""
        return summarize(self.rows, self.buckets, self.include_unoccluded)
