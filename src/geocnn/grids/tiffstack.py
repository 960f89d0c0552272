"""TIFF stacks through tifffile: multi-page TIFF, OME-TIFF, ImageJ hyperstacks and folders of 2D slices as ``(z, y, x)``.

* **Reading** (:class:`TiffStackSource`): the file's axes become ``(channel, z, y, x)`` without those it
  lacks — pages (``Z``, or ``I``/``Q``/``T``) are ``z``, a ``C`` or samples-per-pixel ``S`` axis is
  ``channel`` (channels are also several stacks given as inputs), a single page is ``(y, x)``. A folder
  or glob of 2D slices is one ``z`` per file in natural order (``slice_2`` before ``slice_10``), a slice's
  pages its channels (an ImageJ ``CYX`` slice, as geocnn writes them). An
  uncompressed contiguous file is memory-mapped; any other is read page by page, only the pages a
  window touches. 8/16/32-bit integers and floats are read (the dtype rule of
  :func:`geocnn.grids.npyfile.check_dtype`).
* **Voxel size** (:meth:`TiffStackSource.spacing`): OME ``PhysicalSizeX/Y/Z`` (and their units), else
  ImageJ's ``spacing``/``unit`` with the resolution tags for ``x``/``y``, else the resolution tags in
  centimetres or inches, converted to µm.

TIFF stack outputs are :mod:`geocnn.grids.tiffstackout`'s.

tifffile is the extra ``geocnn[tiff]``, imported when such a file is first opened.
"""

from __future__ import annotations

import logging
import os
import struct
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np

from geocnn.errors import DataError
from geocnn.grids.npyfile import check_dtype
from geocnn.grids.sources import GridMeta, Source
from geocnn.grids.spec import InputSpec
from geocnn.grids.tiff import check_declared, is_slices, require, slice_paths

log = logging.getLogger(__name__)

# tifffile's axis letters -> geocnn's axes
AXES = {"Z": "z", "I": "z", "Q": "z", "T": "z", "C": "channel", "S": "channel", "Y": "y", "X": "x"}
ORDER = ("channel", "z", "y", "x")  # the order a source presents its axes in
MICRONS = {"µm": 1.0, "um": 1.0, "micron": 1.0, "\\u00B5m": 1.0, "nm": 1e-3, "mm": 1e3, "cm": 1e4, "m": 1e6}
RESOLUTION_UNIT_UM = {2: 25400.0, 3: 10000.0}  # TIFF ResolutionUnit: inch, centimetre


def _tiff(path: str) -> Any:
    """tifffile's TiffFile, with a damaged file as one DataError naming it."""
    tifffile = require("tifffile")
    try:
        return tifffile.TiffFile(path)
    except (tifffile.TiffFileError, ValueError, OSError, IndexError, struct.error) as exc:
        raise DataError(f"not a readable TIFF ({str(exc)[:160]})", where=path,
                        fix="check the file is complete") from None


def _microns(unit: str | None) -> float | None:
    return MICRONS.get((unit or "µm").strip().replace("\u03bc", "µ"))


def _resolution(page: Any, scale: float | None) -> dict[str, float]:
    """x/y pixel sizes from a page's resolution tags (pixels per unit), times ``scale`` µm per unit."""
    out: dict[str, float] = {}
    for axis, tag in (("x", "XResolution"), ("y", "YResolution")):
        value = page.tags.get(tag)
        if value is None or scale is None:
            continue
        num, den = value.value
        if num > 0 and den > 0:
            out[axis] = scale * den / num
    return out


