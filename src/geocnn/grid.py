"""Grids: lazy, channels-first views of SEG-Y and NumPy data.

A :class:`Grid` is what training and prediction see: spatial ``axes`` (``inline, crossline,
sample`` and friends), a ``shape``, ``channels``, and :meth:`Grid.read` that returns a float32
window ``(channels, *window)``. Nothing big is read before :meth:`Grid.read` is called: SEG-Y
traces come through :mod:`geocnn.segy`'s memmap, ``.npy`` files through ``np.load(mmap_mode='r')``,
uncompressed ``.npz`` members through a memmap at their offset inside the zip.

Channels come from several files stacked (:func:`open_stack`: three components, angle stacks,
attributes; geometries must match) or from an axis of one file (``channels_from: offset`` on a
pre-stack SEG-Y, ``channels_from: component`` on a NumPy array).

Example
-------
>>> g = open_stack([InputSpec("near.sgy"), InputSpec("far.sgy")])     # doctest: +SKIP
>>> g.axes, g.shape, g.channels                                      # doctest: +SKIP
(('inline', 'crossline', 'sample'), (100, 120, 250), 2)
>>> g.read((slice(0, 64), slice(0, 64), slice(100, 164))).shape      # doctest: +SKIP
(2, 64, 64, 64)
"""

from __future__ import annotations

import abc
import json
import logging
import os
import struct
import sys
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from geocnn import schema
from geocnn.errors import ConfigError, DataError
from geocnn.schema import REQUIRED, Choice, Ctx, Field, Int, ListOf, Record, Str
from geocnn.segy import BIG_READ, SegyFile, open_segy
from geocnn.segy import FORMATS as SEGY_FORMATS

log = logging.getLogger(__name__)

FILE_FORMATS = ("auto", "segy", "npy", "npz")
SEGY_SUFFIXES = (".sgy", ".segy")
DEFAULT_AXES = {1: ("sample",), 2: ("trace", "sample"), 3: ("inline", "crossline", "sample")}
SIDECAR_MARK = "grid"


# --------------------------------------------------------------------------------------------
# Input specs (one entry of a config's data.inputs)
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class InputSpec:
    """One input file as the config names it.

    A bare string in YAML means ``{path: ...}``. ``axes`` name a NumPy array's axes (defaults for
    1-3D arrays: ``sample``; ``trace, sample``; ``inline, crossline, sample``); ``channels_from``
    turns one axis into channels; ``iline``/``xline``/``offset`` are SEG-Y trace header bytes.
    """

    path: str
    format: str = "auto"
    key: str | None = None
    axes: tuple[str, ...] | None = None
    channels_from: str | None = None
    iline: int = 189
    xline: int = 193
    offset: int = 37
    endian: str = "auto"
    structured: str = "auto"
    cache: str = "auto"

    @property
    def resolved_format(self) -> str:
        """``segy``, ``npy`` or ``npz`` (from the suffix when ``format`` is ``auto``)."""
        return self.format if self.format != "auto" else format_from_suffix(self.path)


def format_from_suffix(path: str | os.PathLike) -> str:
    """``segy`` for ``.sgy``/``.segy`` (also ``x.sgy.1``), ``npy``, ``npz``; DataError otherwise."""
    suffixes = [s.lower() for s in Path(path).suffixes]
    if any(s in SEGY_SUFFIXES for s in suffixes):
        return "segy"
    if suffixes and suffixes[-1] in (".npy", ".npz"):
        return suffixes[-1][1:]
    raise DataError(f"cannot tell the file format from the name (suffix {''.join(suffixes) or 'none'})",
                    where=str(path), fix="use .sgy/.segy, .npy or .npz, or give format: segy|npy|npz")


