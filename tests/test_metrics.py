import math

import numpy as np
import pytest

from amodal.eval.metrics import UNOCCLUDED, ExactSum, flat_metrics, hidden_iou, iou, summarize, visible_baseline
from amodal.sample import occlusion_rate


def test_iou_on_known_masks():
    a = np.zeros((4, 4), bool)
    b = np.zeros((4, 4), bool)
    a[:2] = True  # 8 px
    b[1:3] = True  # 8 px, 4 shared
    assert iou(a, b) == pytest.approx(4 / 12)
    assert iou(a, a) == 1.0
    assert iou(a, ~a) == 0.0


def test_occlusion_rate_is_the_hidden_fraction_of_the_amodal_mask():
    amodal = np.zeros((10, 10), bool)
    amodal[:, :4] = True  # 40 px
    visible = amodal.copy()
    visible[:, :1] = False  # 10 hidden
    assert occlusion_rate(visible, amodal) == pytest.approx(0.25)


def row(rate, iou_value, inter, union, **extra):
    return {"image_id": "i", "object_id": str(rate), "occlusion_rate": rate, "iou": iou_value,
            "intersection": inter, "union": union, "seconds": 1.0, **extra}


def test_buckets_are_cumulative_and_unoccluded_objects_are_a_switch():
    rows = [row(0.0, 1.0, 10, 10), row(0.05, 0.9, 9, 10), row(0.3, 0.5, 10, 20), row(0.6, 0.2, 2, 10)]
    m = summarize(rows, include_unoccluded=False)
    le = {b["label"]: b for b in m["buckets"]}
    assert m["n"] == 3 and m["miou"] == pytest.approx((0.9 + 0.5 + 0.2) / 3)
    assert le["≤50%"]["n"] == 2 and le["≤50%"]["miou"] == pytest.approx(0.7)
    assert le["≤30%"]["n"] == 2  # 0.3 belongs to ≤30%
    assert le["≤5%"]["n"] == 1 and le["≤5%"]["miou"] == pytest.approx(0.9)
    assert le["≤50%"]["pixel_iou"] == pytest.approx((9 + 10) / (10 + 20))
    m_all = summarize(rows, include_unoccluded=True)
    assert m_all["n"] == 4
    assert {b["label"]: b["n"] for b in m_all["buckets"]}["≤5%"] == 2
    assert m["counts"]["unoccluded"] == 1


def test_skipped_and_unscored_rows_are_counted_not_scored():
    rows = [
        row(0.2, 0.5, 1, 2),
        {"image_id": "i", "object_id": "x", "skipped": "empty visible mask"},
        {"image_id": "i", "object_id": "y", "skipped": "empty visible mask"},
        {"image_id": "i", "object_id": "z", "occlusion_rate": None, "iou": None, "seconds": 2.0},
    ]
    m = summarize(rows)
    assert m["n"] == 1
    assert m["counts"] == {"objects": 4, "predicted": 2, "scored": 1, "unoccluded": 0,
                           "without_ground_truth": 1, "skipped": {"empty visible mask": 2}, "unscored": {},
                           "occlusion_disagreements": 0, "missing": 0}
    assert m["seconds_per_object"] == pytest.approx(1.5)
    assert flat_metrics(m)["miou/le50"] == pytest.approx(0.5)


def test_empty_buckets_have_no_score():
    m = summarize([row(0.45, 0.5, 1, 2)])
    assert {b["label"]: b["miou"] for b in m["buckets"]}["≤40%"] is None


def test_annotated_occlusion_rates_that_disagree_with_the_masks_are_counted():
    rows = [row(0.30, 0.5, 1, 2), row(0.30, 0.5, 1, 2), row(0.30, 0.5, 1, 2), row(0.0, 1.0, 2, 2)]
    rows[0]["annotated_occlusion"] = 0.305  # within 1 %
    rows[1]["annotated_occlusion"] = 0.32   # off by 2 %
    rows[3]["annotated_occlusion"] = 0.5
    m = summarize(rows, include_unoccluded=True)
    assert m["counts"]["occlusion_disagreements"] == 2
    assert m["miou"] == pytest.approx(0.625)  # the file's rates change nothing else


def test_miou_does_not_depend_on_row_order():
    rows = [row(0.1, iou, 1, 2) for iou in (0.1, 0.7, 1e-17, 0.3, 0.9999999, 0.2)]
    shuffled = sorted(rows, key=str)
    assert summarize(rows)["miou"] == summarize(rows[::-1])["miou"] == summarize(shuffled)["miou"]


def test_unoccluded_objects_a_run_did_not_predict_are_counted_and_never_scored():
    unpredicted = {"image_id": "i", "object_id": "u", "occlusion_rate": 0.0, "iou": None, "unscored": UNOCCLUDED}
    rows = [row(0.3, 0.5, 1, 2), row(0.0, 1.0, 4, 4), unpredicted]
    for include in (False, True):
        m = summarize(rows, include_unoccluded=include)
        assert m["counts"]["unscored"] == {UNOCCLUDED: 1}
        assert m["counts"]["unoccluded"] == 2 and m["counts"]["predicted"] == 2 and m["counts"]["scored"] == 2
        assert m["counts"]["without_ground_truth"] == 0
    assert summarize(rows, include_unoccluded=False)["n"] == 1
    assert summarize(rows, include_unoccluded=True)["n"] == 2  # the predicted one only
    assert summarize(rows, include_unoccluded=True)["miou"] == pytest.approx(0.75)


