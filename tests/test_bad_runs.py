"""Bad runs and faults (issue 18, the run side; issue 22 item 1): nothing lost, nothing counted twice.

One case per fault, run through the console scripts' entry points (in-process, unless the case needs an
interpreter of its own): the exit status, ONE line naming the thing (no traceback), and the rows already
written are still there, byte for byte. Then the tests a case
cannot hold: two runs started at once into one folder, and a refused resume that leaves the folder as
it was. A full disk and a read-only folder are patched into the process (tests/faults.py): the tests
run as root, where ``chmod`` does not stop writes.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from amodal.eval.results import read_rows, row_key
from amodal.lock import RunLock
from tests.formats import write_cocoa
from tests.helpers import REPO, cli, in_process

QUIET = ["output.progress=false", "output.pictures=0"]
SCENES = [*QUIET, "logger=none", "dataset.n_images=2"]
VISIBLE = [*SCENES, "method=visible"]
"""The base run: the visible-mask baseline on two synthetic scenes (11 objects), rows in seconds."""
QUICK = [*QUIET, "logger=none", "experiment=quickstart", "dataset.n_images=1", "backbone.steps=2"]
"""The method with the shipped synthetic_sd backbone, 2 steps: what the inpainting faults need."""


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    """A finished run of 4 objects of VISIBLE, copied into a case's folder as the rows to keep."""
    run = tmp_path_factory.mktemp("base") / "run"
    done = in_process("amodal-run", *VISIBLE, "dataset.limit=4", f"hydra.run.dir={run}")
    assert done.returncode == 0, done.stderr
    return run


def copy_base(base: Path, tmp: Path) -> None:
    shutil.copytree(base, tmp / "run")


def corrupt_line_2(base: Path, tmp: Path) -> None:
    copy_base(base, tmp)
    lines = (tmp / "run" / "results.jsonl").read_bytes().splitlines(keepends=True)
    (tmp / "run" / "results.jsonl").write_bytes(lines[0] + b'{"image_id": "scene0000\n' + b"".join(lines[1:]))


def repeat_a_row(base: Path, tmp: Path) -> None:
    copy_base(base, tmp)
    results = tmp / "run" / "results.jsonl"
    results.write_bytes(results.read_bytes() + results.read_bytes().splitlines(keepends=True)[1])


def unfinished_and_torn(base: Path, tmp: Path) -> None:
    copy_base(base, tmp)
    (tmp / "run" / "metrics.json").unlink()
    with (tmp / "run" / "results.jsonl").open("a") as handle:
        handle.write('{"image_id": "scene00001", "obj')  # what kill -9 mid-write leaves


def merged_from_one_of_two_shards(base: Path, tmp: Path) -> None:
    """Shard 0 of 2 merged alone (--partial): the merged folder holds half of the objects."""
    shard = tmp / "shard"
    done = in_process("amodal-run", *VISIBLE, "shard.count=2", "shard.index=0", f"hydra.run.dir={shard}")
    assert done.returncode == 0, done.stderr
    merged = in_process("amodal-merge", str(shard), "--out", str(tmp / "run"), "--partial")
    assert merged.returncode == 0, merged.stderr


def resume_json_a_list(base: Path, tmp: Path) -> None:
    copy_base(base, tmp)
    (tmp / "run" / "resume.json").write_text("[1, 2]\n")


def line_2_as(change: Callable[[dict], dict]) -> Callable[[Path, Path], None]:
    """The base run with its second row changed by ``change``."""
    def prepare(base: Path, tmp: Path) -> None:
        copy_base(base, tmp)
        results = tmp / "run" / "results.jsonl"
        lines = results.read_text().splitlines(keepends=True)
        results.write_text(lines[0] + json.dumps(change(json.loads(lines[1]))) + "\n" + "".join(lines[2:]))
    return prepare


null_ids = line_2_as(lambda row: row | {"image_id": None})
no_occlusion_rate = line_2_as(lambda row: {k: v for k, v in row.items() if k != "occlusion_rate"})


