"""Zarr stores as sources: MDIO v1 datasets (TGS's cloud-native seismic format) and plain Zarr arrays.

A store is a folder (``survey.mdio``, ``cube.zarr``) or an fsspec URL (``s3://bucket/survey.mdio``).
Reads are lazy and chunk-aware: :meth:`StoreSource.read` asks Zarr for one window, and Zarr
fetches and decodes only the chunks that window touches.

* **MDIO v1**: a Zarr group whose attributes carry ``apiVersion`` and
  ``attributes.defaultVariableName``. The data variable (or the one ``key`` names) gives the grid;
  its dimension coordinates give the inline/crossline/offset numbers and the sample axis
  (``time``/``depth`` -> ``sample``, interval from its spacing); ``trace_mask`` says which traces exist.
* **plain Zarr**: an array at the root (or the one ``key`` names in a group). Axis names come from
  the input's ``axes``, else the array's dimension names, else the NumPy defaults; a geocnn
  output's attributes (those of the ``.npy`` sidecar) give the sample interval and channel names.

Zarr (and the ``mdio`` package for ``geocnn convert``) are the optional extra ``geocnn[mdio]``;
they are imported when a store is first opened, never with :mod:`geocnn.grids`.

A store is someone else's file, so it is checked before Zarr parses it: every metadata document
(``zarr.json``; ``.zarray``/``.zgroup``/``.zattrs``) goes through :func:`check_metadata`, and the
declared sizes through :func:`check_sizes` (trace positions, samples per trace, bytes per chunk) before
anything is allocated. The trace mask and the traces are read in bounded blocks, never whole at
open; a chunk that fails to decode is one DataError naming the store and the chunk.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Iterator
from typing import Any

import numpy as np

from geocnn import schema
from geocnn.errors import DataError, GeocnnError
from geocnn.grids import sidecar
from geocnn.grids.formats import is_url
from geocnn.grids.npyfile import check_dtype
from geocnn.grids.sidecar import MARK
from geocnn.grids.sources import DEFAULT_AXES, GridMeta, Source
from geocnn.grids.spec import InputSpec

log = logging.getLogger(__name__)

EXTRA = "pip install 'geocnn[mdio]'"
# MDIO dimension names -> geocnn axis names (the field's words; others keep their own name).
MDIO_AXES = {"time": "sample", "depth": "sample", "cdp": "trace"}
MASK = "trace_mask"
STATE = "geocnn_state"  # a geocnn output: writing | complete
# Bounds on what a store may declare, checked before anything is allocated.
MAX_POSITIONS = 1 << 30  # trace positions: geocnn holds one byte per position (the live mask) for a grid
MAX_SAMPLES = 1 << 20  # samples per trace: whole traces are read (statistics, checks)
MAX_CHUNK_BYTES = 1 << 28  # one chunk decoded (256 MiB; MDIO's are 1 MiB)
MAX_CHUNKS = 1 << 26  # chunks of a store (a 10,000² × 2,000 survey in 64³ chunks has 0.5 million)
MAX_INDEXED_CHUNKS = 1 << 20  # Zarr's point reads allocate a count per chunk of the array: above this, read trace by trace
BLOCK_VALUES = 1 << 22  # values per block of the trace mask or of points read at once


class MissingExtra(GeocnnError):
    """An optional dependency group is not installed."""


def require(module: str = "zarr") -> Any:
    """Import an optional dependency of ``geocnn[mdio]``, or say how to install it (one line)."""
    try:
        found = __import__(module)
    except ImportError:
        raise MissingExtra(f"MDIO/Zarr stores need the Python package '{module}', which is not installed",
                           fix=f"install the extra: {EXTRA} (Python 3.11 or later)") from None
    if module == "zarr" and int(found.__version__.split(".")[0]) < 3:
        raise MissingExtra(f"MDIO/Zarr stores need zarr 3, and zarr {found.__version__} is installed",
                           fix=f"install the extra: {EXTRA} (Python 3.11 or later)")
    return found


def dimension_names(array: Any) -> tuple[str, ...] | None:
    """An array's dimension names: Zarr v3 metadata, or xarray's ``_ARRAY_DIMENSIONS`` in Zarr v2."""
    names = getattr(array.metadata, "dimension_names", None)
    if names is None:
        names = array.attrs.get("_ARRAY_DIMENSIONS")
    if not names or any(n is None for n in names):
        return None
    return tuple(str(n) for n in names)


# What Zarr raises on metadata check_metadata has not seen (a consolidated copy, a codec's options).
OPEN_ERRORS = (FileNotFoundError, KeyError, ValueError, TypeError, AttributeError, IndexError, ArithmeticError)
METADATA_FILES = ("zarr.json", ".zarray", ".zgroup", ".zattrs")


def _ints(value: Any, least: int) -> bool:
    return isinstance(value, list) and all(isinstance(n, int) and not isinstance(n, bool) and n >= least
                                           for n in value)


def _metadata_problem(doc: Any, name: str) -> str | None:
    """What is wrong with one metadata document (Zarr v3 ``zarr.json`` or v2 ``.zarray``/``.zgroup``/``.zattrs``)."""
    if not isinstance(doc, dict):
        return f"is a JSON {type(doc).__name__}, not an object"
    if name == ".zmetadata":  # v2 consolidated: its members are checked one by one
        return None
    if name == ".zattrs":
        dims = doc.get("_ARRAY_DIMENSIONS")
        ok = dims is None or (isinstance(dims, list) and all(isinstance(d, str) for d in dims))
        return None if ok else "_ARRAY_DIMENSIONS must be a list of names"
    if name == "zarr.json" and doc.get("node_type") not in ("array", "group"):
        return f"node_type must be 'array' or 'group', got {doc.get('node_type')!r}"
    if not isinstance(doc.get("attributes", {}), dict):
        return f"attributes must be an object, got {type(doc['attributes']).__name__}"
    if name == ".zgroup" or doc.get("node_type") == "group":
        return None
    shape = doc.get("shape")
    if not _ints(shape, 0):
        return f"shape must be a list of whole numbers ≥ 0, got {shape!r}"
    grid = doc.get("chunk_grid")
    chunks = doc.get("chunks") if name == ".zarray" else \
        (grid.get("configuration") or {}).get("chunk_shape") if isinstance(grid, dict) else None
    if not _ints(chunks, 1) or len(chunks) != len(shape):
        return f"chunk shape must be {len(shape)} whole numbers ≥ 1, got {chunks!r}"
    dtype = doc.get("dtype" if name == ".zarray" else "data_type")
    if not isinstance(dtype, (str, list, dict)):
        return f"data type must be a name, got {dtype!r}"
    dims = doc.get("dimension_names")
    if dims is not None and (not isinstance(dims, list) or len(dims) != len(shape)
                             or not all(d is None or isinstance(d, str) for d in dims)):
        return f"dimension_names must be {len(shape)} names (or nulls), got {dims!r}"
    return None


def check_metadata(doc: Any, name: str, where: str) -> None:
    """Refuse a damaged metadata document before Zarr parses it: one rule for Zarr v2 and v3.

    ``name`` is the document's file name (``zarr.json``, ``.zarray``, ``.zgroup``, ``.zattrs``). The
    shape and chunk shape are lists of whole numbers (chunks ≥ 1), the data type a name, the dimension
    names one per axis, the attributes an object; consolidated copies of members are checked alike.
    """
    problem = _metadata_problem(doc, name)
    if problem is not None:
        raise DataError(f"damaged Zarr metadata: {name} {problem}", where=where,
                        fix="check it is a complete MDIO/Zarr dataset")
    consolidated = doc.get("consolidated_metadata") if name == "zarr.json" else doc.get("metadata")
    members = consolidated.get("metadata") if name == "zarr.json" and isinstance(consolidated, dict) else consolidated
    if isinstance(members, dict):
        for key, member in members.items():
            base = os.path.basename(str(key))
            check_metadata(member, base if base in METADATA_FILES else "zarr.json", f"{where}/{key}")


def _documents(path: str) -> Iterator[tuple[str, Any]]:
    """The metadata documents of the node at ``path`` that exist: (file name, parsed JSON)."""
    for name in (*METADATA_FILES, ".zmetadata"):
        text = _read_text(f"{path.rstrip('/')}/{name}")
        if text is None:
            continue
        try:
            yield name, json.loads(text)
        except ValueError as exc:
            raise DataError(f"damaged Zarr metadata: {name} is not JSON ({exc})", where=path,
                            fix="check it is a complete MDIO/Zarr dataset") from None


def _read_text(path: str) -> str | None:
    """A small metadata file's text, or None when there is none (a local path or an fsspec URL)."""
    try:
        if not is_url(path):
            with open(path, encoding="utf-8", errors="replace") as fh:
                return fh.read()
        with require("fsspec").open(path, "rt", encoding="utf-8", errors="replace") as fh:
            return fh.read()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return None


