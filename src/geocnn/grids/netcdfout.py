"""netCDF outputs (netCDF4/HDF5, what xarray opens) with the input's coordinates and attributes.

The prepare -> write -> commit/abort protocol of every output (:class:`geocnn.grids.pending.PendingOutput`):
:meth:`NetcdfOutput.prepare` creates the whole file as a temporary sibling with h5netcdf — the input
variable's dimensions and their coordinate variables (values and attributes), its other small coordinates
(a ``crs`` grid mapping, 2D ``lat``/``lon``), the input file's global attributes, and an empty, chunked,
compressed variable ``prediction``. An input of another format gives what it knows: inline/crossline/offset
numbers and sample times, a GeoTIFF's pixel-centre map coordinates and its CRS as the grid mapping
``spatial_ref``, a voxel size as positions from 0 in its unit; each write puts a block of values into the chunks it covers (one
first-axis row per chunk, so row blocks never share a chunk); the commit renames the file into place.

``prediction`` has the input's dimensions, led by ``channel`` when several values are written per position
(probabilities: one per class). Labels are unsigned integers with CF's ``flag_values``/``flag_meanings``
(the class names); values and probabilities are float32 with ``_FillValue`` NaN. Its attributes carry the
``.npy`` sidecar's facts (channel names, sources, and the whole sidecar as JSON), so geocnn reads the
output back with its channels.

HDF5 files are not written by several processes at once: torchrun ranks take turns (an exclusive
``flock`` on the temporary file around each write), and HDF5's own locking is off for those writes.
"""

from __future__ import annotations

import fcntl
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from geocnn import atomic
from geocnn.grids.coords import DEGREES, MAP_AXES, map_coordinate, north_up
from geocnn.grids.grid import Grid
from geocnn.grids.netcdf import NetcdfSource, require
from geocnn.grids.pending import FileOutput, OutputSpec, check_present, fit_window
from geocnn.grids.tiff import GeoRef

log = logging.getLogger(__name__)

VARIABLE = "prediction"
CHANNEL = "channel"
CHUNK = 256  # chunk length along axes other than the first (one row along the first)
GRID_MAPPING = "spatial_ref"  # the CRS variable of an output made from a GeoTIFF (rioxarray's name)
MAX_COPIED = 1 << 22  # values of a non-dimension coordinate copied to the output (2D lat/lon, crs)


@dataclass(frozen=True, eq=False)
class NetcdfOutput(FileOutput):
    """A netCDF file being written: ``prediction`` shaped ``(channel, *shape)``, or ``shape`` for one channel."""

    force: bool = False
    variable: str = VARIABLE

    @classmethod
    def prepare(cls, spec: OutputSpec, attach: str | None = None) -> NetcdfOutput:
        final = atomic.check_new(spec.path, spec.force) if attach is None else Path(spec.path)
        pending = cls(str(final), attach or "", tuple(spec.shape), spec.channels, str(np.dtype(spec.dtype)),
                      spec.force)
        if attach is not None:
            return pending
        tmp = atomic.temp_path(final)
        pending = cls(str(final), str(tmp), pending.shape, pending.channels, pending.dtype, spec.force)
        try:
            _create(tmp, spec)
        except BaseException:
            pending.abort()
            raise
        return pending

    def write(self, window: tuple[slice, ...], values: np.ndarray) -> None:
        """Write ``values`` (``(channels, *window)``, or the window's shape for one channel) into their chunks."""
        check_present(self.tmp)
        window, values = fit_window(self.shape, self.channels, window, values)
        h5py = require("h5py")
        values = values.astype(self.dtype, copy=False)
        with open(self.tmp, "rb+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # one writer at a time: HDF5 is not written concurrently
            with h5py.File(self.tmp, "r+", locking=False) as f:
                if self.channels == 1:
                    f[self.variable][window] = values[0]
                else:
                    f[self.variable][(slice(None), *window)] = values


def _source(like: Grid) -> NetcdfSource | None:
    """The netCDF input whose dimensions the output takes (the first one, when it has the grid's axes)."""
    for source in like.inputs:
        if isinstance(source, NetcdfSource) and source.geocnn_output is False and \
                tuple(a for a in source.axes) == like.axes:
            return source
    for source in like.inputs:
        if isinstance(source, NetcdfSource) and tuple(a for a in source.axes if a != CHANNEL) == like.axes:
            return source
    return None


def _dims(spec: OutputSpec, source: NetcdfSource | None) -> tuple[str, ...]:
    """The output's dimension names: the input file's, else the grid's axis names."""
    if source is None:
        return spec.like.axes
    return tuple(d for d, a in zip(source.dims, source.axes) if a in spec.like.axes)


def _coordinates(spec: OutputSpec, source: NetcdfSource | None, dims: tuple[str, ...]) -> dict[str, tuple[np.ndarray, dict]]:
    """Dimension coordinate values and attributes, where their length matches the output's axis."""
    out: dict[str, tuple[np.ndarray, dict]] = {}
    if source is not None:
        by_dim = {c.dim: c for c in source.coordinates}
        for dim, n in zip(dims, spec.shape):
            c = by_dim.get(dim)
            if c is not None and c.values is not None and len(c.values) == n:
                out[dim] = (c.values, c.attrs)
        return out
    m, spacing, georef = spec.like.meta, spec.spacing(), spec.georef()
    for axis, n in zip(dims, spec.shape):
        known = {"inline": m.ilines, "crossline": m.xlines, "offset": m.offsets}.get(axis)
        if known is not None and len(known) == n:
            out[axis] = (np.asarray(known), {})
        elif axis == "sample" and spec.interval_us:
            out[axis] = (spec.start_ms + np.arange(n) * spec.interval_us / 1000.0, {"units": "ms"})
        elif georef is not None and axis in MAP_AXES and north_up(georef):
            out[axis] = _map_coordinate(georef, axis, n, spacing[axis][1] if axis in spacing else "")
        elif axis in spacing:  # a voxel size: positions from 0 in its unit
            out[axis] = (np.arange(n) * spacing[axis][0], {"units": spacing[axis][1]})
    return out


def _map_coordinate(georef: GeoRef, axis: str, n: int, unit: str) -> tuple[np.ndarray, dict]:
    """Pixel-centre map coordinates of a north-up raster along ``x`` or ``y`` (CF's projection coordinates)."""
    c = map_coordinate(georef, axis, n, unit)
    return c.values, {"units": unit, "standard_name": c.long_name if unit == DEGREES else MAP_AXES[axis][4]}


def _grid_mapping(f: Any, georef: GeoRef | None) -> str | None:
    """A GeoTIFF input's CRS as a CF grid-mapping variable (``crs_wkt``, and GDAL's ``spatial_ref`` and
    ``GeoTransform``), so GDAL, QGIS and rioxarray place the output; its name, or None."""
    if georef is None or georef.crs is None:
        return None
    var = f.create_variable(GRID_MAPPING, (), dtype="i4")
    a, b, c, d, e, g = georef.transform
    var.attrs.update({"crs_wkt": georef.crs, "spatial_ref": georef.crs,
                      "GeoTransform": " ".join(str(v) for v in (c, a, b, g, d, e))})
    return GRID_MAPPING


def _attr(value: Any) -> Any:
    """A value netCDF can hold as an attribute (lists -> arrays, None and mappings -> JSON text)."""
    if isinstance(value, (list, tuple)):
        if value and all(isinstance(v, str) for v in value):
            return np.array(value, dtype=object)
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value) and value:
            return np.asarray(value)
        return json.dumps(value)
    if value is None or isinstance(value, (dict, bool)):
        return json.dumps(value)
    return value


