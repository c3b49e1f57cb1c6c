"""The ceiling of ``extractor=region`` at the synthetic backbone's view: what mIoU it reaches when the
inpainting is perfect — the object's unoccluded rendering on the method's histogram background inside
M = hull(V), the condition image outside — against Â = V and the best any mask within V ∪ M can do.

    python scripts/extractor_ceiling.py --seed 0 --scenes 24     # ≤50 % bucket, as the README reports
"""

from __future__ import annotations

import argparse

import numpy as np
from tqdm import tqdm

from amodal.data.synthetic import render_scene
from amodal.method.area import convex_hull_area
from amodal.method.background import HistogramBackground
from amodal.method.condition import condition_image, to_uint8
from amodal.method.extract import ExtractionInput
from amodal.method.region import RegionExtractor
from amodal.method.view import ViewSpec


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / (a | b).sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--scenes", type=int, default=24)
    parser.add_argument("--context", type=float, default=2.0, help="view.context")
    parser.add_argument("--size", type=int, default=64, help="the view's side (backbone.resolution)")
    args = parser.parse_args()
    extractor, background = RegionExtractor(), HistogramBackground()
    rng = np.random.default_rng(args.seed)
    rows = []
    for index in tqdm(range(args.scenes), desc="scenes"):
        scene = render_scene(args.seed, index, 512)
        for k, (amodal, visible, rendering) in enumerate(zip(scene.amodal, scene.visible, scene.unoccluded)):
            if not 0 < 1 - visible.sum() / amodal.sum() <= 0.5:
                continue
            area = convex_hull_area(visible)
            view = ViewSpec(mode="crop", context=args.context, size=args.size).make(area)
            image, visible_view, area_view = view.image(scene.image), view.mask(visible), view.mask(area)
            coverage = view.image(amodal.astype(np.uint8) * 255).astype(np.float32)[..., None] / 255
            x_bck = background(image, visible_view, rng)
            perfect = np.clip(view.image(rendering) + (1 - coverage) * x_bck, 0, 255)
            condition = to_uint8(condition_image(image, visible_view, x_bck, 0.3, rng))
            inpainted = np.where(area_view[..., None], perfect, condition).astype(np.uint8)
            found = view.back(extractor(ExtractionInput(inpainted, visible_view, area_view, condition,
                                                        seed=index * 1000 + k))) | visible
            rows.append((iou(visible, amodal), iou(found, amodal), iou(visible | (area & amodal), amodal)))
    visible_iou, region_iou, best = 100 * np.mean(rows, axis=0)
    print(f"{len(rows)} objects ≤50 % hidden: Â = V {visible_iou:.1f} | region on perfect inpainting "
          f"{region_iou:.1f} | V ∪ (M ∩ A) {best:.1f}  (mIoU %)")


if __name__ == "__main__":
    main()
