"""Outputs as Zarr stores: an MDIO v1 dataset (``.mdio``) or a plain Zarr array (``.zarr``), written in chunks.

The prepare -> write -> commit/abort protocol of every output (:class:`geocnn.grids.pending.PendingOutput`):

1. :meth:`StoreOutput.prepare` (one process) creates the whole dataset — metadata, coordinates, trace mask, an
   empty data array — as a temporary sibling folder named like every temporary output
   (``.pred.geocnn-tmp-<host>-<pid>-<random>.mdio``, :func:`geocnn.atomic.temp_name`) and marked
   ``geocnn_state: writing``;
2. every process opens it and writes its windows. Chunks along the first axis are
   :attr:`StoreOutput.row_block` rows, and torchrun ranks take rows in multiples of that, so each
   process writes its own chunk files: no locks, no shared-file step;
3. :meth:`StoreOutput.commit` (one process, after a barrier) marks the dataset complete and renames
   the folder into place (an existing one is replaced only with ``force``); :meth:`StoreOutput.abort`
   removes it. A killed run leaves only a hidden temporary folder marked ``writing``, which
   :mod:`geocnn.grids.stores` refuses to read and the next output written to that folder removes
   (:func:`geocnn.atomic.clean_stale`).

Object-store URLs (``s3://...``) cannot be renamed: they are written in place, and only the
``writing`` -> ``complete`` marker (written last) says the dataset is whole.

The MDIO layout follows MDIO v1 (what ``mdio.open_mdio`` and xarray read): dimension coordinate
arrays (``inline``, ``crossline``, ``offset``, ``time`` or ``cdp``), ``trace_mask``, and the data
variable ``prediction`` named by ``attributes.defaultVariableName``; from a SEG-Y input also its trace
``headers``, ``cdp_x``/``cdp_y`` and ``segy_file_header`` as mdio's SEG-Y import holds them
(:mod:`geocnn.grids.mdioheaders`), so the output converts back to SEG-Y on its own; the plain Zarr output is one
array whose attributes are the ``.npy`` sidecar's. Files are created with the user's umask.
"""

from __future__ import annotations

import contextlib
import dataclasses
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
from geocnn.errors import OutputExistsError
from geocnn.grids.formats import is_url
from geocnn.grids.grid import Grid
from geocnn.grids.mdioheaders import COORDINATES, carry_headers
from geocnn.grids.pending import OutputSpec, SingleOutput, check_present, fit_window
from geocnn.grids.stores import MASK, STATE, open_store, require

log = logging.getLogger(__name__)

VARIABLE = "prediction"
CHUNK = 128  # chunk length along axes other than the first (MDIO's post-stack default)
MAX_ROW_BLOCK = 64
RANK_BLOCKS = 8  # at least this many row blocks when the grid allows: up to 8 processes share the writing
# geocnn axis -> MDIO dimension name
MDIO_DIMS = {"sample": "time", "trace": "cdp"}