def precious(tmp: Path) -> Path:
    """A file outside the run folder that a link inside it points to."""
    target = tmp / "precious.txt"
    target.write_text("not the run's to write\n")
    return target


def run_lock_a_link(base: Path, tmp: Path) -> None:
    copy_base(base, tmp)
    (tmp / "run" / "run.lock").unlink()
    (tmp / "run" / "run.lock").symlink_to(precious(tmp))


def results_a_link(base: Path, tmp: Path) -> None:
    copy_base(base, tmp)
    elsewhere = tmp / "elsewhere.jsonl"
    (tmp / "run" / "results.jsonl").rename(elsewhere)
    (tmp / "run" / "results.jsonl").symlink_to(elsewhere)


def the_link_target_is_untouched(tmp: Path) -> None:
    assert (tmp / "precious.txt").read_text() == "not the run's to write\n"


def every_mask_whole_after_a_rerun(tmp: Path) -> None:
    """The object whose mask met the full disk has no row; the rerun predicts it, and every row's mask reads."""
    from amodal.data.files import mask_path, read_mask

    assert len(read_rows(tmp / "run" / "results.jsonl")) < 11
    again = in_process("amodal-run", *VISIBLE, "output.save_masks=true", f"hydra.run.dir={tmp / 'run'}")
    assert again.returncode == 0, again.stderr
    rows = read_rows(tmp / "run" / "results.jsonl")
    assert len(rows) == 11
    for row in rows:
        if not row.get("unscored"):
            assert read_mask(mask_path(tmp / "run" / "masks", row_key(row))).sum() == row["predicted_area"]


def cocoa(base: Path, tmp: Path) -> None:
    write_cocoa(tmp / "cocoa")


def damaged_pipeline(base: Path, tmp: Path) -> None:
    from amodal.models.tiny import tiny_pipeline

    tiny_pipeline("sd", seed=0).save_pretrained(tmp / "pipeline")
    weights = tmp / "pipeline" / "unet" / "diffusion_pytorch_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])  # a download or copy cut short


def shipped_weights(tmp: Path) -> Path:
    shutil.copytree(REPO / "src/amodal/models/weights/synthetic_sd", tmp / "weights")
    return tmp / "weights"


def weights_turn_nan_after_one_row(base: Path, tmp: Path) -> None:
    """One object done with good weights, then the weights are NaN (as a float16 overflow makes them)."""
    from safetensors.torch import load_file, save_file

    weights = shipped_weights(tmp)
    done = in_process("amodal-run", *QUICK, "dataset.limit=1", f"backbone.pipeline.model={weights}",
                      f"cache.dir={tmp / 'cache'}", f"hydra.run.dir={tmp / 'run'}")
    assert done.returncode == 0, done.stderr
    vae = weights / "vae" / "diffusion_pytorch_model.safetensors"
    tensors = load_file(vae)
    tensors["decoder.conv_out.weight"].fill_(float("nan"))
    save_file(tensors, vae)


def cache_entry_garbage(base: Path, tmp: Path) -> None:
    """A cache filled by a first run, one of whose entries is then overwritten with garbage."""
    done = in_process("amodal-run", *QUICK, "dataset.limit=2", f"cache.dir={tmp / 'cache'}",
                      f"hydra.run.dir={tmp / 'first'}")
    assert done.returncode == 0, done.stderr
    entry = sorted((tmp / "cache").rglob("*.png"))[0]
    entry.write_bytes(b"not a png" * 10)


def cache_entry_is_an_image_again(tmp: Path) -> None:
    from PIL import Image

    entries = list((tmp / "cache").rglob("*.png"))
    for entry in entries:
        with Image.open(entry) as image:
            image.load()
    metrics = json.loads((tmp / "run" / "metrics.json").read_text())
    assert metrics["inpaint_cache"] == {"hits": len(entries) - 1, "misses": 1} and metrics["objects_inpainted"] == 1