def _validate_spec(value: dict, ctx: Ctx) -> None:
    fmt = value["format"]
    if fmt == "auto":
        try:
            fmt = format_from_suffix(value["path"])
        except DataError as exc:
            raise ctx.at("path").error(exc.problem, exc.fix) from None
    if value["key"] is not None and fmt != "npz":
        raise ctx.at("key").error(f"key names a member of a .npz file, but this input is {fmt}",
                                  "remove key")
    axes = value["axes"]
    if axes is not None:
        if fmt == "segy":
            raise ctx.at("axes").error("axes are read from SEG-Y headers, not given",
                                       "remove axes (use iline/xline/offset for custom header bytes)")
        if len(set(axes)) != len(axes):
            raise ctx.at("axes").error(f"axes repeat a name: {', '.join(axes)}",
                                       "give each axis its own name")
    ch = value["channels_from"]
    if ch is not None:
        if fmt == "segy" and ch != "offset":
            raise ctx.at("channels_from").error(f"a SEG-Y file can give channels from its offset axis only, "
                                                f"not '{ch}'", "use channels_from: offset")
        if axes is not None and ch not in axes:
            raise ctx.at("channels_from").error(f"'{ch}' is not one of the axes ({', '.join(axes)})",
                                                schema.suggest(ch, list(axes)))


INPUT_SPEC = Record(
    [
        Field("path", Str(), REQUIRED, "input file: SEG-Y (.sgy/.segy), NumPy (.npy) or .npz"),
        Field("format", Choice(*FILE_FORMATS), "auto", "file format; auto = from the file name"),
        Field("key", Str(), None, "member of a .npz file (needed when it holds several arrays)"),
        Field("axes", ListOf(Str(), min_len=1, max_len=6), None,
              "names of a NumPy array's axes in order, e.g. [inline, crossline, sample]"),
        Field("channels_from", Str(), None,
              "axis used as channels, e.g. offset (pre-stack SEG-Y) or component"),
        Field("iline", Int(1, 237), 189, "SEG-Y trace header byte of the inline number"),
        Field("xline", Int(1, 237), 193, "SEG-Y trace header byte of the crossline number"),
        Field("offset", Int(1, 237), 37, "SEG-Y trace header byte of the offset (or angle) number"),
        Field("endian", Choice("auto", "big", "little"), "auto",
              "SEG-Y byte order; auto = from the binary header"),
        Field("structured", Choice("auto", "yes", "no"), "auto",
              "SEG-Y geometry: auto, yes (grid even a sparse survey) or no (unstructured traces)"),
        Field("cache", Choice("auto", "yes", "no"), "auto",
              "SEG-Y: decode the samples once into a float32 cache ($GEOCNN_CACHE) for fast random "
              "patches; auto = when training on IBM or integer samples"),
    ],
    title="input",
    shorthand="path",
    validate=_validate_spec,
)


def input_spec(value: Any, ctx: Ctx) -> InputSpec:
    """Validate one YAML input entry (a path string or a mapping) into an :class:`InputSpec`."""
    checked = INPUT_SPEC.check(value, ctx)
    if checked["axes"] is not None:
        checked["axes"] = tuple(checked["axes"])
    return InputSpec(**checked)


def as_spec(value: InputSpec | str | os.PathLike) -> InputSpec:
    return value if isinstance(value, InputSpec) else InputSpec(path=os.fspath(value))


# --------------------------------------------------------------------------------------------
# Metadata
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class GridMeta:
    """What is known about a grid beyond its shape (from the first SEG-Y input, if any)."""

    kind: str  # post-stack | pre-stack | line | unstructured | numpy
    format: str  # segy | npy | npz
    sample_interval_us: float | None = None
    sample_start_ms: float = 0.0
    ilines: np.ndarray | None = None
    xlines: np.ndarray | None = None
    offsets: np.ndarray | None = None
    sample_format: str = ""  # ibm-float32, ieee-float32, int16... or the NumPy dtype
    endian: str = ""  # big | little | n/a
    n_traces: int = 0  # traces in the file (SEG-Y) or trace positions (NumPy)
    dead_traces: int = 0


