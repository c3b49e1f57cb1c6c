"""Sharded evaluation on a real one-node SLURM cluster that the tests bring up (scripts/slurm-local.sh):
three array tasks merge into exactly the unsharded run; a shard cancelled halfway and resubmitted, and
one preempted and requeued by submitit, resume from their results.jsonl and the merge is still exact.

Needs root and apt (the script installs Debian's slurm, munge and mariadb packages when missing); skipped
with the script's reason elsewhere. One cluster serves the whole session, so run these tests in one
process: ``pytest -p no:xdist -m slurm`` (``make test`` does).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from amodal.cli.merge import main as merge_main
from amodal.data.base import Shard
from amodal.eval.results import read_rows, row_key
from tests.helpers import REPO, cli

pytestmark = pytest.mark.slurm

SCRIPT = REPO / "scripts" / "slurm-local.sh"
CANNOT_START = 3  # the script's exit status when SLURM cannot be started on this machine
DAEMONS = ("munged", "mariadbd", "slurmdbd", "slurmctld", "slurmd")
SLURM = [
    "hydra/launcher=slurm",
    "hydra.launcher.partition=local",
    "hydra.launcher.gpus_per_node=0",
    "hydra.launcher.cpus_per_task=1",
    "hydra.launcher.mem_gb=1",
    "hydra.launcher.timeout_min=10",  # submitit fails jobs at once with 1
]
RUN = [
    "method=area",
    "logger=none",
    "output.progress=false",
    "output.pictures=0",
    "dataset.n_images=8",
    "dataset.size=512",
]
"""41 objects; a shard renders most of the 8 scenes (0.1-0.3 s each): its rows come over a second or more."""
TIMING = ("seconds", "peak_memory_mb")
METRICS = ("miou", "pixel_iou", "n", "buckets", "include_unoccluded", "counts")


def _alive(name: str, pid: int) -> bool:
    """``pid`` runs ``name``: not a reused PID, nor a zombie that init has yet to reap."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.startswith(f"{pid} ({name}) ") and not stat.rpartition(") ")[2].startswith("Z")


def _processes_of(folder: str) -> list[str]:
    """Processes of the cluster in ``folder``: the daemons and job steps name it in their environment
    (SLURM_LOCAL_DIR, SLURM_CONF); slurmstepd clears its environment but runs inside it."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cwd = os.readlink(proc / "cwd")
            if (
                cwd == folder
                or cwd.startswith(f"{folder}/")
                or f"={folder}".encode() in (proc / "environ").read_bytes()
            ):
                found.append(f"{proc.name} ({(proc / 'comm').read_text().strip()})")
        except OSError:
            pass
    return found


def _read_state(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)


@pytest.fixture(scope="session")
def slurm(tmp_path_factory):
    """A one-node cluster with accounting, up for the session and down at its end, pass or fail."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        pytest.skip(
            "the SLURM tests share one cluster: run them in one process, -p no:xdist (make test does)"
        )
    state = tmp_path_factory.mktemp("slurm") / "state"
    env = {**os.environ, "SLURM_LOCAL_STATE": str(state)}
    start = time.perf_counter()
    up = subprocess.run(["bash", str(SCRIPT), "up"], env=env, capture_output=True, text=True, timeout=900)
    if up.returncode == CANNOT_START:
        pytest.skip(up.stderr.strip().splitlines()[-1])
    pids: dict[str, int] = {}
    folder = None
    try:
        assert up.returncode == 0, f"slurm-local.sh up failed:\n{up.stderr}"
        print(f"\nslurm-local.sh up: {time.perf_counter() - start:.1f} s")
        recorded = _read_state(state)
        folder = recorded["DIR"]
        pids = {name: int(recorded[f"PID_{name}"]) for name in DAEMONS}
        assert all(_alive(name, pid) for name, pid in pids.items()), pids
        (export,) = [line for line in up.stdout.splitlines() if line.startswith("export SLURM_CONF=")]
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("SLURM_CONF", export.split("=", 1)[1])
            yield Path(recorded["DIR"])
    finally:
        start = time.perf_counter()
        down = subprocess.run(
            ["bash", str(SCRIPT), "down"], env=env, capture_output=True, text=True, timeout=300
        )
        print(f"\nslurm-local.sh down: {time.perf_counter() - start:.1f} s")
        left = [f"{pid} ({name})" for name, pid in pids.items() if _alive(name, pid)]
        left += _processes_of(folder) if folder else []
        assert down.returncode == 0 and not left and not state.exists(), (
            f"left running after slurm-local.sh down: {left}\n{down.stderr}"
        )


