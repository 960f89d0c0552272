"""Every value a run will read is finite: streamed over each file once, remembered per file.

A single NaN or inf in an input makes the loss NaN at the first patch that touches it, and the
run then blames the learning rate. Sampling traces misses a single bad trace, so every value is
read: a block of first-axis rows at a time (about :data:`BLOCK_VALUES` floats in memory,
whatever the file size), as float32 — exactly what training reads (a float64 value too big for
float32 is caught too). The verdict is stored in the cache folder under the same key as the
decoded cache (path, size, modification time, reading options), so the next run on an unchanged
file does not read it again. Integer samples cannot be NaN and are not read.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from geocnn import atomic
from geocnn.errors import DataError
from geocnn.grids.cache import cache_dir, file_key
from geocnn.grids.grid import Grid
from geocnn.grids.sources import Source

log = logging.getLogger(__name__)

BLOCK_VALUES = 4 << 20  # float32 values read at a time (16 MiB)
INTEGER_FORMATS = ("int", "uint", "bool")


def check_finite(grid: Grid, what: str = "inputs") -> None:
    """Raise a DataError naming the first file of ``grid`` holding NaN or inf (count and first position)."""
    for source in grid.inputs:
        found = finite_record(source)
        if found["bad"]:
            raise DataError(f"{what} contain NaN or inf: {found['bad']:,} value(s), the first at "
                            f"{_position(source, found['first'])}", where=source.path,
                            fix="clean the data (replace NaN/inf) before training")


def finite_record(source: Source) -> dict:
    """``{"bad": count, "first": [index per axis] | None}`` for one file, from the record or a scan."""
    if source.meta.sample_format.startswith(INTEGER_FORMATS):
        return {"bad": 0, "first": None}
    path = record_path(source)
    known = _read(path)
    if known is not None:
        return known
    found = scan(source)
    try:
        atomic.write_json(path, found, force=True)
    except OSError as exc:  # an unwritable cache folder costs a rescan next time, nothing more
        log.debug("cannot record the finiteness check of %s in %s (%s)", source.path, path, exc)
    return found


def record_path(source: Source) -> Path:
    """Where the verdict on ``source``'s file is kept (the key changes when the file does)."""
    return cache_dir() / "checks" / f"{Path(source.path).resolve().stem}-{file_key(source.spec)}.json"


def scan(source: Source, block_values: int = BLOCK_VALUES) -> dict:
    """Count non-finite values of a whole file and find the first, a block of rows at a time."""
    shape = source.shape
    rows = max(1, block_values // max(1, int(np.prod(shape[1:], dtype=np.int64))))
    bad, first = 0, None
    try:
        for start in range(0, shape[0], rows):
            window = (slice(start, min(start + rows, shape[0])), *(slice(0, n) for n in shape[1:]))
            finite = np.isfinite(source.read(window))
            n = finite.size - int(np.count_nonzero(finite))
            if n and first is None:
                index = np.unravel_index(int(np.argmin(finite)), finite.shape)
                first = [int(index[0]) + start, *(int(i) for i in index[1:])]
            bad += n
            source.release()  # what this block mapped leaves memory with it
    finally:
        source.release()
    return {"bad": bad, "first": first}


def _position(source: Source, index: list[int]) -> str:
    """``inline 103, crossline 20, sample 17`` (survey numbers where the file has them)."""
    numbers = {"inline": source.meta.ilines, "crossline": source.meta.xlines, "offset": source.meta.offsets}
    parts = []
    for axis, i in zip(source.axes, index):
        values = numbers.get(axis)
        parts.append(f"{axis} {values[i]}" if values is not None else f"{axis} index {i}")
    return ", ".join(parts)


def _read(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    ok = isinstance(data, dict) and isinstance(data.get("bad"), int)
    return data if ok else None