def number_range(values: np.ndarray | None) -> dict | None:
    """first/last/step/count of a number axis (step None when not evenly spaced)."""
    if values is None or len(values) == 0:
        return None
    v = np.asarray(values)
    steps = np.unique(np.diff(v))
    step = int(steps[0]) if len(steps) == 1 else None
    return {"first": int(v[0]), "last": int(v[-1]), "step": step, "count": int(len(v))}


# --------------------------------------------------------------------------------------------
# Sources: one file each
# --------------------------------------------------------------------------------------------

class Source(abc.ABC):
    """One file's data with its own axes (the channel axis, if any, still among them)."""

    path: str
    axes: tuple[str, ...]
    shape: tuple[int, ...]
    explicit_axes: bool = True
    meta: GridMeta

    @abc.abstractmethod
    def read(self, window: tuple[slice, ...]) -> np.ndarray:
        """float32 values of a window over this source's own axes."""

    @abc.abstractmethod
    def read_traces(self, index: tuple[np.ndarray, ...]) -> np.ndarray:
        """float32 ``(n, n_samples)``: whole traces at integer positions of all axes but the last."""

    def live(self, window: tuple[slice, ...]) -> np.ndarray | None:
        """Mask over this source's trace axes (all axes but ``sample``), None = all live."""
        return None

    def release(self) -> None:
        """Unmap files; they are mapped again on the next read."""
        return None  # a default: sources without maps have nothing to release

    def label(self) -> str:
        return Path(self.path).stem


class SegySource(Source):
    """A SEG-Y file through :class:`geocnn.segy.SegyFile` (samples from the decoded cache if any)."""

    def __init__(self, spec: InputSpec, random_access: bool = False) -> None:
        self.path = spec.path
        self.file = open_segy(spec.path, iline=spec.iline, xline=spec.xline, offset=spec.offset,
                              endian=spec.endian, structured=spec.structured)
        self.axes = self.file.axes
        self.shape = self.file.shape
        geo, layout = self.file.geometry, self.file.layout
        self.meta = GridMeta(
            kind=geo.kind, format="segy", sample_interval_us=self.file.sample_interval_us,
            sample_start_ms=self.file.sample_start_ms, ilines=geo.ilines, xlines=geo.xlines,
            offsets=geo.offsets, sample_format=layout.sample_format, endian=layout.endian,
            n_traces=layout.n_traces, dead_traces=geo.n_positions - geo.n_live)
        self.cache_path: str | None = None
        self._cached: np.ndarray | None = None
        decoding = layout.sample_format != "ieee-float32"
        if spec.cache == "yes" or (spec.cache == "auto" and random_access and decoding):
            from geocnn.cache import decoded

            path = decoded(spec, self.shape, layout.sample_format)
            self.cache_path = str(path) if path is not None else None

    @property
    def cached(self) -> np.ndarray | None:
        """The decoded float32 copy, mapped on first use (and again after pickling)."""
        if self.cache_path is not None and self._cached is None:
            self._cached = np.load(self.cache_path, mmap_mode="r")
        return self._cached

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_cached"] = None  # a memmap would be pickled by value: map it again instead
        return state

    def read(self, window: tuple[slice, ...]) -> np.ndarray:
        cached = self.cached
        if cached is not None:
            return np.array(cached[window], dtype=np.float32)
        return self.file.read(window)

    def read_traces(self, index: tuple[np.ndarray, ...]) -> np.ndarray:
        cached = self.cached
        if cached is not None:
            return np.asarray(cached[index], dtype=np.float32)
        numbers = self.file.geometry.numbers_at(index)
        order = np.argsort(numbers, kind="stable")  # file order: fewer page jumps
        values = np.empty((len(numbers), self.shape[-1]), dtype=np.float32)
        values[order] = self.file.read_traces(numbers[order])
        return values

    def live(self, window: tuple[slice, ...]) -> np.ndarray | None:
        return self.file.geometry.live(window)

    def release(self) -> None:
        self.file.release()
        self._cached = None

    def channel_label(self, axis: str, index: int) -> str:
        if axis == "offset" and self.meta.offsets is not None:
            return f"offset {self.meta.offsets[index]}"
        return f"{axis} {index}"


