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
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

import numpy as np

from geocnn import schema
from geocnn.errors import DataError, GeocnnError
from geocnn.grids.formats import is_url
from geocnn.grids.sidecar import MARK
from geocnn.grids.sources import DEFAULT_AXES, GridMeta, Source
from geocnn.grids.spec import InputSpec

log = logging.getLogger(__name__)

EXTRA = "pip install 'geocnn[mdio]'"
# MDIO dimension names -> geocnn axis names (the field's words; others keep their own name).
MDIO_AXES = {"time": "sample", "depth": "sample", "cdp": "trace"}
MASK = "trace_mask"
STATE = "geocnn_state"  # a geocnn output: writing | complete


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


def open_store(path: str, mode: str = "r") -> Any:
    """A Zarr group or array at a folder or URL; DataError naming it when there is none."""
    zarr = require()
    if not is_url(path) and not os.path.exists(path):
        raise DataError("store not found", where=path, fix="check the path (a .mdio/.zarr folder or URL)")
    try:
        return zarr.open(store=path, mode=mode)
    except (FileNotFoundError, KeyError, ValueError) as exc:
        raise DataError(f"not a readable Zarr store ({exc})", where=path,
                        fix="check it is a complete MDIO/Zarr dataset") from None


def is_mdio(node: Any) -> bool:
    attrs = dict(node.attrs)
    return "apiVersion" in attrs and "defaultVariableName" in (attrs.get("attributes") or {})


class StoreSource(Source):
    """An MDIO v1 data variable or a plain Zarr array (see the module docstring)."""

    def __init__(self, spec: InputSpec, fmt: str) -> None:
        self.path, self.spec, self.fmt = spec.path, spec, fmt
        self._array: Any = None
        root = open_store(spec.path)
        if dict(root.attrs).get(STATE) == "writing":
            raise DataError("the dataset is incomplete: the run writing it failed or is still running",
                            where=self.path, fix="wait for that run, or write it again")
        self.mdio = is_mdio(root)
        self.key, array = self._variable(root)
        self._array = array
        self.shape = tuple(int(n) for n in array.shape)
        self.chunks = tuple(int(n) for n in array.chunks)
        dims = dimension_names(array)
        self.attrs = dict(array.attrs)
        self.axes, self.explicit_axes = self._axes(dims, spec)
        self._mask = self._trace_mask(root, dims) if self.mdio else None
        self.meta = self._meta(root, dims, array)
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
        names = sorted(root.array_keys())
        key = self.spec.key
        if key is None and self.mdio:
            key = root.attrs["attributes"]["defaultVariableName"]
        if key is None:
            data = [n for n in names if root[n].ndim >= 2]
            if len(data) != 1:
                raise DataError(f"the group holds {len(data)} arrays of 2 or more axes ({', '.join(data)}): "
                                "say which", where=self.path, fix="give key: NAME for this input")
            key = data[0]
        if key not in names:
            raise DataError(f"no array '{key}' in the store", where=self.path, fix=schema.suggest(key, names))
        return key, root[key]

    def _axes(self, dims: tuple[str, ...] | None, spec: InputSpec) -> tuple[tuple[str, ...], bool]:
        ndim = len(self.shape)
        if spec.axes is not None:
            if len(spec.axes) != ndim:
                raise DataError(f"array has {ndim} axes {self.shape} but axes names {len(spec.axes)}: "
                                f"[{', '.join(spec.axes)}]", where=self.path, fix="give one name per array axis")
            return tuple(spec.axes), True
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
            side = self.attrs if self.attrs.get("geocnn") == MARK else {}
            return GridMeta(kind="numpy", format=self.fmt, sample_interval_us=side.get("sample_interval_us"),
                            sample_start_ms=float(side.get("sample_start_ms") or 0.0),
                            sample_format=str(dtype.newbyteorder("=")), endian=endian, n_traces=positions)
        coords = {d: np.asarray(root[d][:]) for d in (dims or ()) if d in root.array_keys()}
        sample = coords.get(dims[-1]) if dims else None
        interval = float(np.diff(sample[:2])[0]) * 1000.0 if sample is not None and len(sample) > 1 else None
        live = self.live_mask()
        n_live = int(live.sum()) if live is not None else positions
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
            self._array = root if self.key is None else root[self.key]
        return self._array

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_array"] = None
        return state

    def _trace_mask(self, root: Any, dims: tuple[str, ...] | None) -> np.ndarray | None:
        """MDIO's trace mask over this variable's trace axes (None: every position holds a trace).

        A variable with more axes than the mask (a geocnn output's ``channel`` axis) sees the mask
        repeated along them.
        """
        if MASK not in root.array_keys():
            return None
        stored = root[MASK]
        mask = np.asarray(stored[:], dtype=bool)
        if mask.all():
            return None
        trace_dims = (dims or ())[:-1]
        mask_dims = dimension_names(stored) or trace_dims[len(trace_dims) - mask.ndim:]
        index = tuple(slice(None) if d in mask_dims else None for d in trace_dims)
        if sum(i is not None for i in index) != mask.ndim:
            raise DataError(f"its trace_mask has axes ({', '.join(mask_dims)}) that the variable "
                            f"'{self.key}' ({', '.join(trace_dims)}) lacks", where=self.path)
        return np.broadcast_to(mask[index], self.shape[:-1])

    def live_mask(self) -> np.ndarray | None:
        """Which positions of the trace axes (all but the last) hold a trace; None when all do."""
        return self._mask

    # ---------------------------------------------------------------- reading

    def read(self, window: tuple[slice, ...]) -> np.ndarray:
        values = np.asarray(self.array[window], dtype=np.float32)
        mask = self.live_mask()
        if mask is not None:  # dead traces hold MDIO's fill value (NaN): zeros, as SEG-Y reads them
            values = values * mask[window[:-1]][..., None]
            values[~np.isfinite(values)] = 0.0
        return values

    def read_traces(self, index: tuple[np.ndarray, ...]) -> np.ndarray:
        if not index:
            return np.asarray(self.array[:], dtype=np.float32).reshape(1, -1)
        n, ns = len(index[0]), self.shape[-1]
        # One coordinate selection: Zarr groups the points by chunk and decodes each chunk once.
        coords = tuple(np.asarray(i, dtype=np.int64)[:, None] for i in index) + (np.arange(ns)[None, :],)
        values = np.asarray(self.array.vindex[coords], dtype=np.float32).reshape(n, ns)
        mask = self.live_mask()
        if mask is not None:
            values[~mask[index]] = 0.0
        return values

    def live(self, window: tuple[slice, ...]) -> np.ndarray | None:
        mask = self.live_mask()
        return None if mask is None else mask[window]

    def release(self) -> None:
        return None  # nothing mapped: Zarr reads each chunk when asked

    def label(self) -> str:
        stem = os.path.basename(self.path.rstrip("/")).rsplit(".", 1)[0]
        return f"{stem}:{self.key}" if self.key and not self.mdio else stem

    def channel_label(self, axis: str, index: int) -> str:
        names = self.attrs.get("channel_names")
        if axis == "channel" and isinstance(names, list) and len(names) == self.shape[self.axes.index(axis)]:
            return str(names[index])
        if axis == "offset" and self.meta.offsets is not None:
            return f"offset {self.meta.offsets[index]}"
        return f"{axis} {index}"