def check_node(path: str) -> None:
    """Every metadata document of the node at ``path`` through :func:`check_metadata`."""
    for name, doc in _documents(path):
        check_metadata(doc, name, path)


def open_store(path: str, mode: str = "r") -> Any:
    """A Zarr group or array at a folder or URL, its metadata checked; DataError naming it when there is none."""
    zarr = require()
    if not is_url(path) and not os.path.exists(path):
        raise DataError("store not found", where=path, fix="check the path (a .mdio/.zarr folder or URL)")
    check_node(path)
    try:
        return zarr.open(store=path, mode=mode)
    except OPEN_ERRORS as exc:
        raise DataError(f"not a readable Zarr store ({exc})", where=path,
                        fix="check it is a complete MDIO/Zarr dataset") from None


def array_names(root: Any, path: str) -> list[str]:
    """The arrays of the group ``root`` (at ``path``), every member's metadata checked first (Zarr parses
    them all to list them)."""
    if not is_url(path):
        for child in sorted(os.scandir(path), key=lambda e: e.name):
            if child.is_dir():
                check_node(child.path)
    try:
        return sorted(root.array_keys())
    except OPEN_ERRORS as exc:
        raise DataError(f"not a readable Zarr group ({exc})", where=path,
                        fix="check it is a complete MDIO/Zarr dataset") from None