def _sidecar(path: Path) -> dict | None:
    """The JSON written beside a geocnn ``.npy`` output, when there is one."""
    side = path.with_suffix(".json")
    if not side.is_file():
        return None
    try:
        data = json.loads(side.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("geocnn") == SIDECAR_MARK else None


def _npz_member(path: Path, key: str | None) -> tuple[np.ndarray, str]:
    """A member of a ``.npz``: memory-mapped when stored uncompressed, else loaded alone."""
    where = str(path)
    try:
        with zipfile.ZipFile(path) as zf:
            names = [n[:-4] for n in zf.namelist() if n.endswith(".npy")]
            if key is None:
                if len(names) != 1:
                    raise DataError(f"holds {len(names)} arrays ({', '.join(names)}): say which",
                                    where=where, fix="give key: NAME for this input")
                key = names[0]
            if key not in names:
                raise DataError(f"no array '{key}' in the file", where=where,
                                fix=schema.suggest(key, names))
            info = zf.getinfo(key + ".npy")
    except zipfile.BadZipFile:
        raise DataError("not a .npz file (not a zip archive)", where=where) from None
    if info.compress_type == zipfile.ZIP_STORED:
        mapped = _map_stored_member(path, info)
        if mapped is not None:
            return mapped, key
    log.info("%s: array '%s' is stored compressed, so it cannot be memory-mapped: loading it into "
             "memory (%.0f MB); save with np.savez (not savez_compressed) to map it instead",
             path, key, info.file_size / 1e6)
    with np.load(path, allow_pickle=False) as z:
        return np.asarray(z[key]), key


def _map_stored_member(path: Path, info: zipfile.ZipInfo) -> np.ndarray | None:
    """Memmap an uncompressed zip member: local header -> .npy header -> data offset."""
    with open(path, "rb") as fh:
        fh.seek(info.header_offset)
        local = fh.read(30)
        if local[:4] != b"PK\x03\x04":
            return None
        name_len, extra_len = struct.unpack("<HH", local[26:30])
        fh.seek(info.header_offset + 30 + name_len + extra_len)
        version = np.lib.format.read_magic(fh)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
        else:
            return None
        offset = fh.tell()
    if dtype.hasobject:
        return None
    return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape, order="F" if fortran else "C")


