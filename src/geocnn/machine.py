"""What this process may use of the machine, asked in one place by both sides of the house plan
(torch-free: :mod:`geocnn.grids` asks it too)."""

from __future__ import annotations

import os


def cpu_count() -> int:
    """CPUs this process may use (respects affinity masks and containers)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1
