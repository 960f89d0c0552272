"""Shell completion and --threads: conventions of the command line itself."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys

import pytest


def _geocnn(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "geocnn", *args], capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=120)


def test_show_completion_prints_a_bash_script():
    # --show-completion is a flag: the shell is detected from the parent processes, so run it from bash
    # (as a user does) rather than from this test's Python, whatever launched the test run
    result = subprocess.run(["bash", "-c", f"{shlex.quote(sys.executable)} -m geocnn --show-completion"],
                            capture_output=True, text=True, env={**os.environ, "SHELL": "/bin/bash"}, timeout=120)
    assert result.returncode == 0, result.stderr
    # the script registers a completion function for the geocnn command, driven by _GEOCNN_COMPLETE
    assert "complete -o default -F _geocnn_completion geocnn" in result.stdout
    assert "_GEOCNN_COMPLETE=complete_bash" in result.stdout


def test_completion_lists_the_commands():
    result = _geocnn(_GEOCNN_COMPLETE="complete_bash", COMP_WORDS="geocnn ex", COMP_CWORD="1")
    assert result.stdout.split() == ["export"]


@pytest.mark.slow
def test_threads_reach_torch_in_train_and_predict(tmp_path):
    """--threads sets torch's thread count in the training process, and predict honours the run's setting."""
    from tests import trainkit

    cfg = trainkit.regression_config(tmp_path, max_steps=1)
    # 3 is neither the default here (one per core) nor 1, so the number proves where it came from
    code = ("import sys, torch; from geocnn.cli import app; "
            "app(sys.argv[1:], prog_name='geocnn', standalone_mode=False); "
            "print('threads', torch.get_num_threads(), 'interop', torch.get_num_interop_threads())")
    run = subprocess.run([sys.executable, "-c", code, "train", str(cfg), "--out", str(tmp_path / "run"),
                          "--threads", "3"], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "threads 3 interop 3" in run.stdout
    assert "cpu (3 threads)" in run.stderr  # the device line of the log
    assert "threads: 3" in (tmp_path / "run" / "config.yaml").read_text()

    import numpy as np

    np.save(tmp_path / "vol.npy", trainkit.layered_volume((4, 12, 48)))
    pred = subprocess.run([sys.executable, "-c", code, "predict", str(tmp_path / "run"), str(tmp_path / "vol.npy"),
                           "--out", str(tmp_path / "p.npy")], capture_output=True, text=True, timeout=300)
    assert pred.returncode == 0, pred.stderr
    assert "threads 3 interop 3" in pred.stdout  # from the run's train.threads
    pred = subprocess.run([sys.executable, "-c", code, "predict", str(tmp_path / "run"), str(tmp_path / "vol.npy"),
                           "--out", str(tmp_path / "q.npy"), "--threads", "1"], capture_output=True, text=True,
                          timeout=300)
    assert pred.returncode == 0, pred.stderr
    assert "threads 1 interop 1" in pred.stdout


def test_set_threads_sets_the_environment_for_child_processes(monkeypatch):
    import torch

    from geocnn import device

    before = torch.get_num_threads()
    interop = []
    monkeypatch.setattr(torch, "set_num_interop_threads", interop.append)  # process-wide and one-shot: not here
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)
    device.set_threads(None)  # the default leaves everything as it is
    assert torch.get_num_threads() == before and "OMP_NUM_THREADS" not in os.environ and interop == []
    try:
        device.set_threads(5)
        assert torch.get_num_threads() == 5 and interop == [5]
        assert os.environ["OMP_NUM_THREADS"] == "5" and os.environ["MKL_NUM_THREADS"] == "5"
    finally:
        torch.set_num_threads(before)