def voxel_size(tif: Any) -> dict[str, float]:
    """Voxel size in µm per axis (``z``, ``y``, ``x``) from OME, ImageJ or resolution-tag metadata."""
    if tif.is_ome and tif.ome_metadata:
        try:
            pixels = ET.fromstring(tif.ome_metadata).find(".//{*}Pixels")
        except ET.ParseError:
            pixels = None
        if pixels is not None:
            out = {}
            for axis in "XYZ":
                value, scale = pixels.get(f"PhysicalSize{axis}"), _microns(pixels.get(f"PhysicalSize{axis}Unit"))
                if value is not None and scale is not None and float(value) > 0:
                    out[axis.lower()] = float(value) * scale
            return out
    page = tif.pages.first
    if tif.is_imagej and tif.imagej_metadata:
        ij = tif.imagej_metadata
        scale = _microns(ij.get("unit"))
        out = _resolution(page, scale)
        if ij.get("spacing") and scale is not None:
            out["z"] = float(ij["spacing"]) * scale
        return out
    unit = page.tags.get("ResolutionUnit")
    return _resolution(page, RESOLUTION_UNIT_UM.get(int(unit.value)) if unit is not None else None)


class TiffStackSource(Source):
    """A multi-page TIFF, OME-TIFF or folder/glob of slices (see the module docstring)."""

    def __init__(self, spec: InputSpec) -> None:
        self.path, self.spec = spec.path, spec
        self._tifs: dict[int, Any] = {}
        self._map: np.ndarray | None = None
        if is_slices(spec.path):
            self.files = slice_paths(spec.path)
            tif = self._open(0)
            series = tif.series[0]  # a slice's pages, if several, are its channels (ImageJ's CYX)
            file_axes, file_shape = "Z" + series.axes, (len(self.files), *series.shape)
            self.voxel = voxel_size(tif)
            self.contiguous = False
            page = series.keyframe
        else:
            self.files = [spec.path]
            tif = self._open(0)
            series = tif.series[0]
            file_axes, file_shape = series.axes, tuple(series.shape)
            self.voxel = voxel_size(tif)
            self.contiguous = series.dataoffset is not None  # tifffile sets it for uncompressed contiguous data
            page = series.keyframe
        where = self.path
        check_declared(file_shape, where)
        check_dtype(page.dtype, where)
        names = [AXES.get(a) for a in file_axes]
        if None in names or len(set(names)) != len(names) or not 2 <= len(names) <= 4:
            raise DataError(f"the TIFF's axes {file_axes} {file_shape} are not (channel, z, y, x)", where=where,
                            fix="save it as a (z, y, x) stack, channels as a C axis or as separate files")
        self.file_axes, self.file_shape, self.dtype = tuple(names), tuple(int(n) for n in file_shape), np.dtype(page.dtype)
        self.page_ndim = page.ndim  # trailing file axes held by one page (y, x[, samples])
        self.axes = tuple(a for a in ORDER if a in names)
        self.shape = tuple(self.file_shape[names.index(a)] for a in self.axes)
        self.channel_axis = "channel" if "channel" in self.axes else None
        kind = "volume" if "z" in self.axes else "image"
        self.meta = GridMeta(kind=kind, format="tiff", sample_format=str(self.dtype), endian="n/a",
                             n_traces=int(np.prod(self.shape[:-1], dtype=np.int64)))
        if self.contiguous:
            self._check_length(series)
            self.dataoffset, self.byteorder = int(series.dataoffset), tif.byteorder

    def _check_length(self, series: Any) -> None:
        end = int(series.dataoffset) + int(np.prod(self.file_shape, dtype=np.int64)) * self.dtype.itemsize
        if end > os.path.getsize(self.path):
            raise DataError(f"the TIFF is truncated: its image data ends at byte {end:,}, the file at "
                            f"{os.path.getsize(self.path):,}", where=self.path, fix="copy or write it again")

    def _open(self, k: int) -> Any:
        tif = self._tifs.get(k)
        if tif is None:
            if len(self._tifs) > 64:  # a folder of slices: keep few files open
                for t in self._tifs.values():
                    t.close()
                self._tifs = {}
            tif = self._tifs[k] = _tiff(self.files[k])
        return tif

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_tifs"], state["_map"] = {}, None
        return state

    # ---------------------------------------------------------------- reading

    def _file_window(self, window: tuple[slice, ...]) -> tuple[slice, ...]:
        """A window over the presented axes, as one over the file's axes (missing axes whole)."""
        by_axis = dict(zip(self.axes, (slice(*s.indices(n)[:2]) for s, n in zip(window, self.shape))))
        return tuple(by_axis.get(a, slice(0, n)) for a, n in zip(self.file_axes, self.file_shape))

    def _present(self, values: np.ndarray) -> np.ndarray:
        """File axis order -> presented order (channel, z, y, x)."""
        return np.moveaxis(values, [self.file_axes.index(a) for a in self.axes], range(len(self.axes)))

    def read(self, window: tuple[slice, ...]) -> np.ndarray:
        fw = self._file_window(window)
        if self.contiguous:
            if self._map is None:
                self._map = np.memmap(self.path, dtype=self.dtype.newbyteorder(self.byteorder), mode="r",
                                      offset=self.dataoffset, shape=self.file_shape)
            return np.array(self._present(self._map[fw]), dtype=np.float32)
        return np.asarray(self._present(self._pages(fw)), dtype=np.float32)

    def _pages(self, fw: tuple[slice, ...]) -> np.ndarray:
        """The window read page by page: only the pages it touches are decoded."""
        lead = len(self.file_shape) - self.page_ndim
        sizes = [s.stop - s.start for s in fw]
        out = np.zeros(sizes, np.float32)
        for idx in np.ndindex(*sizes[:lead]):
            at = tuple(s.start + i for s, i in zip(fw[:lead], idx))
            out[idx] = self._page(at)[fw[lead:]]
        return out

    def _page(self, at: tuple[int, ...]) -> np.ndarray:
        """One page's values (its own axes), a damaged one as a DataError naming the file."""
        if is_slices(self.path):  # one file per z, its pages the slice's other leading axes
            k, rest, lead = at[0], at[1:], self.file_shape[1:len(at)]
        else:
            k, rest, lead = 0, at, self.file_shape[:len(at)]
        number = int(np.ravel_multi_index(rest, lead)) if rest else 0
        tif = self._open(k)
        try:
            page = tif.series[0].pages[number]
            if page is None:
                return np.zeros(self.file_shape[len(at):], self.dtype)
            values = page.asarray()
        except Exception as exc:  # noqa: BLE001 - tifffile's or a codec's error on damaged bytes
            raise DataError(f"page {number} cannot be read ({type(exc).__name__}: {str(exc)[:120]})",
                            where=self.files[k], fix="the file is damaged: copy or write it again") from None
        if values.shape != self.file_shape[len(at):]:
            raise DataError(f"a page is shaped {values.shape}, the stack's {self.file_shape[len(at):]}",
                            where=self.files[k], fix="give slices of one size")
        return values

    def read_traces(self, index: tuple[np.ndarray, ...]) -> np.ndarray:
        idx = [np.asarray(i, dtype=np.int64).reshape(-1) for i in index]
        out = np.empty((len(idx[0]) if idx else 1, self.shape[-1]), np.float32)
        for k in range(out.shape[0]):
            window = tuple(slice(int(i[k]), int(i[k]) + 1) for i in idx) + (slice(0, self.shape[-1]),)
            out[k] = self.read(window).reshape(-1)
        return out

    def spacing(self) -> dict[str, tuple[float, str]]:
        return {a: (v, "µm") for a, v in self.voxel.items() if a in self.axes}

    def geometry(self) -> dict:
        return {"voxel_size_um": {a: self.voxel[a] for a in ("z", "y", "x") if a in self.voxel},
                "files": len(self.files), "reads": "memory-mapped" if self.contiguous else "page by page"}

    def release(self) -> None:
        self._map = None

    def label(self) -> str:
        return Path(self.path.rstrip("/")).stem.replace("*", "")

    def channel_label(self, axis: str, index: int) -> str:
        return f"{axis} {index}"