def member(root: Any, path: str, key: str) -> Any:
    """The array ``key`` of the group ``root`` (at ``path``), its metadata checked before Zarr parses it."""
    where = f"{path.rstrip('/')}/{key}"
    check_node(where)
    try:
        return root[key]
    except OPEN_ERRORS as exc:
        raise DataError(f"array '{key}' is not readable ({exc})", where=path,
                        fix="check it is a complete MDIO/Zarr dataset") from None


def is_mdio(node: Any) -> bool:
    attrs = dict(node.attrs)
    return "apiVersion" in attrs and "defaultVariableName" in (attrs.get("attributes") or {})


def check_traces(shape: tuple[int, ...], where: str, smaller: str = "a smaller store") -> None:
    """Refuse a declared grid of more trace positions or samples per trace than geocnn handles, before
    anything is allocated (stores and netCDF variables: ``smaller`` names what to read instead)."""
    positions = int(np.prod(shape[:-1], dtype=object))  # Python integers: no overflow
    if positions > MAX_POSITIONS:
        raise DataError(f"declares {positions:,} trace positions ({' × '.join(map(str, shape[:-1]))}), more than "
                        f"geocnn handles ({MAX_POSITIONS:,})", where=where, fix=f"read a part of it ({smaller})")
    if shape and shape[-1] > MAX_SAMPLES:
        raise DataError(f"declares {shape[-1]:,} samples per trace, more than geocnn handles ({MAX_SAMPLES:,})",
                        where=where, fix="check the axis order (samples last), or split the traces")