def cache_dir_under_a_file(base: Path, tmp: Path) -> None:
    (tmp / "file").write_text("a file where the cache folder should be\n")


def the_corrected_run_starts(tmp: Path) -> None:
    assert not (tmp / "run" / "resume.json").exists()
    again = in_process("amodal-run", *VISIBLE, "dataset.limit=2", f"hydra.run.dir={tmp / 'run'}")
    assert again.returncode == 0, again.stderr


def a_rerun_resumes_to_the_end(tmp: Path) -> None:
    again = in_process("amodal-run", *VISIBLE, f"hydra.run.dir={tmp / 'run'}")
    assert again.returncode == 0, again.stderr
    keys = [row_key(r) for r in read_rows(tmp / "run" / "results.jsonl")]
    assert len(keys) == len(set(keys)) == json.loads((tmp / "run" / "metrics.json").read_text())["counts"]["objects"]
    assert len(keys) == 11


def partial_merge_is_counted_as_such(tmp: Path) -> None:
    merged = json.loads((tmp / "run" / "merged.json").read_text())
    assert merged["partial"] and merged["unfinished"] == []


@dataclass
class Case:
    id: str
    command: Callable[[Path], list[str]]
    """The console script and its arguments, for the case's folder (its run folder is <folder>/run)."""
    status: int
    says: str
    """Words of the ONE line (error or warning) that names the thing."""
    prepare: Callable[[Path, Path], None] | None = None
    """(base run, case folder): the rows to keep, a broken file, ..."""
    then: Callable[[Path], None] | None = None
    """More checks, in the case's folder, afterwards."""
    env: dict[str, str] | None = None
    """Environment variables of the command."""
    never_says: str = "Traceback"
    within: float | None = None
    """Seconds the command may take at most."""
    own_process: str = ""
    """Why the command needs an interpreter of its own (otherwise it is called in-process: see
    ``tests/helpers.py``); a fault of ``tests/faults.py`` always has one."""


def run(*overrides: str) -> Callable[[Path], list[str]]:
    return lambda tmp: ["amodal-run", *[o.format(tmp=tmp) for o in overrides], f"hydra.run.dir={tmp / 'run'}"]


def fault(name: str, *overrides: str) -> Callable[[Path], list[str]]:
    return lambda tmp: ["python", "-m", "tests.faults", name, str(tmp / "run"), *[o.format(tmp=tmp) for o in overrides]]


