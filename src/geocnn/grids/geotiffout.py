"""GeoTIFF outputs: rows memory-mapped while they are written, one tiled, compressed GeoTIFF at commit.

Rows are written into a temporary ``.npy`` beside the output (any process, any order, through a memory map:
:func:`geocnn.grids.npyout.write_mapped`); :meth:`GeoTiffOutput.commit` streams it, a block of rows at a
time, into a tiled, deflate-compressed GeoTIFF with the input's CRS and transform, dead pixels of the
input (nodata, internal mask) as nodata (NaN for probabilities, 255 for ``uint8`` labels), channel names
as band descriptions and a ``channel_names`` tag, the class names (a classifying model's labels or
probabilities) as a ``class_names`` tag (a JSON list: label value k is ``class_names[k]``), then renames it into place. A GeoTIFF holds the input's
raster: an output of another size (a score map) is refused, naming ``.npy`` instead.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from geocnn import atomic
from geocnn.errors import DataError
from geocnn.grids.geotiff import open_dataset
from geocnn.grids.npyout import create_temp, data_offset, write_mapped
from geocnn.grids.pending import FileOutput, OutputSpec, check_present, fit_window
from geocnn.grids.tiff import GeoRef, georef_of, require

log = logging.getLogger(__name__)

TILE = 256  # output tile side (pixels)
LABEL_NODATA = 255  # uint8 label outputs: classes 0..254, dead pixels 255


def _nodata(dtype: np.dtype) -> float | None:
    """The value dead pixels are written as: NaN for floats, 255 for uint8 labels, none otherwise."""
    if dtype.kind == "f":
        return float("nan")
    return LABEL_NODATA if dtype == np.uint8 else None


def _writable_crs(rasterio, crs: str | None, source: str, warn: bool) -> str | None:
    """The input's CRS if GDAL can write it, else None (with one warning): a damaged ``crs_wkt`` that
    nothing checked on reading (pyproj missing) must not fail the GeoTIFF after the whole prediction."""
    if crs is None:
        return None
    try:
        rasterio.crs.CRS.from_user_input(crs)
    except rasterio.errors.CRSError as exc:
        if warn:
            first = (str(exc).strip().splitlines() or ["not a CRS"])[0][:160]
            log.warning("%s: its CRS cannot be written to a GeoTIFF (%s); the CRS is left out", source, first)
        return None
    return crs


@dataclass(frozen=True, eq=False)
class GeoTiffOutput(FileOutput):
    """A GeoTIFF being written: rows land in the temporary ``.npy`` :attr:`tmp`; :meth:`commit` makes the GeoTIFF."""

    georef: GeoRef
    mask_from: str | None  # the input whose dead pixels are written as nodata
    names: tuple[str, ...]
    offset: int = 0
    class_names: tuple[str, ...] = ()

    @classmethod
    def prepare(cls, spec: OutputSpec, attach: str | None = None) -> GeoTiffOutput:
        rasterio = require("rasterio")
        final = atomic.check_new(spec.path, spec.force) if attach is None else Path(spec.path)
        georef = georef_of(spec.like)
        if len(spec.shape) != 2 or spec.shape != spec.like.shape or georef is None:
            raise DataError(f"a GeoTIFF output is a raster of its input's size {spec.like.shape}, not {spec.shape}",
                            where=spec.path, fix="write this output as .npy")
        source = next(s for s in spec.like.inputs if getattr(s, "georef", None) is georef)
        given = georef.crs
        georef = replace(georef, crs=_writable_crs(rasterio, given, source.path, warn=attach is None))
        if given is None and attach is None:  # (a damaged one was named by _writable_crs)
            log.warning("%s: the input gives no CRS (a netCDF without a usable grid mapping, a TIFF with a "
                        "transform only); the GeoTIFF has its transform and no CRS", spec.path)
        tmp = Path(attach) if attach is not None else create_temp(final, spec.stored_shape, spec.dtype, ".npy")
        names = spec.channel_names or tuple(f"channel {c}" for c in range(spec.channels))
        return cls(str(final), str(tmp), spec.shape, spec.channels, str(np.dtype(spec.dtype)), spec.force, georef,
                   source.path if georef.masked else None, tuple(names), data_offset(tmp), tuple(spec.class_names))

    def _rows(self, start: int, stop: int) -> np.ndarray:
        """``(channels, rows, x)`` of the temporary array, mapped for the call."""
        dtype = np.dtype(self.dtype)
        whole = np.memmap(self.tmp, dtype=dtype, mode="r", offset=self.offset,
                          shape=(self.channels, *self.shape))
        return np.array(whole[:, start:stop])

    def write(self, window: tuple[slice, ...], values: np.ndarray) -> None:
        check_present(self.tmp)
        write_mapped(self.tmp, self.offset, np.dtype(self.dtype), self.shape, *fit_window(self.shape, self.channels,
                                                                                            window, values))

    def commit(self) -> Path:
        rasterio = require("rasterio")
        final = atomic.check_new(self.path, self.force)
        check_present(self.tmp)
        dtype = np.dtype(self.dtype)
        nodata = _nodata(dtype) if self.mask_from else None
        out = atomic.temp_path(final)
        profile = dict(driver="GTiff", width=self.shape[1], height=self.shape[0], count=self.channels, dtype=dtype.name,
                       crs=self.georef.crs, transform=rasterio.Affine(*self.georef.transform), nodata=nodata,
                       tiled=True, blockxsize=TILE, blockysize=TILE, compress="deflate")
        mask = open_dataset(self.mask_from) if self.mask_from else None
        try:
            with atomic.writing(final), rasterio.open(out, "w", **profile) as dst:
                for start in range(0, self.shape[0], TILE):
                    stop = min(start + TILE, self.shape[0])
                    block = self._rows(start, stop)
                    win = rasterio.windows.Window(0, start, self.shape[1], stop - start)
                    if mask is not None and nodata is not None:
                        block[:, mask.dataset_mask(window=win) == 0] = nodata
                    dst.write(block, window=win)
                for c, name in enumerate(self.names):
                    dst.set_band_description(c + 1, name)
                dst.update_tags(channel_names=",".join(self.names))
                if self.class_names:
                    dst.update_tags(class_names=json.dumps(list(self.class_names)))
            os.replace(out, final)
        except BaseException:
            out.unlink(missing_ok=True)
            raise
        finally:
            if mask is not None:
                mask.close()
        os.unlink(self.tmp)
        log.info("wrote %s", final)
        return final

    def abort(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.tmp)