@pytest.fixture(scope="module")
def local_run(tmp_path_factory):
    """The unsharded run, in one process without SLURM: what every merge must equal."""
    root = tmp_path_factory.mktemp("local")
    result = cli("amodal-run", *RUN, f"hydra.run.dir={root / 'run'}", cwd=root)
    assert result.returncode == 0, result.stderr
    return root / "run"


def sacct(job: str, every_run: bool = False) -> dict[str, list[tuple[str, str]]]:
    """{job id: [(state, exit code)]} of a job's tasks once accounting holds a final state for each: the
    last run of each, or every run (a requeued task has one per run)."""
    end = time.monotonic() + 30
    while True:
        command = ["sacct", "-X", "-n", "-P", "-j", job, "-o", "JobID,State,ExitCode"]
        out = subprocess.run([*command, *(["-D"] if every_run else [])], capture_output=True, text=True)
        tasks: dict[str, list[tuple[str, str]]] = {}
        for line in out.stdout.splitlines():
            jid, state, code = line.split("|")
            tasks.setdefault(jid, []).append((state.split()[0], code))
        if tasks and not {"PENDING", "RUNNING", "COMPLETING"} & {runs[-1][0] for runs in tasks.values()}:
            return tasks
        assert time.monotonic() < end, f"sacct has no final state for every task of {job}: {out}"
        time.sleep(0.5)


def squeue(job: str, fields: str = "%i") -> list[str]:
    out = subprocess.run(["squeue", "-h", "-j", job, "-o", fields], capture_output=True, text=True)
    return out.stdout.split()


def submitted(sweep: Path) -> set[str]:
    """The jobs submitted into a sweep, from the folders submitit names after them (``<job>[_<task>]``)."""
    return {p.name.split("_")[0] for p in (sweep / ".submitit").iterdir() if p.name[0].isdigit()}


def array_id(sweep: Path) -> str:
    (array,) = submitted(sweep)
    return array


def merged(sweep: Path, out: Path) -> Path:
    assert merge_main([str(sweep), "--out", str(out)]) == 0
    return out


def assert_same_run(merged_dir: Path, local_dir: Path) -> None:
    """Same rows (every field but the timing) and the same metrics as the unsharded run."""

    def rows(path: Path) -> dict:
        return {row_key(r): {k: v for k, v in r.items() if k not in TIMING} for r in read_rows(path)}

    merged_rows, local_rows = rows(merged_dir / "results.jsonl"), rows(local_dir / "results.jsonl")
    assert len(read_rows(merged_dir / "results.jsonl")) == len(merged_rows) == len(local_rows)
    assert merged_rows == local_rows
    metrics = json.loads((merged_dir / "metrics.json").read_text())
    reference = json.loads((local_dir / "metrics.json").read_text())
    assert {k: metrics[k] for k in METRICS} == {k: reference[k] for k in METRICS}


def keys(run_dir: Path) -> list:
    return [row_key(r) for r in read_rows(run_dir / "results.jsonl")]


def shard_keys(local_dir: Path, index: int, count: int) -> list:
    return [key for key in keys(local_dir) if Shard(index, count).holds(key)]


def rows_written(run_dir: Path) -> int:
    path = run_dir / "results.jsonl"
    return path.read_bytes().count(b"\n") if path.is_file() else 0


def cancel_where_it_stands(job: str) -> None:
    """Cancel a running job at once. A plain scancel sends SIGTERM, which submitit ignores, and SIGKILL
    KillWait + ~1.5 s later: long enough for a small shard to finish. So freeze the job (scontrol suspend),
    kill its step while frozen, then cancel it: it ends at the row it had reached."""
    suspend = subprocess.run(["scontrol", "suspend", job], capture_output=True, text=True)
    assert suspend.returncode == 0, f"{job} ended before it could be cancelled: {suspend.stderr}"
    subprocess.run(["scancel", "--signal=KILL", job], check=True)
    subprocess.run(["scancel", job], check=True)


