"""What ``amodal-run`` prints is what a user reads: no library warnings, no loading bars, one W&B line,
and a progress bar whose mIoU is the one the final table reports. Checked on a real subprocess, as a
user runs it (the W&B silencing of the test environment removed)."""

import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

from tests.helpers import REPO


def user_run(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WANDB_", "PYTHONWARNINGS"))}
    env.update(PYTHONPATH=str(REPO / "src"), HYDRA_FULL_ERROR="0")
    return subprocess.run([str(Path(sys.executable).parent / "amodal-run"), *args], env=env, capture_output=True,
                          text=True, timeout=300)


def test_the_quickstart_prints_no_warnings_or_loading_bars_and_one_wandb_line(tmp_path):
    run_dir = tmp_path / "run"
    result = user_run("experiment=quickstart", "dataset.n_images=1", "backbone.steps=2", "cache.enabled=false",
                      f"hydra.run.dir={run_dir}")
    assert result.returncode == 0, result.stderr
    output = result.stdout + result.stderr
    assert "Warning" not in output and "WARNING" not in output, output  # FutureWarning, DeprecationWarning, ...
    assert "Loading pipeline components" not in output and "Loading weights" not in output
    lines = [line for line in output.replace("\r", "\n").splitlines() if line.strip()]
    bars = [line for line in lines if line.startswith("inpaint on synthetic")]
    others = [line for line in lines if line not in bars]
    (sync,) = [line for line in others if "wandb" in line.lower() or "W&B" in line]
    (offline_run,) = (run_dir / "wandb").glob("offline-run-*")
    assert sync == f"W&B: offline run in {offline_run}; upload it with `wandb sync {offline_run}`"
    # the rest: what ran and where its results go (also in run.log), then the run folder and its table
    finished = others.index(sync) + 1
    assert others[finished].endswith(f"[amodal][INFO] - finished {run_dir}") and others[-1].startswith("objects: ")
    assert all("[amodal][INFO] - " in line for line in others[:others.index(sync)])

    # the bar's last mIoU is the table's "all" column and metrics.json's mIoU (occluded objects only)
    last = re.findall(r"mIoU (\d+\.\d)", bars[-1])[-1]
    header, _, miou_row, _, occ_row, _, _ = others[finished + 1:]
    assert header.split("|")[2].strip() == "all" and miou_row.split("|")[2].strip() == last
    assert occ_row.split("|")[1].strip() == "mIoU_occ"
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert f"{100 * metrics['miou']:.1f}" == last and metrics["counts"]["unoccluded"] > 0


def test_a_resumed_runs_bar_counts_the_rows_it_resumed_from(run_app, tmp_path, capsys):
    run_dir = tmp_path / "run"
    run_app("method=visible", "dataset.n_images=3", "dataset.limit=4", "output.progress=true", run_dir=run_dir)
    capsys.readouterr()
    metrics, _ = run_app("method=visible", "dataset.n_images=3", "output.progress=true", run_dir=run_dir)
    last = re.findall(r"mIoU (\d+\.\d)", capsys.readouterr().err)[-1]
    assert last == f"{100 * metrics['miou']:.1f}" and metrics["n"] > 4


def test_a_tiny_sdxl_run_prints_only_its_own_lines(tmp_path):
    """diffusers said "There are modules in AutoencoderKL that should be kept in float32: []" twice for every
    image the SDXL pipeline encodes (about 20 lines for a few objects): its ``to()`` warns on every dtype cast,
    even when no module is to be kept in float32."""
    run_dir = tmp_path / "run"
    result = user_run("backbone=tiny_sdxl", "extractor=tiny_sam", "dataset.n_images=1", "dataset.limit=2",
                      "logger=none", "cache.enabled=false", "output.progress=false", f"hydra.run.dir={run_dir}")
    assert result.returncode == 0, result.stderr
    lines = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    assert not [line for line in lines if "kept in float32" in line or "arning" in line], lines
    own = [line for line in lines if "[amodal][INFO] - " in line or line.startswith(("|", "objects: "))]
    assert own == lines


def test_diffusers_float32_warning_still_shows_when_it_names_a_module():
    """The filter drops diffusers' warning only when its list of float32 modules is empty."""
    import amodal.models.loading  # noqa: F401  (installs the filter)

    modeling = logging.getLogger("diffusers.models.modeling_utils")
    shown = [modules for modules in ("[]", "['quant_conv']") if modeling.filter(logging.LogRecord(
        modeling.name, logging.WARNING, __file__, 0, "There are modules in AutoencoderKL that should be kept in "
        f"float32: {modules}. Casting directly with `to()` can lead to inconsistent results", None, None))]
    assert shown == ["['quant_conv']"]
