"""The ceiling of ``extractor=region`` at the synthetic backbone's view: what mIoU it reaches when the
inpainting is perfect — the object's unoccluded rendering on the method's histogram background inside
M = hull(V), the condition image outside — against Â = V and the best any mask within V ∪ M can do.

    python scripts/extractor_ceiling.py --seed 0 --scenes 24     # ≤50 % bucket, as docs/synthetic_backbone.md reports
    python scripts/extractor_ceiling.py --autoencoder shipped    # the same, seen through the autoencoder

With ``--autoencoder`` the perfect inpainting is encoded and decoded by a pipeline's ``AutoencoderKL``
first, as every x̂₀ the method gets is decoded from latents: the ceiling the autoencoder leaves. It also
prints how much of the object's texture survives: the spread of its colours (mean per-channel standard
deviation over A at the view) after the round trip, as a share of the spread before.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
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


def colour_spread(image: np.ndarray, mask: np.ndarray) -> float:
    return float(image[mask].astype(np.float64).std(axis=0).mean())


def round_trip(autoencoder, image: np.ndarray) -> np.ndarray:
    """uint8 h×w×3 → the autoencoder's reconstruction from its latents' mode, as uint8."""
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 127.5 - 1
    with torch.no_grad():
        y = autoencoder.decode(autoencoder.encode(x).latent_dist.mode()).sample
    return np.clip(np.rint((y[0].permute(1, 2, 0).numpy() + 1) * 127.5), 0, 255).astype(np.uint8)


def load_autoencoder(where: str):
    from diffusers import AutoencoderKL

    from amodal.config import package_path

    folder = package_path("models/weights/synthetic_sd") if where == "shipped" else where
    return AutoencoderKL.from_pretrained(folder, subfolder="vae").float().eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--scenes", type=int, default=24)
    parser.add_argument("--context", type=float, default=2.0, help="view.context")
    parser.add_argument("--size", type=int, default=64, help="the view's side (backbone.resolution)")
    parser.add_argument("--autoencoder", default=None,
                        help="a pipeline folder (or 'shipped') whose autoencoder the inpainting passes through")
    args = parser.parse_args()
    autoencoder = load_autoencoder(args.autoencoder) if args.autoencoder else None
    extractor, background = RegionExtractor(), HistogramBackground()
    rng = np.random.default_rng(args.seed)
    rows, kept = [], []
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
            if autoencoder is not None:
                before, inpainted = inpainted, round_trip(autoencoder, inpainted)
                inside = coverage[..., 0] > 0.5
                kept.append(colour_spread(inpainted, inside) / max(colour_spread(before, inside), 1e-6))
            found = view.back(extractor(ExtractionInput(inpainted, visible_view, area_view, condition,
                                                        seed=index * 1000 + k))) | visible
            rows.append((iou(visible, amodal), iou(found, amodal), iou(visible | (area & amodal), amodal)))
    visible_iou, region_iou, best = 100 * np.mean(rows, axis=0)
    print(f"{len(rows)} objects ≤50 % hidden: Â = V {visible_iou:.1f} | region on perfect inpainting "
          f"{region_iou:.1f} | V ∪ (M ∩ A) {best:.1f}  (mIoU %)")
    if kept:
        print(f"the autoencoder keeps {100 * np.mean(kept):.0f} % of the objects' colour spread "
              f"(median {100 * np.median(kept):.0f} %)")


if __name__ == "__main__":
    main()
