"""Mask extraction: the amodal mask Â from the inpainted image x̂₀ (§4, last step of Fig. 2).

An extractor works at the model's view: it gets x̂₀, the visible mask V and the inpainting area M at
that view, plus the condition image x and the object's seed, and returns a ``bool`` mask at the view.
The method maps it back to the original image. ``conf/extractor/<name>.yaml`` picks one.
An extractor whose mask contains V by construction says so (``keeps_visible``): the method then adds
V at the original resolution, not only its coarser copy at the view (an amodal mask contains V).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from amodal.method.component import Component
from amodal.morphology import components_touching


@dataclass
class ExtractionInput:
    inpainted: np.ndarray
    """x̂₀: uint8 h×w×3 at the view."""
    visible: np.ndarray
    """V: bool h×w at the view."""
    area: np.ndarray
    """M: bool h×w at the view."""
    condition: np.ndarray | None = None
    """x (eq. 8): uint8 h×w×3 at the view, when the method made one."""
    seed: int = 0


class Extractor(Component):
    name = "extractor"
    keeps_visible = False
    """True when the mask is V ∪ (what was found): the method adds V again at full resolution."""

    def __call__(self, inputs: ExtractionInput) -> np.ndarray:
        raise NotImplementedError


class DifferenceExtractor(Extractor):
    """A simple stand-in without a segmentation model: Â = V ∪ {p ∈ M : ‖x̂₀(p) − x(p)‖ > τ},
    kept where connected to V. What the model drew anew inside M is taken as the hidden part."""

    name = "diff"
    keeps_visible = True

    def __init__(self, threshold: float = 40.0, blur: int = 5) -> None:
        self.threshold, self.blur = threshold, blur

    def __call__(self, inputs: ExtractionInput) -> np.ndarray:
        if inputs.condition is None:
            return inputs.visible.copy()
        difference = np.linalg.norm(inputs.inpainted.astype(np.float32) - inputs.condition.astype(np.float32), axis=2)
        if self.blur > 1:
            difference = cv2.GaussianBlur(difference, (self.blur | 1, self.blur | 1), 0)
        drawn = (difference > self.threshold) & inputs.area
        return components_touching(drawn | inputs.visible, inputs.visible)


def extract_counting(extractor: Extractor, inputs: ExtractionInput) -> tuple[np.ndarray, dict]:
    """The extractor's mask, and the row fields that count its image-encoder passes (``image_embeddings``:
    0 where the image's embedding was reused), so that metrics.json counts a resumed or merged run whole."""
    before = getattr(extractor, "image_embeddings", None)
    mask = extractor(inputs)
    return mask, ({} if before is None else {"image_embeddings": extractor.image_embeddings - before})
