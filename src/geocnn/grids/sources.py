"""Sources: one file each (SEG-Y through :mod:`geocnn.grids.segy`, ``.npy``/``.npz`` through a memmap).

A :class:`Source` has its own axes (the channel axis, if any, still among them), reads float32
windows and whole traces, and knows its :class:`GridMeta`. :mod:`geocnn.grids.grid` stacks sources
into the channels-first :class:`~geocnn.grids.grid.Grid` that training and prediction see.
"""

from __future__ import annotations

import abc
import logging
import struct
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from geocnn import schema
from geocnn.errors import DataError
from geocnn.grids import sidecar
from geocnn.grids.cache import decoded
from geocnn.grids.npyfile import NPZ_ERRORS, check_numbers
from geocnn.grids.segy import BIG_READ, RAW_FORMATS, open_segy
from geocnn.grids.spec import InputSpec
from geocnn.grids.tiff import GeoRef

log = logging.getLogger(__name__)

DEFAULT_AXES = {1: ("sample",), 2: ("trace", "sample"), 3: ("inline", "crossline", "sample")}


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


# --------------------------------------------------------------------------------------------
# Sources: one file each
# --------------------------------------------------------------------------------------------

class Source(abc.ABC):
    """One file's data with its own axes (the channel axis, if any, still among them)."""

    path: str
    spec: InputSpec
    axes: tuple[str, ...]
    shape: tuple[int, ...]
    explicit_axes: bool = True
    geocnn_output: bool = False  # written by geocnn (its channel axis, if any, gives channels)
    meta: GridMeta
    channel_axis: str | None = None  # an axis the file itself says holds channels (a GeoTIFF's bands)
    georef: GeoRef | None = None  # where a raster lies: a GeoTIFF's, or one kept in a sidecar

    @abc.abstractmethod
    def read(self, window: tuple[slice, ...]) -> np.ndarray:
        """float32 values of a window over this source's own axes."""

    @abc.abstractmethod
    def read_traces(self, index: tuple[np.ndarray, ...]) -> np.ndarray:
        """float32 ``(n, n_samples)``: whole traces at integer positions of all axes but the last."""

    def live(self, window: tuple[slice, ...]) -> np.ndarray | None:
        """Mask over this source's trace axes (all axes but ``sample``), None = all live."""
        return None

    @property
    def masked(self) -> bool:
        """Some single sample may be missing (a GeoTIFF's nodata or internal mask): see :meth:`valid`."""
        return False

    def valid(self, window: tuple[slice, ...]) -> np.ndarray | None:
        """Per-sample mask of a window over this source's axes less its channel axis: True where a
        sample holds data; None when every sample does (:attr:`masked` is False)."""
        return None

    def release(self) -> None:
        """Unmap files; they are mapped again on the next read."""
        return None  # a default: sources without maps have nothing to release

    def label(self) -> str:
        return Path(self.path).stem

    def spacing(self) -> dict[str, tuple[float, str]]:
        """Physical spacing per axis the file declares (pixel size, voxel size), e.g. ``{"x": (10.0, "m")}``."""
        return {}

    def axis_values(self) -> dict[str, tuple[np.ndarray, str]]:
        """Positions the file itself gives its axes (a netCDF's coordinate variables): axis -> (values,
        unit). Pictures and xarray label those axes with them (:func:`geocnn.grids.coords.located`)."""
        return {}

    def geometry(self) -> dict:
        """What ``geocnn inspect`` adds for this format (CRS and bounds, voxel size...), JSON-able."""
        return {}


class SegySource(Source):
    """A SEG-Y file through :class:`geocnn.grids.segy.SegyFile` (samples from the decoded cache if any)."""

    def __init__(self, spec: InputSpec, random_access: bool = False) -> None:
        self.path = spec.path
        self.spec = spec
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
            path = decoded(spec, self.file)
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

    @property
    def raw_format(self) -> tuple[int, str] | None:
        """(SEG-Y format code, byte order '>' or '<') when :meth:`read_raw` gives words another
        decoder can take (IBM, integers; no decoded cache in use), else None."""
        layout = self.file.layout
        if self.cache_path is not None or layout.format not in RAW_FORMATS:
            return None
        return layout.format, ">" if layout.endian == "big" else "<"

    def read_raw(self, window: tuple[slice, ...]) -> np.ndarray:
        """Samples of a window as stored in the file (see :meth:`SegyFile.read_raw`)."""
        return self.file.read_raw(window)

    def release(self) -> None:
        self.file.release()
        self._cached = None

    def channel_label(self, axis: str, index: int) -> str:
        if axis == "offset" and self.meta.offsets is not None:
            return f"offset {self.meta.offsets[index]}"
        return f"{axis} {index}"


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
        side = sidecar.read(spec.path) if fmt == "npy" else None
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
        self.georef = sidecar.georef_of(side)

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
        except NPZ_ERRORS as exc:
            raise DataError(f"not a readable {self.fmt} file ({exc})", where=where,
                            fix="check the file is complete; save it with numpy.save") from None
        check_numbers(array, where)
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

    def spacing(self) -> dict[str, tuple[float, str]]:
        return sidecar.spacing_of(self.sidecar)

    def channel_label(self, axis: str, index: int) -> str:
        names = (self.sidecar or {}).get("channel_names")
        if axis == "channel" and isinstance(names, list) and len(names) == self.shape[self.axes.index(axis)]:
            return str(names[index])
        return f"{axis} {index}"

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_array"] = None  # a memmap would be pickled by value: map it again instead
        return state
