import numpy as np
import pytest

from amodal.errors import ConfigError
from amodal.method.view import ViewSpec


def disc(shape, center, radius):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (yy - center[0]) ** 2 + (xx - center[1]) ** 2 <= radius**2


def test_whole_image_view_at_native_size_is_the_identity():
    mask = disc((64, 64), (20, 30), 10)
    view = ViewSpec(mode="image", size=64).make(mask)
    assert view.box == (0, 0, 64, 64)
    assert np.array_equal(view.back(view.mask(mask)), mask)


@pytest.mark.parametrize("shape", [(300, 200), (128, 400)])
def test_crop_holds_the_area_with_context_and_maps_back(shape):
    area = disc(shape, (shape[0] // 2, 60), 25)
    view = ViewSpec(mode="crop", context=2.0, size=256).make(area)
    x0, y0, x1, y1 = view.box
    assert 0 <= x0 < x1 <= shape[1] and 0 <= y0 < y1 <= shape[0]
    rows, cols = np.nonzero(area)
    assert x0 <= cols.min() and cols.max() < x1 and y0 <= rows.min() and rows.max() < y1
    back = view.back(view.mask(area))
    assert (back & area).sum() / (back | area).sum() > 0.98
    assert not back[:, : x0].any() and not back[:, x1:].any()


def test_crop_at_the_border_is_shifted_inside_the_image():
    area = disc((100, 100), (5, 95), 4)
    view = ViewSpec(mode="crop", context=3.0, size=64).make(area)
    x0, y0, x1, y1 = view.box
    assert x1 == 100 and y0 == 0 and x1 - x0 == y1 - y0


def test_bad_view_settings_are_refused():
    with pytest.raises(ConfigError):
        ViewSpec(mode="zoom")
    with pytest.raises(ConfigError):
        ViewSpec(context=0.5)
    with pytest.raises(ConfigError):
        _ = ViewSpec(size=500, multiple=16).model_size
