"""An extractor whose mask contains V by construction gets V back at full resolution: a 64 px view
cannot hold a 1 px wide part of V, and the amodal mask must still contain it."""

import numpy as np

from amodal.method.area import HullArea
from amodal.method.background import HistogramBackground
from amodal.method.component import Component
from amodal.method.condition import Condition, to_uint8
from amodal.method.extract import Extractor
from amodal.method.pipeline import InpaintPredictor
from amodal.method.view import ViewSpec
from amodal.sample import Sample


class ConditionAsInpainting(Component):
    """Returns the condition image: no model needed to test what happens after inpainting."""

    def inpaint(self, conditions, areas, seeds):
        return [to_uint8(c) for c in conditions]


class VisibleAtView(Extractor):
    def __call__(self, inputs):
        return inputs.visible.copy()


def thin_sample() -> Sample:
    image = np.full((512, 512, 3), 90, np.uint8)
    visible = np.zeros((512, 512), bool)
    visible[200:300, 200:300] = True
    visible[250, 100:200] = True  # a 1 px wide whisker: gone at a 64 px view of this crop
    image[visible] = (230, 40, 40)
    return Sample("toy", "image", "0", image, visible, amodal=visible.copy())


def predict(keeps_visible: bool) -> np.ndarray:
    extractor = VisibleAtView()
    extractor.keeps_visible = keeps_visible
    method = InpaintPredictor(HullArea(), HistogramBackground(), Condition(0.3), ConditionAsInpainting(),
                              extractor, ViewSpec(mode="crop", context=1.2, size=64))
    return method.predict([thin_sample()], [0])[0].mask


def test_v_comes_back_at_full_resolution_when_the_extractor_keeps_it():
    visible = thin_sample().visible
    assert not (visible <= predict(False)).all()  # the whisker is lost at the view …
    assert (visible <= predict(True)).all()  # … and restored for an extractor that keeps V
