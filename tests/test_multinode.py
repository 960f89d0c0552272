"""Two "nodes" on loopback: two torchrun launchers (``--nnodes 2``, node ranks 0 and 1, gloo on CPU).

What a real cluster does, on one machine: training with resume ends with the weights of the same
run on one node, and prediction into MDIO and SEG-Y equals one process's (each node writes its own
rows; MDIO chunks are never shared). The MDIO case needs the geocnn[mdio] extra; the rest does not.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from geocnn.config import load_config
from geocnn.grids.grid import open_grid
from geocnn.predict import predict
from geocnn.runs.checkpoint import load_checkpoint
from geocnn.train import train
from tests import segyfactory, trainkit
from tests.test_distributed import free_port

try:
    import zarr

    if int(zarr.__version__.split(".")[0]) < 3:
        raise ImportError("zarr 2")
except ImportError:
    zarr = None


RENDEZVOUS_DONE = "Rendezvous complete for workers"  # torchrun's agent log line (LOGLEVEL=INFO)


def _launch(args, cwd, timeout: int) -> tuple[list[int | None], list[str]]:
    """Start 2 launchers (node ranks 0, 1) on a fresh port; their exit codes (None: still running
    after ``timeout`` s, then killed with their workers) and logs."""
    port = str(free_port())
    env = {**os.environ, "OMP_NUM_THREADS": "1", "LOGLEVEL": "INFO"}
    logs = [cwd / f"node{node}.log" for node in (0, 1)]  # files, not pipes: no launcher blocks on a full pipe
    with contextlib.ExitStack() as stack:
        procs = []
        deadline = time.monotonic() + timeout
        for node, log in enumerate(logs):
            out = stack.enter_context(open(log, "w"))
            cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc-per-node", "1",
                   "--node-rank", str(node), "--master-addr", "127.0.0.1", "--master-port", port,
                   "-m", "geocnn", *map(str, args)]
            # a session of its own: a timeout kills the launcher *and* its worker (no orphan keeps a port)
            proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, text=True,
                                    start_new_session=True)
            stack.callback(lambda p=proc: p.poll() is None and os.killpg(p.pid, signal.SIGKILL))
            procs.append(proc)
            if node == 0:  # node 1 starts once node 0's rendezvous port listens, as on a cluster's head node
                while not _listening(int(port)) and proc.poll() is None and time.monotonic() < deadline:
                    time.sleep(0.05)
        codes = []
        for proc in procs:
            try:
                codes.append(proc.wait(timeout=max(deadline - time.monotonic(), 0.1)))
            except subprocess.TimeoutExpired:
                codes.append(None)
    return codes, [log.read_text() for log in logs]


def _listening(port: int) -> bool:
    """Something listens on ``port`` (read from /proc, without connecting to it)."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            return True  # no /proc: do not wait
        for row in rows:
            local, state = row.split()[1], row.split()[3]
            if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:
                return True
    return False


def two_nodes(*args, cwd, timeout: int = 120) -> list[str]:
    """Run ``geocnn ARGS`` as 2 nodes × 1 process; returns each launcher's output (asserting success).

    A launch whose two agents never met (no rendezvous within ``timeout``: the port, picked free a
    moment before, was taken meanwhile) is tried once more on a new port; anything after the
    rendezvous (geocnn's own collectives) fails the test, with both nodes' logs.
    """
    codes, outputs = _launch(args, cwd, timeout)
    if None in codes and not all(RENDEZVOUS_DONE in o for o in outputs):
        warnings.warn("two-node launch: no rendezvous in time, retried on a new port:\n"
                      + "\n".join(o[-1500:] for o in outputs), stacklevel=2)
        codes, outputs = _launch(args, cwd, timeout)
    assert codes == [0, 0], f"exit codes {codes}\n" + "\n".join(o[-3000:] for o in outputs)
    return outputs


@pytest.mark.slow
def test_two_nodes_train_with_resume_like_one_node(tmp_path):
    path = trainkit.regression_config(tmp_path, epochs=2)
    two_nodes("train", path, "--out", "nodes", "--max-steps", "2", cwd=tmp_path)
    ckpt = load_checkpoint(tmp_path / "nodes" / "checkpoints" / "last.pt")
    assert (ckpt.epoch, ckpt.step) == (1, 2)  # 16 patches / 2 processes / batch 4: one epoch
    two_nodes("train", path, "--out", "nodes", "--resume", cwd=tmp_path)
    resumed = load_checkpoint(tmp_path / "nodes" / "checkpoints" / "last.pt")
    assert (resumed.epoch, resumed.step) == (2, 4)
    # the same 2 processes on one node, without the interruption: the same weights
    from tests.test_distributed import torchrun

    done = torchrun("train", path, "--out", "one", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    reference = load_checkpoint(tmp_path / "one" / "checkpoints" / "last.pt").model_state
    for key, value in reference.items():
        torch.testing.assert_close(resumed.model_state[key], value, rtol=0, atol=1e-6)


needs_zarr = pytest.mark.skipif(zarr is None, reason="the geocnn[mdio] extra (zarr 3) is not installed: "
                                                     "pip install -e '.[test,mdio]' (Python 3.11+)")


@pytest.fixture(scope="module")
def survey_and_run(tmp_path_factory):
    """A 23-inline SEG-Y with a dead trace, and a small trained denoiser."""
    folder = tmp_path_factory.mktemp("nodes")
    survey = segyfactory.write_segy(folder / "cube.sgy", ilines=range(1, 24), xlines=range(20, 32), n_samples=48,
                                    missing=[(7, 25)])
    run = train(load_config(trainkit.regression_config(folder, epochs=1)), folder / "run")
    return survey, run


@pytest.mark.slow
@pytest.mark.parametrize("suffix", [".sgy", pytest.param(".mdio", marks=needs_zarr)])
def test_two_nodes_predict_like_one_process(tmp_path, survey_and_run, suffix):
    survey, run = survey_and_run
    single = predict(run, [survey.path], tmp_path / f"single{suffix}", pictures=False).output
    outputs = two_nodes("predict", run, survey.path, "--out", tmp_path / f"nodes{suffix}", cwd=tmp_path)
    assert sum("wrote" in o for o in outputs) == 1  # only rank 0 reports
    a, b = open_grid(tmp_path / f"nodes{suffix}"), open_grid(single)
    full = tuple(slice(0, n) for n in a.shape)
    np.testing.assert_allclose(a.read(full), b.read(full), rtol=1e-5, atol=1e-6)
    if suffix == ".sgy":  # headers copied once, by rank 0
        assert segyfactory.file_bytes(tmp_path / "nodes.sgy")[:3600] == segyfactory.file_bytes(single)[:3600]
    else:  # 23 inlines in chunks of 3: node 0 wrote chunk rows 0-3 (inlines 1-12), node 1 rows 4-7
        assert zarr.open_array(tmp_path / "nodes.mdio", path="prediction").chunks == (3, 12, 48)
        assert sorted(os.listdir(tmp_path / "nodes.mdio" / "prediction" / "c"), key=int) == [str(i) for i in range(8)]