def preempt(job: str) -> None:
    """Send what SLURM sends before a time limit (``--signal=USR2@signal_delay_s``) or a preemption:
    submitit checkpoints the Hydra job and requeues it (``scontrol requeue``), up to max_num_timeout."""
    signal = subprocess.run(["scancel", "--signal=USR2", job], capture_output=True, text=True)
    assert signal.returncode == 0, f"{job} ended before it could be preempted: {signal.stderr}"


def wait_until_requeued(job: str) -> None:
    end = time.monotonic() + 60
    while squeue(job, "%T") != ["PENDING"]:
        assert time.monotonic() < end, f"{job} was not requeued: {squeue(job, '%T %r')}"
        time.sleep(0.1)


def wait_until_gone(job: str) -> None:
    end = time.monotonic() + 60
    while squeue(job):
        assert time.monotonic() < end, f"{job} still in the queue 60 s after scancel"
        time.sleep(0.1)


def job_processes(job: str) -> list[int]:
    """The processes of array task ``<array>_<task>`` (its batch script, srun, the run), by their environment."""
    array, task = job.split("_")
    marks = (f"SLURM_ARRAY_JOB_ID={array}\0".encode(), f"SLURM_ARRAY_TASK_ID={task}\0".encode())
    found = []
    for proc in Path("/proc").iterdir():
        try:
            environ = (proc / "environ").read_bytes() if proc.name.isdigit() else b""
        except OSError:
            continue
        if all(mark in environ for mark in marks):
            found.append(int(proc.name))
    return found


def reap_cancelled(job: str) -> None:
    """A job cancelled while suspended can leave the queue with its processes still frozen (seen once in
    three runs on one node: the suspend and the KILL race in slurmd), holding the shard's run folder. What
    of it is left after 10 s is killed, as an administrator would, before the shard is resubmitted."""
    end = time.monotonic() + 10
    while (left := job_processes(job)) and time.monotonic() < end:
        time.sleep(0.2)
    for pid in left:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def complete_rows(run_dir: Path) -> bytes:
    """results.jsonl up to its last newline (a row cut short by SIGKILL is dropped on resuming)."""
    data = (run_dir / "results.jsonl").read_bytes()
    return data[: data.rfind(b"\n") + 1]


