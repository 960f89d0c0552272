"""What ``geocnn inspect`` shows: a JSON-able description of each input file.

Grids (SEG-Y, ``.npy``, ``.npz``) get format, geometry, number ranges and value statistics from a
bounded trace sample, and (seismic values, not labels) the noise correlation along every axis
measured from the data alone (:mod:`geocnn.classical.noisecorr`: what ``mask: auto`` reads); SEG-Y files also their binary header fields that matter, on request the
textual header and a header-byte scan (always when no geometry could be inferred, with the byte
pairs that would grid the file); netCDF/HDF5 files their variables, coordinates and attributes; ``.csv`` label files their rows and values. One file failing is
reported in its entry (``error``) and the others are still described.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import segyio

from geocnn.classical.noisecorr import measure_grid
from geocnn.errors import GeocnnError
from geocnn.grids import headers
from geocnn.grids.grid import Grid, open_grid, open_stack, stack_mismatch
from geocnn.grids.labels import read_labels
from geocnn.grids.netcdf import NetcdfSource, describe_file
from geocnn.grids.normalize import sample_traces
from geocnn.grids.sidecar import number_range
from geocnn.grids.sources import SegySource
from geocnn.grids.spec import InputSpec, as_spec

MAX_CLASSES_SHOWN = 20


def describe(grid: Grid, stats_traces: int = 200, seed: int = 0) -> dict:
    """A JSON-able description of a grid: format, shape, axes, ranges, value statistics."""
    m = grid.meta
    info: dict[str, Any] = {
        "path": grid.sources[0] if len(grid.sources) == 1 else list(grid.sources),
        "format": m.format,
        "kind": m.kind,
        "shape": list(grid.shape),
        "axes": list(grid.axes),
        "channels": grid.channels,
        "channel_names": list(grid.channel_names),
        "sample_interval_us": m.sample_interval_us,
        "sample_start_ms": m.sample_start_ms,
        "n_traces": m.n_traces,
        "dead_traces": m.dead_traces,
        "sample_format": m.sample_format,
        "endian": m.endian,
        "ilines": number_range(m.ilines),
        "xlines": number_range(m.xlines),
        "offsets": number_range(m.offsets),
        "spacing": {a: {"value": v, "unit": u} for a, (v, u) in grid.spacing().items()},
    }
    geometry = grid.inputs[0].geometry()
    if geometry:
        info["geometry"] = geometry
    values = sample_traces(grid, stats_traces, seed)
    if values.size:
        p1, p99 = np.percentile(values, [1, 99])
        info["stats"] = {"traces_sampled": int(values.shape[1]), "min": float(values.min()),
                         "max": float(values.max()), "mean": float(values.mean()),
                         "std": float(values.std()), "p1": float(p1), "p99": float(p99)}
    if m.format == "segy" or str(m.sample_format).startswith(("float", "ieee", "ibm")):  # not label grids
        noise = measure_grid(grid, seed=seed)
        if noise is not None:
            info["noise"] = {**noise.to_dict(), "text": noise.lines_text()}
    return info


def describe_segy(grid: Grid, info: dict, text: bool = False, scan: bool = False,
                  scan_traces: int = headers.MAX_SCAN_TRACES) -> dict:
    """Add a SEG-Y file's binary header (and textual header, header scan) to ``info``.

    The scan is added whenever no geometry could be inferred, with the byte pairs that would grid it
    (only then: a file that grids with the bytes in use gets no other suggestion).
    """
    source = grid.inputs[0]
    if not isinstance(source, SegySource):
        return info
    f_path, endian = str(source.file.path), source.file.layout.endian
    with segyio.open(f_path, "r", ignore_geometry=True, endian=endian) as f:
        info["binary_header"] = headers.binary_header(f)
        if text:
            info["textual_header"] = headers.textual_header(f)
        if scan or info["kind"] == "unstructured":
            result = headers.scan_headers(f, scan_traces)
            info["header_scan"] = result.to_dict()
            # a file that grids with the bytes in use needs no others: suggest only where it does not
            pairs = headers.grid_pairs(result, source.spec.offset) if info["kind"] == "unstructured" else []
            info["grid_pairs"] = [p.to_dict() for p in pairs]
    return info


def describe_netcdf(grid: Grid, info: dict) -> dict:
    """Add a netCDF/HDF5 input's variables, coordinates and attributes to ``info`` (its dead traces too:
    fill values are found by reading the variable once)."""
    source = grid.inputs[0]
    if isinstance(source, NetcdfSource):
        info["netcdf"] = describe_file(source)
        info["dead_traces"] = info["netcdf"].pop("dead_traces")
    return info


def describe_labels(path: str | os.PathLike) -> dict:
    """A ``.csv`` (or ``.npy``) label file: how many labels, their range, and class counts when whole."""
    values = read_labels(path)
    flat = np.asarray(values, dtype=np.float64).reshape(-1)
    info: dict[str, Any] = {"path": os.fspath(path), "format": Path(path).suffix.lower()[1:], "kind": "labels",
                            "shape": list(values.shape), "count": int(flat.size)}
    finite = flat[np.isfinite(flat)]
    info["non_finite"] = int(flat.size - finite.size)
    if finite.size:
        info["min"], info["max"] = float(finite.min()), float(finite.max())
        if np.all(finite == np.round(finite)):
            classes, counts = np.unique(finite.astype(np.int64), return_counts=True)
            if len(classes) <= MAX_CLASSES_SHOWN:
                info["classes"] = {str(c): int(n) for c, n in zip(classes, counts)}
    return info


def inspect_inputs(specs: Sequence[InputSpec | str | os.PathLike], stats_traces: int = 200,
                   stack: bool = False, *, text: bool = False, scan: bool = False,
                   scan_traces: int = headers.MAX_SCAN_TRACES) -> list[dict]:
    """Describe each input; with several, also say whether each stacks with the first readable one.

    A file that cannot be read gets ``{"path": ..., "error": message}`` and the others are still
    described. With ``stack``, the inputs are opened as one stacked grid, as training does (a
    geometry mismatch is then an error naming the file), and described together.
    """
    specs = [as_spec(s) for s in specs]
    if stack:
        return [describe(open_stack(specs), stats_traces)]
    out, grids = [], []
    for spec in specs:
        try:
            if Path(spec.path).suffix.lower() == ".csv" and spec.format == "auto":
                out.append(describe_labels(spec.path))
                continue
            grid = open_grid(spec)
            info = describe_netcdf(grid, describe(grid, stats_traces))
            out.append(describe_segy(grid, info, text, scan, scan_traces))
            grids.append((grid, out[-1]))
        except GeocnnError as exc:
            out.append({"path": spec.path, "error": exc.message})
    if len(grids) > 1:
        first = grids[0][0]
        for g, info in grids:
            problem = stack_mismatch(first, g)
            info["stackable"] = problem is None
            info["stack_problem"] = problem
    return out
