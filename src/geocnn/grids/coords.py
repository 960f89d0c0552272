"""Coordinates of a grid's axes, in the words and units of its format: the one mapping pictures and xarray share.

What :meth:`geocnn.grids.grid.Grid.to_xarray` labels its dimensions with and what pictures put on their
axes, read from what the file says, first rule that applies:

* inline/crossline/offset numbers (SEG-Y trace headers, a MDIO store's coordinates, a geocnn ``.npy``
  sidecar's number ranges); sample times in ms from the sample interval and delay;
* the values the file gives an axis itself (a netCDF coordinate variable, in its ``units``);
* map coordinates of a north-up raster's ``x``/``y`` (a GeoTIFF's transform, or one a sidecar kept):
  pixel-centre easting/northing in the CRS's unit (longitude/latitude in ° for a geographic CRS);
* positions from the spacing the file declares (a TIFF stack's voxel size: ``z``/``y``/``x`` in µm);

an axis the file says nothing about is numbered by index. The other way, :func:`numbers_of` takes a
coordinate back to inline/crossline/offset numbers when it holds integers, so an array given in
memory carries them into the output's sidecar. NumPy only (no xarray: the caller holds it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from geocnn.grids.sources import GridMeta, Source
from geocnn.grids.tiff import GeoRef

# axis -> the GridMeta field and sidecar key holding its numbers
NUMBERED = {"inline": "ilines", "crossline": "xlines", "offset": "offsets"}
SAMPLE = "sample"
# a north-up raster's map axes: where the step and the origin are in the affine transform (a, b, c, d, e, f),
# the name of the axis in a projected and in a geographic CRS, and CF's standard name
MAP_AXES = {"x": (0, 2, "easting", "longitude", "projection_x_coordinate"),
            "y": (4, 5, "northing", "latitude", "projection_y_coordinate")}
DEGREES = "°"
# a map's axes in the field's words: rows along northing/latitude, columns along easting/longitude
MAP_ROWS, MAP_COLUMNS = ("northing", "latitude"), ("easting", "longitude")


@dataclass(frozen=True)
class Coordinate:
    """One axis's coordinate values, with the units and long name a plot labels it with."""

    axis: str
    values: np.ndarray
    units: str = ""
    long_name: str = ""

    @property
    def attrs(self) -> dict[str, str]:
        """xarray/CF attributes: ``units`` and ``long_name`` (only those known)."""
        return {k: v for k, v in (("units", self.units), ("long_name", self.long_name)) if v}


def from_range(r: Mapping | None, count: int) -> np.ndarray | None:
    """The numbers of a sidecar's ``{"first", "last", "step", "count"}`` range, when evenly spaced
    and as many as the axis has (a score map's coarser axis keeps its index)."""
    if not isinstance(r, Mapping) or r.get("step") is None or r.get("count") != count:
        return None
    return int(r["first"]) + int(r["step"]) * np.arange(count, dtype=np.int64)


def coordinates(axes: tuple[str, ...], shape: tuple[int, ...], meta: GridMeta,
                described: Mapping | None = None, located: Mapping[str, Coordinate] | None = None
                ) -> tuple[Coordinate, ...]:
    """One :class:`Coordinate` per axis, from ``meta`` and else the ``described`` sidecar/attributes,
    else the physical positions ``located`` gives (:func:`located`).

    Examples
    --------
    >>> meta = GridMeta("post-stack", "segy", sample_interval_us=4000, sample_start_ms=100.0,
    ...                 ilines=np.array([10, 11]), xlines=np.array([20, 22, 24]))
    >>> [(c.axis, c.values.tolist(), c.units) for c in coordinates(("inline", "crossline", "sample"), (2, 3, 3), meta)]
    [('inline', [10, 11], ''), ('crossline', [20, 22, 24], ''), ('sample', [100.0, 104.0, 108.0], 'ms')]
    """
    return tuple(_coordinate(a, n, meta, described or {}, located or {}) for a, n in zip(axes, shape))


