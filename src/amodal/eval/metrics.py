r"""The evaluation protocol: per-object IoU, then mIoU overall, in cumulative occlusion buckets and per
category.

mIoU is the mean of per-object IoUs (pix2gestalt's protocol); the pixel-aggregated IoU
(Σ intersection / Σ union, as deocclusion and AmodalWild report) is given beside it. mIoU_occ is the
mean IoU of the hidden part, IoU(Â \ V, A \ V), over the objects whose A \ V is not empty (C2F-Seg's
protocol): Â = V scores 0 there however good its mIoU looks. Buckets are cumulative: "≤30%" holds every
object whose occlusion rate is at most 0.30. Whether unoccluded objects (rate 0) count is a switch,
``eval.include_unoccluded``; when they do not, the runner does not predict them either: their rows say
``unscored`` with the reason (``UNOCCLUDED``).

The rows are summed as they stream past (``Summary``): a report or a merge of a million rows holds the
sums of each bucket and category, never the rows.
"""

from __future__ import annotations

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


def hidden_iou(prediction: np.ndarray, truth: np.ndarray, visible: np.ndarray) -> float | None:
    """IoU(Â \\ V, A \\ V): how well the prediction completes what is hidden; None when nothing of A is
    hidden (A \\ V empty: the object is left out of mIoU_occ). V outside A is no part of A \\ V."""
    hidden = truth & ~visible
    if not hidden.any():
        return None
    intersection, union = mask_overlap(prediction & ~visible, hidden)
    return intersection / union


def bucket_label(max_rate: float) -> str:
    return f"≤{round(max_rate * 100):d}%"


def bucket_key(max_rate: float) -> str:
    return f"le{round(max_rate * 100):02d}"


class ExactSum:
    """A running sum of floats with no rounding: its ``value`` is the correctly rounded total, which
    ``math.fsum`` gives for the same numbers in any order. Each float is an integer multiple of 2**-1074,
    so the sum is kept as that integer."""

    SHIFT = 1074

    def __init__(self) -> None:
        self.units = 0

    @classmethod
    def units_of(cls, value: float) -> int:
        numerator, denominator = float(value).as_integer_ratio()
        return numerator << (cls.SHIFT + 1 - denominator.bit_length())

    @property
    def value(self) -> float:
        return self.units / (1 << self.SHIFT)  # int / int: correctly rounded


class Scores:
    """The running sums of one group of objects (all, a bucket, a category): mIoU, pixel IoU, mIoU_occ."""

    def __init__(self) -> None:
        self.iou, self.n, self.intersection, self.union = ExactSum(), 0, 0, 0
        self.iou_occ, self.n_occ, self.occ_unknown = ExactSum(), 0, 0

    def add(self, row: dict, iou_units: int, occ_units: int | None) -> None:
        self.iou.units += iou_units
        self.n += 1
        self.intersection += row["intersection"]
        self.union += row["union"]
        if "iou_occ" not in row:
            self.occ_unknown += 1  # written before iou_occ was recorded
        elif occ_units is not None:
            self.iou_occ.units += occ_units
            self.n_occ += 1

    def result(self) -> dict:
        """mIoU, pixel IoU and n; mIoU_occ and n_occ, both None when some row predates iou_occ (a mean of
        the others would be a number about other objects)."""
        if not self.n:
            return {"miou": None, "pixel_iou": None, "n": 0, "miou_occ": None, "n_occ": 0}
        known = not self.occ_unknown
        return {
            "miou": self.iou.value / self.n,
            "pixel_iou": self.intersection / self.union if self.union else 1.0,
            "n": self.n,
            "miou_occ": self.iou_occ.value / self.n_occ if known and self.n_occ else None,
            "n_occ": self.n_occ if known else None,
        }


UNNAMED = "(unnamed)"
"""The category of an object the dataset names none for, where it names others."""


