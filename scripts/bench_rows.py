"""Time and peak memory of amodal-merge and amodal-report over many rows (results.jsonl).

    python scripts/bench_rows.py                          # 1M rows in 4 shards: merge them, report the merge
    python scripts/bench_rows.py --rows 100000 --json bench.json
    python scripts/bench_rows.py --pythonpath /tmp/main/src   # the same, with another checkout's package

Writes N synthetic rows of the shape amodal-run writes (ids, areas, IoU, iou_occ, timing, an inpainting
method's counters; a tenth unoccluded and unscored, a few skipped) into the shard folders of one run, then,
each in a fresh process, merges the shards (``amodal-merge``) and reports the merged folder
(``amodal-report``, the runs table on stdout). Times are the command's own (imports excluded); peak memory
is the process's peak resident set size, beside that of a process that only imports the package.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import numpy as np
import yaml

CATEGORIES = ("person", "car", "dog", "chair", "cup", "bottle", "tv", "bench")


def write_shards(folder: Path, rows: int, shards: int, seed: int = 0) -> list[Path]:
    """``rows`` rows over ``shards`` finished shard folders of one run."""
    rng = np.random.default_rng(seed)
    paths = []
    for index in range(shards):
        shard = folder / "shards" / str(index)
        (shard / ".hydra").mkdir(parents=True)
        config = {"shard": {"index": index, "count": shards},
                  "eval": {"buckets": [0.5, 0.4, 0.3, 0.2, 0.1, 0.05], "include_unoccluded": False}}
        (shard / ".hydra" / "config.yaml").write_text(yaml.safe_dump(config))
        (shard / "resume.json").write_text(json.dumps({"dataset": {"name": "bench"}, "shard": config["shard"]}))
        (shard / "metrics.json").write_text("{}\n")  # finished
        count = rows // shards + (index < rows % shards)
        with (shard / "results.jsonl").open("w") as handle:
            for number in range(index, index + count * shards, shards):
                handle.write(json.dumps(_row(number, rng)) + "\n")
        paths.append(shard)
    return paths


def _row(number: int, rng: np.random.Generator) -> dict:
    image_id, object_id = f"COCO_val2014_{number // 8:012d}", f"{number // 8}_{number % 8}"
    if number % 50 == 49:
        return {"dataset": "bench", "image_id": image_id, "object_id": object_id, "skipped": "empty visible mask"}
    amodal = int(rng.integers(500, 50000))
    rate = 0.0 if number % 10 == 0 else float(rng.uniform(0.01, 0.9))
    visible = round(amodal * (1 - rate))
    row = {"dataset": "bench", "image_id": image_id, "object_id": object_id, "category": CATEGORIES[number % 8],
           "seed": int(rng.integers(2**31)), "visible_area": visible, "occlusion_rate": rate, "iou": None,
           "amodal_area": amodal, "visible_outside_amodal": 0, "annotated_occlusion": rate}
    if rate == 0.0:
        return {**row, "seconds": None, "unscored": "unoccluded; eval.include_unoccluded=false"}
    predicted = int(amodal * rng.uniform(0.6, 1.3))
    intersection = min(predicted, amodal) - int(rng.integers(0, visible // 4 + 1))
    union = predicted + amodal - intersection
    return {**row, "iou": intersection / union, "predicted_area": predicted, "intersection": intersection,
            "union": union, "iou_occ": float(rng.uniform(0, 1)), "inpainted": True,
            "inpaint_cache": "miss", "image_embeddings": 1, "seconds": float(rng.uniform(1, 10)),
            "peak_memory_mb": float(rng.uniform(8000, 9000))}


MEASURE = textwrap.dedent("""
    import contextlib, io, json, sys, time
    from pathlib import Path
    from amodal.cli.{command} import main
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        code = main(sys.argv[1:])
    seconds = time.perf_counter() - start
    peak = next(int(l.split()[1]) / 1024 for l in Path("/proc/self/status").read_text().splitlines()
                if l.startswith("VmHWM:"))
    print(json.dumps({{"code": code, "seconds": seconds, "peak_rss_mb": peak}}))
""")


def measure(command: str, args: list[str], pythonpath: str) -> dict:
    """One console script's main() in a fresh process: its time and the process's peak memory."""
    env = {**os.environ, "PYTHONPATH": pythonpath}
    result = subprocess.run([sys.executable, "-c", MEASURE.format(command=command), *args], env=env,
                            capture_output=True, text=True, check=False)
    if result.returncode != 0:
        sys.exit(f"{command} failed:\n{result.stderr[-3000:]}")
    measured = json.loads(result.stdout.strip().splitlines()[-1])
    if measured["code"] != 0:
        sys.exit(f"{command} returned {measured['code']}")
    return measured


def imports_only(pythonpath: str) -> float:
    """The peak memory of a process that imports both console scripts and does nothing."""
    code = ("import amodal.cli.merge, amodal.cli.report; from pathlib import Path; print(next(int(l.split()[1]) "
            "/ 1024 for l in Path('/proc/self/status').read_text().splitlines() if l.startswith('VmHWM:')))")
    result = subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": pythonpath},
                            capture_output=True, text=True, check=True)
    return float(result.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--pythonpath", default=str(Path(__file__).resolve().parents[1] / "src"),
                        help="the package to measure (default: this checkout's src/)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        write_shards(folder, args.rows, args.shards)
        size = sum((s / "results.jsonl").stat().st_size for s in (folder / "shards").iterdir())
        merged = folder / "merged"
        figures = {
            "rows": args.rows,
            "shards": args.shards,
            "results_mb": size / 2**20,
            "imports_only_rss_mb": imports_only(args.pythonpath),
            "merge": measure("merge", [str(folder / "shards"), "--out", str(merged)], args.pythonpath),
            "report": measure("report", [str(merged)], args.pythonpath),
        }
    print(json.dumps(figures, indent=2))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
