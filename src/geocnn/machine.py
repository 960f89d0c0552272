"""What this process may use of the machine, asked in one place by both sides of the house plan
(torch-free: :mod:`geocnn.grids` asks it too)."""

from __future__ import annotations

import os

from geocnn.errors import DataError
from geocnn.fmt import human_bytes

# An array handed back in memory (Grid.to_xarray, geocnn.predict without out=) may take this share
# of the memory the kernel says is available: the rest stays for the reader, the model and the user.
IN_MEMORY_SHARE = 0.5


def cpu_count() -> int:
    """CPUs this process may use (respects affinity masks and containers)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


# CPU features under which bf16 autocast is training's fast path on the CPU (benchmarks/cpu_training.py):
# bf16 dot products in the vector unit (AVX-512 BF16) or in tile units (AMX, whose CPUs have both flags).
BF16_FEATURES = ("avx512_bf16", "amx_bf16")


def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags (``/proc/cpuinfo``; empty where it cannot be read)."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as fh:
            line = next((ln for ln in fh if ln.startswith("flags")), "")
    except OSError:
        return frozenset()
    return frozenset(line.partition(":")[2].split())


def cpu_bf16() -> str | None:
    """The first of :data:`BF16_FEATURES` this CPU has, or None."""
    flags = cpu_flags()
    return next((f for f in BF16_FEATURES if f in flags), None)


def host_available_bytes() -> int | None:
    """Bytes the kernel says can be allocated without swapping (MemAvailable), else free pages;
    None when neither is known."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_in_memory(nbytes: int, what: str, max_bytes: int | None = None) -> None:
    """Refuse to hand back ``nbytes`` in memory when they pass ``max_bytes`` (default: a share of the
    available memory), before anything is allocated; the message names both sizes.

    Examples
    --------
    >>> check_in_memory(1000, "the grid", max_bytes=2000)
    >>> check_in_memory(3 * 2**30, "the grid (100 × 200 × 4000 float32)", max_bytes=2**30)
    Traceback (most recent call last):
    ...
    geocnn.errors.DataError: the grid (100 × 200 × 4000 float32) is 3.0 GiB, more than the 1.0 GiB allowed in memory — read a window, write it to a file (out=...), or raise max_bytes
    """
    limit = max_bytes
    if limit is None:
        available = host_available_bytes()
        limit = None if available is None else int(available * IN_MEMORY_SHARE)
    if limit is not None and nbytes > limit:
        raise DataError(f"{what} is {human_bytes(nbytes)}, more than the {human_bytes(limit)} allowed in memory",
                        fix="read a window, write it to a file (out=...), or raise max_bytes")