class Summary:
    """metrics.json, summed row by row: ``add`` each row of results.jsonl (in any order), then ``result``.
    Skipped and unscored rows are counted, not scored; the memory is the sums', whatever the rows."""

    def __init__(self, buckets: Sequence[float] = BUCKETS, include_unoccluded: bool = False) -> None:
        self.buckets, self.include_unoccluded = tuple(buckets), bool(include_unoccluded)
        self.overall = Scores()
        self.by_bucket = [Scores() for _ in self.buckets]
        self.by_category: dict[str, Scores] = {}
        self.objects = self.predicted = self.scored = self.unoccluded = self.disagreements = self.missing = 0
        self.skipped: Counter = Counter()
        self.unscored: Counter = Counter()
        self.seconds, self.timed = ExactSum(), 0
        self.peak_memory_mb: float | None = None
        self.inpainted: int | None = None
        self.cache: Counter = Counter()
        self.image_embeddings: int | None = None

    def add(self, row: dict) -> None:
        self.objects += 1
        if row.get("skipped"):
            self.skipped[row["skipped"]] += 1
            return
        rate = row.get("occlusion_rate")
        self.unoccluded += is_unoccluded(rate)
        if rate is not None and row.get("annotated_occlusion") is not None \
                and abs(row["annotated_occlusion"] - rate) > ANNOTATION_TOLERANCE:
            self.disagreements += 1
        if row.get("unscored"):
            self.unscored[row["unscored"]] += 1
            return
        self._count_prediction(row)
        if row.get("iou") is None:
            return
        self.scored += 1
        if counts_in_miou(row, self.include_unoccluded):
            self._score(row)

    def _count_prediction(self, row: dict) -> None:
        """Time, memory, and the work of the inpainting methods, over every predicted row (so a resumed or
        merged run counts all its processes)."""
        self.predicted += 1
        self.missing += bool(row.get("missing"))  # method=external: scored as an empty mask
        if row.get("seconds") is not None:
            self.seconds.units += ExactSum.units_of(row["seconds"])
            self.timed += 1
        if row.get("peak_memory_mb") is not None:
            memory = row["peak_memory_mb"]
            self.peak_memory_mb = memory if self.peak_memory_mb is None else max(self.peak_memory_mb, memory)
        if "inpainted" in row:
            self.inpainted = (self.inpainted or 0) + bool(row["inpainted"])
        if row.get("inpaint_cache"):
            self.cache[row["inpaint_cache"]] += 1
        if "image_embeddings" in row:  # the segmenter's image-encoder passes
            self.image_embeddings = (self.image_embeddings or 0) + (row["image_embeddings"] or 0)

    def _score(self, row: dict) -> None:
        iou_units = ExactSum.units_of(row["iou"])
        occ = row.get("iou_occ")
        occ_units = None if occ is None else ExactSum.units_of(occ)
        self.overall.add(row, iou_units, occ_units)
        for max_rate, scores in zip(self.buckets, self.by_bucket):
            if row["occlusion_rate"] <= max_rate + TOLERANCE:
                scores.add(row, iou_units, occ_units)
        category = row.get("category") or ""
        self.by_category.setdefault(category, Scores()).add(row, iou_units, occ_units)

    def counts(self) -> dict:
        """What happened to every object: the ``counts`` of metrics.json."""
        return {
            "objects": self.objects,
            "predicted": self.predicted,
            "scored": self.scored,
            "unoccluded": self.unoccluded,
            "without_ground_truth": self.predicted - self.scored,
            "missing": self.missing,
            "skipped": dict(sorted(self.skipped.items())),
            "unscored": dict(sorted(self.unscored.items())),
            "occlusion_disagreements": self.disagreements,
        }

    def categories(self) -> dict[str, dict]:
        """{name: {miou, miou_occ, n, n_occ}} by name, where the dataset names categories ({} where not)."""
        if set(self.by_category) <= {""}:
            return {}
        categories = {}
        for name in sorted(self.by_category):
            scores = self.by_category[name].result()
            categories[name or UNNAMED] = {k: scores[k] for k in ("miou", "miou_occ", "n", "n_occ")}
        return categories

    def result(self) -> dict:
        """metrics.json. Objects that a run did not predict (``unscored``, e.g. unoccluded ones) cannot
        enter mIoU even with ``include_unoccluded``: ``counts.unscored`` says how many and why."""
        buckets = [{"max_occlusion": max_rate, "label": bucket_label(max_rate), **scores.result()}
                   for max_rate, scores in zip(self.buckets, self.by_bucket)]
        return {
            **self.overall.result(),
            "buckets": buckets,
            "categories": self.categories(),
            "include_unoccluded": self.include_unoccluded,
            "counts": self.counts(),
            "seconds_per_object": self.seconds.value / self.timed if self.timed else None,
            "seconds_total": self.seconds.value,
            "peak_memory_mb": None if self.peak_memory_mb is None else float(self.peak_memory_mb),
            **self._inpainting_counts(),
        }

    def _inpainting_counts(self) -> dict:
        """Objects sent through the diffusion model, inpainting-cache hits and misses and the segmenter's
        image embeddings; each absent for methods that do not do it."""
        counts = {}
        if self.inpainted is not None:
            counts["objects_inpainted"] = self.inpainted
        if self.cache:
            counts["inpaint_cache"] = {"hits": self.cache["hit"], "misses": self.cache["miss"]}
        if self.image_embeddings is not None:
            counts["image_embeddings"] = self.image_embeddings
        return counts


