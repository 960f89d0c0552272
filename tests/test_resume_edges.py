"""Resume at the edges: a complete run says so and how to extend it; a run left aside by a killed
``--force`` retrain is put back before ``--resume`` reads it."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from geocnn.errors import ConfigError
from geocnn.runs import folder as runfolder
from geocnn.runs.checkpoint import load_checkpoint, save_checkpoint


def rewrite_last(run, **fields):
    """checkpoints/last.pt with ``fields`` changed (the state a run reaches after more epochs)."""
    path = run / "checkpoints" / "last.pt"
    save_checkpoint(path, dataclasses.replace(load_checkpoint(path), **fields))


def one_error_line(result) -> str:
    assert result.exit_code == 2, result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


@pytest.fixture
def complete_run(identity_run, tmp_path):
    """The identity run with both of its 2 planned epochs done."""
    run = identity_run(tmp_path)
    rewrite_last(run, epoch=2, step=8, batch_in_epoch=0)
    return run


def test_resume_of_a_complete_run_says_how_to_extend_it(complete_run, cli):
    before = {p.name: p.stat().st_mtime_ns for p in complete_run.rglob("*")}
    line = one_error_line(cli("train", complete_run, "--resume"))
    assert line == (f"error: {complete_run}: the run is complete: all 2 epochs are done (checkpoints/last.pt is "
                    f"epoch 2) — to train further, extend it: geocnn train {complete_run} --resume --epochs 4 (or "
                    "--set train.epochs=N, N > 2)")
    assert {p.name: p.stat().st_mtime_ns for p in complete_run.rglob("*")} == before  # nothing touched
    # the same through --dry-run, and with --epochs equal to the plan
    assert "the run is complete" in one_error_line(cli("train", complete_run, "--resume", "--dry-run"))
    assert "the run is complete" in one_error_line(cli("train", complete_run, "--resume", "--epochs", "2"))


@pytest.mark.parametrize("done,batch,planned,refused", [
    (2, 0, None, "complete"), (2, 0, 2, "complete"), (2, 0, 3, None), (2, 0, 1, "already done 2 epochs"),
    (1, 0, None, None), (1, 3, None, None), (0, 1, None, None), (5, 0, 5, "complete"), (5, 0, 6, None)])
def test_what_resume_refuses_over_epoch_states(complete_run, cli, done, batch, planned, refused):
    """Done epochs × unfinished batches × the plan given on resume: only a run with nothing left is
    refused as complete (checked with --dry-run, which reads everything train would and trains nothing)."""
    rewrite_last(complete_run, epoch=done, batch_in_epoch=batch)
    if done == 5:  # a run planned for 5 epochs from the start
        cfg = complete_run / "config.yaml"
        cfg.write_text(cfg.read_text().replace("epochs: 2", "epochs: 5"))
    args = ["--epochs", str(planned)] if planned is not None else []
    result = cli("train", complete_run, "--resume", "--dry-run", *args)
    if refused is None:
        assert result.exit_code == 0, result.stderr
    else:
        assert refused in one_error_line(result)


def test_resume_of_an_early_stopped_run_is_complete(complete_run, cli):
    rewrite_last(complete_run, epoch=1, early_stop={"best": 0.3, "best_epoch": 1, "waited": 2, "patience": 2,
                                                     "min_delta": 0.0})
    line = one_error_line(cli("train", complete_run, "--resume", "--epochs", "9"))
    assert "the run is complete: early stopping ended it after epoch 1 (no better val_loss for 2 epochs since " \
           "epoch 1)" in line


KILLED_FORCE = textwrap.dedent("""
    import os, signal, sys
    import torch
    from geocnn.train import make_loss  # noqa: F401 — loads the module
    t = sys.modules["geocnn.train"]  # the module (geocnn.train is the public function)
    class Killed(torch.nn.Module):
        def forward(self, out, y):
            os.kill(os.getpid(), signal.SIGKILL)  # kill -9 inside the first step: no checkpoint yet
    t.make_loss = lambda *a, **k: Killed()
    from geocnn.cli import app
    app(sys.argv[1:])
""")


def test_resume_puts_back_a_run_left_aside_by_a_dead_force_retrain(identity_run, tmp_path, cli):
    """What kill -9 leaves (see the slow test below, which does it): the old run in .replaced/, the
    new run's first files, and the dead process's lock file."""
    run = identity_run(tmp_path)
    old_last = (run / "checkpoints" / "last.pt").read_bytes()
    old_config = (run / "config.yaml").read_text()
    runfolder.Replacement(run).begin()
    (run / "config.yaml").write_text(old_config.replace("lr: 0.01", "lr: 0.002"))  # the new run's
    runfolder.lock_path(run).write_text(json.dumps({"pid": 2 ** 22 + 1, "host": "h", "started": "then"}))
    resumed = cli("train", run, "--resume", "--max-steps", "2")
    assert resumed.exit_code == 0, resumed.stderr
    assert "a --force run stopped before its first checkpoint; the previous run is back in place" in resumed.stderr
    assert not (run / runfolder.ASIDE).exists() and not runfolder.lock_path(run).exists()
    assert "lr: 0.01\n" in (run / "config.yaml").read_text()
    assert load_checkpoint(run / "checkpoints" / "last.pt").step == 2  # the old run (step 1), one step on
    assert old_last != (run / "checkpoints" / "last.pt").read_bytes()


@pytest.mark.slow
def test_kill_9_of_a_force_retrain_then_resume_puts_the_run_back_first(identity_run, tmp_path, cli):
    run = identity_run(tmp_path)
    old_last = (run / "checkpoints" / "last.pt").read_bytes()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    killed = subprocess.run([sys.executable, "-c", KILLED_FORCE, "train", str(tmp_path / "id.yaml"), "--out",
                             str(run), "--force", "--threads", "1"], env=env, capture_output=True, cwd=tmp_path)
    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()
    assert (run / runfolder.ASIDE / "checkpoints" / "last.pt").read_bytes() == old_last  # where kill -9 left it
    assert not (run / "checkpoints" / "last.pt").exists()

    dry = cli("train", run, "--resume", "--dry-run")  # a dry run writes nothing: it says where the run is
    assert "a --force run stopped before its first checkpoint; the previous run is in" in one_error_line(dry)
    resumed = cli("train", run, "--resume")
    assert resumed.exit_code == 0, resumed.stderr
    assert "a --force run stopped before its first checkpoint; the previous run is back in place" in resumed.stderr
    assert not (run / runfolder.ASIDE).exists() and not runfolder.lock_path(run).exists()
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [x["epoch"] for x in lines] == [1, 2] and lines[0]["resumed"] == {"step": 1}  # resumed the old run


def test_resume_never_moves_the_run_of_a_live_force_retrain(identity_run, tmp_path):
    """While a --force run holds the lock, its .replaced/ is its own: resume is refused naming the holder."""
    run = identity_run(tmp_path)
    replacement = runfolder.Replacement(run)
    with runfolder.lock(run):
        replacement.begin()
        with pytest.raises(runfolder.RunInUse, match="run folder is in use by geocnn process pid"):
            runfolder.recover_before_reading(run)
        assert (run / runfolder.ASIDE / "checkpoints" / "last.pt").is_file()
    runfolder.recover_before_reading(run)
    assert (run / "checkpoints" / "last.pt").is_file() and not (run / runfolder.ASIDE).exists()


def test_refusals_are_config_errors(complete_run):
    from geocnn.config import load_config
    from geocnn.train import train

    with pytest.raises(ConfigError, match="the run is complete"):
        train(load_config(complete_run / "config.yaml"), complete_run, resume=True)
