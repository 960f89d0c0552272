"""Device, precision and process setup, written once and shared by train and predict.

- ``--device auto`` picks CUDA, then Apple MPS, then the CPU, and says which.
- On CUDA: bf16 autocast where the GPU supports it, else fp16 with a gradient scaler.
- Training on the CPU: fp32 by default; bf16 autocast on request (``train.amp: bf16``). On an AMD
  EPYC with ``avx512_bf16`` (``benchmarks/cpu_training.py``, 300 interleaved steps, seed 0) bf16
  made the denoiser's step 1.8× faster with the same final loss, but the fault U-Net's step only
  1.07× (interquartile 0.95–1.17) with a final loss 9 % above fp32's: a default per CPU feature
  would slow or change one of the two, so none is made. Prediction on the CPU is fp32 unless
  ``predict.precision``/``--precision`` asks for bf16: its engines agree to 1e-4 in fp32, and bf16
  runs a plain conv stack about twice as fast there but moves the scores by up to ~1 % of their
  scale (``docs/predict.md`` has the figures).
- On the CPU: glibc's allocator is told to keep large buffers (otherwise every conv output of
  32 MiB or more is a fresh mmap, page-faulted on every call — measured 2.5× slower convs
  here), and 2D/3D convs use the channels-last layout that oneDNN runs fastest.
- Under ``torchrun``: one process per device, DistributedDataParallel over gloo (CPU) or NCCL.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import logging
import os
import sys
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist

from geocnn import machine

log = logging.getLogger(__name__)

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_allocator_tuned = False


def tune_allocator() -> bool:
    """Keep freed large buffers in glibc's heap instead of returning them to the OS every time.

    Same effect as ``MALLOC_MMAP_THRESHOLD_=1073741824 MALLOC_TRIM_THRESHOLD_=2147483648``. Only on
    glibc Linux; set ``GEOCNN_MALLOC=default`` to leave the allocator alone. Returns True when set.
    """
    global _allocator_tuned
    if _allocator_tuned:
        return True
    if os.environ.get("GEOCNN_MALLOC") == "default" or not sys.platform.startswith("linux"):
        return False
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        ok = libc.mallopt(_M_MMAP_THRESHOLD, 1 << 30) == 1 and libc.mallopt(_M_TRIM_THRESHOLD, 2 << 30) == 1
    except (OSError, AttributeError):
        return False
    _allocator_tuned = ok
    return ok


@dataclass
class Runtime:
    """Where and how the model runs: device, precision, process rank."""

    device: torch.device
    amp_dtype: torch.dtype | None
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def autocast(self):
        """Mixed-precision context (a no-op without AMP)."""
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)

    def grad_scaler(self) -> torch.amp.GradScaler:
        """A scaler that is enabled only for fp16 (bf16 and fp32 need none)."""
        return torch.amp.GradScaler(self.device.type, enabled=self.amp_dtype == torch.float16)

    def describe(self) -> str:
        name = str(self.device)
        if self.device.type == "cuda":
            name += f" ({torch.cuda.get_device_name(self.device)})"
        elif self.device.type == "cpu":
            name += f" ({torch.get_num_threads()} threads)"
        amp = {None: "fp32", torch.bfloat16: "bf16 autocast", torch.float16: "fp16 autocast + grad scaler"}
        procs = f", {self.world_size} processes" if self.distributed else ""
        return f"{name}, {amp[self.amp_dtype]}{procs}"


def _pick(name: str, local_rank: int) -> torch.device:
    from geocnn.errors import ConfigError

    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", local_rank % max(torch.cuda.device_count(), 1))
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError("--device cuda, but PyTorch sees no CUDA GPU",
                              fix="use --device auto or cpu (or install a CUDA build of torch)")
        return torch.device("cuda", local_rank % torch.cuda.device_count())
    if name == "mps":
        if not (getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()):
            raise ConfigError("--device mps, but MPS is not available", fix="use --device auto or cpu")
        return torch.device("mps")
    return torch.device("cpu")


def _amp_dtype(device: torch.device, amp: str, cpu_bf16: bool) -> torch.dtype | None:
    if amp == "fp32" or device.type == "mps":
        return None
    if device.type == "cpu":  # bf16 only when asked for (see the module's docstring), and where it is fast
        if cpu_bf16 and amp == "bf16":
            if machine.cpu_bf16() is None:
                log.warning("bf16 on a CPU without bf16 dot products (%s): autocast runs, slowly",
                            " or ".join(machine.BF16_FEATURES))
            return torch.bfloat16
        return None
    if amp == "fp16":
        return torch.float16
    if amp == "bf16" or torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float16


def prediction_amp(precision: str, train_amp: str) -> tuple[str, bool]:
    """``setup``'s ``amp`` and ``cpu_bf16`` for a prediction at ``precision`` (``predict.precision``):
    ``auto`` follows the run's ``train.amp`` (CUDA's mixed precision; fp32 on the CPU, where the
    engines agree to 1e-4), ``fp32`` and ``bf16`` hold on every device."""
    if precision == "auto":
        return train_amp, False
    return precision, precision == "bf16"


def set_threads(threads: int | None) -> None:
    """Use ``threads`` CPU threads for torch's operators (None: leave torch's default, one per core).

    On a machine shared with other jobs, one thread per core oversubscribes the cores and every
    convolution waits on the slowest thread. OMP_NUM_THREADS/MKL_NUM_THREADS are set too, so
    processes started from here (spawned DataLoader workers, tools) use the same number.
    """
    if threads is None:
        return
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(threads)
    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(threads)  # only allowed before the first parallel work
    except RuntimeError:
        log.debug("inter-op threads already in use; left at %d", torch.get_num_interop_threads())


def setup(device: str = "auto", amp: str = "auto", threads: int | None = None, cpu_bf16: bool = False) -> Runtime:
    """Pick the device (joining the torchrun process group when there is one), precision and threads.

    ``cpu_bf16``: ``amp`` bf16 means bf16 autocast on the CPU too (what ``train.amp: bf16`` and
    ``--precision bf16`` ask for); without it the CPU runs fp32 whatever ``amp`` says (a prediction
    that follows the run's ``train.amp``)."""
    set_threads(threads)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    dev = _pick(device, local)
    if dev.type == "cpu":
        tune_allocator()
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
    return Runtime(dev, _amp_dtype(dev, amp, cpu_bf16), rank, world, local)


def teardown(rt: Runtime) -> None:
    if rt.distributed and dist.is_initialized():
        dist.destroy_process_group()


def use_channels_last(rt: Runtime, dims: int, setting: str | bool) -> bool:
    """channels_last for 2D/3D convs: faster with oneDNN on CPU and with cuDNN tensor cores."""
    if dims == 1 or setting is False:
        return False
    return setting is True or rt.device.type != "mps"


def memory_format(dims: int) -> torch.memory_format:
    return torch.channels_last if dims == 2 else torch.channels_last_3d


@dataclass(frozen=True)
class Placement:
    """Where the model and its batches live and in which memory layout — decided once, by
    :func:`placement`, and applied the same way by training and prediction."""

    device: torch.device
    channels_last: bool
    dims: int

    def model(self, model: torch.nn.Module) -> torch.nn.Module:
        """The model on the device, its conv weights in the batches' layout."""
        if self.channels_last:
            model = model.to(memory_format=memory_format(self.dims))
        return model.to(self.device)

    def batch(self, x: torch.Tensor, pin: bool = False) -> torch.Tensor:
        """(B, C, *spatial) inputs on the device, copied without blocking the host; ``pin`` first
        page-locks a CPU tensor (a DataLoader with ``pin_memory`` has done that already)."""
        if pin and self.device.type == "cuda":
            x = x.pin_memory()
        x = x.to(self.device, non_blocking=True)
        if self.channels_last and x.ndim in (4, 5):
            x = x.contiguous(memory_format=memory_format(x.ndim - 2))
        return x

    def target(self, y: torch.Tensor) -> torch.Tensor:
        """Targets on the device (their layout does not matter: losses index them directly)."""
        return y.to(self.device, non_blocking=True)


def placement(rt: Runtime, dims: int, channels_last: str | bool) -> Placement:
    """The placement for a ``dims``-D model under the config's ``train.channels_last`` setting."""
    return Placement(rt.device, use_channels_last(rt, dims, channels_last), dims)


def barrier(rt: Runtime) -> None:
    if rt.distributed:
        dist.barrier()


def all_reduce_(tensor: torch.Tensor, rt: Runtime) -> torch.Tensor:
    """Sum a tensor over processes in place (no-op in a single process)."""
    if rt.distributed:
        dist.all_reduce(tensor)
    return tensor


# ----------------------------------------------------------------------------- host <-> device

def host_buffer(shape: tuple[int, ...], dtype: torch.dtype, rt: Runtime) -> torch.Tensor:
    """An empty host tensor to stage a copy to the device: page-locked on CUDA (so the copy can
    run without blocking the host, from torch's caching host allocator), plain memory elsewhere."""
    return torch.empty(shape, dtype=dtype, pin_memory=rt.device.type == "cuda")


def to_host(t: torch.Tensor) -> np.ndarray:
    """A device tensor as a NumPy array: through a pinned buffer on CUDA (one synchronising
    copy), the tensor's own memory on the CPU (no copy)."""
    if t.device.type != "cuda":
        return t.numpy()
    host = torch.empty(t.shape, dtype=t.dtype, pin_memory=True)
    host.copy_(t, non_blocking=True)
    torch.cuda.current_stream(t.device).synchronize()
    return host.numpy()


def free_memory(rt: Runtime) -> int | None:
    """Free bytes on a CUDA device (``torch.cuda.mem_get_info``); None elsewhere."""
    if rt.device.type != "cuda":
        return None
    return int(torch.cuda.mem_get_info(rt.device)[0])


def batch_for_memory(free: int | None, per_item: int, fallback: int, fraction: float = 0.5,
                     most: int = 256) -> int:
    """Items per batch that fit ``fraction`` of ``free`` device bytes at ``per_item`` bytes each
    (peak of one item's forward pass), between 1 and ``most``; ``fallback`` when the free memory
    is unknown (CPU, MPS): there the configured batch size stands.

    >>> batch_for_memory(8 << 30, 100 << 20, 16)     # half of 8 GiB at 100 MiB an item
    40
    """
    if free is None or per_item <= 0:
        return fallback
    return max(1, min(most, int(free * fraction) // per_item))
