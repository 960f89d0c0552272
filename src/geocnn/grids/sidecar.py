"""The JSON sidecar beside a geocnn ``.npy`` output: what a bare array cannot say about itself.

``out.npy`` gets ``out.json`` with its axis names, shape, dtype, channel names, sample interval and
start, the source files and their inline/crossline/offset number ranges, the spacing of each axis
(``{"z": {"value": 2.5, "unit": "µm"}}``, as ``geocnn inspect`` and a score map's sidecar say it: a TIFF stack's voxel size, a GeoTIFF's pixel size) and, for an array made from
a GeoTIFF, its ``georef`` (CRS as WKT and the affine transform). Reading the ``.npy`` back as an input
(:mod:`geocnn.grids.sources`) takes axes, channel names, the sample axis, the spacing and the
georeferencing from it (:func:`spacing_of`, :func:`georef_of`), so a prediction can be fed to the next
step, or converted back to a GeoTIFF or OME-TIFF, without restating them. A Zarr output's attributes are
the same record. Only JSON marked ``"geocnn": "grid"`` is trusted: a stranger's ``out.json`` is ignored.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from geocnn.grids.tiff import GeoRef

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


def geometry(spacing: dict[str, tuple[float, str]], georef: GeoRef | None) -> dict:
    """The sidecar entries that place an array: spacing per axis and, from a GeoTIFF, CRS and transform."""
    out: dict = {"spacing": {a: {"value": float(v), "unit": str(u)} for a, (v, u) in spacing.items()}}
    if georef is not None:
        out["georef"] = {"crs": georef.crs, "transform": [float(v) for v in georef.transform]}
    return out


def spacing_of(side: dict | None) -> dict[str, tuple[float, str]]:
    """The spacing a sidecar records (``{}`` without one, or when malformed)."""
    raw = (side or {}).get("spacing")
    if not isinstance(raw, dict):
        return {}
    return {str(a): (float(v["value"]), str(v.get("unit", ""))) for a, v in raw.items()
            if isinstance(v, dict) and isinstance(v.get("value"), (int, float)) and not isinstance(v["value"], bool)}


def georef_of(side: dict | None) -> GeoRef | None:
    """The GeoTIFF georeferencing a sidecar records (None without one). Dead pixels are not kept through
    an array (they read as 0), so the raster it describes has no mask."""
    raw = (side or {}).get("georef")
    if not isinstance(raw, dict):
        return None
    crs, transform = raw.get("crs"), raw.get("transform")
    if not (crs is None or isinstance(crs, str)) or not isinstance(transform, list) or len(transform) != 6 \
            or not all(isinstance(v, (int, float)) for v in transform):
        return None
    return GeoRef(crs, tuple(float(v) for v in transform), None, False)
