"""Will the network fit? Memory from the analytic records, checked before any module is built.

A conv with ``out: 1e9`` is valid YAML and the shape walk handles it (parameters are numbers
there), but ``nn.Conv2d`` would try to allocate it. Parameters, gradients, optimizer moments and
the activations kept for the backward pass are all known from the records, so the build can be
refused with the layer named instead of dying in torch's allocator.
"""

from __future__ import annotations

import os
import resource

import torch

from geocnn import machine
from geocnn.errors import ConfigError
from geocnn.model.shapes import Inference, LayerRecord

BYTES_PER_VALUE = 4  # float32
TRAINING_COPIES = 4  # weights, gradients and Adam's two moments


def _gib(n: int) -> str:
    return f"{n / 2**30:,.1f} GiB"


def _address_space_left() -> int | None:
    """Room left under ``ulimit -v`` (RLIMIT_AS), which a batch system may set below the RAM."""
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft == resource.RLIM_INFINITY:
        return None
    try:
        with open("/proc/self/statm", encoding="ascii") as f:
            used = int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        used = 0
    return max(soft - used, 0)


def available_bytes(device: torch.device | str | None = None) -> int | None:
    """Memory the process can still use on ``device`` (None: unknown, nothing is refused)."""
    dev = torch.device(device) if device is not None else torch.device("cpu")
    if dev.type == "cuda":
        free, _ = torch.cuda.mem_get_info(dev)
        return free
    limits = [n for n in (machine.host_available_bytes(), _address_space_left()) if n is not None]
    return min(limits) if limits else None


def _largest(records: list[LayerRecord], key) -> LayerRecord:
    return max(records, key=key)


def needed_bytes(inf: Inference, batch: int, training: bool) -> tuple[int, int]:
    """(parameter bytes, activation bytes) of one step with ``batch`` patches."""
    params = sum(r.params for r in inf.records) * BYTES_PER_VALUE * (TRAINING_COPIES if training else 1)
    acts = batch * sum(r.numel for r in inf.records if r.new_tensor) * BYTES_PER_VALUE * (2 if training else 1)
    return params, acts


def check_fits(inf: Inference, batch: int = 1, device: torch.device | str | None = None,
               training: bool = False) -> None:
    """Refuse a network whose parameters and activations exceed what ``device`` has free.

    Raises :class:`ConfigError` naming the layer with the most parameters or the largest output,
    whichever dominates, with its YAML position.
    """
    params, acts = needed_bytes(inf, batch, training)
    have = available_bytes(device)
    if have is None or params + acts <= have or not inf.records:
        return
    if params >= acts:
        r = _largest(inf.records, lambda r: r.params)
        culprit = f"layer {r.index} '{r.name}' {r.kind} has {r.params:,} parameters"
    else:
        r = _largest([r for r in inf.records if r.new_tensor] or inf.records, lambda r: r.numel)
        culprit = f"layer {r.index} '{r.name}' {r.kind} outputs {r.numel:,} values per patch"
    what = "training" if training else "the model"
    dev = torch.device(device).type if device is not None else "cpu"
    raise ConfigError(f"{what} needs ≈ {_gib(params + acts)} ({_gib(params)} parameters"
                      f"{', gradients and Adam moments' if training else ''}, {_gib(acts)} activations for "
                      f"batch {batch}) but {dev} memory has {_gib(have)} free; {culprit}", where=r.where,
                      fix="use fewer channels or smaller kernels there, a smaller patch or a smaller batch_size")