CASES = [
    # item 2: a second run into a folder in use (the holder is this test process: see the case's prepare)
    # is test_two_runs_started_at_once_into_one_folder_write_every_object_once below.
    # item 3: the inpainting cache
    Case("cache entry garbage", run(*QUICK, "dataset.limit=2", "cache.dir={tmp}/cache"), 0,
         "is unreadable (cannot identify image file", cache_entry_garbage, cache_entry_is_an_image_again),
    Case("cache dir not writable", run(*QUICK, "dataset.limit=2", "cache.dir={tmp}/file/cache"), 0,
         "cannot write the inpainting cache", cache_dir_under_a_file),
    # item 5: non-finite output
    Case("NaN weights",
         run(*QUICK, "dataset.limit=3", "backbone.pipeline.model={tmp}/weights", "cache.dir={tmp}/cache"), 2,
         "produced NaN or infinite pixels", weights_turn_nan_after_one_row),
    # item 7: unfinished runs and partial merges in reports
    Case("report: unfinished run, torn line", lambda tmp: ["amodal-report", str(tmp / "run")], 0,
         "| unfinished, torn last line |", unfinished_and_torn),
    Case("report: partial merge", lambda tmp: ["amodal-report", str(tmp / "run")], 0,
         "| partial merge, shards 1 of 2 missing |", merged_from_one_of_two_shards, partial_merge_is_counted_as_such),
    # item 8: a run that fails before its first object leaves no fingerprint behind
    Case("failed start", run(*SCENES, "method=inpaint", "backbone=tiny_sd", "extractor=tiny_sam", "backbone.s=-1"), 2,
         "backbone.s=-1: the leakage strength must lie in [0, 1]", then=the_corrected_run_starts),
    # item 9: a corrupt row mid-file, in run, report and merge
    Case("corrupt row: run", run(*VISIBLE), 2, "results.jsonl line 2 is not a result row (not JSON)", corrupt_line_2),
    Case("corrupt row: report", lambda tmp: ["amodal-report", str(tmp / "run")], 2,
         "results.jsonl line 2 is not a result row", corrupt_line_2),
    Case("corrupt row: merge", lambda tmp: ["amodal-merge", str(tmp / "run"), "--out", str(tmp / "merged")], 2,
         "results.jsonl line 2 is not a result row", corrupt_line_2,
         own_process="the installed amodal-merge, as a user runs it (the one test that runs it so)"),
    # item 10: one line, not a traceback
    Case("full disk", fault("full-after-2", *VISIBLE), 2, "results.jsonl: No space left on device; free space",
         copy_base, a_rerun_resumes_to_the_end),
    Case("read-only run folder", fault("read-only", *VISIBLE), 2, "run.lock: Read-only file system", copy_base,
         a_rerun_resumes_to_the_end),
    Case("predict without image=", lambda tmp: ["amodal-predict", f"out={tmp / 'out'}"], 2,
         "image= is missing: amodal-predict image=photo.jpg"),
    Case("W&B online without network", run(*QUIET, "dataset.n_images=2", "method=visible", "logger=wandb",
                                           "logger.mode=online", "logger.init_timeout=2"), 2,
         "or use logger.mode=offline", copy_base, within=60, own_process="W&B starts a service for the process"),
    # item 11: messages name what the user typed
    Case("backbone.s=abc", run(*SCENES, "method=inpaint", "backbone=tiny_sd", "extractor=tiny_sam", "backbone.s=abc"),
         2, "backbone.s=abc: expected a number"),
    Case("dataset.limit=abc", run(*VISIBLE, "dataset.limit=abc"), 2, "dataset.limit=abc: expected a whole number"),
    Case("damaged local pipeline", run(*QUICK, "backbone.pipeline.model={tmp}/pipeline", "cache.enabled=false"), 2,
         "the folder is incomplete or damaged", damaged_pipeline, never_says="huggingface-cli"),
    Case("merge: a row twice in one shard", lambda tmp: ["amodal-merge", str(tmp / "run"), "--out", str(tmp / "out")],
         0, "1 objects are twice in", repeat_a_row),
    # item 12: smaller defects
    Case("dataset.limit=0", run(*VISIBLE, "dataset.limit=0"), 2, "dataset.limit=0 selects no object"),
    Case("oracle without renderings",
         run(*QUIET, "logger=none", "method=oracle", "dataset=cocoa", "dataset.root={tmp}/cocoa"), 2,
         "method=oracle needs unoccluded renderings, which dataset=cocoa does not have", cocoa),
    # issue 25 item 8 (the run side): one line, rc 2, no traceback
    Case("resume.json not an object", run(*VISIBLE), 2, "resume.json is not a JSON object", resume_json_a_list),
    Case("resume.json not an object: merge",
         lambda tmp: ["amodal-merge", str(tmp / "run"), "--out", str(tmp / "merged")], 2,
         "resume.json is not a JSON object", resume_json_a_list),
    *[Case(f"row with {what}: {script}", command, 2, f"results.jsonl line 2 is not a result row ({why})", prepare)
      for what, why, prepare in (("null ids", "image_id is null, not a string or a number", null_ids),
                                 ("no occlusion_rate", "no occlusion_rate", no_occlusion_rate))
      for script, command in (("run", run(*VISIBLE)),
                              ("report", lambda tmp: ["amodal-report", str(tmp / "run")]),
                              ("merge", lambda tmp: ["amodal-merge", str(tmp / "run"), "--out", str(tmp / "out")]))],
    Case("report --out in a read-only folder",
         fault("read-only", "amodal-report", "{tmp}/run", "--out", "{tmp}/run/report"), 2,
         "report: Read-only file system; free space or make it writable", copy_base),
    Case("report --out on a full disk (EFBIG)",
         fault("file-size-limit-0", "amodal-report", "{tmp}/run", "--out", "{tmp}/report"), 2,
         "report: File too large; free space or make it writable", copy_base),
    # items 4 and 8: a full disk (EFBIG: a file size limit) at the 3rd object's mask; doubt: no logging tracebacks
    Case("disk full at a mask", fault("full-at-output-3", *VISIBLE, "output.save_masks=true"), 2,
         "File too large; free space", then=every_mask_whole_after_a_rerun, never_says="Logging error"),
    Case("disk full, then a warning before the next row",
         fault("fills-after-2", *QUIET, "logger=none", "method=visible", "dataset=cocoa", "dataset.root={tmp}/cocoa",
               "runtime.max_image_pixels=100"),  # every object skipped, each with a warning before its row
         2, "File too large; free space", cocoa, never_says="Logging error"),
    # item 13: links inside the run folder are not followed
    Case("run.lock a link", run(*VISIBLE), 2, "run.lock is a symbolic link, which a run would truncate",
         run_lock_a_link, the_link_target_is_untouched),
    Case("results.jsonl a link", run(*VISIBLE), 2, "results.jsonl is a symbolic link", results_a_link),
    Case("cuda without a GPU", run(*VISIBLE, "runtime.device=cuda"), 2,
         "runtime.device=cuda: no CUDA GPU is visible here", env={"CUDA_VISIBLE_DEVICES": ""},  # hides any GPU
         own_process="torch reads CUDA_VISIBLE_DEVICES once per process"),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_a_bad_run_is_one_line_and_keeps_the_rows(case, base, tmp_path):
    if case.prepare is not None:
        case.prepare(base, tmp_path)
    results = tmp_path / "run" / "results.jsonl"
    before = results.read_bytes() if results.exists() else b""
    env = {"WANDB_API_KEY": "0" * 40, "WANDB_BASE_URL": "http://127.0.0.1:9",  # a W&B server that is not there
           **(case.env or {})}
    start = time.monotonic()
    command = case.command(tmp_path)
    own_process = case.own_process or command[0] == "python"
    done = (cli if own_process else in_process)(*command, cwd=REPO, env=env)
    seconds = time.monotonic() - start
    output = done.stdout + done.stderr
    assert done.returncode == case.status, output
    assert sum(case.says in line for line in output.splitlines()) == 1, output
    assert case.never_says not in output and "Traceback" not in output, output
    if done.returncode:
        (line,) = [line for line in done.stderr.splitlines() if ": error: " in line]
        assert case.says in line
    after = results.read_bytes() if results.exists() else b""
    assert after.startswith(before)
    if case.within is not None:
        assert seconds < case.within
    if case.then is not None:
        case.then(tmp_path)


def test_two_runs_started_at_once_into_one_folder_write_every_object_once(tmp_path):
    """The second refuses in one line naming the first, which writes every object once."""
    # neither writes a row before the test lets it (held-rows), so the first to take the folder still holds
    # it when the second, however late a loaded machine starts it, tries: once one has ended, the other goes
    command = [sys.executable, "-m", "tests.faults", "held-rows", str(tmp_path / "run"), *QUIET, "logger=none",
               "method=oracle", "dataset.n_images=2"]
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    runs = [subprocess.Popen(command, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(2)]
    end = time.monotonic() + 90  # the one refused ends in seconds; two that both run never do
    while all(run.poll() is None for run in runs) and time.monotonic() < end:
        time.sleep(0.05)
    (tmp_path / "run.go").touch()
    outputs = [run.communicate(timeout=300) for run in runs]
    statuses = [run.returncode for run in runs]
    assert sorted(statuses) == [0, 2], outputs
    winner, loser = (0, 1) if statuses[0] == 0 else (1, 0)
    refusal = outputs[loser][1].strip()
    # the winner, once it has passed its checks, is named; a loser that comes while it is still starting
    # cannot name it yet (the lock is taken before the checks, the name written after)
    holders = (f"is in use by another run (pid {runs[winner].pid} ", "is in use by another run (a process that is "
               "still starting): wait until it ends, or choose another hydra.run.dir")
    assert any(refusal.startswith(f"amodal-run: error: {tmp_path / 'run'} {holder}") for holder in holders), refusal
    keys = [row_key(r) for r in read_rows(tmp_path / "run" / "results.jsonl")]
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert len(keys) == len(set(keys)) == metrics["counts"]["objects"] > 10


def test_a_held_folder_is_refused_naming_the_holder_and_freed_when_it_ends(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    with RunLock(run_dir) as lock:
        lock.claim()
        refused = in_process("amodal-run", *VISIBLE, f"hydra.run.dir={run_dir}")
        assert refused.returncode == 2
        holder = json.loads((run_dir / "run.lock").read_text())
        assert f"is in use by another run (pid {holder['pid']} on {holder['host']}, started" in refused.stderr
        assert sorted(p.name for p in run_dir.iterdir()) == ["run.lock"]
    assert (run_dir / "run.lock").read_text() == ""  # the holder's name goes with the lock
    assert in_process("amodal-run", *VISIBLE, "dataset.limit=2", f"hydra.run.dir={run_dir}").returncode == 0


def folder_hashes(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("with_lock_file", [True, False], ids=["folder", "folder from before the lock"])
def test_a_refused_resume_leaves_every_file_of_the_folder_unchanged(base, tmp_path, with_lock_file):
    copy_base(base, tmp_path)
    run_dir = tmp_path / "run"
    if not with_lock_file:
        (run_dir / "run.lock").unlink()
    before = folder_hashes(run_dir)
    assert {".hydra/config.yaml", ".hydra/hydra.yaml", ".hydra/overrides.yaml", "resume.json"} <= before.keys()
    refused = in_process("amodal-run", *QUIET, "dataset.n_images=2", "method=area", f"hydra.run.dir={run_dir}")
    assert refused.returncode == 2
    assert ('holds results of another config (differs in: method ("amodal.method.baselines.AreaPredictor" here vs '
            '"amodal.method.baselines.VisiblePredictor" in the folder)); resume with the same config or choose a new '
            'hydra.run.dir') in refused.stderr
    assert folder_hashes(run_dir) == before


def test_rows_of_an_object_written_twice_are_counted_once(base, tmp_path, caplog):
    """Two runs that once wrote into one folder at the same time (before the lock): every reader keeps
    the object's first row, and says so once."""
    from amodal.eval.merge import merge
    from amodal.eval.runs import load_run

    copy_base(base, tmp_path)
    results = tmp_path / "run" / "results.jsonl"
    rows = results.read_bytes().splitlines(keepends=True)
    later = json.loads(rows[0]) | {"iou": 0.0}  # the same object again, scored otherwise
    results.write_bytes(b"".join(rows) + rows[1] + (json.dumps(later) + "\n").encode())
    expected = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert [r["iou"] for r in read_rows(results)] == [json.loads(r)["iou"] for r in rows]
    assert load_run(tmp_path / "run").metrics["miou"] == expected["miou"]
    assert merge([tmp_path / "run"], tmp_path / "merged")["counts"] == expected["counts"]
    warnings = [r.getMessage() for r in caplog.records if "twice in" in r.getMessage()]
    assert warnings == [f"2 objects are twice in {results} (two runs wrote into its folder at once?); "
                        "each is counted once, from its first row"]
