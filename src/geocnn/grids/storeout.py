"""Outputs as Zarr stores: an MDIO v1 dataset (``.mdio``) or a plain Zarr array (``.zarr``), written in chunks.

The same prepare -> write -> commit/abort protocol as :class:`geocnn.grids.writer.PendingOutput`:

1. :func:`prepare` (one process) creates the whole dataset — metadata, coordinates, trace mask, an
   empty data array — as a temporary sibling folder (``.pred.tmp-1a2b3c4d.mdio``) marked
   ``geocnn_state: writing``;
2. every process opens it and writes its windows. Chunks along the first axis are
   :attr:`StoreOutput.row_block` rows, and torchrun ranks take rows in multiples of that, so each
   process writes its own chunk files: no locks, no shared-file step;
3. :meth:`StoreOutput.commit` (one process, after a barrier) marks the dataset complete and renames
   the folder into place (an existing one is replaced only with ``force``); :meth:`StoreOutput.abort`
   removes it. A killed run leaves only a hidden temporary folder marked ``writing``, which
   :mod:`geocnn.grids.stores` refuses to read.

Object-store URLs (``s3://...``) cannot be renamed: they are written in place, and only the
``writing`` -> ``complete`` marker (written last) says the dataset is whole.

The MDIO layout follows MDIO v1 (what ``mdio.open_mdio`` and xarray read): dimension coordinate
arrays (``inline``, ``crossline``, ``offset``, ``time`` or ``cdp``), ``trace_mask``, and the data
variable ``prediction`` named by ``attributes.defaultVariableName``; the plain Zarr output is one
array whose attributes are the ``.npy`` sidecar's. Files are created with the user's umask.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import os
import secrets
import shutil
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np

from geocnn import atomic
from geocnn.errors import DataError, OutputExistsError
from geocnn.grids.formats import is_url
from geocnn.grids.grid import Grid
from geocnn.grids.sidecar import make as make_sidecar
from geocnn.grids.stores import MASK, STATE, open_store, require

log = logging.getLogger(__name__)

VARIABLE = "prediction"
CHUNK = 128  # chunk length along axes other than the first (MDIO's post-stack default)
MAX_ROW_BLOCK = 64
RANK_BLOCKS = 8  # at least this many row blocks when the grid allows: up to 8 processes share the writing
# geocnn axis -> MDIO dimension name
MDIO_DIMS = {"sample": "time", "trace": "cdp"}


def fit_window(shape: tuple[int, ...], channels: int, window: tuple[slice, ...],
               values: np.ndarray) -> tuple[tuple[slice, ...], np.ndarray]:
    """A write's window clipped to the output ``shape`` and its values as (channels, *window sizes)
    (one channel may come without its axis); ValueError when they do not fit. Every writer checks here."""
    if len(window) != len(shape):
        raise ValueError(f"window has {len(window)} slices for an output of {len(shape)} axes")
    window = tuple(slice(*s.indices(n)[:2]) for s, n in zip(window, shape))
    sizes = tuple(max(s.stop - s.start, 0) for s in window)
    values = np.asarray(values)
    if values.shape == sizes and channels == 1:
        values = values[None]
    if values.shape != (channels, *sizes):
        raise ValueError(f"values shaped {values.shape} for a window of {sizes} with {channels} channels")
    return window, values


def row_block(rows: int) -> int:
    """Chunk rows along the first axis: ≤ 64, small enough that ≥ 8 processes get rows of their own."""
    return max(1, min(MAX_ROW_BLOCK, -(-rows // RANK_BLOCKS)))


@dataclass(frozen=True, eq=False)
class StoreOutput:
    """A store being written (see the module docstring); small and picklable, like ``PendingOutput``."""

    path: str
    tmp: str  # the temporary sibling folder, or the final URL (object stores)
    kind: str  # mdio | zarr
    axes: tuple[str, ...]
    shape: tuple[int, ...]
    channels: int
    dtype: str
    force: bool = False
    variable: str | None = None  # array inside the group (MDIO); None: the store is the array
    row_block: int = 1
    sidecar: dict = field(default_factory=dict)

    def open(self) -> StoreWriter:
        """A writer for this output, usable in any process (each writes only its own chunks)."""
        if not is_url(self.tmp) and not Path(self.tmp).exists():
            raise DataError("temporary output is gone (committed, aborted or removed)", where=self.tmp)
        return StoreWriter(self)

    def _root(self) -> Any:
        return open_store(self.tmp, mode="r+")

    def commit(self) -> Path:
        """Mark the dataset complete (last write) and rename it into place."""
        if is_url(self.tmp):
            self._root().attrs[STATE] = "complete"
            log.info("wrote %s", self.path)
            return Path(self.path)
        final = atomic.check_new(self.path, self.force)
        self._root().attrs[STATE] = "complete"
        move_into_place(Path(self.tmp), final, self.force)
        log.info("wrote %s", final)
        return final

    def abort(self) -> None:
        """Remove the temporary dataset; the final path is untouched."""
        if is_url(self.tmp):
            log.warning("%s: left marked '%s: writing' (an object store cannot rename)", self.tmp, STATE)
            return
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(self.tmp)


class StoreWriter:
    """Writes windows of values (``(channels, *window)``, or the window's shape for one channel)."""

    def __init__(self, pending: StoreOutput) -> None:
        self.pending = pending
        root = pending._root()
        self.array = root if pending.variable is None else root[pending.variable]

    def __enter__(self) -> StoreWriter:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        return None  # every write went to its chunks already

    def write(self, window: tuple[slice, ...], values: np.ndarray) -> None:
        p = self.pending
        window, values = fit_window(p.shape, p.channels, window, values)
        if p.channels == 1:
            self.array[window] = values[0].astype(p.dtype, copy=False)
        else:
            self.array[(slice(None), *window)] = values.astype(p.dtype, copy=False)


def sibling(final: Path, what: str) -> Path:
    """A hidden, unused name beside ``final`` that keeps its suffix (``.pred.tmp-1a2b3c4d.mdio``)."""
    while True:
        candidate = final.parent / f".{final.stem}.{what}-{secrets.token_hex(4)}{final.suffix}"
        if not candidate.exists():
            return candidate


def move_into_place(tmp: Path, final: Path, force: bool) -> Path:
    """Rename the finished folder ``tmp`` onto ``final``; an existing one (``force``) is moved aside
    first and removed after, so a reader sees the old dataset or the new one, never a mixture."""
    atomic.check_new(final, force)
    old = None
    if final.exists():
        old = sibling(final, "old")
        os.replace(final, old)
    os.replace(tmp, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return final


def new_file_mode() -> int:
    """The mode a new file gets under the user's umask (``0o666 & ~umask``)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _make_folder(final: Path) -> Path:
    """The temporary sibling folder, created with the user's umask (mkdtemp would make it private)."""
    final.parent.mkdir(parents=True, exist_ok=True)
    while True:
        tmp = sibling(final, "tmp")
        try:
            os.mkdir(tmp, 0o777)
            return tmp
        except FileExistsError:
            continue


def prepare(out: str | os.PathLike, like: Grid, kind: str, shape: tuple[int, ...], channels: int, dtype: str,
            force: bool, *, sample_interval_us: float | None, sample_start_ms: float | None,
            channel_names: tuple[str, ...] | None, extra: dict, attach: str | None) -> StoreOutput:
    """Create the output store beside ``out`` (or describe the one ``attach`` names); see the module docstring."""
    zarr = require()
    target = os.fspath(out)
    url = is_url(target)
    if attach is None and not url:
        atomic.check_new(target, force)
    axes = like.axes if channels == 1 else ("channel", *like.axes)
    stored = shape if channels == 1 else (channels, *shape)
    m = like.meta
    interval = sample_interval_us if sample_interval_us is not None else m.sample_interval_us
    start = sample_start_ms if sample_start_ms is not None else m.sample_start_ms
    names = list(channel_names) if channel_names else [f"channel {c}" for c in range(channels)]
    side = make_sidecar(axes=axes, shape=stored, dtype=dtype, channel_names=names, sample_interval_us=interval,
                        sample_start_ms=start, kind=m.kind, sources=list(like.sources), ilines=m.ilines,
                        xlines=m.xlines, offsets=m.offsets, extra=extra)
    block = row_block(shape[0])
    pending = StoreOutput(target, "", kind, like.axes, tuple(shape), channels, str(np.dtype(dtype)), force,
                          VARIABLE if kind == "mdio" else None, block, side)
    if attach is not None:
        return _with_tmp(pending, attach)
    if url:
        tmp = target
        if not force and _exists(zarr, target):
            raise OutputExistsError("output already exists", where=target,
                                    fix="choose another path or pass --force to replace it")
    else:
        tmp = str(_make_folder(Path(target)))
    pending = _with_tmp(pending, tmp)
    chunks = ((1,) if channels > 1 else ()) + (block, *(min(n, CHUNK) for n in shape[1:]))
    try:
        if kind == "mdio":
            _create_mdio(zarr, tmp, like, pending, stored, chunks, interval, start)
        else:
            array = zarr.create_array(store=tmp, shape=stored, chunks=chunks, dtype=pending.dtype, fill_value=0,
                                      dimension_names=axes, overwrite=True)
            array.attrs.update({**_plain(side), STATE: "writing"})
    except BaseException:
        pending.abort()
        raise
    return pending


def _with_tmp(pending: StoreOutput, tmp: str) -> StoreOutput:
    fields = {**pending.__dict__, "tmp": tmp}
    return StoreOutput(**fields)


def _exists(zarr: Any, url: str) -> bool:
    try:
        zarr.open(store=url, mode="r")
        return True
    except (FileNotFoundError, KeyError, ValueError):
        return False


def _plain(obj: Any) -> Any:
    """JSON-ready copy (NumPy scalars -> Python numbers) for Zarr attributes."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def _coordinate(like: Grid, axis: str, n: int, interval: float | None, start: float) -> np.ndarray:
    """Numbers along one output axis: the survey's when they line up, positions otherwise."""
    m = like.meta
    known = {"inline": m.ilines, "crossline": m.xlines, "offset": m.offsets}.get(axis)
    if known is not None and len(known) == n:
        return np.asarray(known)
    if axis == "sample" and interval and n == like.shape[-1]:
        times = start + np.arange(n) * interval / 1000.0
        return times.astype(np.int32) if np.all(times == np.round(times)) else times
    return np.arange(n, dtype=np.int32)


def _create_mdio(zarr: Any, tmp: str, like: Grid, pending: StoreOutput, stored: tuple[int, ...],
                 chunks: tuple[int, ...], interval: float | None, start: float) -> None:
    """An MDIO v1 group: dimension coordinates, trace mask, the (empty) data variable."""
    dims = tuple(MDIO_DIMS.get(a, a) for a in like.axes)
    root = zarr.open_group(store=tmp, mode="w")
    for axis, dim, n in zip(like.axes, dims, pending.shape):
        values = _coordinate(like, axis, n, interval, start)
        root.create_array(dim, data=values, dimension_names=(dim,))
    live = like.live() if pending.shape[:-1] == like.shape[:-1] else None
    mask = np.ones(pending.shape[:-1], bool) if live is None else np.asarray(live, bool)
    root.create_array(MASK, data=mask, dimension_names=dims[:-1])
    data = root.create_array(VARIABLE, shape=stored, chunks=chunks, dtype=pending.dtype, fill_value=0,
                             dimension_names=(("channel",) if pending.channels > 1 else ()) + dims)
    data.attrs.update(_plain(pending.sidecar))  # channel names, sample axis: read back like a .npy sidecar
    try:
        api = version("multidimio")
    except PackageNotFoundError:  # the package is optional: claim the v1 layout without it
        api = "1.0.0"
    root.attrs.update({
        "apiVersion": api, "name": "geocnn", STATE: "writing",
        "createdOn": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        "attributes": {"defaultVariableName": VARIABLE, "surveyType": "3D" if "inline" in like.axes else "2D",
                       "gatherType": "prestack" if "offset" in like.axes else "stacked",
                       "geocnn": _plain(pending.sidecar)},
    })
