"""Training under torchrun: 2 CPU processes (gloo), only rank 0 writes, resume works."""

from __future__ import annotations

import json
import os
import random
import socket
import subprocess
import sys
from pathlib import Path

import torch

from geocnn.config import load_config
from geocnn.model.network import build
from geocnn.runs.checkpoint import load_checkpoint
from tests import trainkit


def free_port() -> int:
    """A free port *below* the kernel's ephemeral range. A port from that range (what binding to 0
    gives) can be handed meanwhile to a client's own socket — and a torchrun agent that keeps
    trying to reach a rendezvous port not yet listening can then connect to itself and wait there."""
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    rng = random.Random()
    for _ in range(200):
        port = rng.randrange(max(1024, low - 12000), low)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port below the ephemeral range")


def torchrun(*args, cwd):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(free_port()), "-m", "geocnn", *map(str, args)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_two_processes_train_and_resume(tmp_path):
    path = trainkit.regression_config(tmp_path, epochs=2)
    first = torchrun("train", path, "--out", "run", "--max-steps", "2", cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-2000:]
    # 16 patches per epoch over 2 processes = 8 each = 2 steps of 4: epoch 1 done
    ckpt = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")
    assert (ckpt.epoch, ckpt.step) == (1, 2)
    assert first.stdout.count("done: run") == 1  # only rank 0 talks
    second = torchrun("train", path, "--out", "run", "--resume", cwd=tmp_path)
    assert second.returncode == 0, second.stderr[-2000:]
    lines = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in lines] == [1, 2]
    assert load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt").step == 4
    # each process saw its own 8 patches: the logged rate counts both
    assert lines[0]["val"]["baseline"]["mse"] > 0


def test_two_processes_leave_frozen_layers_alone(tmp_path):
    path = trainkit.regression_config(tmp_path, epochs=1, freeze=["conv1"])
    result = torchrun("train", path, "--out", "run", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    cfg = load_config(path)
    torch.manual_seed(cfg.train.seed)  # train() builds the model right after seeding
    init = build(cfg.model, cfg.patch)[0].state_dict()
    ckpt = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")
    assert ckpt.step == 2  # 16 patches over 2 processes of 4 per batch
    assert torch.equal(ckpt.model_state["steps.0.conv.weight"], init["steps.0.conv.weight"])
    assert not torch.equal(ckpt.model_state["steps.2.conv.weight"], init["steps.2.conv.weight"])
    assert len(ckpt.optimizer_state["state"]) == 2  # the second conv's weight and bias
