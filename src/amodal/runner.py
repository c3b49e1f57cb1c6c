"""The evaluation loop: dataset × method → results.jsonl, metrics.json, masks and pictures.

It knows only the interfaces (``ObjectDataset``, ``Predictor``, ``RunLogger``), never a concrete class.
Scoring is the evaluator's (``eval/evaluator.py``); the masks and pictures are ``RunOutputs``'. Each
object's row is flushed as soon as it is scored, so a crash loses nothing that was finished and a
re-run into the same folder starts where the last one stopped.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from amodal.data.base import ObjectDataset, Shard
from amodal.data.files import mask_path, safe_name, save_png, write_atomic, write_mask
from amodal.errors import SampleError
from amodal.eval.evaluator import Evaluator
from amodal.eval.metrics import ANNOTATION_TOLERANCE, BUCKETS
from amodal.eval.pictures import panel
from amodal.eval.results import ResultsLog, row_key
from amodal.eval.run_folder import MASKS_DIR, METRICS_FILE, PICTURES_DIR, RESULTS_FILE
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


class RunOutputs:
    """What a run writes beside its rows: each predicted mask when asked (``save_masks``) or when there is
    no ground truth to score it against, and panels of the first ``pictures`` objects, which the logger
    gets too. A resumed run counts the panels already there."""

    def __init__(self, run_dir: Path, save_masks: bool, pictures: int, logger: RunLogger) -> None:
        self.masks_dir, self.pictures_dir = run_dir / MASKS_DIR, run_dir / PICTURES_DIR
        self.save_masks, self.pictures, self.logger = save_masks, pictures, logger
        self.pictured = len(list(self.pictures_dir.glob("*.png"))) if self.pictures_dir.exists() else 0

    def write(self, sample: Sample, prediction: Prediction, row: dict) -> None:
        if self.save_masks or sample.amodal is None:
            write_mask(mask_path(self.masks_dir, sample.key), prediction.mask)
        if self.pictured < self.pictures:
            picture = panel(sample, prediction, row)
            name = f"{safe_name(sample.image_id)}__{safe_name(sample.object_id)}"
            save_png(self.pictures_dir / f"{name}.png", picture)
            self.logger.log_picture(name, picture)
            self.pictured += 1


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
        self.evaluator = Evaluator(settings.buckets, settings.include_unoccluded)
        self.outputs = RunOutputs(self.run_dir, settings.save_masks, settings.pictures, self.logger)

    def run(self) -> dict:
        with ResultsLog(self.run_dir / RESULTS_FILE) as results:
            self.evaluator.reset(results.rows)
            todo = self._todo(results)
            if results.rows:
                log.info("resuming: %d objects done, %d to go", len(results.rows), len(todo))
            with self._progress_bar(len(todo)) as bar:
                for start in range(0, len(todo), self.settings.batch_size):
                    batch = todo[start : start + self.settings.batch_size]
                    for row, sample, prediction in self._evaluate(batch):
                        results.append(row)
                        if prediction is not None:
                            self.outputs.write(sample, prediction, row)
                    if self.evaluator.miou is not None:  # metrics.json's mIoU, from the same rows
                        bar.set_postfix_str(f"mIoU {100 * self.evaluator.miou:.1f}", refresh=False)
                    bar.update(len(batch))
        metrics = self.evaluator.evaluate()
        self._finish(metrics)
        return metrics

    def _todo(self, results: ResultsLog) -> list[ObjectKey]:
        """The objects of this shard not yet in results.jsonl. With ``dataset.limit`` N, of those only the ones
        up to the dataset's N-th object that is scored (``Evaluator.predicts``), counted over all shards so
        that shards split the objects of the unsharded run: the objects before it that are not scored
        (unoccluded, unloadable) are recorded but not counted, and one the method refuses is counted."""
        shard, limit = self.settings.shard, self.dataset.limit
        if limit is None:
            return [key for key in self.dataset.keys(shard) if key not in results]
        rows = {row_key(row): row for row in results.rows}
        todo, counted = [], 0
        for key in self.dataset.keys():
            if counted == limit:
                break
            if shard.holds(key) and key not in results:
                todo.append(key)
            counted += self._predicts(key, rows.get(key))
        return todo

    def _predicts(self, key: ObjectKey, row: dict | None) -> bool:
        """Whether an object is (or was) predicted: its row says so, unless it was skipped (by the dataset, or
        by the method, which counts), else its sample does."""
        if row is not None and not row.get("skipped"):
            return not row.get("unscored")
        try:
            return self.evaluator.predicts(self.dataset.load(key))
        except SampleError:
            return False

    def _progress_bar(self, total: int) -> tqdm:
        return tqdm(total=total, desc=f"{self.predictor.name} on {self.dataset.name}", unit="obj",
                    disable=not self.settings.progress, dynamic_ncols=True)

    def _evaluate(self, keys: Sequence[ObjectKey]) -> Iterator[tuple[dict, Sample | None, Prediction | None]]:
        """(row, sample, prediction) for each object of a batch; without a prediction for an object that
        cannot be loaded, is not to be predicted (the evaluator's ``screen``) or that the method refused."""
        samples = []
        for key in keys:
            try:
                sample = self.dataset.load(key)
            except SampleError as err:
                log.warning("skipping %s/%s: %s", key.image_id, key.object_id, err)
                yield self.evaluator.skip(self.dataset.name, key, str(err)), None, None
                continue
            row = self.evaluator.screen(sample, object_seed(self.settings.seed, key))
            if row is not None:
                yield row, sample, None
            else:
                samples.append(sample)
        for sample, seed, outcome, seconds in self._predict(samples):
            if isinstance(outcome, SampleError):
                log.warning("skipping %s/%s: %s", sample.image_id, sample.object_id, outcome)
                yield self.evaluator.skip(sample.dataset, sample.key, str(outcome)), sample, None
            else:
                measured = {"seconds": seconds, "peak_memory_mb": peak_memory_mb(self.settings.device)}
                yield self.evaluator.process(sample, outcome, seed, **measured), sample, outcome

    def _predict(self, samples: list[Sample]) -> list[tuple[Sample, int, Prediction | SampleError, float]]:
        """(sample, seed, prediction, seconds per object) for each sample, or the ``SampleError`` the method
        refused it with: a batch that fails is predicted again one by one, so that only the refused object
        is lost and its batch-mates get what they would get alone."""
        if not samples:
            return []
        seeds = [object_seed(self.settings.seed, s.key) for s in samples]
        try:
            start = time.perf_counter()
            predictions = self.predictor.predict(samples, seeds)
            seconds = (time.perf_counter() - start) / len(samples)
        except SampleError as err:
            if len(samples) == 1:
                return [(samples[0], seeds[0], err, 0.0)]
            return [out for sample in samples for out in self._predict([sample])]
        return list(zip(samples, seeds, predictions, [seconds] * len(samples)))

    def _finish(self, metrics: dict) -> None:
        """metrics.json, written whole or not at all, and to the logger."""
        if metrics["counts"]["occlusion_disagreements"]:
            log.warning(
                "%d objects' occlusion rate in the annotation file differs from 1 − |V|/|A| of their masks "
                "by more than %.0f%%; buckets use the masks' rate (both are in results.jsonl)",
                metrics["counts"]["occlusion_disagreements"], 100 * ANNOTATION_TOLERANCE,
            )
        if metrics["counts"]["missing"]:
            log.warning("%d objects had no usable prediction and are scored as empty masks (IoU 0); their rows say "
                        "\"missing\": true and why (method.missing=skip leaves them out instead)",
                        metrics["counts"]["missing"])
        write_atomic(self.run_dir / METRICS_FILE, json.dumps(metrics, indent=2, ensure_ascii=False) + "\n")
        self.logger.log_metrics(metrics)
