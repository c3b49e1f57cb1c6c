"""The speed benchmarks run end to end with tiny models on a CPU (their figures come from full-size
architectures, docs/speed.md): the batching they measure is real, and the GPU script writes Table S1."""

import json
import os
import subprocess
import sys

import pytest

from tests.helpers import REPO

pytestmark = pytest.mark.slow
TINY = ["--tiny", "--resolution", "64", "--steps", "2"]


def run(*command: str, **env: str) -> subprocess.CompletedProcess:
    environment = {**os.environ, "PYTHONPATH": str(REPO / "src"), **env}
    return subprocess.run(list(command), cwd=REPO, env=environment, capture_output=True, text=True, timeout=600)


def test_speed_compares_batch_1_and_4_where_batch_4_passes_the_networks_once_per_4_objects(tmp_path):
    out = tmp_path / "speed.json"
    result = run(sys.executable, "benchmarks/speed.py", *TINY, "--backbones", "sd15", "--objects", "4",
                 "--batches", "1", "4", "--json", str(out))
    assert result.returncode == 0, result.stderr
    (row,) = json.loads(out.read_text())
    one, four = row["batches"]["1"], row["batches"]["4"]
    # PNDM's 2 + 1 guided UNet passes and one decode per batch, whatever its size; two encodes per object
    # (x for eq. 7 and ∅, the masked image): each object's posterior is sampled with its own generator, as
    # the stock pipeline encodes an image per generator
    assert one["calls_per_batch"] == {"encode": 2, "denoiser": 3, "decode": 1}
    assert four["calls_per_batch"] == {"encode": 8, "denoiser": 3, "decode": 1}
    assert row["batch_speedup"] == pytest.approx(four["objects_per_second"] / one["objects_per_second"])
    header, _, line = result.stdout.splitlines()
    assert "objects/s at batch 1 | objects/s at batch 4 | batch gain" in header
    assert line.endswith(f"| {row['batch_speedup']:.2f}× |")


def test_the_gpu_script_writes_table_s1_with_tiny_models_on_a_cpu(tmp_path):
    result = run("bash", "benchmarks/gpu.sh", *TINY, "--device", "cpu", "--dtype", "float32",
                 "--backbones", "sd15", "flux", "--objects", "1", "--batch", "2",
                 PYTHON=sys.executable, OUT=str(tmp_path))
    assert result.returncode == 0, result.stderr + result.stdout
    rows = json.loads((tmp_path / "table_s1.json").read_text())["rows"]
    assert [(r["backbone"], r["segmenter"]) for r in rows] == [
        ("sd15", "tiny_sam"), ("sd15", "tiny_sam2"), ("flux", "tiny_sam"), ("flux", "tiny_sam2")]
    assert all(r["seconds_per_object"] > 0 and r["objects_per_second_batch"] > 0 and r["batch"] == 2 for r in rows)
    assert [r["weights"] for r in rows] == ["float32", "float32", "qint8", "qint8"]
    assert [r["quantized_layers"] > 0 for r in rows] == [False, False, True, True]  # Flux in 8 bits, for real
    table = (tmp_path / "table_s1.md").read_text()
    assert table.count("\n| sd15 (tiny) |") == table.count("\n| flux (tiny) |") == 2
    assert "| 0.3 s, 3.9 GB |" in table  # the paper's figures beside ours
    assert (tmp_path / "gpu.txt").read_text().strip() and (tmp_path / "table_s1.log").exists()


def test_bench_rows_merges_and_reports_the_rows_it_writes(tmp_path):
    out = tmp_path / "rows.json"
    result = run(sys.executable, "scripts/bench_rows.py", "--rows", "300", "--shards", "3", "--json", str(out))
    assert result.returncode == 0, result.stderr
    figures = json.loads(out.read_text())
    assert figures["rows"] == 300 and figures["merge"]["code"] == figures["report"]["code"] == 0
    assert figures["merge"]["peak_rss_mb"] > 0 and figures["report"]["seconds"] > 0