def _coordinate(axis: str, n: int, meta: GridMeta, described: Mapping, located: Mapping[str, Coordinate]
                ) -> Coordinate:
    if axis in NUMBERED:
        known = getattr(meta, NUMBERED[axis])
        values = np.asarray(known) if known is not None and len(known) == n else \
            from_range(described.get(NUMBERED[axis]), n)
        if values is not None:
            return Coordinate(axis, values, long_name=f"{axis} number")
    if axis == SAMPLE and meta.sample_interval_us:
        step = meta.sample_interval_us / 1000.0
        return Coordinate(axis, meta.sample_start_ms + step * np.arange(n), "ms", "time")
    if axis in located and len(located[axis].values) == n:
        return located[axis]
    return Coordinate(axis, np.arange(n), long_name=f"{axis} index")


def located(source: Source, axes: tuple[str, ...], shape: tuple[int, ...]) -> dict[str, Coordinate]:
    """Physical positions a source gives the grid's ``axes``: the file's own coordinate values, map
    coordinates of a north-up raster, else positions from its declared spacing (see the module docstring).

    Examples
    --------
    >>> class Scene(Source):  # a 10 m raster whose north-west corner is at (500000, 4200000)
    ...     georef = GeoRef(None, (10.0, 0.0, 500000.0, 0.0, -10.0, 4200000.0), None, False)
    ...     def spacing(self): return {"x": (10.0, "m"), "y": (10.0, "m")}
    ...     def read(self, window): ...
    ...     def read_traces(self, index): ...
    >>> c = located(Scene(), ("y", "x"), (2, 3))
    >>> c["y"].long_name, c["y"].values.tolist(), c["x"].long_name, c["x"].values.tolist(), c["x"].units
    ('northing', [4199995.0, 4199985.0], 'easting', [500005.0, 500015.0, 500025.0], 'm')
    """
    given, spacing, georef = source.axis_values(), source.spacing(), source.georef
    out: dict[str, Coordinate] = {}
    for axis, n in zip(axes, shape):
        unit = spacing[axis][1] if axis in spacing else ""
        if axis in given and len(given[axis][0]) == n:
            out[axis] = Coordinate(axis, np.asarray(given[axis][0]), given[axis][1], axis)
        elif georef is not None and axis in MAP_AXES and north_up(georef):
            out[axis] = map_coordinate(georef, axis, n, unit)
        elif axis in spacing and axis not in NUMBERED and axis != SAMPLE:  # those keep numbers or times
            out[axis] = Coordinate(axis, spacing[axis][0] * np.arange(n, dtype=np.float64), unit, axis)
    return out


def is_map(rows: str, columns: str) -> bool:
    """Two axes, in grid order, are a map (rows along northing/latitude, columns along
    easting/longitude): what a netCDF raster is written as, and what pictures draw north up.

    Examples
    --------
    >>> is_map("northing", "easting"), is_map("latitude", "longitude"), is_map("easting", "northing")
    (True, True, False)
    """
    return rows in MAP_ROWS and columns in MAP_COLUMNS


def north_up(georef: GeoRef) -> bool:
    """The raster's rows run along y and its columns along x (no rotation in the transform)."""
    return georef.transform[1] == georef.transform[3] == 0


def map_coordinate(georef: GeoRef, axis: str, n: int, unit: str) -> Coordinate:
    """Pixel-centre map coordinates of a north-up raster along ``x`` or ``y``: easting/northing, or
    longitude/latitude when the unit is degrees."""
    step, origin, projected, geographic, _ = MAP_AXES[axis]
    a, c = georef.transform[step], georef.transform[origin]
    return Coordinate(axis, c + a * (np.arange(n, dtype=np.float64) + 0.5), unit,
                      geographic if unit == DEGREES else projected)


def numbers_of(values: np.ndarray) -> np.ndarray | None:
    """A coordinate as integer inline/crossline/offset numbers, None when it holds other values."""
    v = np.asarray(values)
    if v.ndim != 1 or v.size == 0 or v.dtype.kind not in "iuf" or not np.all(np.isfinite(v)):
        return None
    return v.astype(np.int64) if np.all(v == np.round(v)) else None


def sample_axis_of(values: np.ndarray) -> tuple[float, float] | None:
    """(interval in µs, start in ms) of evenly spaced sample times in ms; None otherwise."""
    v = np.asarray(values, dtype=np.float64) if np.asarray(values).dtype.kind in "iuf" else None
    if v is None or v.ndim != 1 or len(v) < 2:
        return None
    steps = np.diff(v)
    if not np.allclose(steps, steps[0], rtol=1e-6, atol=1e-9) or steps[0] <= 0:
        return None
    return float(steps[0]) * 1000.0, float(v[0])