class ArraySource(Source):
    """A ``.npy`` (memmap, never read whole) or ``.npz`` member."""

    def __init__(self, spec: InputSpec, fmt: str) -> None:
        self.path = spec.path
        self.spec = spec
        self.fmt = fmt
        self.key: str | None = spec.key  # the npz member, once known
        self._array: np.ndarray | None = None
        array = self.array
        side = _sidecar(Path(spec.path)) if fmt == "npy" else None
        self.axes, self.explicit_axes = self._axes(array, spec, side)
        self.shape = tuple(int(n) for n in array.shape)
        order = array.dtype.byteorder
        endian = {"=": sys.byteorder, "|": "n/a", "<": "little", ">": "big"}[order]
        n_traces = int(np.prod(self.shape[:-1], dtype=np.int64)) if len(self.shape) > 1 else 1
        self.meta = GridMeta(kind="numpy", format=fmt,
                             sample_interval_us=(side or {}).get("sample_interval_us"),
                             sample_start_ms=float((side or {}).get("sample_start_ms") or 0.0),
                             sample_format=str(array.dtype.newbyteorder("=")), endian=endian,
                             n_traces=n_traces)
        self.sidecar = side

    @property
    def array(self) -> np.ndarray:
        # One read of the attribute: release() may clear it from another thread (prediction's reader).
        array = self._array
        if array is None:
            array = self._array = self._open()
        return array

    def _open(self) -> np.ndarray:
        p, where = Path(self.path), self.path
        if not p.exists():
            raise DataError("file not found", where=where, fix="check the path")
        try:
            if self.fmt == "npz":
                array, key = _npz_member(p, self.spec.key)
                self.key = key
            else:
                array = np.load(p, mmap_mode="r", allow_pickle=False)
        except DataError:
            raise
        except (ValueError, OSError, EOFError) as exc:
            raise DataError(f"not a readable {self.fmt} file ({exc})", where=where,
                            fix="check the file is complete; save it with numpy.save") from None
        if not isinstance(array, np.ndarray) or not (np.issubdtype(array.dtype, np.number)
                                                     or array.dtype == np.bool_):
            kind = getattr(array, "dtype", type(array).__name__)
            raise DataError(f"holds {kind} data, not numbers", where=where)
        return array

    def _axes(self, array: np.ndarray, spec: InputSpec, side: dict | None) -> tuple[tuple[str, ...], bool]:
        where = self.path
        axes = spec.axes
        if axes is None and side is not None and isinstance(side.get("axes"), list):
            axes = tuple(side["axes"])
        if axes is None:
            if array.ndim not in DEFAULT_AXES:
                raise DataError(f"array has {array.ndim} axes {array.shape}; name them", where=where,
                                fix="give axes: [...] for this input, "
                                    "e.g. [inline, crossline, offset, sample]")
            return DEFAULT_AXES[array.ndim], False
        if len(axes) != array.ndim:
            raise DataError(f"array has {array.ndim} axes {tuple(array.shape)} but axes names {len(axes)}: "
                            f"[{', '.join(axes)}]", where=where, fix="give one name per array axis")
        return tuple(axes), True

    def read(self, window: tuple[slice, ...]) -> np.ndarray:
        array = self.array
        rows = window[0].indices(array.shape[0])
        size = int(np.prod([len(range(*s.indices(n))) for s, n in zip(window, array.shape)]))
        if (isinstance(array, np.memmap) and array.flags.c_contiguous and rows[1] > rows[0]
                and size * array.dtype.itemsize > BIG_READ):
            # Big reads (slabs, conversion) map only their rows for the call, so scanning a
            # whole array does not keep it resident in this process.
            row_bytes = array.dtype.itemsize * int(np.prod(array.shape[1:], dtype=np.int64))
            part = np.memmap(array.filename, dtype=array.dtype, mode="r",
                             offset=array.offset + rows[0] * row_bytes,
                             shape=(rows[1] - rows[0], *array.shape[1:]))
            return np.array(part[(slice(None), *window[1:])], dtype=np.float32, copy=True)
        return np.array(array[window], dtype=np.float32, copy=True)

    def read_traces(self, index: tuple[np.ndarray, ...]) -> np.ndarray:
        if not index:  # a single 1D trace
            return np.array(self.array, dtype=np.float32).reshape(1, -1)
        return np.array(self.array[index], dtype=np.float32).reshape(len(index[0]), -1)

    def release(self) -> None:
        if isinstance(self._array, np.memmap):
            self._array = None

    def label(self) -> str:
        return f"{Path(self.path).stem}:{self.key}" if self.key else Path(self.path).stem

    def channel_label(self, axis: str, index: int) -> str:
        names = (self.sidecar or {}).get("channel_names")
        if axis == "channel" and isinstance(names, list) and len(names) == self.shape[self.axes.index(axis)]:
            return str(names[index])
        return f"{axis} {index}"

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_array"] = None  # a memmap would be pickled by value: map it again instead
        return state


def open_source(spec: InputSpec, random_access: bool = False) -> Source:
    """One file, as a :class:`Source`, with errors naming it.

    ``random_access`` (training) lets ``cache: auto`` decode IBM/integer SEG-Y once into a cache.
    """
    fmt = spec.resolved_format
    if fmt == "segy":
        return SegySource(spec, random_access)
    return ArraySource(spec, fmt)