def _prediction_attrs(spec: OutputSpec, source: NetcdfSource | None) -> dict[str, Any]:
    side = spec.sidecar()
    attrs: dict[str, Any] = {"long_name": "geocnn prediction", "geocnn": side["geocnn"],
                             "channel_names": _attr(side["channel_names"]), "source": _attr(side["source"]),
                             "geocnn_sidecar": json.dumps(side)}
    classes = spec.class_names or side.get("class_names")
    if np.dtype(spec.dtype).kind in "iu" and classes:
        attrs["flag_values"] = np.arange(len(classes), dtype=spec.dtype)
        attrs["flag_meanings"] = " ".join(str(c).replace(" ", "_") for c in classes)
        attrs["class_names"] = _attr(list(classes))
    if source is not None and source.grid_mapping:  # xarray keeps it in the variable's encoding
        attrs["grid_mapping"] = source.grid_mapping
    return attrs


def _chunks(stored: tuple[int, ...], channels: int) -> tuple[int, ...]:
    spatial = stored[1:] if channels > 1 else stored
    rows = (1,) if len(spatial) > 1 else (min(spatial[0], 1 << 16),)
    return ((1,) if channels > 1 else ()) + rows + tuple(min(n, CHUNK) for n in spatial[1:])


def _create(tmp: Path, spec: OutputSpec) -> None:
    """The complete file, values unwritten (fill): dimensions, coordinates, attributes, ``prediction``."""
    h5netcdf = require("h5netcdf")
    source = _source(spec.like)
    dims = _dims(spec, source)
    stored_dims = ((CHANNEL,) if spec.channels > 1 else ()) + dims
    with h5netcdf.File(tmp, "w") as f:
        if source is not None:
            f.attrs.update({k: v for k, v in source.global_attrs.items()})
        f.dimensions = dict(zip(stored_dims, spec.stored_shape))
        for dim, (values, attrs) in _coordinates(spec, source, dims).items():
            var = f.create_variable(dim, (dim,), data=np.asarray(values))
            var.attrs.update(attrs)
        if source is not None:
            _copy_other_coordinates(f, source, dict(zip(dims, spec.shape)))
        mapping = _grid_mapping(f, spec.georef()) if source is None else None
        kind = np.dtype(spec.dtype).kind
        var = f.create_variable(VARIABLE, stored_dims, dtype=spec.dtype, chunks=_chunks(spec.stored_shape, spec.channels),
                                compression="gzip", compression_opts=1, shuffle=True,
                                fillvalue=np.nan if kind == "f" else None)
        var.attrs.update(_prediction_attrs(spec, source))
        if mapping is not None:
            var.attrs["grid_mapping"] = mapping


def _copy_other_coordinates(f: Any, source: NetcdfSource, sizes: dict[str, int]) -> None:
    """The input's small non-dimension coordinates whose dimensions the output has (a ``crs``, 2D lat/lon)."""
    ds = source.dataset
    for name, coord in ds.coords.items():
        name = str(name)
        if name in sizes or name in f.variables:
            continue
        fits = all(d in sizes and sizes[d] == n for d, n in zip(coord.dims, coord.shape))
        if not fits or coord.size > MAX_COPIED or coord.dtype.kind not in "iufb":
            log.info("%s: coordinate '%s' is not copied to the output (its dimensions differ, or it is large)",
                     source.path, name)
            continue
        var = f.create_variable(name, tuple(str(d) for d in coord.dims), data=np.asarray(coord.values))
        var.attrs.update(dict(coord.attrs))
