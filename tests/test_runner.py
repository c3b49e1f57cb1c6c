"""The runner's loop and its evaluator on hand-made objects: rows, IoUs, counts and a batch that fails.
(End to end through amodal-run: tests/test_run.py.)"""

import json

import numpy as np

from amodal.data.base import ObjectDataset
from amodal.errors import SampleError
from amodal.eval.evaluator import Evaluator
from amodal.eval.metrics import UNOCCLUDED
from amodal.eval.results import read_rows
from amodal.method.predictor import Predictor
from amodal.runner import Runner, RunSettings
from amodal.sample import ObjectKey, Prediction, Sample

IMAGE = np.zeros((2, 4, 3), np.uint8)


def mask(*pixels: int) -> np.ndarray:
    """A 2×4 mask holding the pixels numbered row by row (0..7)."""
    out = np.zeros(8, bool)
    out[list(pixels)] = True
    return out.reshape(2, 4)


def sample(object_id: str, visible: np.ndarray, amodal: np.ndarray | None) -> Sample:
    return Sample("hand", "image", object_id, IMAGE, visible=visible, amodal=amodal)


class HandMade(ObjectDataset):
    name = "hand"

    def __init__(self, samples: list[Sample]) -> None:
        super().__init__()
        self.samples = {s.object_id: s for s in samples}

    def _list_objects(self):
        return [s.key for s in self.samples.values()]

    def load(self, key: ObjectKey) -> Sample:
        return self.samples[key.object_id]


class Refusing(Predictor):
    """Â = V plus pixel 3, except for one object, which it refuses; remembers every batch it gets."""

    name = "refusing"

    def __init__(self, refused: str) -> None:
        self.refused, self.batches = refused, []

    def predict(self, samples, seeds):
        self.batches.append([s.object_id for s in samples])
        if any(s.object_id == self.refused for s in samples):
            raise SampleError(f"cannot do {self.refused}")
        return [Prediction(mask=s.visible | mask(3), row={"batch": len(samples)}) for s in samples]


def test_an_object_the_method_refuses_costs_only_its_own_row(tmp_path):
    objects = [sample("a", mask(0), mask(0, 1)), sample("b", mask(4), mask(4, 5)), sample("c", mask(2), mask(2, 3))]
    predictor = Refusing("b")
    metrics = Runner(HandMade(objects), predictor, tmp_path, RunSettings(batch_size=3, progress=False)).run()
    assert predictor.batches == [["a", "b", "c"], ["a"], ["b"], ["c"]]  # then one by one: alone, as they would be
    rows = {r["object_id"]: r for r in read_rows(tmp_path / "results.jsonl")}
    assert rows["b"]["skipped"] == "cannot do b" and "iou" not in rows["b"]
    assert rows["a"]["iou"] == 1 / 3 and rows["a"]["batch"] == 1  # Â = {0, 3}, A = {0, 1}
    assert rows["a"]["iou_occ"] == 0.0  # Â \ V = {3}, A \ V = {1}
    assert rows["c"]["iou"] == 1.0 and rows["c"]["predicted_area"] == 2
    assert rows["c"]["iou_occ"] == 1.0  # Â \ V = A \ V = {3}
    assert metrics == json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["n"] == 2 and metrics["miou"] == (1 / 3 + 1) / 2
    assert metrics["n_occ"] == 2 and metrics["miou_occ"] == 0.5
    assert metrics["counts"]["skipped"] == {"cannot do b": 1}


def test_the_evaluator_scores_by_iou_and_leaves_out_what_it_cannot_score():
    evaluator = Evaluator(buckets=(0.5,))
    unoccluded = sample("whole", mask(0, 1), mask(0, 1))
    row = evaluator.screen(unoccluded, seed=7)
    assert (row["unscored"], row["occlusion_rate"], row["iou"], row["seconds"]) == (UNOCCLUDED, 0.0, None, None)
    assert evaluator.screen(sample("empty", mask(), mask(5)), seed=7)["skipped"] == "empty visible mask"
    half_hidden = sample("half", mask(4), mask(4, 5))
    assert evaluator.screen(half_hidden, seed=7) is None  # to be predicted
    row = evaluator.process(half_hidden, Prediction(mask=mask(4, 5, 6)), seed=7, seconds=0.5)
    assert (row["intersection"], row["union"], row["iou"], row["seconds"]) == (2, 3, 2 / 3, 0.5)
    metrics = evaluator.evaluate()
    assert metrics["miou"] == evaluator.miou == 2 / 3 and metrics["counts"]["objects"] == 3
    assert metrics["counts"]["unscored"] == {UNOCCLUDED: 1}
    assert metrics["counts"]["skipped"] == {"empty visible mask": 1}
    assert Evaluator(include_unoccluded=True).screen(unoccluded, seed=7) is None  # predicted and scored then


def test_a_reset_evaluator_counts_the_rows_it_resumes_from():
    evaluator = Evaluator()
    first = evaluator.process(sample("a", mask(0), mask(0, 1)), Prediction(mask=mask(0)), seed=0)
    evaluator.reset([first])
    evaluator.process(sample("b", mask(4), mask(4, 5)), Prediction(mask=mask(4, 5)), seed=0)
    assert evaluator.miou == evaluator.evaluate()["miou"] == (0.5 + 1.0) / 2 and len(evaluator.rows) == 2
