"""netCDF and HDF5 variables as sources: gridded earth models, labelled N-D arrays (xarray + h5netcdf).

One variable of a file is the grid: the input's ``key`` names it (``velocity``, or ``group/velocity``
inside an HDF5 group); without ``key`` the file's one data variable is taken. Its named dimensions
are the axes (a few common spellings become the field's words: ``x`` → ``easting``, ``y`` →
``northing``, ``z`` → ``depth``, ``lat``/``lon`` → ``latitude``/``longitude``, ``t`` → ``time``;
the input's ``axes`` override them), its regularly spaced dimension coordinates give the spacing (in
the coordinate's ``units``); an irregular coordinate gives no spacing but its values are kept for the
output. ``_FillValue`` (and NaN) read as zeros, and a trace whose samples are all fill is dead.

When the last two axes are a map (``northing``/``latitude`` then ``easting``/``longitude``) with regularly
spaced coordinates, the variable is a raster (:func:`georef_of_variable`): its pixel-centre coordinates
give an affine transform, and its CF ``grid_mapping`` variable the CRS (``crs_wkt``, GDAL's
``spatial_ref``, an ``epsg_code``, or CF projection parameters: :mod:`geocnn.grids.gridmapping`), so a
2D prediction written as ``.tif`` is a GeoTIFF placed where the model lies. Without a grid mapping the
GeoTIFF has the transform and no CRS (one warning says so).

Reads are lazy: xarray's h5netcdf backend asks HDF5 for one hyperslab per window, and HDF5 reads
only the chunks it touches. Values are xarray's own (``scale_factor``/``add_offset`` applied), as
float32. netCDF3 classic files are read through SciPy (xarray's ``scipy`` engine).

A file is someone else's: before xarray opens it, every dataset's declared size is checked with
h5py (xarray loads dimension coordinates whole), and the variable's shape and chunks against the
bounds of :mod:`geocnn.grids.stores`. xarray and h5netcdf are the optional extra ``geocnn[xarray]``,
imported when a file is first opened, never with :mod:`geocnn.grids`.
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass
from typing import Any

import numpy as np

from geocnn import schema
from geocnn.errors import DataError, GeocnnError
from geocnn.grids.coords import is_map
from geocnn.grids.gridmapping import crs_of, plain
from geocnn.grids.npyfile import check_dtype
from geocnn.grids.sidecar import MARK
from geocnn.grids.sources import DEFAULT_AXES, GridMeta, Source
from geocnn.grids.spec import InputSpec
from geocnn.grids.stores import MAX_CHUNK_BYTES, MissingExtra, check_traces
from geocnn.grids.tiff import GeoRef

log = logging.getLogger(__name__)

EXTRA = "pip install 'geocnn[xarray]'"
# Dimension names as files spell them -> the field's words (others keep their own name).
AXIS_ALIASES = {"x": "easting", "east": "easting", "y": "northing", "north": "northing", "z": "depth",
                "t": "time", "lat": "latitude", "lon": "longitude", "long": "longitude"}
PHONY = "phony_dim_"  # h5netcdf's name for an HDF5 dimension without a dimension scale
MAX_COORDINATE = 1 << 24  # values of a 1D dataset (xarray loads dimension coordinates whole at open)
BLOCK_VALUES = 1 << 22  # values read at once while finding dead traces
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
CDF_MAGIC = (b"CDF\x01", b"CDF\x02", b"CDF\x05")
# What h5py/h5netcdf/xarray raise on a damaged or foreign file.
OPEN_ERRORS = (OSError, ValueError, KeyError, TypeError, IndexError, AttributeError, RuntimeError, ArithmeticError)


def require(module: str) -> Any:
    """Import a package of ``geocnn[xarray]``, or say how to install it (one line)."""
    try:
        return __import__(module)
    except ImportError:
        raise MissingExtra(f"netCDF/HDF5 files need the Python package '{module}', which is not installed",
                           fix=f"install the extra: {EXTRA}") from None


def engine_of(path: str) -> str:
    """xarray's engine for the file: ``h5netcdf`` (netCDF4/HDF5) or ``scipy`` (netCDF3 classic)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
    except FileNotFoundError:
        raise DataError("file not found", where=path, fix="check the path") from None
    except IsADirectoryError:
        raise DataError("is a folder, not a netCDF/HDF5 file", where=path) from None
    if head == HDF5_MAGIC:
        return "h5netcdf"
    if head[:4] in CDF_MAGIC:
        require("scipy")
        return "scipy"
    raise DataError("not a netCDF/HDF5 file (no HDF5 or netCDF signature at its start)", where=path,
                    fix="check the file is complete (netCDF4, netCDF3 classic or HDF5)")