def summarize(
    rows: Iterable[dict], buckets: Sequence[float] = BUCKETS, include_unoccluded: bool = False
) -> dict:
    """metrics.json from the rows of results.jsonl (a list, or a stream read once)."""
    summary = Summary(buckets, include_unoccluded)
    for row in rows:
        summary.add(row)
    return summary.result()


def as_visible(row: dict) -> dict | None:
    """The row Â = V would give for the same object, from its areas alone: where V ⊆ A (every dataset's
    convention), IoU(V, A) = |V| / |A| = 1 − occlusion rate (elsewhere an upper bound), and the hidden part
    scores 0 (Â \\ V is empty). None when a scored row lacks its areas (results written before they were
    recorded)."""
    if row.get("skipped") or row.get("iou") is None:
        return row
    if row.get("visible_area") is None or not row.get("amodal_area"):
        return None
    inside, outside = sorted((row["visible_area"], row["amodal_area"]))
    visible = {**row, "iou": inside / outside, "intersection": inside, "union": outside}
    if row.get("iou_occ") is not None:
        visible["iou_occ"] = 0.0
    return visible


def visible_baseline(rows: Iterable[dict]) -> list[dict] | None:
    """The rows Â = V would score on the same objects (``as_visible``), None when one is not known."""
    baseline = []
    for row in rows:
        visible = as_visible(row)
        if visible is None:
            return None
        baseline.append(visible)
    return baseline


def summarize_with_baseline(rows: Iterable[dict], buckets: Sequence[float] = BUCKETS,
                            include_unoccluded: bool = False) -> tuple[dict, dict | None]:
    """metrics.json and what Â = V would score on the same objects (None where not known), in one pass
    over the rows."""
    summary, baseline = Summary(buckets, include_unoccluded), Summary(buckets, include_unoccluded)
    for row in rows:
        summary.add(row)
        visible = as_visible(row) if baseline is not None else None
        if visible is None:
            baseline = None
        else:
            baseline.add(visible)
    return summary.result(), None if baseline is None else baseline.result()


def flat_metrics(metrics: dict) -> dict[str, float]:
    """metrics.json as flat scalars (``miou``, ``miou/le50``, ``miou_occ``, ...), for W&B and tables."""
    flat = {k: metrics.get(k) for k in ("miou", "pixel_iou", "n", "miou_occ", "n_occ", "seconds_per_object",
                                        "peak_memory_mb")}
    for bucket in metrics["buckets"]:
        key = bucket_key(bucket["max_occlusion"])
        flat[f"miou/{key}"] = bucket["miou"]
        flat[f"pixel_iou/{key}"] = bucket["pixel_iou"]
        flat[f"n/{key}"] = bucket["n"]
        flat[f"miou_occ/{key}"] = bucket.get("miou_occ")
        flat[f"n_occ/{key}"] = bucket.get("n_occ")
    return {k: v for k, v in flat.items() if v is not None}