def check_sizes(shape: tuple[int, ...], chunks: tuple[int, ...], itemsize: int, where: str) -> None:
    """Refuse declared sizes geocnn cannot hold before anything is allocated (a store's chunks may be
    missing, so its size on disk says nothing about what it declares)."""
    check_traces(shape, where)
    count = int(np.prod([-(-n // c) for n, c in zip(shape, chunks)], dtype=object))
    if count > MAX_CHUNKS:
        raise DataError(f"declares {count:,} chunks of {' × '.join(map(str, chunks))} values, more than geocnn "
                        f"reads ({MAX_CHUNKS:,})", where=where, fix="rechunk the store (MDIO uses 64 or 128 per axis)")
    chunk_bytes = int(np.prod(chunks, dtype=object)) * itemsize
    if chunk_bytes > MAX_CHUNK_BYTES:
        raise DataError(f"declares chunks of {' × '.join(map(str, chunks))} values ({chunk_bytes / 2**20:,.0f} MiB "
                        f"each), more than geocnn decodes ({MAX_CHUNK_BYTES >> 20} MiB)", where=where,
                        fix="rechunk the store (MDIO uses 64 or 128 per axis)")


def chunk_count(array: Any) -> int:
    """How many chunks the array's grid has (Zarr's point reads allocate one count per chunk)."""
    return int(np.prod([-(-n // c) for n, c in zip(array.shape, array.chunks)], dtype=object))


class StoreSource(Source):
    """An MDIO v1 data variable or a plain Zarr array (see the module docstring)."""

    def __init__(self, spec: InputSpec, fmt: str) -> None:
        self.path, self.spec, self.fmt = spec.path, spec, fmt
        self._array: Any = None
        self._names: list[str] = []  # the group's arrays (none: the store is one array)
        root = open_store(spec.path)
        if dict(root.attrs).get(STATE) == "writing":
            raise DataError("the dataset is incomplete: the run writing it failed or is still running",
                            where=self.path, fix="wait for that run, or write it again")
        self.mdio = is_mdio(root)
        self.key, array = self._variable(root)
        self._array = array
        self.shape = tuple(int(n) for n in array.shape)
        self.chunks = tuple(int(n) for n in array.chunks)
        where = self.path if self.key is None else f"{self.path}:{self.key}"
        check_dtype(array.dtype, where)
        check_sizes(self.shape, self.chunks, np.dtype(array.dtype).itemsize, where)
        dims = dimension_names(array)
        self.attrs = dict(array.attrs)
        self.axes, self.explicit_axes = self._axes(dims, spec)
        self._masked = False  # some trace is missing: the stored trace mask says which
        self._mask_array: Any = None
        self._mask_index: tuple[slice | None, ...] = ()  # trace axes -> mask axes (None: the mask lacks it)
        if self.mdio:
            self._trace_mask(root, dims)
        self.meta = self._meta(root, dims, array)
        self.georef = sidecar.georef_of(self._sidecar)
        log.debug("%s: %s %s chunks %s", self.path, "MDIO variable" if self.mdio else "Zarr array", self.key,
                  self.chunks)

    # ---------------------------------------------------------------- opening

    def _variable(self, root: Any) -> tuple[str | None, Any]:
        zarr = require()
        if isinstance(root, zarr.Array):
            if self.spec.key is not None:
                raise DataError(f"key '{self.spec.key}' names a group member, but this store is one array",
                                where=self.path, fix="remove key")
            return None, root
        names = array_names(root, self.path)
        self._names = names
        key = self.spec.key
        if key is None and self.mdio:
            key = root.attrs["attributes"]["defaultVariableName"]
        if key is None:
            data = [n for n in names if member(root, self.path, n).ndim >= 2]
            if len(data) != 1:
                raise DataError(f"the group holds {len(data)} arrays of 2 or more axes ({', '.join(data)}): "
                                "say which", where=self.path, fix="give key: NAME for this input")
            key = data[0]
        if not isinstance(key, str) or key not in names:
            raise DataError(f"no array '{key}' in the store", where=self.path, fix=schema.suggest(str(key), names))
        return key, member(root, self.path, key)

    def _axes(self, dims: tuple[str, ...] | None, spec: InputSpec) -> tuple[tuple[str, ...], bool]:
        ndim = len(self.shape)
        if spec.axes is not None:
            if len(spec.axes) != ndim:
                raise DataError(f"array has {ndim} axes {self.shape} but axes names {len(spec.axes)}: "
                                f"[{', '.join(spec.axes)}]", where=self.path, fix="give one name per array axis")
            return tuple(spec.axes), True
        written = self._sidecar.get("axes")
        if isinstance(written, list) and len(written) == ndim and all(isinstance(a, str) for a in written):
            return tuple(written), True  # a geocnn output: the axes it was written with (depth stays depth)
        if dims is not None:
            return tuple(MDIO_AXES.get(d, d) for d in dims), True
        if ndim not in DEFAULT_AXES:
            raise DataError(f"array has {ndim} axes {self.shape}; name them", where=self.path,
                            fix="give axes: [...] for this input, e.g. [inline, crossline, offset, sample]")
        return DEFAULT_AXES[ndim], False

    def _meta(self, root: Any, dims: tuple[str, ...] | None, array: Any) -> GridMeta:
        dtype = np.dtype(array.dtype)
        endian = {"=": sys.byteorder, "|": "n/a", "<": "little", ">": "big"}[dtype.byteorder]
        positions = int(np.prod(self.shape[:-1], dtype=np.int64))
        if not self.mdio:
            side = self._sidecar
            return GridMeta(kind="numpy", format=self.fmt, sample_interval_us=side.get("sample_interval_us"),
                            sample_start_ms=float(side.get("sample_start_ms") or 0.0),
                            sample_format=str(dtype.newbyteorder("=")), endian=endian, n_traces=positions)
        coords = {d: np.asarray(self._get(member(root, self.path, d), (slice(None),)))
                  for d in (dims or ()) if d in self._names}
        sample = coords.get(dims[-1]) if dims else None
        interval = float(np.diff(sample[:2])[0]) * 1000.0 if sample is not None and len(sample) > 1 else None
        n_live = self._live_count() if self._masked else positions
        kind = "pre-stack" if "offset" in self.axes else "post-stack" if "inline" in self.axes else "line"
        return GridMeta(kind=kind, format=self.fmt, sample_interval_us=interval,
                        sample_start_ms=float(sample[0]) if sample is not None and len(sample) else 0.0,
                        ilines=coords.get("inline"), xlines=coords.get("crossline"), offsets=coords.get("offset"),
                        sample_format=str(dtype.newbyteorder("=")), endian=endian, n_traces=n_live,
                        dead_traces=positions - n_live)

    @property
    def array(self) -> Any:
        if self._array is None:  # after pickling (DataLoader workers): open again
            root = open_store(self.path)
            self._array = root if self.key is None else member(root, self.path, self.key)
        return self._array

    @property
    def mask_array(self) -> Any:
        """The stored trace mask (opened again after pickling)."""
        if self._mask_array is None:
            self._mask_array = member(open_store(self.path), self.path, MASK)
        return self._mask_array

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_array"] = state["_mask_array"] = None
        return state

    def _trace_mask(self, root: Any, dims: tuple[str, ...] | None) -> None:
        """Find MDIO's trace mask over this variable's trace axes; keep it only when some trace is missing.

        A variable with more axes than the mask (a geocnn output's ``channel`` axis) sees the mask
        repeated along them. The mask is read in blocks (never whole: a store may declare more
        positions than fit in memory at once).
        """
        if MASK not in self._names:
            return
        stored = member(root, self.path, MASK)
        trace_dims = (dims or ())[:-1]
        mask_dims = dimension_names(stored) or trace_dims[len(trace_dims) - stored.ndim:]
        index = tuple(slice(None) if d in mask_dims else None for d in trace_dims)
        if sum(i is not None for i in index) != stored.ndim or len(mask_dims) != stored.ndim:
            raise DataError(f"its trace_mask has axes ({', '.join(mask_dims)}) that the variable "
                            f"'{self.key}' ({', '.join(trace_dims)}) lacks", where=self.path)
        expected = tuple(n for n, i in zip(self.shape[:-1], index) if i is not None)
        if tuple(stored.shape) != expected:
            raise DataError(f"its trace_mask is shaped {tuple(stored.shape)}, the grid's traces "
                            f"{expected} ({', '.join(d for d, i in zip(trace_dims, index) if i is not None)})",
                            where=self.path, fix="check it is a complete MDIO dataset")
        check_sizes((*stored.shape, 1), stored.chunks, 1, f"{self.path}/{MASK}")
        self._mask_array, self._mask_index, self._masked = stored, index, True
        if self._live_count() == int(np.prod(self.shape[:-1], dtype=np.int64)):
            self._masked, self._mask_array = False, None  # every position holds a trace

    def _mask_blocks(self) -> Iterator[np.ndarray]:
        """The stored trace mask, a block of first-axis rows (≤ BLOCK_VALUES values) at a time."""
        shape = tuple(self.mask_array.shape)
        rows = max(1, BLOCK_VALUES // max(1, int(np.prod(shape[1:], dtype=np.int64))))
        for start in range(0, shape[0] if shape else 1, rows):
            window = (slice(start, start + rows), *(slice(None) for _ in shape[1:]))
            yield np.asarray(self._get(self.mask_array, window), dtype=bool)

    def _live_count(self) -> int:
        """Positions holding a trace over this variable's trace axes (the mask repeated along axes it lacks)."""
        count = sum(int(np.count_nonzero(block)) for block in self._mask_blocks())
        repeat = int(np.prod([n for n, i in zip(self.shape[:-1], self._mask_index) if i is None], dtype=np.int64))
        return count * repeat

    def live_mask(self) -> np.ndarray | None:
        """Which positions of the trace axes (all but the last) hold a trace; None when all do."""
        return self.live(tuple(slice(0, n) for n in self.shape[:-1]))

    # ---------------------------------------------------------------- reading

    def _get(self, array: Any, selection: Any, points: bool = False) -> np.ndarray:
        """``array[selection]`` (``vindex`` for ``points``); a chunk that fails to decode is one DataError
        naming the store and the chunk."""
        try:
            return array.vindex[selection] if points else array[selection]
        except (GeocnnError, MemoryError):
            raise
        except Exception as exc:  # noqa: BLE001 - a codec's error (zstd, blosc, zlib...) on the store's bytes
            name = "/".join(p for p in (self.path.rstrip("/"), array.path) if p)
            raise DataError(f"a chunk cannot be read ({type(exc).__name__}: {exc})",
                            where=name + _chunk_of(array, selection, points),
                            fix="the store is damaged: copy or convert it again") from None

    def read(self, window: tuple[slice, ...]) -> np.ndarray:
        values = np.asarray(self._get(self.array, window), dtype=np.float32)
        mask = self.live(window[:-1])
        if mask is not None:  # dead traces hold MDIO's fill value (NaN): zeros, as SEG-Y reads them
            values = values * mask[..., None]
            values[~np.isfinite(values)] = 0.0
        return values

    def read_traces(self, index: tuple[np.ndarray, ...]) -> np.ndarray:
        if not index:
            return np.asarray(self._get(self.array, (slice(None),)), dtype=np.float32).reshape(1, -1)
        positions = np.stack([np.asarray(i, dtype=np.int64).reshape(-1) for i in index], axis=1)  # (n, trace axes)
        n, ns = len(positions), self.shape[-1]
        values = np.empty((n, ns), dtype=np.float32)
        if chunk_count(self.array) <= MAX_INDEXED_CHUNKS:
            # Coordinate selections, a bounded block of traces at a time: Zarr groups the points by chunk and
            # decodes each chunk once (but allocates a count per chunk of the array: bounded above).
            rows = max(1, BLOCK_VALUES // ns)
            for start in range(0, n, rows):
                block = positions[start:start + rows]
                coords = tuple(block[:, k][:, None] for k in range(block.shape[1])) + (np.arange(ns)[None, :],)
                values[start:start + rows] = self._get(self.array, coords, points=True)
        else:
            for k, p in enumerate(positions):  # one trace at a time: memory is one trace's chunks
                values[k] = self._get(self.array, (*p.tolist(), slice(None)))
        if self._masked:
            for k, p in enumerate(positions):
                if not self._mask_at(p):
                    values[k] = 0.0
        return values

    def _mask_at(self, position: np.ndarray) -> bool:
        """Does the trace at one position exist?"""
        point = tuple(int(i) for i, m in zip(position, self._mask_index) if m is not None)
        return bool(self._get(self.mask_array, point))

    def live(self, window: tuple[slice, ...]) -> np.ndarray | None:
        if not self._masked:
            return None
        window = tuple(slice(*w.indices(n)[:2]) for w, n in zip(window, self.shape[:-1]))
        sizes = tuple(max(0, w.stop - w.start) for w in window)
        if int(np.prod(sizes, dtype=object)) > MAX_POSITIONS:
            raise DataError(f"a window of {' × '.join(map(str, sizes))} trace positions is more than geocnn "
                            f"holds ({MAX_POSITIONS:,})", where=self.path)
        stored = tuple(w for w, m in zip(window, self._mask_index) if m is not None)
        part = np.asarray(self._get(self.mask_array, stored), dtype=bool)
        return np.broadcast_to(part[tuple(slice(None) if m is not None else None for m in self._mask_index)], sizes)

    def release(self) -> None:
        return None  # nothing mapped: Zarr reads each chunk when asked

    def label(self) -> str:
        stem = os.path.basename(self.path.rstrip("/")).rsplit(".", 1)[0]
        return f"{stem}:{self.key}" if self.key and not self.mdio else stem

    @property
    def _sidecar(self) -> dict:
        """The attributes a geocnn output carries (a ``.npy`` sidecar's record), else none."""
        return self.attrs if self.attrs.get("geocnn") == MARK else {}

    def spacing(self) -> dict[str, tuple[float, str]]:
        return sidecar.spacing_of(self._sidecar)

    def channel_label(self, axis: str, index: int) -> str:
        names = self.attrs.get("channel_names")
        if axis == "channel" and isinstance(names, list) and len(names) == self.shape[self.axes.index(axis)]:
            return str(names[index])
        if axis == "offset" and self.meta.offsets is not None:
            return f"offset {self.meta.offsets[index]}"
        return f"{axis} {index}"


def _chunk_of(array: Any, selection: Any, points: bool) -> str:
    """`` chunk c/2/1/1``: the first chunk of ``selection`` that fails to decode, found by reading the
    chunks it touches one at a time (the error path only; at most 4,096 chunks tried), else ''."""
    shape, chunks = tuple(array.shape), tuple(array.chunks)
    if points:
        bounds = [(int(np.min(s)), int(np.max(s)) + 1) for s in np.broadcast_arrays(*selection)]
    else:
        sel = selection if isinstance(selection, tuple) else (selection,)
        sel = sel + (slice(None),) * (len(shape) - len(sel))
        bounds = [(s, s + 1) if isinstance(s, int) else s.indices(n)[:2] for s, n in zip(sel, shape)]
    ranges = [range(lo // c, -(-hi // c)) for (lo, hi), c in zip(bounds, chunks)]
    for k, coords in enumerate(np.ndindex(*(len(r) for r in ranges))):
        if k >= 4096:
            break
        chunk = tuple(r[i] for r, i in zip(ranges, coords))
        box = tuple(slice(i * c, min((i + 1) * c, n)) for i, c, n in zip(chunk, chunks, shape))
        try:
            array[box]
        except Exception:  # noqa: BLE001 - this is the chunk that does not decode
            return f" chunk {array.metadata.encode_chunk_key(chunk)}"
    return ""