# --------------------------------------------------------------------------------------------
# The grid
# --------------------------------------------------------------------------------------------

@dataclass
class _Part:
    source: Source
    channel_axis: int | None  # index in source.axes of the axis used as channels
    names: tuple[str, ...] = field(default=())


def _check_window(window: tuple[slice, ...], shape: tuple[int, ...]) -> tuple[slice, ...]:
    if len(window) != len(shape):
        raise ValueError(f"window has {len(window)} slices for a grid of {len(shape)} axes")
    out = []
    for s, n in zip(window, shape):
        start, stop, step = s.indices(n)
        inside = all(v is None or 0 <= v <= n for v in (s.start, s.stop))
        if step != 1 or not inside:
            raise ValueError(f"window slice {s} is not a step-1 slice inside 0..{n}")
        out.append(slice(start, max(start, stop)))
    return tuple(out)


class Grid:
    """A lazy, read-only, channels-first view of one or more files.

    Attributes
    ----------
    axes
        Spatial axes in order, e.g. ``("inline", "crossline", "sample")`` or ``("trace", "sample")``.
    shape
        Spatial shape (no channel axis).
    channels, channel_names
        Number and names of channels (file stems, ``offset 5``, ``component 0``...).
    sources
        File paths.
    meta
        :class:`GridMeta` of the first SEG-Y input (else the first input).
    """

    def __init__(self, parts: list[_Part]) -> None:
        self._parts = parts
        first = parts[0]
        axes = list(first.source.axes)
        shape = list(first.source.shape)
        if first.channel_axis is not None:
            del axes[first.channel_axis], shape[first.channel_axis]
        self.axes = tuple(axes)
        self.shape = tuple(shape)
        self.channel_names = tuple(n for p in parts for n in p.names)
        self.channels = len(self.channel_names)
        self.sources = tuple(p.source.path for p in parts)
        segy = [p.source for p in parts if isinstance(p.source, SegySource)]
        self.meta = (segy[0] if segy else first.source).meta

    def __repr__(self) -> str:
        return (f"Grid(axes={self.axes}, shape={self.shape}, channels={self.channels}, "
                f"kind={self.meta.kind!r}, sources={list(self.sources)})")

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def explicit_axes(self) -> bool:
        """Were the axis names given (SEG-Y, config ``axes``, a sidecar) rather than defaulted?"""
        return all(p.source.explicit_axes for p in self._parts)

    def read(self, window: tuple[slice, ...]) -> np.ndarray:
        """float32 ``(channels, *window sizes)``; window = one step-1 slice per spatial axis."""
        window = _check_window(tuple(window), self.shape)
        blocks = []
        for part in self._parts:
            if part.channel_axis is None:
                blocks.append(part.source.read(window)[None])
            else:
                w = list(window)
                w.insert(part.channel_axis, slice(None))
                blocks.append(np.moveaxis(part.source.read(tuple(w)), part.channel_axis, 0))
        return blocks[0] if len(blocks) == 1 else np.concatenate(blocks, axis=0)

    def live(self, window: tuple[slice, ...] | None = None) -> np.ndarray | None:
        """Mask over all axes but the last: True where a trace exists (in every stacked file).

        None when every position holds a trace (NumPy inputs, regular SEG-Y). For offsets used as
        channels, a position is live when any of its offset traces exists.
        """
        window = _check_window(tuple(window), self.shape) if window is not None else \
            tuple(slice(0, n) for n in self.shape)
        mask = None
        for part in self._parts:
            w = list(window[:-1])
            if part.channel_axis is not None:
                w.insert(part.channel_axis, slice(None))
            m = part.source.live(tuple(w))
            if m is None:
                continue
            if part.channel_axis is not None and part.channel_axis < m.ndim:
                m = m.any(axis=part.channel_axis)
            mask = m if mask is None else mask & m
        return mask

    def read_traces(self, positions: np.ndarray) -> np.ndarray:
        """float32 ``(channels, n, n_samples)`` of whole traces at flat trace positions.

        ``positions`` index the trace axes (all but the last) in C order, as
        ``np.ravel_multi_index`` gives them; dead traces read as zeros.
        """
        positions = np.asarray(positions, dtype=np.int64).reshape(-1)
        if self.ndim == 1:  # a single trace: every position is that trace
            return np.repeat(self.read((slice(0, self.shape[0]),))[:, None], len(positions), axis=1)
        index = np.unravel_index(positions, self.shape[:-1])
        blocks = []
        for part in self._parts:
            if part.channel_axis is None:
                blocks.append(part.source.read_traces(index)[None])
                continue
            for c in range(part.source.shape[part.channel_axis]):
                idx = list(index)
                idx.insert(part.channel_axis, np.full(len(positions), c))
                blocks.append(part.source.read_traces(tuple(idx))[None])
        return np.concatenate(blocks, axis=0)

    def spacing(self) -> dict[str, tuple[float, str]]:
        """Physical spacing per axis when known, e.g. ``{"sample": (4.0, "ms"), "inline": (25.0, "m")}``."""
        for part in self._parts:
            if isinstance(part.source, SegySource):
                return {a: v for a, v in part.source.file.spacing.items() if a in self.axes}
        if self.meta.sample_interval_us and "sample" in self.axes:
            return {"sample": (self.meta.sample_interval_us / 1000.0, "ms")}
        return {}

    def release(self) -> None:
        """Unmap every file (they are mapped again on the next read); for long sequential scans."""
        for part in self._parts:
            part.source.release()

    def segy_template(self) -> tuple[SegyFile, str | None] | None:
        """The first SEG-Y input and the axis it gives channels from, for writing results back."""
        for part in self._parts:
            if isinstance(part.source, SegySource):
                ch = part.source.axes[part.channel_axis] if part.channel_axis is not None else None
                return part.source.file, ch
        return None