def check_declared(path: str) -> None:
    """Refuse an HDF5 file whose datasets declare more than geocnn reads, before xarray loads any of them."""
    h5py = require("h5py")
    found: list[tuple[str, tuple[int, ...]]] = []

    def visit(name: str, node: Any) -> None:
        if isinstance(node, h5py.Dataset):
            found.append((name, tuple(int(n) for n in node.shape or ())))

    try:
        with h5py.File(path, "r") as f:
            f.visititems(visit)
    except OPEN_ERRORS as exc:
        raise DataError(f"not a readable netCDF/HDF5 file ({_first_line(exc)})", where=path,
                        fix="check the file is complete") from None
    for name, shape in found:
        if len(shape) == 1 and shape[0] > MAX_COORDINATE:
            raise DataError(f"dataset '{name}' declares {shape[0]:,} values along one axis, more than geocnn "
                            f"reads as a coordinate ({MAX_COORDINATE:,})", where=path,
                            fix="check the file is complete, or give a part of it")


def check_sizes(shape: tuple[int, ...], chunks: tuple[int, ...] | None, itemsize: int, where: str) -> None:
    """The bounds of a Zarr store (:func:`geocnn.grids.stores.check_sizes`) on a variable's declared
    trace positions, samples per trace and bytes per chunk (a contiguous variable has no chunks)."""
    check_traces(shape, where, smaller="a smaller file")
    if chunks is not None and int(np.prod(chunks, dtype=object)) * itemsize > MAX_CHUNK_BYTES:
        raise DataError(f"declares chunks of {' × '.join(map(str, chunks))} values, more than geocnn decodes "
                        f"({MAX_CHUNK_BYTES >> 20} MiB each)", where=where, fix="rechunk it (nccopy -c)")


def _first_line(exc: BaseException) -> str:
    return ((str(exc).strip().splitlines() or [type(exc).__name__])[0])[:160]


def open_dataset(path: str, group: str | None = None) -> Any:
    """The file (or one of its groups) as a lazy ``xarray.Dataset``; DataError naming it when unreadable."""
    engine = engine_of(path)
    xr = require("xarray")
    if engine == "h5netcdf":
        require("h5netcdf")
        check_declared(path)
    options = {"phony_dims": "sort"} if engine == "h5netcdf" else {}
    try:
        return xr.open_dataset(path, engine=engine, group=group, cache=False, decode_times=False,
                               decode_timedelta=False, decode_coords="all", mask_and_scale=True, **options)
    except GeocnnError:
        raise
    except OPEN_ERRORS as exc:
        where = path if group is None else f"{path}:{group}"
        raise DataError(f"not a readable netCDF/HDF5 file ({_first_line(exc)})", where=where,
                        fix="check the file is complete (netCDF4, netCDF3 classic or HDF5)") from None


def data_variables(ds: Any) -> list[str]:
    """The variables a grid can be read from: data variables with at least one dimension."""
    return sorted(str(n) for n, v in ds.data_vars.items() if v.ndim >= 1)


def axis_name(dim: str) -> str:
    """A dimension's geocnn axis name (see :data:`AXIS_ALIASES`)."""
    return AXIS_ALIASES.get(dim.lower(), dim)


