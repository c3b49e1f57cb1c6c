"""docs/extending.md, tried: an area type of one's own, from a folder outside the package (a config on
Hydra's search path, a module on PYTHONPATH), swept against hull; its parameters enter the cache key."""

import json

from amodal.eval.results import read_rows
from amodal.eval.runs import find_runs, load_runs
from tests.helpers import in_process

MODULE = '''
"""An inpainting area of my own: the hull of V, grown by `radius` pixels."""
import cv2
import numpy as np

from amodal.method.area import InpaintingArea, convex_hull_area


class GrownHull(InpaintingArea):
    name = "grown_hull"

    def __init__(self, radius: int = 3) -> None:
        self.radius = int(radius)

    def __call__(self, sample):
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * self.radius + 1, 2 * self.radius + 1))
        return cv2.dilate(convex_hull_area(sample.visible).astype(np.uint8), kernel).astype(bool)
'''
CONFIG = """# my own area type
_target_: my_areas.GrownHull
radius: 3
"""


def my_folder(tmp_path):
    (tmp_path / "mine" / "my_conf" / "area").mkdir(parents=True)
    (tmp_path / "mine" / "my_conf" / "area" / "grown_hull.yaml").write_text(CONFIG)
    (tmp_path / "mine" / "my_areas.py").write_text(MODULE)
    return tmp_path / "mine"


def test_an_area_type_from_my_own_folder_sweeps_against_hull(tmp_path):
    mine = my_folder(tmp_path)
    sweep = tmp_path / "sweep"
    result = in_process("amodal-run", "-m", f"hydra.searchpath=[file://{mine / 'my_conf'}]", "method=area",
                        "area=hull,grown_hull", "dataset.n_images=1", "logger=none", "output.progress=false",
                        f"hydra.sweep.dir={sweep}", pythonpath=(mine,))
    assert result.returncode == 0, result.stderr[-2000:]
    hull, grown = ([r for r in read_rows(sweep / job / "results.jsonl") if "predicted_area" in r]  # occluded ones
                   for job in ("0", "1"))
    assert len(hull) == len(grown) > 2
    assert all(g["predicted_area"] > h["predicted_area"] for h, g in zip(hull, grown))  # my class drew them
    assert [r.settings["area"] for r in load_runs(find_runs([sweep]))] == ["hull", "grown_hull"]


def test_my_areas_parameters_enter_the_inpainting_cache_key(tmp_path):
    mine = my_folder(tmp_path)
    cache = tmp_path / "cache"
    result = in_process("amodal-run", "-m", f"hydra.searchpath=[file://{mine / 'my_conf'}]", "method=inpaint",
                        "area=grown_hull", "area.radius=1,4", "backbone=tiny_sd", "backbone.steps=1",
                        "extractor=tiny_sam", "dataset.n_images=1", "dataset.limit=1", "logger=none",
                        "output.progress=false", "output.pictures=0", f"cache.dir={cache}",
                        f"hydra.sweep.dir={tmp_path / 'sweep'}",
                        pythonpath=(mine,))
    assert result.returncode == 0, result.stderr[-2000:]
    settings = [json.loads(p.read_text()) for p in sorted(cache.glob("*/settings.json"))]
    assert sorted(s["area"]["radius"] for s in settings) == [1, 4]  # two radii, two cache folders
    assert {s["area"]["_target_"] for s in settings} == {"my_areas.GrownHull"}