def row_block(rows: int) -> int:
    """Chunk rows along the first axis: ≤ 64, small enough that ≥ 8 processes get rows of their own."""
    return max(1, min(MAX_ROW_BLOCK, -(-rows // RANK_BLOCKS)))


@dataclass(frozen=True, eq=False)
class StoreOutput(SingleOutput):
    """A store being written (see the module docstring); small and picklable, like every pending output.
    ``tmp`` is the temporary sibling folder, or the final URL (an object store is written in place)."""

    kind: str  # the format's name: mdio | zarr
    axes: tuple[str, ...]
    variable: str | None = None  # array inside the group (MDIO); None: the store is the array
    row_block: int = 1
    sidecar: dict = field(default_factory=dict)

    @classmethod
    def prepare(cls, spec: OutputSpec, attach: str | None = None) -> StoreOutput:
        """Create the output store beside ``spec.path`` (or describe the one ``attach`` names)."""
        zarr = require()
        target, kind = spec.path, spec.format.name
        url = is_url(target)
        if attach is None and not url:
            atomic.check_new(target, spec.force)
        pending = cls(target, attach or "", tuple(spec.shape), spec.channels, str(np.dtype(spec.dtype)), spec.force,
                      kind, spec.like.axes, VARIABLE if kind == "mdio" else None, row_block(spec.shape[0]),
                      spec.sidecar())
        if attach is not None:
            return pending
        if url and not spec.force and _exists(zarr, target):
            raise OutputExistsError("output already exists", where=target,
                                    fix="choose another path or pass --force to replace it")
        with atomic.writing(target):
            pending = dataclasses.replace(pending, tmp=target if url else str(make_folder(Path(target))))
            try:
                _create(zarr, pending, spec)
            except BaseException:
                pending.abort()
                raise
        return pending

    def _root(self) -> Any:
        return open_store(self.tmp, mode="r+")

    def write(self, window: tuple[slice, ...], values: np.ndarray) -> None:
        """Write ``values`` (``(channels, *window)``, or the window's shape for one channel) into their chunks."""
        if not is_url(self.tmp):
            check_present(self.tmp)
        window, values = fit_window(self.shape, self.channels, window, values)
        root = self._root()
        array = root if self.variable is None else root[self.variable]
        if self.channels == 1:
            array[window] = values[0].astype(self.dtype, copy=False)
        else:
            array[(slice(None), *window)] = values.astype(self.dtype, copy=False)

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


def make_folder(final: Path) -> Path:
    """The temporary sibling folder, created with the user's umask (mkdtemp would make it private),
    after removing those that dead geocnn processes left there."""
    atomic.check_folder(final.parent).mkdir(parents=True, exist_ok=True)
    atomic.clean_stale(final.parent)
    while True:
        tmp = atomic.temp_name(final)
        try:
            os.mkdir(tmp, 0o777)
            return tmp
        except FileExistsError:
            continue


def _create(zarr: Any, pending: StoreOutput, spec: OutputSpec) -> None:
    """The empty dataset in ``pending.tmp``: an MDIO group, or one plain Zarr array."""
    stored = spec.stored_shape
    chunks = ((1,) if spec.channels > 1 else ()) + (pending.row_block, *(min(n, CHUNK) for n in spec.shape[1:]))
    if pending.kind == "mdio":
        _create_mdio(zarr, pending.tmp, spec, pending, stored, chunks, spec.interval_us, spec.start_ms)
    else:
        array = zarr.create_array(store=pending.tmp, shape=stored, chunks=chunks, dtype=pending.dtype, fill_value=0,
                                  dimension_names=spec.axes, overwrite=True)
        array.attrs.update({**_plain(pending.sidecar), STATE: "writing"})


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


def _create_mdio(zarr: Any, tmp: str, spec: OutputSpec, pending: StoreOutput, stored: tuple[int, ...],
                 chunks: tuple[int, ...], interval: float | None, start: float) -> None:
    """An MDIO v1 group: dimension coordinates, trace mask, the (empty) data variable, and a SEG-Y
    input's trace headers, coordinates and file headers (:mod:`geocnn.grids.mdioheaders`)."""
    like = spec.like
    dims = tuple(MDIO_DIMS.get(a, a) for a in like.axes)
    root = zarr.open_group(store=tmp, mode="w")
    for axis, dim, n in zip(like.axes, dims, pending.shape):
        values = _coordinate(like, axis, n, interval, start)
        root.create_array(dim, data=values, dimension_names=(dim,))
    carried = carry_headers(root, spec, dims, chunks[-len(dims):-1])  # a SEG-Y input's headers and coordinates
    if not carried:
        live = like.live() if pending.shape[:-1] == like.shape[:-1] else None
        mask = np.ones(pending.shape[:-1], bool) if live is None else np.asarray(live, bool)
        root.create_array(MASK, data=mask, dimension_names=dims[:-1])
    data = root.create_array(VARIABLE, shape=stored, chunks=chunks, dtype=pending.dtype, fill_value=0,
                             dimension_names=(("channel",) if pending.channels > 1 else ()) + dims)
    data.attrs.update(_plain(pending.sidecar))  # channel names, sample axis: read back like a .npy sidecar
    if carried:
        data.attrs["coordinates"] = " ".join(COORDINATES)
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
