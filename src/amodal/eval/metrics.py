"""The evaluation protocol: per-object IoU, then mIoU overall and in cumulative occlusion buckets.

mIoU is the mean of per-object IoUs (pix2gestalt's protocol); the pixel-aggregated IoU
(Σ intersection / Σ union, as deocclusion and AmodalWild report) is given beside it. Buckets are
cumulative: "≤30%" holds every object whose occlusion rate is at most 0.30. Whether unoccluded objects
(rate 0) count is a switch, ``eval.include_unoccluded``; when they do not, the runner does not predict
them either: their rows say ``unscored`` with the reason (``UNOCCLUDED``).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np

BUCKETS = (0.5, 0.4, 0.3, 0.2, 0.1, 0.05)
TOLERANCE = 1e-9
ANNOTATION_TOLERANCE = 0.01
"""How far a file's own occlusion rate may be from 1 − |V|/|A| before the row is counted as disagreeing."""
UNOCCLUDED = "unoccluded; eval.include_unoccluded=false"
"""The ``unscored`` reason of an unoccluded object that a run left out of mIoU, and so did not predict."""


def is_unoccluded(rate: float | None) -> bool:
    return rate is not None and rate <= TOLERANCE


def counts_in_miou(row: dict, include_unoccluded: bool) -> bool:
    """Whether a results.jsonl row enters mIoU: it was scored, and is occluded unless told otherwise."""
    if row.get("skipped") or row.get("iou") is None:
        return False
    return include_unoccluded or not is_unoccluded(row["occlusion_rate"])


def mask_overlap(prediction: np.ndarray, truth: np.ndarray) -> tuple[int, int]:
    """(|P ∩ A|, |P ∪ A|) in pixels."""
    return int(np.logical_and(prediction, truth).sum()), int(np.logical_or(prediction, truth).sum())


def iou(prediction: np.ndarray, truth: np.ndarray) -> float:
    """|P ∩ A| / |P ∪ A|; two empty masks agree perfectly."""
    intersection, union = mask_overlap(prediction, truth)
    return 1.0 if union == 0 else intersection / union


def bucket_label(max_rate: float) -> str:
    return f"≤{round(max_rate * 100):d}%"


def bucket_key(max_rate: float) -> str:
    return f"le{round(max_rate * 100):02d}"


def _scores(rows: Sequence[dict]) -> dict:
    if not rows:
        return {"miou": None, "pixel_iou": None, "n": 0}
    intersection = sum(r["intersection"] for r in rows)
    union = sum(r["union"] for r in rows)
    return {
        "miou": math.fsum(r["iou"] for r in rows) / len(rows),  # exact sum: any row order, same mIoU
        "pixel_iou": intersection / union if union else 1.0,
        "n": len(rows),
    }


def summarize(
    rows: Iterable[dict], buckets: Sequence[float] = BUCKETS, include_unoccluded: bool = False
) -> dict:
    """metrics.json from the rows of results.jsonl (skipped and unscored rows are counted, not scored).

    Objects that a run did not predict (``unscored``, e.g. unoccluded ones) cannot enter mIoU even with
    ``include_unoccluded``: ``counts.unscored`` says how many and why."""
    rows = list(rows)
    skipped = Counter(r["skipped"] for r in rows if r.get("skipped"))
    unscored = Counter(r["unscored"] for r in rows if r.get("unscored") and not r.get("skipped"))
    predicted = [r for r in rows if not r.get("skipped") and not r.get("unscored")]
    scored = [r for r in predicted if r.get("iou") is not None]
    unoccluded = [r for r in rows if not r.get("skipped") and is_unoccluded(r.get("occlusion_rate"))]
    counted = [r for r in scored if counts_in_miou(r, include_unoccluded)]
    bucket_rows = []
    for max_rate in buckets:
        members = [r for r in counted if r["occlusion_rate"] <= max_rate + TOLERANCE]
        bucket_rows.append({"max_occlusion": max_rate, "label": bucket_label(max_rate), **_scores(members)})
    disagreements = [
        r for r in rows
        if not r.get("skipped") and r.get("occlusion_rate") is not None and r.get("annotated_occlusion") is not None
        and abs(r["annotated_occlusion"] - r["occlusion_rate"]) > ANNOTATION_TOLERANCE
    ]
    seconds = [r["seconds"] for r in predicted if r.get("seconds") is not None]
    memory = [r["peak_memory_mb"] for r in predicted if r.get("peak_memory_mb") is not None]
    return {
        **_scores(counted),
        "buckets": bucket_rows,
        "include_unoccluded": include_unoccluded,
        "counts": {
            "objects": len(rows),
            "predicted": len(predicted),
            "scored": len(scored),
            "unoccluded": len(unoccluded),
            "without_ground_truth": len(predicted) - len(scored),
            "missing": sum(bool(r.get("missing")) for r in predicted),  # method=external: scored as empty masks
            "skipped": dict(sorted(skipped.items())),
            "unscored": dict(sorted(unscored.items())),
            "occlusion_disagreements": len(disagreements),
        },
        "seconds_per_object": float(np.mean(seconds)) if seconds else None,
        "seconds_total": float(np.sum(seconds)) if seconds else 0.0,
        "peak_memory_mb": float(max(memory)) if memory else None,
        **_inpainting_counts(predicted),
    }


def _inpainting_counts(predicted: list[dict]) -> dict:
    """Objects sent through the diffusion model, inpainting-cache hits and misses and the segmenter's image
    embeddings, over every row (so a resumed or merged run counts all its processes); each absent for
    methods that do not do it."""
    counts = {}
    if any("inpainted" in r for r in predicted):
        counts["objects_inpainted"] = sum(bool(r.get("inpainted")) for r in predicted)
    cache = Counter(r["inpaint_cache"] for r in predicted if r.get("inpaint_cache"))
    if cache:
        counts["inpaint_cache"] = {"hits": cache["hit"], "misses": cache["miss"]}
    if any("image_embeddings" in r for r in predicted):  # the segmenter's image-encoder passes
        counts["image_embeddings"] = sum(r.get("image_embeddings", 0) for r in predicted)
    return counts


def visible_baseline(rows: Iterable[dict]) -> list[dict] | None:
    """The rows Â = V would score on the same objects, from their areas alone: where V ⊆ A (every
    dataset's convention), IoU(V, A) = |V| / |A| = 1 − occlusion rate (elsewhere an upper bound). None when
    a scored row lacks its areas (results written before they were recorded)."""
    baseline = []
    for row in rows:
        if row.get("skipped") or row.get("iou") is None:
            baseline.append(row)
            continue
        if row.get("visible_area") is None or not row.get("amodal_area"):
            return None
        inside, outside = sorted((row["visible_area"], row["amodal_area"]))
        baseline.append({**row, "iou": inside / outside, "intersection": inside, "union": outside})
    return baseline


def flat_metrics(metrics: dict) -> dict[str, float]:
    """metrics.json as flat scalars (``miou``, ``miou/le50``, ...), for W&B and tables."""
    flat = {k: metrics[k] for k in ("miou", "pixel_iou", "n", "seconds_per_object", "peak_memory_mb")}
    for bucket in metrics["buckets"]:
        key = bucket_key(bucket["max_occlusion"])
        flat[f"miou/{key}"] = bucket["miou"]
        flat[f"pixel_iou/{key}"] = bucket["pixel_iou"]
        flat[f"n/{key}"] = bucket["n"]
    return {k: v for k, v in flat.items() if v is not None}
