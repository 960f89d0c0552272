"""The JSON sidecar beside a geocnn ``.npy`` output: what a bare array cannot say about itself.

``out.npy`` gets ``out.json`` with its axis names, shape, dtype, channel names, sample interval and
start, the source files and their inline/crossline/offset number ranges. Reading the ``.npy``
back as an input (:mod:`geocnn.grids.sources`) takes axes, channel names and the sample axis from
it, so a prediction can be fed to the next step without restating them. Only JSON marked
``"geocnn": "grid"`` is trusted: a stranger's ``out.json`` is ignored.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

MARK = "grid"


def path_for(npy: str | os.PathLike) -> Path:
    """``out.npy`` -> ``out.json``."""
    return Path(npy).with_suffix(".json")


def number_range(values: np.ndarray | None) -> dict | None:
    """first/last/step/count of a number axis (step None when not evenly spaced)."""
    if values is None or len(values) == 0:
        return None
    v = np.asarray(values)
    steps = np.unique(np.diff(v))
    step = int(steps[0]) if len(steps) == 1 else None
    return {"first": int(v[0]), "last": int(v[-1]), "step": step, "count": int(len(v))}


def make(*, axes: tuple[str, ...], shape: tuple[int, ...], dtype: str, channel_names: list[str],
         sample_interval_us: float | None, sample_start_ms: float, kind: str, sources: list[str],
         ilines: np.ndarray | None, xlines: np.ndarray | None, offsets: np.ndarray | None,
         extra: dict | None = None) -> dict:
    """The sidecar of a stored array (``shape``/``axes`` as stored, channel axis included)."""
    return {
        "geocnn": MARK, "axes": list(axes), "shape": list(shape), "dtype": str(np.dtype(dtype)),
        "channel_names": list(channel_names), "sample_interval_us": sample_interval_us,
        "sample_start_ms": sample_start_ms, "kind": kind, "source": list(sources),
        "ilines": number_range(ilines), "xlines": number_range(xlines), "offsets": number_range(offsets),
        **(extra or {}),
    }


def read(npy: str | os.PathLike) -> dict | None:
    """The sidecar beside ``npy`` when there is a geocnn one (unreadable or foreign JSON: None)."""
    side = path_for(npy)
    if not side.is_file():
        return None
    try:
        data = json.loads(side.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("geocnn") == MARK else None
