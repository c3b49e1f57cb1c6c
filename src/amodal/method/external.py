"""Predictions of another system (pix2gestalt, AmodalWild, a new method), scored by exactly our metric.

    <root>/<image_id>/<object_id>.png     the predicted amodal mask, image-sized (inside: ≥ half its maximum)

the layout of a ``folder`` dataset's ``amodal/`` folder and of a run's ``masks/`` folder
(``output.save_masks=true``), with ids made file-name-safe the same way. An object without a file, or
with a file of the wrong size, is skipped and counted (``SampleError``), never scored as empty.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from amodal.data.files import SoftMasks, mask_path, read_mask
from amodal.errors import ConfigError, SampleError
from amodal.method.predictor import Predictor
from amodal.sample import ObjectKey, Prediction, Sample


class ExternalPredictor(Predictor):
    name = "external"

    def __init__(self, root: str | None, name: str = "external") -> None:
        if not root:
            raise ConfigError("method.root is not set: pass method.root=/path/to/predictions holding "
                              "<image_id>/<object_id>.png masks")
        self.root = Path(root).expanduser()
        if not self.root.is_dir():
            raise ConfigError(f"method.root={self.root} does not exist; "
                              "point it at the folder of predicted masks")
        self.name = name
        self._soft = SoftMasks()

    def path(self, key: ObjectKey) -> Path:
        return mask_path(self.root, key)

    def predict(self, samples: Sequence[Sample], seeds: Sequence[int]) -> list[Prediction]:
        predictions = []
        for sample in samples:
            path = self.path(sample.key)
            if not path.is_file():
                raise SampleError(f"no prediction for this object: expected {path}")
            predictions.append(Prediction(mask=read_mask(path, sample.size, self._soft)))
        return predictions
