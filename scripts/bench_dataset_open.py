"""Time and memory to open a large annotation file and get its first sample (nothing decoded up front).

    python scripts/bench_dataset_open.py                      # 100k COCOA objects (10k images × 10)
    python scripts/bench_dataset_open.py --format kins --objects 500000

Writes a synthetic COCOA (or KINS) file of realistic record sizes (640×480 images, 40-point polygons,
half of the objects occluded with RLE visible/invisible masks) to a temporary folder, then, in a fresh
process, opens the dataset, lists its objects and loads the first one. Peak memory is the measuring
process's peak resident set size, beside that of a process that only imports the package.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

H, W, PER_IMAGE, POINTS = 480, 640, 10, 40


def _polygon(rng: np.random.Generator) -> tuple[list[float], np.ndarray]:
    cx, cy = rng.uniform(80, W - 80), rng.uniform(80, H - 80)
    angles = np.sort(rng.uniform(0, 2 * np.pi, POINTS))
    radii = rng.uniform(20, 70, POINTS)
    xy = np.stack([cx + radii * np.cos(angles), cy + radii * np.sin(angles)], axis=1).round(2)
    return xy.ravel().tolist(), xy


def write_file(folder: Path, fmt: str, objects: int, seed: int = 0) -> Path:
    from PIL import Image

    from amodal.data.masks import decode, encode

    rng = np.random.default_rng(seed)
    n_images = -(-objects // PER_IMAGE)
    images, annotations = [], []
    # a few real encoded masks, reused: encoding 100k masks would time the generator, not the loader
    templates = []
    for _ in range(16):
        flat, _ = _polygon(rng)
        amodal = decode(flat, (H, W), "template")
        visible = amodal.copy()
        visible[:, : int(rng.integers(W // 3, 2 * W // 3))] = False
        templates.append((encode(visible), encode(amodal & ~visible)))
    image_dir = folder / ("val2014" if fmt == "cocoa" else "testing/image_2")
    image_dir.mkdir(parents=True)
    Image.fromarray(rng.integers(0, 256, (H, W, 3), dtype=np.uint8)).save(image_dir / "000000.jpg")
    count = 0
    for image_id in range(n_images):
        images.append({"id": image_id, "file_name": f"{image_id:06d}.jpg", "height": H, "width": W})
        regions = []
        for k in range(min(PER_IMAGE, objects - count)):
            flat, _ = _polygon(rng)
            visible, invisible = templates[int(rng.integers(len(templates)))]
            occluded = k % 2 == 1
            if fmt == "cocoa":
                region = {
                    "segmentation": flat,
                    "name": "thing",
                    "area": 1000,
                    "isStuff": 0,
                    "order": k + 1,
                    "occlude_rate": 0.3 if occluded else 0,
                }
                if occluded:
                    region.update(visible_mask=visible, invisible_mask=invisible)
                regions.append(region)
            else:
                annotations.append(
                    {
                        "id": count,
                        "image_id": image_id,
                        "category_id": 1,
                        "a_segm": [flat],
                        "i_segm": [flat[: len(flat) // 2] + flat[:2]] if occluded else [flat],
                        "a_area": 1000,
                        "i_area": 700,
                        "a_bbox": [0, 0, 1, 1],
                        "iscrowd": 0,
                    }
                )
            count += 1
        if fmt == "cocoa":
            annotations.append(
                {"id": image_id, "image_id": image_id, "regions": regions, "size": len(regions)}
            )
    name = "annotations/COCO_amodal_val2014.json" if fmt == "cocoa" else "update_test_2020.json"
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps({"images": images, "annotations": annotations, "categories": [{"id": 1, "name": "car"}]})
    )
    return path


def measure(root: str, fmt: str) -> dict:
    """In this (fresh) process: open, list, load the first sample."""
    start = time.perf_counter()
    if fmt == "cocoa":
        from amodal.data.cocoa import CocoaDataset as Dataset
    else:
        from amodal.data.kins import KinsDataset as Dataset
    imported = time.perf_counter()
    dataset = Dataset(root=root)
    opened = time.perf_counter()
    keys = dataset.keys()
    listed = time.perf_counter()
    sample = dataset.load(keys[0])
    first = time.perf_counter()
    assert sample.visible.shape == (H, W)
    return {
        "objects": len(keys),
        "import_s": imported - start,
        "construct_s": opened - imported,
        "list_s": listed - opened,
        "first_sample_s": first - listed,
        "open_to_first_sample_s": first - imported,
        "peak_rss_mb": peak_rss_mb(),
    }


def peak_rss_mb() -> float:
    """This process's peak resident memory. VmHWM belongs to the process image, whereas ru_maxrss
    carries over the parent's peak through fork and exec (and the parent just built a big file)."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def baseline(fmt: str) -> float:
    module = "amodal.data.cocoa" if fmt == "cocoa" else "amodal.data.kins"
    code = (
        f"import sys, {module}; sys.path.insert(0, {str(Path(__file__).parent)!r}); "
        "from bench_dataset_open import peak_rss_mb; print(peak_rss_mb())"
    )
    return float(
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--format", choices=("cocoa", "kins"), default="cocoa")
    parser.add_argument("--objects", type=int, default=100_000)
    parser.add_argument("--measure", help=argparse.SUPPRESS)  # internal: the fresh measuring process
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure, args.format)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        path = write_file(Path(tmp), args.format, args.objects)
        print(
            f"wrote {path.name}: {args.objects} objects, {path.stat().st_size / 2**20:.0f} MiB "
            f"in {time.perf_counter() - start:.0f} s"
        )
        result = subprocess.run(
            [sys.executable, __file__, "--format", args.format, "--measure", tmp],
            capture_output=True,
            text=True,
            check=True,
        )
        numbers = json.loads(result.stdout)
        numbers["import_only_rss_mb"] = baseline(args.format)
    for key, value in numbers.items():
        print(f"{key:>24}: {value:.2f}" if isinstance(value, float) else f"{key:>24}: {value}")


if __name__ == "__main__":
    main()
