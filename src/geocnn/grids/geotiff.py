"""GeoTIFF and Cloud-Optimised GeoTIFF through rasterio: a 2D raster ``(y, x)`` whose bands are channels.

* **Reading** (:class:`GeoTiffSource`): axes ``(band, y, x)``, the band axis giving the channels (named by
  the band descriptions, else ``band 1``...); the pixel size from the transform is the spacing of ``y``
  and ``x`` (in the CRS's units). A window is one rasterio windowed read: GDAL reads only the blocks
  (tiles or strips) the window touches. Pixels marked by nodata or an internal mask read as 0 and
  are dead (:meth:`GeoTiffSource.valid`): never a patch centre, never scored, left out of the
  normalisation statistics, written as nodata.

GeoTIFF outputs are :mod:`geocnn.grids.geotiffout`'s.

rasterio is the extra ``geocnn[geo]``, imported when such a file is first opened.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

import numpy as np

from geocnn.errors import DataError
from geocnn.grids.npyfile import check_dtype
from geocnn.grids.sources import GridMeta, Source
from geocnn.grids.spec import InputSpec
from geocnn.grids.tiff import GeoRef, check_declared, require

log = logging.getLogger(__name__)


def open_dataset(path: str) -> Any:
    """rasterio's dataset, with a damaged file as one DataError naming it."""
    rasterio = require("rasterio")
    try:
        return rasterio.open(path)
    except rasterio.errors.RasterioIOError as exc:
        first = (str(exc).strip().splitlines() or ["unreadable"])[0]
        raise DataError(f"not a readable GeoTIFF ({first[:160]})", where=path,
                        fix="check the file is complete (gdalinfo FILE)") from None


class GeoTiffSource(Source):
    """A georeferenced TIFF (see the module docstring)."""

    def __init__(self, spec: InputSpec) -> None:
        self.path, self.spec = spec.path, spec
        self._ds: Any = None
        self._lock = threading.Lock()
        ds = self.dataset
        where = self.path
        check_declared((ds.count, ds.height, ds.width), where)
        for dt in set(ds.dtypes):
            check_dtype(np.dtype(dt), where)
        rasterio = require("rasterio")
        masked = ds.nodata is not None or any(
            flags != [rasterio.enums.MaskFlags.all_valid] for flags in ds.mask_flag_enums)
        self.georef = GeoRef(ds.crs.to_wkt() if ds.crs else None, tuple(float(v) for v in tuple(ds.transform)[:6]),
                             None if ds.nodata is None else float(ds.nodata), masked)
        self.crs_name = ds.crs.to_string() if ds.crs else None
        self.bounds = tuple(float(v) for v in ds.bounds)
        self.blocks = tuple(ds.block_shapes[0])
        self.descriptions = tuple(ds.descriptions)
        self.axes, self.shape = ("band", "y", "x"), (int(ds.count), int(ds.height), int(ds.width))
        self.channel_axis = "band"
        self.meta = GridMeta(kind="raster", format="tiff", sample_format=str(np.dtype(ds.dtypes[0])),
                             endian="n/a", n_traces=int(ds.height))

    @property
    def dataset(self) -> Any:
        if self._ds is None:  # after pickling (DataLoader workers): open again
            self._ds = open_dataset(self.path)
        return self._ds

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_ds"], state["_lock"] = None, None
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def _window(self, y: slice, x: slice) -> Any:
        rasterio = require("rasterio")
        return rasterio.windows.Window(x.start, y.start, x.stop - x.start, y.stop - y.start)

    def read(self, window: tuple[slice, ...]) -> np.ndarray:
        bands, y, x = (slice(*s.indices(n)[:2]) for s, n in zip(window, self.shape))
        indexes = list(range(bands.start + 1, bands.stop + 1))
        win = self._window(y, x)
        with self._lock:  # one GDAL handle: reads from the prediction's reader thread take turns
            try:
                values = self.dataset.read(indexes, window=win, out_dtype="float32")
                valid = self.dataset.dataset_mask(window=win) > 0 if self.georef.masked else None
            except Exception as exc:  # noqa: BLE001 - GDAL's error on a damaged block
                raise DataError(f"a block cannot be read ({type(exc).__name__}: {exc})", where=self.path,
                                fix="the file is damaged: copy or convert it again") from None
        if valid is not None:
            values[:, ~valid] = 0.0  # dead pixels read as zeros, as dead SEG-Y traces do
        return values

    @property
    def masked(self) -> bool:
        return self.georef.masked

    def valid(self, window: tuple[slice, ...]) -> np.ndarray | None:
        """``(y, x)`` window: True where a pixel holds data (not nodata, not masked); None when every pixel does."""
        if not self.georef.masked:
            return None
        y, x = (slice(*s.indices(n)[:2]) for s, n in zip(window, self.shape[1:]))
        with self._lock:
            return self.dataset.dataset_mask(window=self._window(y, x)) > 0

    def read_traces(self, index: tuple[np.ndarray, ...]) -> np.ndarray:
        bands, rows = (np.asarray(i, dtype=np.int64).reshape(-1) for i in index)
        out = np.empty((len(rows), self.shape[-1]), np.float32)
        for k, (b, r) in enumerate(zip(bands, rows)):
            out[k] = self.read((slice(b, b + 1), slice(r, r + 1), slice(0, self.shape[-1])))[0, 0]
        return out

    def spacing(self) -> dict[str, tuple[float, str]]:
        a, b, _, d, e, _ = self.georef.transform
        unit = self._unit()
        return {"x": (float(np.hypot(a, d)), unit), "y": (float(np.hypot(b, e)), unit)}

    def _unit(self) -> str:
        if not self.crs_name:
            return ""
        crs = require("rasterio").crs.CRS.from_user_input(self.crs_name)
        return "°" if crs.is_geographic else (crs.linear_units if crs.linear_units not in ("unknown", "metre") else "m")

    def geometry(self) -> dict:
        left, bottom, right, top = self.bounds
        return {"crs": self.crs_name, "bounds": {"left": left, "bottom": bottom, "right": right, "top": top},
                "transform": list(self.georef.transform), "nodata": self.georef.nodata,
                "blocks": f"{self.blocks[0]} × {self.blocks[1]}"}

    def release(self) -> None:
        return None  # GDAL keeps its own bounded block cache

    def label(self) -> str:
        return Path(self.path).stem

    def channel_label(self, axis: str, index: int) -> str:
        name = self.descriptions[index] if index < len(self.descriptions) else None
        return name or f"band {index + 1}"
