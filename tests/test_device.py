"""Model and batch placement (one place for train and predict) and the CLI's progress context."""

from __future__ import annotations

import logging

import pytest
import torch
import yaml

from geocnn import device, machine
from geocnn.cli import console
from geocnn.config import load_config
from geocnn.progress import SILENT
from geocnn.train import train
from tests import trainkit

CPU = device.Runtime(torch.device("cpu"), None)


@pytest.mark.parametrize(("dims", "setting", "expected"), [
    (2, "auto", True), (3, "auto", True), (1, "auto", False), (2, False, False), (1, True, False)])
def test_placement_decides_channels_last_once(dims, setting, expected):
    assert device.placement(CPU, dims, setting).channels_last is expected


def test_2d_batches_and_weights_share_the_channels_last_layout():
    place = device.placement(CPU, 2, "auto")
    model = place.model(torch.nn.Conv2d(3, 4, 3))
    assert model.weight.is_contiguous(memory_format=torch.channels_last)
    x = place.batch(torch.arange(2 * 3 * 5 * 6, dtype=torch.float32).reshape(2, 3, 5, 6))
    assert x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
    assert x[1, 2, 4, 5] == 2 * 3 * 5 * 6 - 1  # same values, another layout
    y = place.target(torch.zeros(2, 5, 6, dtype=torch.int64))
    assert y.is_contiguous() and y.device.type == "cpu"


def test_3d_and_1d_batches():
    x3 = device.placement(CPU, 3, True).batch(torch.zeros(1, 2, 3, 4, 5))
    assert x3.is_contiguous(memory_format=torch.channels_last_3d) and not x3.is_contiguous()
    x1 = device.placement(CPU, 1, True).batch(torch.zeros(2, 3, 7))
    assert x1.is_contiguous()


def test_progress_stops_the_live_display_after_an_error():
    with pytest.raises(RuntimeError), console.progress() as reporter:
        reporter.task("work", total=3).advance(1)
        assert reporter._progress.live.is_started
        raise RuntimeError("boom")
    assert not reporter._progress.live.is_started


def test_progress_is_silent_on_other_ranks(monkeypatch):
    monkeypatch.setenv("RANK", "1")
    with console.progress() as reporter:
        assert reporter is SILENT


def test_batch_size_from_free_memory():
    from geocnn.device import batch_for_memory

    gib, mib = 1 << 30, 1 << 20
    assert batch_for_memory(8 * gib, 100 * mib, 16) == 40  # half of 8 GiB = 4096 MiB / 100 MiB
    assert batch_for_memory(8 * gib, 100 * mib, 16, fraction=0.25) == 20
    assert batch_for_memory(64 * mib, 100 * mib, 16) == 1  # never below one window
    assert batch_for_memory(140 * gib, 1 * mib, 16) == 256  # never above the cap
    assert batch_for_memory(None, 100 * mib, 16) == 16  # CPU / MPS: the configured size stands


def test_cpu_buffers_are_plain_and_copies_back_are_views():
    import torch

    from geocnn.device import free_memory, host_buffer, setup, to_host

    rt = setup("cpu")
    buf = host_buffer((3, 4), torch.float32, rt)
    assert buf.shape == (3, 4) and not buf.is_pinned()
    t = torch.arange(6.0)
    host = to_host(t)
    host[0] = 7.0
    assert t[0] == 7.0  # the CPU tensor's own memory: no copy
    assert free_memory(rt) is None


@pytest.mark.parametrize(("flags", "amp", "cpu_bf16", "expected"), [
    ("fpu avx512f avx512_bf16", "auto", True, None),             # fp32 by default, bf16 dot products or not
    ("fpu avx512f avx512_bf16", "bf16", True, torch.bfloat16),   # asked for: train.amp / --precision bf16
    ("fpu avx2", "bf16", True, torch.bfloat16),                  # asked for without the feature: given (slow)
    ("fpu avx512f avx512_bf16", "bf16", False, None),            # a prediction following train.amp: fp32
    ("fpu avx512f avx512_bf16", "fp16", True, None),             # fp16 is for CUDA
    ("fpu avx512f avx512_bf16", "fp32", True, None),
])
def test_cpu_precision_is_fp32_unless_bf16_is_asked_for(flags, amp, cpu_bf16, expected, monkeypatch):
    monkeypatch.setattr(machine, "cpu_flags", lambda: frozenset(flags.split()))
    rt = device.setup("cpu", amp, cpu_bf16=cpu_bf16)
    assert rt.amp_dtype is expected
    assert rt.describe().endswith("bf16 autocast" if expected is torch.bfloat16 else "fp32")


def test_the_cpus_bf16_feature_is_read_from_its_flags(monkeypatch):
    monkeypatch.setattr(machine, "cpu_flags", lambda: frozenset({"avx512f", "amx_bf16", "amx_tile"}))
    assert machine.cpu_bf16() == "amx_bf16"
    monkeypatch.setattr(machine, "cpu_flags", lambda: frozenset({"avx2", "fma"}))
    assert machine.cpu_bf16() is None


@pytest.mark.parametrize(("amp", "said"), [("bf16", "bf16 autocast"), ("auto", "fp32")])
def test_a_cpu_training_run_says_and_records_its_precision(amp, said, monkeypatch, tmp_path, caplog):
    monkeypatch.setattr(machine, "cpu_flags", lambda: frozenset({"avx512f", "avx512_bf16"}))
    cfg = trainkit.regression_config(tmp_path, max_steps=2, amp=amp, device="cpu")
    with caplog.at_level(logging.INFO, logger="geocnn.runs.writer"):
        run = train(load_config(cfg), tmp_path / "run")
    assert any(r.getMessage().startswith("device: cpu") and r.getMessage().endswith(said) for r in caplog.records)
    assert yaml.safe_load((run / "config.yaml").read_text())["train"]["amp"] == amp