def _part(spec: InputSpec, random_access: bool = False) -> _Part:
    source = open_source(spec, random_access)
    if spec.channels_from is None:
        if isinstance(source, ArraySource) and source.sidecar and "channel" in source.axes:
            return _channels_from(source, "channel")
        return _Part(source, None, (source.label(),))
    return _channels_from(source, spec.channels_from)


def _channels_from(source: Source, axis: str) -> _Part:
    if axis not in source.axes or axis == source.axes[-1]:
        kinds = f"a {source.meta.kind} file" if source.meta.kind != "numpy" else "this array"
        raise DataError(f"channels_from: '{axis}' is not an axis of {kinds} (axes: {', '.join(source.axes)})",
                        where=source.path,
                        fix="use one of its axes other than the last, or remove channels_from")
    a = source.axes.index(axis)
    names = tuple(source.channel_label(axis, i) for i in range(source.shape[a]))
    return _Part(source, a, names)


def open_grid(spec: InputSpec | str | os.PathLike, random_access: bool = False) -> Grid:
    """Open one input as a :class:`Grid` (nothing big is read).

    Example
    -------
    >>> g = open_grid(InputSpec("gathers.sgy", channels_from="offset"))   # doctest: +SKIP
    >>> g.axes, g.channel_names                                          # doctest: +SKIP
    (('inline', 'crossline', 'sample'), ('offset 5', 'offset 15', 'offset 25'))
    """
    return Grid([_part(as_spec(spec), random_access)])


