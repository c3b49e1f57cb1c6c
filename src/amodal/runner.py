"""The evaluation loop: dataset × method → results.jsonl, metrics.json, masks and pictures.

It knows only the interfaces (``ObjectDataset``, ``Predictor``, ``RunLogger``), never a concrete class.
Scoring is the evaluator's (``eval/evaluator.py``); the masks and pictures are ``RunOutputs``'. Each
object's row is flushed as soon as it is scored, so a crash loses nothing that was finished and a
re-run into the same folder starts where the last one stopped.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from amodal.data.base import ObjectDataset, Shard
from amodal.data.files import mask_path, picture_name, save_png, write_atomic, write_mask
from amodal.errors import SampleError
from amodal.eval.evaluator import Evaluator
from amodal.eval.metrics import ANNOTATION_TOLERANCE, BUCKETS
from amodal.eval.pictures import panel
from amodal.eval.results import ResultsLog, row_key
from amodal.eval.run_folder import BEYOND_LIMIT, MASKS_DIR, METRICS_FILE, PICTURES_DIR, RESULTS_FILE, too_large
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
    retry_too_large: bool = False
    """Evaluate again the objects skipped as over ``runtime.max_image_pixels`` (a resume that raised it)."""


PNG_START, PNG_END = b"\x89PNG\r\n\x1a\n", b"IEND\xaeB`\x82"


def complete_png(path: Path) -> bool:
    """Whether a PNG the run wrote is there whole: its signature first and its end chunk last (a full disk
    under an older run left 0-byte or cut files). Reads two blocks, not the image."""
    try:
        with path.open("rb") as handle:
            if handle.read(8) != PNG_START:
                return False
            handle.seek(-8, os.SEEK_END)
            return handle.read(8) == PNG_END
    except OSError:
        return False


class RunOutputs:
    """What a run writes beside its rows: each predicted mask when asked (``save_masks``) or when there is
    no ground truth to score it against, and panels of the first ``pictures`` objects, which the logger
    gets too. Each file is written whole (``save_png``) before the object's row, so a row vouches for its
    files; a resumed run counts the panels already there and evaluates again the objects whose mask or
    panel an older run left broken (``broken``)."""

    def __init__(self, run_dir: Path, save_masks: bool, pictures: int, logger: RunLogger) -> None:
        self.masks_dir, self.pictures_dir = run_dir / MASKS_DIR, run_dir / PICTURES_DIR
        self.save_masks, self.pictures, self.logger = save_masks, pictures, logger
        panels = sorted(self.pictures_dir.glob("*.png")) if self.pictures_dir.exists() else []
        self.broken_panels = {p.stem for p in panels if not complete_png(p)}
        for name in self.broken_panels:  # garbage: redrawn below when its object is predicted again
            (self.pictures_dir / f"{name}.png").unlink(missing_ok=True)
        self.pictured = len(panels) - len(self.broken_panels)
        self.redraw: set[ObjectKey] = set()

    @staticmethod
    def panel_name(key: ObjectKey) -> str:
        return picture_name(key)

    def needs_mask(self, row: dict) -> bool:
        """A predicted object whose mask the run keeps: asked for, or the only output without ground truth."""
        predicted = not row.get("skipped") and not row.get("unscored")
        return predicted and (self.save_masks or row.get("iou") is None)

    def broken(self, row: dict) -> bool:
        """A row whose mask should be in masks/ and is not whole, or whose panel is not: to evaluate again."""
        key = row_key(row)
        if self.needs_mask(row) and not complete_png(mask_path(self.masks_dir, key)):
            return True
        if self.panel_name(key) in self.broken_panels:
            self.redraw.add(key)
            return True
        return False

    def write(self, sample: Sample, prediction: Prediction, row: dict) -> None:
        if self.save_masks or sample.amodal is None:
            write_mask(mask_path(self.masks_dir, sample.key), prediction.mask)
        if self.pictured < self.pictures or sample.key in self.redraw:
            picture = panel(sample, prediction, row)
            name = self.panel_name(sample.key)
            save_png(self.pictures_dir / f"{name}.png", picture)
            self.logger.log_picture(name, picture)
            if sample.key not in self.redraw:
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
        self.beyond_selection = 0

    def run(self) -> dict:
        with ResultsLog(self.run_dir / RESULTS_FILE, redo=self._redo) as results:
            self.evaluator.reset(results.rows)
            todo, selected = self._todo(results)
            self.beyond_selection = len(results.rows) - (selected - len(todo))
            if results.redone:
                log.warning("evaluating %d objects again: their saved mask or panel is missing or cut short, or "
                            "they were skipped as over a runtime.max_image_pixels since raised", results.redone)
            if results.rows:
                log.info("resuming: %d objects done, %d to go", len(results.rows), len(todo))
            with self._progress_bar(len(todo)) as bar:
                for start in range(0, len(todo), self.settings.batch_size):
                    batch = todo[start : start + self.settings.batch_size]
                    for row, sample, prediction in self._evaluate(batch):
                        if prediction is not None:  # the files first: a row vouches for them
                            self.outputs.write(sample, prediction, row)
                        results.append(row)
                    if self.evaluator.miou is not None:  # metrics.json's mIoU, from the same rows
                        bar.set_postfix_str(f"mIoU {100 * self.evaluator.miou:.1f}", refresh=False)
                    bar.update(len(batch))
        metrics = self.evaluator.evaluate()
        self._finish(metrics)
        return metrics

    def _todo(self, results: ResultsLog) -> tuple[list[ObjectKey], int]:
        """The objects of this shard not yet in results.jsonl, and how many objects of this shard the run
        selects. With ``dataset.limit`` N, it selects the objects up to the dataset's N-th object that is
        scored (``Evaluator.predicts``), counted over all shards so that shards split the objects of the
        unsharded run: the objects before it that are not scored (unoccluded, unloadable) are recorded but
        not counted, and one the method refuses is counted."""
        shard, limit = self.settings.shard, self.dataset.limit
        if limit is None:
            selected = self.dataset.keys(shard)
            return [key for key in selected if key not in results], len(selected)
        rows = {row_key(row): row for row in results.rows}
        todo, selected, counted = [], 0, 0
        for key in self.dataset.keys():
            if counted == limit:
                break
            if shard.holds(key):
                selected += 1
                if key not in results:
                    todo.append(key)
            counted += self._predicts(key, rows.get(key))
        return todo, selected

    def _predicts(self, key: ObjectKey, row: dict | None) -> bool:
        """Whether an object is (or was) predicted: its row says so, unless it was skipped (by the dataset, or
        by the method, which counts), else its sample does."""
        if row is not None and not row.get("skipped"):
            return not row.get("unscored")
        try:
            return self.evaluator.predicts(self.dataset.load(key))
        except SampleError:
            return False

    def _redo(self, row: dict) -> bool:
        """Whether a resumed row is to be evaluated again rather than kept."""
        return (self.settings.retry_too_large and too_large(row)) or self.outputs.broken(row)

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
        if self.beyond_selection:
            log.warning("%d rows of %s are of objects that this run's dataset.limit does not select (an earlier "
                        "run into the folder went further); metrics.json counts every row of the folder",
                        self.beyond_selection, self.run_dir / RESULTS_FILE)
            metrics[BEYOND_LIMIT] = self.beyond_selection
        write_atomic(self.run_dir / METRICS_FILE, json.dumps(metrics, indent=2, ensure_ascii=False) + "\n")
        self.logger.log_metrics(metrics)
