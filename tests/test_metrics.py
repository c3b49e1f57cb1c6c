import numpy as np
import pytest

from amodal.eval.metrics import UNOCCLUDED, flat_metrics, iou, summarize
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