def open_stack(specs: Sequence[InputSpec | str | os.PathLike], random_access: bool = False) -> Grid:
    """Several inputs stacked as channels; their geometries must match.

    Raises
    ------
    DataError
        Naming the file that differs from the first and how (axes, shape, inline/crossline/offset
        numbers, sample interval or start).
    """
    if not specs:
        raise ConfigError("no input files given", fix="name at least one input")
    parts = [_part(as_spec(s), random_access) for s in specs]
    grids = [Grid([p]) for p in parts]
    for g in grids[1:]:
        problem = stack_mismatch(grids[0], g)
        if problem:
            raise DataError(f"cannot stack as channels: {problem}", where=g.sources[0],
                            fix="give inputs with the same geometry (resample or crop them first)")
    return Grid(parts)


def stack_mismatch(ref: Grid, other: Grid) -> str | None:
    """How ``other`` differs from ``ref`` (None when they stack), in words."""
    name = Path(ref.sources[0]).name
    if ref.explicit_axes and other.explicit_axes and other.axes != ref.axes:
        return f"its axes ({', '.join(other.axes)}) differ from {name}'s ({', '.join(ref.axes)})"
    if other.shape != ref.shape:
        return (f"its shape {_shape(other)} differs from {name}'s {_shape(ref)}")
    a, b = ref.meta, other.meta
    for label, x, y in (("inline", a.ilines, b.ilines), ("crossline", a.xlines, b.xlines),
                        ("offset", a.offsets, b.offsets)):
        if x is not None and y is not None and not np.array_equal(x, y):
            return f"its {label} numbers {_numbers(y)} differ from {name}'s {_numbers(x)}"
    if a.sample_interval_us and b.sample_interval_us and a.sample_interval_us != b.sample_interval_us:
        return (f"its sample interval {b.sample_interval_us / 1000:g} ms differs from {name}'s "
                f"{a.sample_interval_us / 1000:g} ms")
    if a.format == b.format == "segy" and a.sample_start_ms != b.sample_start_ms:
        return f"its first sample is at {b.sample_start_ms:g} ms, {name}'s at {a.sample_start_ms:g} ms"
    return None


def _shape(g: Grid) -> str:
    return " × ".join(f"{n} {a}" for a, n in zip(g.axes, g.shape))


def _numbers(v: np.ndarray) -> str:
    r = number_range(v)
    step = f" step {r['step']}" if r["step"] not in (None, 1) else ""
    return f"{r['first']}–{r['last']}{step} ({r['count']})"


# --------------------------------------------------------------------------------------------
# What `geocnn inspect` shows
# --------------------------------------------------------------------------------------------

def describe(grid: Grid, stats_traces: int = 200, seed: int = 0) -> dict:
    """A JSON-able description of a grid: format, shape, axes, ranges, value statistics."""
    from geocnn.normalize import sample_traces  # normalize builds on grid

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
    values = sample_traces(grid, stats_traces, seed)
    if values.size:
        p1, p99 = np.percentile(values, [1, 99])
        info["stats"] = {"traces_sampled": int(values.shape[1]), "min": float(values.min()),
                         "max": float(values.max()), "mean": float(values.mean()),
                         "std": float(values.std()), "p1": float(p1), "p99": float(p99)}
    return info


def inspect_inputs(specs: Sequence[InputSpec | str | os.PathLike], stats_traces: int = 200,
                   stack: bool = False) -> list[dict]:
    """Describe each input; with several, also say whether each stacks with the first.

    With ``stack``, the inputs are opened as one stacked grid, as training does (a geometry
    mismatch is then an error naming the file), and described together.
    """
    if stack:
        return [describe(open_stack(specs), stats_traces)]
    grids = [open_grid(s) for s in specs]
    out = [describe(g, stats_traces) for g in grids]
    if len(grids) > 1:
        for g, info in zip(grids, out):
            problem = stack_mismatch(grids[0], g)
            info["stackable"] = problem is None
            info["stack_problem"] = problem
    return out


__all__ = [
    "FILE_FORMATS", "INPUT_SPEC", "Grid", "GridMeta", "InputSpec", "SEGY_FORMATS", "as_spec", "describe",
    "format_from_suffix", "input_spec", "inspect_inputs", "open_grid", "open_stack", "stack_mismatch",
]