def axis_names(dims: tuple[str, ...]) -> tuple[str, ...] | None:
    """The axes of a variable's dimensions; None when HDF5 named none (phony dimensions)."""
    if any(d.startswith(PHONY) for d in dims):
        return None
    names = tuple(axis_name(d) for d in dims)
    return names if len(set(names)) == len(names) else dims  # two spellings of one axis: keep the file's


def unit_of(attrs: dict) -> str:
    """A coordinate's unit: its ``units`` attribute, ``days`` of ``days since 2000-01-01``."""
    units = str(attrs.get("units", "")).strip()
    return units.split(" since ")[0].strip() if " since " in units else units


def regular_step(values: np.ndarray) -> float | None:
    """The step of evenly spaced numbers (to 1e-6 of the step), else None."""
    if values.ndim != 1 or len(values) < 2 or values.dtype.kind not in "iuf":
        return None
    steps = np.diff(values.astype(np.float64))
    step = float(steps[0])
    if step == 0 or not np.all(np.abs(steps - step) <= 1e-6 * abs(step)):
        return None
    return step


@dataclass(frozen=True)
class Coordinate:
    """One dimension's coordinate: its values (None without a coordinate variable), unit and attributes."""

    dim: str
    values: np.ndarray | None
    unit: str
    attrs: dict

    @property
    def step(self) -> float | None:
        return regular_step(self.values) if self.values is not None else None