def test_three_slurm_array_tasks_merge_into_exactly_the_local_run(slurm, local_run, tmp_path):
    sweep = tmp_path / "sweep"
    result = cli(
        "amodal-run",
        "-m",
        *SLURM,
        "shard.count=3",
        "shard.index=0,1,2",
        *RUN,
        f"hydra.sweep.dir={sweep}",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    array = array_id(sweep)
    assert sacct(array) == {f"{array}_{i}": [("COMPLETED", "0:0")] for i in range(3)}
    for i in range(3):  # task i ran shard i: its log holds the run folder amodal-run printed
        log = sweep / ".submitit" / f"{array}_{i}" / f"{array}_{i}_0_log.out"
        assert f"{sweep / str(i)}\n" in log.read_text()
        assert keys(sweep / str(i)) == shard_keys(local_run, i, 3)
    assert_same_run(merged(sweep, tmp_path / "merged"), local_run)


def test_a_cancelled_shard_resubmitted_and_a_preempted_shard_requeued_resume_exactly(
    slurm, local_run, tmp_path
):
    """One sweep, two shards interrupted halfway: one cancelled (the user resubmits it), one preempted
    (submitit requeues it). Each resumes from its own results.jsonl, and the merge is still exact."""
    sweep = tmp_path / "sweep"
    common = [*SLURM, "shard.count=3", *RUN, f"hydra.sweep.dir={sweep}"]
    expected = {i: shard_keys(local_run, i, 3) for i in range(3)}
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "HYDRA_FULL_ERROR": "0"}
    driver = subprocess.Popen(
        [str(Path(sys.executable).parent / "amodal-run"), "-m", "shard.index=0,1,2", *common],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # The first shard between a quarter and half of its rows is cancelled there and then, the next
        # one preempted.
        cancelled = preempted = None
        end = time.monotonic() + 240
        while preempted is None:
            assert driver.poll() is None and time.monotonic() < end, "no shard could be interrupted halfway"
            halfway = (
                i
                for i in range(3)
                if i != cancelled
                and not (sweep / str(i) / "metrics.json").exists()
                and max(1, len(expected[i]) // 4) <= rows_written(sweep / str(i)) <= len(expected[i]) // 2
            )
            if (shard := next(halfway, None)) is None:
                time.sleep(0.02)
            elif cancelled is None:
                cancelled = shard
                cancel_where_it_stands(f"{array_id(sweep)}_{shard}")
            else:
                preempted = shard
                preempt(f"{array_id(sweep)}_{shard}")
        array = array_id(sweep)
        wait_until_gone(f"{array}_{cancelled}")
        reap_cancelled(f"{array}_{cancelled}")
        wait_until_requeued(f"{array}_{preempted}")
        before = {i: complete_rows(sweep / str(i)) for i in (cancelled, preempted)}
        # SLURM holds a requeued job back for 120 s (BeginTime), a wait that tells nothing here.
        subprocess.run(["scontrol", "update", f"JobId={array}_{preempted}", "StartTime=now"], check=True)
        for i, rows in before.items():
            assert 0 < rows.count(b"\n") < len(expected[i]), f"shard {i} was not stopped halfway"
            assert not (sweep / str(i) / "metrics.json").exists()

        # The cancelled shard is resubmitted into its own folder of the same sweep.
        resubmit = cli(
            "amodal-run",
            "-m",
            f"shard.index={cancelled}",
            f"hydra.sweep.subdir={cancelled}",
            *common,
            cwd=tmp_path,
        )
        assert resubmit.returncode == 0, resubmit.stderr
        _, stderr = driver.communicate(timeout=300)
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.communicate()
    # The first submission reports the cancelled task and fails; the preempted task ran twice.
    assert driver.returncode != 0 and f"{array}_{cancelled}" in stderr and "CANCELLED" in stderr, stderr
    runs = sacct(array, every_run=True)
    assert runs.pop(f"{array}_{cancelled}")[-1][0] == "CANCELLED"
    requeued, completed = runs.pop(f"{array}_{preempted}")
    assert (requeued[0], completed) == ("REQUEUED", ("COMPLETED", "0:0"))
    assert list(runs.values()) == [[("COMPLETED", "0:0")]]
    (again,) = submitted(sweep) - {array}
    assert list(sacct(again).values()) == [[("COMPLETED", "0:0")]]

    for i, rows in before.items():  # each resumed: the rows it had were kept, only the others were run
        done = rows.count(b"\n")
        assert (sweep / str(i) / "results.jsonl").read_bytes().startswith(rows)
        assert keys(sweep / str(i)) == expected[i]
        log = (sweep / str(i) / "run.log").read_text()
        assert f"resuming: {done} objects done, {len(expected[i]) - done} to go" in log
    assert_same_run(merged(sweep, tmp_path / "merged"), local_run)


def test_the_script_says_in_one_line_why_it_cannot_start_slurm(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("runs the script as another user, which needs root")
    env = {**os.environ, "SLURM_LOCAL_STATE": str(tmp_path / "state")}
    with SCRIPT.open() as script:  # on stdin: the user need not be able to read the checkout
        up = subprocess.run(
            ["runuser", "-u", "nobody", "--", "bash", "-s", "up"],
            stdin=script,
            env=env,
            capture_output=True,
            text=True,
        )
    assert (up.returncode, up.stdout) == (CANNOT_START, "")
    assert up.stderr == (
        "slurm-local: cannot start SLURM here: needs root "
        "(munged runs as munge, mariadbd as mysql, the SLURM daemons as root)\n"
    )
    down = subprocess.run(["bash", str(SCRIPT), "down"], env=env, capture_output=True, text=True)
    assert (down.returncode, down.stderr) == (
        0,
        f"slurm-local: not up (no state file {tmp_path / 'state'})\n",
    )