def pixels(text: str) -> np.ndarray:
    """A one-row mask written out: "1100" → [True, True, False, False]."""
    return np.array([c == "1" for c in text])


def test_hidden_iou_is_the_iou_of_what_lies_outside_v():
    """C2F-Seg's IoU(Â \\ V, A \\ V) on six pixels, V reaching outside A (pixel 5)."""
    amodal, visible = pixels("111100"), pixels("110001")  # A \ V = {2, 3}
    predicted = pixels("111011")  # Â \ V = {2, 4}
    assert hidden_iou(predicted, amodal, visible) == 1 / 3  # {2} / {2, 3, 4}
    assert hidden_iou(visible, amodal, visible) == 0.0  # Â = V completes nothing
    assert hidden_iou(amodal, amodal, visible) == 1.0
    assert hidden_iou(pixels("000000"), amodal, visible) == 0.0
    assert hidden_iou(pixels("001101"), amodal, visible) == 1.0  # V outside A is no part of A \ V


def test_hidden_iou_is_none_when_nothing_of_a_is_hidden():
    assert hidden_iou(pixels("1110"), pixels("1100"), pixels("1100")) is None  # A = V
    assert hidden_iou(pixels("1110"), pixels("1100"), pixels("1110")) is None  # A inside V


def occ_row(rate, iou_value, iou_occ, category="", **extra):
    return row(rate, iou_value, 1, 2, iou_occ=iou_occ, category=category, **extra)


def test_miou_occ_leaves_out_objects_with_nothing_hidden_in_every_bucket():
    rows = [occ_row(0.45, 0.5, 0.25), occ_row(0.2, 0.9, None), occ_row(0.1, 0.7, 0.5), occ_row(0.0, 1.0, None)]
    m = summarize(rows, include_unoccluded=True)
    assert (m["n"], m["miou"], m["n_occ"], m["miou_occ"]) == (4, pytest.approx(0.775), 2, 0.375)
    le = {b["label"]: b for b in m["buckets"]}
    assert (le["≤40%"]["n"], le["≤40%"]["n_occ"], le["≤40%"]["miou_occ"]) == (3, 1, 0.5)
    assert (le["≤5%"]["n"], le["≤5%"]["n_occ"], le["≤5%"]["miou_occ"]) == (1, 0, None)
    assert flat_metrics(m)["miou_occ"] == 0.375 and flat_metrics(m)["n_occ/le10"] == 1
    assert "miou_occ/le05" not in flat_metrics(m)


def test_rows_written_before_iou_occ_leave_miou_occ_unknown_not_zero():
    old = [row(0.3, 0.5, 1, 2), row(0.2, 0.7, 1, 2)]
    m = summarize(old)
    assert m["miou"] == pytest.approx(0.6) and m["miou_occ"] is None and m["n_occ"] is None
    mixed = summarize([*old, occ_row(0.2, 0.9, 0.8)])  # a mean of the new row alone would be about 1 object
    assert mixed["miou_occ"] is None and mixed["n"] == 3
    assert "miou_occ" not in flat_metrics(m)


def test_categories_get_their_own_miou_and_miou_occ():
    rows = [occ_row(0.3, 0.5, 0.2, "cat"), occ_row(0.2, 0.7, None, "cat"), occ_row(0.4, 0.9, 0.6, "dog"),
            occ_row(0.0, 1.0, None, "dog"),  # unoccluded: out of mIoU, so out of its category too
            {"image_id": "i", "object_id": "s", "skipped": "empty visible mask", "category": "cow"}]
    categories = summarize(rows)["categories"]
    assert categories == {"cat": {"miou": pytest.approx(0.6), "miou_occ": 0.2, "n": 2, "n_occ": 1},
                          "dog": {"miou": 0.9, "miou_occ": 0.6, "n": 1, "n_occ": 1}}
    assert summarize([occ_row(0.3, 0.5, 0.2)])["categories"] == {}  # the dataset names none
    unnamed = summarize([occ_row(0.3, 0.5, 0.2, "cat"), occ_row(0.3, 0.1, 0.1)])["categories"]
    assert unnamed["(unnamed)"]["n"] == 1 and sum(c["n"] for c in unnamed.values()) == 2


def test_the_visible_baseline_scores_zero_on_the_hidden_part():
    rows = [occ_row(0.5, 0.9, 0.8, visible_area=5, amodal_area=10), occ_row(0.0, 1.0, None, visible_area=4,
                                                                           amodal_area=4)]
    baseline = summarize(visible_baseline(rows), include_unoccluded=True)
    assert (baseline["miou"], baseline["miou_occ"], baseline["n_occ"]) == (0.75, 0.0, 1)


def test_exact_sum_is_fsum_in_any_order():
    values = [0.1, 1e-17, 0.7, 1e-300, 0.3333333333333333, 5e-324, 0.9999999999999999] * 3
    for order in (values, values[::-1], sorted(values)):
        total = ExactSum()
        for value in order:
            total.units += ExactSum.units_of(value)
        assert total.value == math.fsum(values)