class NetcdfSource(Source):
    """A variable of a netCDF/HDF5 file (see the module docstring)."""

    def __init__(self, spec: InputSpec) -> None:
        self.path, self.spec = spec.path, spec
        self.group, self.key = _split_key(spec.key)
        self._ds: Any = None
        ds = self.dataset
        self.key = self._variable(ds)
        var = ds[self.key]
        self.where = f"{self.path}:{self.key}" if spec.key is not None or self.group else self.path
        check_dtype(var.dtype, self.where)
        self.dims = tuple(str(d) for d in var.dims)
        self.shape = tuple(int(n) for n in var.shape)
        chunks = var.encoding.get("chunksizes")
        check_sizes(self.shape, tuple(chunks) if chunks else None, np.dtype(var.dtype).itemsize, self.where)
        self.attrs = dict(var.attrs)
        self.global_attrs = dict(ds.attrs)
        self.geocnn_output = self.attrs.get("geocnn") == MARK
        self.axes, self.explicit_axes = self._axes(spec)
        self.coordinates = tuple(self._coordinate(ds, d) for d in self.dims)
        self.grid_mapping = var.encoding.get("grid_mapping") or var.attrs.get("grid_mapping")
        self.georef = georef_of_variable(self.axes, self.coordinates, crs_of(ds, self.grid_mapping, self.where))
        self._live: np.ndarray | None = None  # found on first use: it reads every value
        dtype = np.dtype(var.encoding.get("dtype", var.dtype))
        endian = {"=": sys.byteorder, "|": "n/a", "<": "little", ">": "big"}[dtype.byteorder]
        self.meta = GridMeta(kind="gridded", format="netcdf", sample_format=str(dtype.newbyteorder("=")),
                             endian=endian, n_traces=int(np.prod(self.shape[:-1], dtype=np.int64)))

    # ---------------------------------------------------------------- opening

    @property
    def dataset(self) -> Any:
        if self._ds is None:  # after pickling (DataLoader workers): open again
            self._ds = open_dataset(self.path, self.group)
        return self._ds

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_ds"] = None
        return state

    def _variable(self, ds: Any) -> str:
        names = data_variables(ds)
        where = self.path if self.group is None else f"{self.path}:{self.group}"
        if self.key is None:
            if len(names) != 1:
                raise DataError(f"holds {len(names)} data variables ({', '.join(names) or 'none'}): say which",
                                where=where, fix="give key: NAME for this input (--key NAME)")
            return names[0]
        if self.key not in names:
            raise DataError(f"no data variable '{self.key}' in the file", where=where,
                            fix=schema.suggest(self.key, names))
        return self.key

    def _axes(self, spec: InputSpec) -> tuple[tuple[str, ...], bool]:
        ndim = len(self.shape)
        if spec.axes is not None:
            if len(spec.axes) != ndim:
                raise DataError(f"variable has {ndim} dimensions ({', '.join(self.dims)}) but axes names "
                                f"{len(spec.axes)}: [{', '.join(spec.axes)}]", where=self.where,
                                fix="give one name per dimension")
            return tuple(spec.axes), True
        named = axis_names(self.dims)
        if named is not None:
            return named, True
        if ndim not in DEFAULT_AXES:
            raise DataError(f"variable has {ndim} unnamed dimensions {self.shape}; name them", where=self.where,
                            fix="give axes: [...] for this input, e.g. [depth, northing, easting]")
        return DEFAULT_AXES[ndim], False

    def _coordinate(self, ds: Any, dim: str) -> Coordinate:
        """The dimension coordinate of ``dim`` (xarray loaded it at open: its size was checked)."""
        if dim not in ds.coords or ds[dim].dims != (dim,):
            return Coordinate(dim, None, "", {})
        coord = ds[dim]
        values = np.asarray(coord.values)
        return Coordinate(dim, values if values.dtype.kind in "iufb" else None, unit_of(coord.attrs), dict(coord.attrs))

    # ---------------------------------------------------------------- reading

    def _get(self, window: tuple[Any, ...]) -> np.ndarray:
        """The variable's values in ``window`` (xarray's decoding); a read that fails is one DataError."""
        try:
            return np.asarray(self.dataset[self.key].variable[window].values)
        except (GeocnnError, MemoryError):
            raise
        except Exception as exc:  # noqa: BLE001 - HDF5 or a filter failing on the file's bytes
            raise DataError(f"values cannot be read ({type(exc).__name__}: {_first_line(exc)})", where=self.where,
                            fix="the file is damaged: copy or write it again") from None

    def read(self, window: tuple[slice, ...]) -> np.ndarray:
        values = np.array(self._get(window), dtype=np.float32)
        values[np.isnan(values)] = 0.0  # _FillValue and NaN: zeros, as dead SEG-Y traces read
        return values

    def read_traces(self, index: tuple[np.ndarray, ...]) -> np.ndarray:
        if not index:
            return self.read((slice(None),)).reshape(1, -1)
        positions = np.stack([np.asarray(i, dtype=np.int64).reshape(-1) for i in index], axis=1)
        values = np.empty((len(positions), self.shape[-1]), dtype=np.float32)
        for k, p in enumerate(positions):  # one trace at a time: HDF5 reads the chunks it touches
            values[k] = self.read((*(slice(int(i), int(i) + 1) for i in p), slice(None))).reshape(-1)
        return values

    def live(self, window: tuple[slice, ...]) -> np.ndarray | None:
        mask = self.live_mask()
        return None if mask is None else mask[window]

    def live_mask(self) -> np.ndarray | None:
        """Positions of the trace axes holding some value that is not fill; None when all do.

        Found once, on first use, reading the variable in blocks of first-axis rows."""
        if self._live is None:
            self._live = self._find_live()
        return None if self._live.all() else self._live

    def _find_live(self) -> np.ndarray:
        if len(self.shape) < 2:
            return np.ones((), bool)
        live = np.ones(self.shape[:-1], bool)
        var = self.dataset[self.key]
        if var.dtype.kind != "f":  # xarray decodes a _FillValue to NaN in floats only
            return live
        rows = max(1, BLOCK_VALUES // max(1, int(np.prod(self.shape[1:], dtype=np.int64))))
        for start in range(0, self.shape[0], rows):
            block = self._get((slice(start, start + rows),))
            live[start:start + rows] = ~np.isnan(block).all(axis=-1)
        return live

    def spacing(self) -> dict[str, tuple[float, str]]:
        """The step of each regularly spaced dimension coordinate, in its unit."""
        return {a: (c.step, c.unit) for a, c in zip(self.axes, self.coordinates) if c.step is not None}

    def axis_values(self) -> dict[str, tuple[np.ndarray, str]]:
        """The numeric dimension coordinates, in their ``units``."""
        return {a: (c.values, c.unit) for a, c in zip(self.axes, self.coordinates)
                if c.values is not None and c.values.dtype.kind in "iuf"}

    def label(self) -> str:
        stem = os.path.basename(self.path).rsplit(".", 1)[0]
        return f"{stem}:{self.key}"

    def channel_label(self, axis: str, index: int) -> str:
        names = self.attrs.get("channel_names")
        a = self.axes.index(axis)
        if axis == "channel" and names is not None and len(np.atleast_1d(names)) == self.shape[a]:
            return str(np.atleast_1d(names)[index])
        values = self.coordinates[a].values
        return f"{axis} {values[index]}" if values is not None else f"{axis} {index}"


def georef_of_variable(axes: tuple[str, ...], coordinates: tuple[Coordinate, ...], crs: str | None) -> GeoRef | None:
    """Where a variable whose last two axes are a map lies: the affine transform of its regularly spaced
    pixel-centre coordinates (pixel edges half a step out), and ``crs``; None for any other variable.

    Examples
    --------
    >>> rows = Coordinate("y", np.array([4200095.0, 4200085.0]), "m", {})
    >>> cols = Coordinate("x", np.array([500005.0, 500015.0, 500025.0]), "m", {})
    >>> georef_of_variable(("northing", "easting"), (rows, cols), "EPSG:32633").transform
    (10.0, 0.0, 500000.0, 0.0, -10.0, 4200100.0)
    """
    if len(axes) < 2 or not is_map(axes[-2], axes[-1]):
        return None
    rows, cols = coordinates[-2], coordinates[-1]
    if rows.step is None or cols.step is None:
        return None
    a, e = cols.step, rows.step
    c, f = float(cols.values[0]) - a / 2, float(rows.values[0]) - e / 2
    return GeoRef(crs, (a, 0.0, c, 0.0, e, f), None, False)


def _split_key(key: str | None) -> tuple[str | None, str | None]:
    """``group/sub/variable`` -> (``group/sub``, ``variable``)."""
    if key is None or "/" not in key.strip("/"):
        return None, key.strip("/") if key else key
    group, name = key.strip("/").rsplit("/", 1)
    return group, name


def describe_file(source: NetcdfSource) -> dict:
    """What ``geocnn inspect`` adds for a netCDF/HDF5 file: its variables, the coordinates of the one read
    and their spacing, and the attributes."""
    ds = source.dataset
    variables = {str(n): {"dims": [str(d) for d in v.dims], "shape": [int(s) for s in v.shape],
                          "dtype": str(v.dtype)} for n, v in ds.data_vars.items()}
    coords = {}
    for axis, c in zip(source.axes, source.coordinates):
        entry: dict[str, Any] = {"axis": axis, "unit": c.unit}
        if c.values is not None and len(c.values):
            entry.update(first=c.values[0].item(), last=c.values[-1].item(), step=c.step)
        coords[c.dim] = entry
    live = source.live_mask()
    return {"variable": source.key, "group": source.group, "variables": variables, "coordinates": coords,
            "attributes": _plain(source.attrs), "global_attributes": _plain(source.global_attrs),
            "dead_traces": 0 if live is None else int(live.size - np.count_nonzero(live))}


def _plain(attrs: dict) -> dict:
    """Attributes as JSON-ready values (NumPy numbers and arrays -> Python)."""
    return {k: v if isinstance(v, (str, int, float, bool, list)) or v is None else str(v)
            for k, v in plain(attrs).items()}
