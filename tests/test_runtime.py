"""``runtime.threads``: torch's CPU threads for one job, restored after it (the jobs of a multirun share a
process)."""

import torch

from amodal.runner import Runner


def test_runtime_threads_hold_for_the_run_and_are_restored_after(run_app, monkeypatch, tmp_path):
    seen = []
    run = Runner.run
    monkeypatch.setattr(Runner, "run", lambda self: (seen.append(torch.get_num_threads()), run(self))[1])
    before = torch.get_num_threads()
    wanted = 1 if before > 1 else 2
    run_app("method=visible", "dataset.n_images=1", f"runtime.threads={wanted}")
    assert seen == [wanted] and torch.get_num_threads() == before
    run_app("method=visible", "dataset.n_images=1", "runtime.threads=null", run_dir=tmp_path / "default")
    assert seen[-1] == before
