"""TIFF stack outputs: a contiguous OME-TIFF filled row by row through a memory map, or a folder of 2D slices.

:meth:`TiffStackOutput.prepare` has tifffile write the whole file (header and OME metadata with the
input's voxel size, channel names and class names; values zero) under a temporary name; any process then writes its
first-axis rows (``z`` pages of a volume) through a memory map (:func:`geocnn.grids.npyout.write_mapped`),
and :meth:`~geocnn.grids.pending.FileOutput.commit` renames it into place. tifffile, ImageJ/Fiji and
napari open it with the voxel size kept. A voxel size in another length unit (a model in metres) is
written in that unit (OME's ``PhysicalSizeXUnit``); geocnn reads it back in µm.

:class:`TiffSlicesOutput` (an output named ``DIR/NAME{:04d}.tif``, :func:`geocnn.grids.tiff.slice_pattern`)
writes one ImageJ TIFF per ``z`` (``NAME0000.tif``...), its channels as the slice's pages, the voxel size
in µm in each slice's tags (x/y resolution, ImageJ ``spacing`` and ``unit``), as Fiji's *Image Sequence*
expects; the slices go into a temporary sibling folder renamed into place at commit, and geocnn's own
folder reader reads them back as the same volume.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from geocnn import atomic
from geocnn.errors import DataError
from geocnn.grids.npyout import write_mapped
from geocnn.grids.pending import FileOutput, OutputSpec, SingleOutput, check_present, fit_window
from geocnn.grids.storeout import make_folder, move_into_place
from geocnn.grids.tiff import require, slice_pattern
from geocnn.grids.tiffstack import MICRONS

log = logging.getLogger(__name__)

OME_UNITS = {"nm": "nm", "µm": "µm", "um": "µm", "micron": "µm", "mm": "mm", "cm": "cm", "m": "m"}
IMAGEJ_DTYPES = ("uint8", "uint16", "float32")  # what ImageJ's TIFF flavour holds


def _ome_metadata(axes: tuple[str, ...], voxel: dict[str, tuple[float, str]], names: tuple[str, ...] | None,
                  class_names: tuple[str, ...]) -> dict:
    """tifffile's OME metadata for a geocnn output: axis letters, voxel size, channel names (given, or
    ``channel k`` when there are several), class names as the image's JSON description."""
    letters = {"channel": "C", "z": "Z", "y": "Y", "x": "X"}
    meta: dict[str, Any] = {"axes": "".join(letters.get(a, "Q") for a in axes)}
    for axis, (value, unit) in voxel.items():
        if axis in ("x", "y", "z") and unit in OME_UNITS:
            meta[f"PhysicalSize{axis.upper()}"] = value
            meta[f"PhysicalSize{axis.upper()}Unit"] = OME_UNITS[unit]
    if names:
        meta["Channel"] = {"Name": list(names)}
    if class_names:
        meta["Description"] = json.dumps({"class_names": list(class_names)})
    return meta


@dataclass(frozen=True, eq=False)
class TiffStackOutput(FileOutput):
    """A contiguous OME-TIFF being written: ``(channels, *shape)``, or ``shape`` for one channel."""

    offset: int

    @classmethod
    def prepare(cls, spec: OutputSpec, attach: str | None = None) -> TiffStackOutput:
        tifffile = require("tifffile")
        final = atomic.check_new(spec.path, spec.force) if attach is None else Path(spec.path)
        if len(spec.shape) not in (2, 3):
            raise DataError(f"a TIFF output holds a 2D image or a (z, y, x) volume, not {len(spec.shape)} axes",
                            where=spec.path, fix="write this output as .npy")
        dtype = np.dtype(spec.dtype)
        tmp = Path(attach) if attach is not None else atomic.temp_path(final)
        if attach is None:
            axes = ("channel", "z", "y", "x")[4 - len(spec.stored_shape):]
            names = spec.channel_names or (tuple(f"channel {c}" for c in range(spec.channels))
                                           if spec.channels > 1 else None)
            try:
                tifffile.imwrite(tmp, shape=spec.stored_shape, dtype=dtype, ome=True,
                                 metadata=_ome_metadata(axes, voxel_of(spec), names, spec.class_names))
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
        with tifffile.TiffFile(tmp) as tif:
            offset = tif.series[0].dataoffset
        if offset is None:
            raise DataError("tifffile did not write a contiguous TIFF", where=str(tmp))
        return cls(str(final), str(tmp), spec.shape, spec.channels, dtype.str, spec.force, int(offset))

    def write(self, window: tuple[slice, ...], values: np.ndarray) -> None:
        check_present(self.tmp)
        write_mapped(self.tmp, self.offset, np.dtype(self.dtype), self.shape, *fit_window(self.shape, self.channels,
                                                                                            window, values))


def voxel_of(spec: OutputSpec) -> dict[str, tuple[float, str]]:
    """The grid's spacing by the volume's axes ``z``, ``y``, ``x`` in order (a model's ``depth, northing,
    easting`` too)."""
    spacing, axes = spec.like.spacing(), spec.like.axes
    return {v: spacing[a] for v, a in zip(("z", "y", "x")[-len(axes):], axes) if a in spacing}


def microns(voxel: dict[str, tuple[float, str]]) -> dict[str, float]:
    """The voxel sizes in a length unit, in µm (the unit geocnn's TIFF reader gives)."""
    return {a: v * MICRONS[u] for a, (v, u) in voxel.items() if u in MICRONS}


@dataclass(frozen=True, eq=False)
class TiffSlicesOutput(SingleOutput):
    """A folder of 2D slices being written: ``tmp`` (a hidden sibling folder) holds a file per ``z`` written
    so far; :meth:`commit` writes any slice not written (zeros) and renames the folder onto ``path``."""

    pattern: str  # the slice file name, one number field: slice_{:04d}.tif
    voxel: tuple[tuple[str, float], ...]  # (axis, µm) of z, y, x where known
    class_names: tuple[str, ...] = ()

    @classmethod
    def prepare(cls, spec: OutputSpec, attach: str | None = None) -> TiffSlicesOutput:
        require("tifffile")
        folder, pattern = slice_pattern(spec.path)
        if len(spec.shape) != 3:
            raise DataError(f"a folder of slices holds a (z, y, x) volume, not {len(spec.shape)} axes",
                            where=spec.path, fix="write a 2D output as one .tif")
        final = atomic.check_new(folder, spec.force) if attach is None else Path(folder)
        voxel = microns(voxel_of(spec))
        tmp = Path(attach) if attach is not None else make_folder(final)
        return cls(str(final), str(tmp), spec.shape, spec.channels, str(np.dtype(spec.dtype)), spec.force, pattern,
                   tuple((a, float(v)) for a, v in voxel.items()), tuple(spec.class_names))

    def _name(self, z: int) -> Path:
        return Path(self.tmp) / self.pattern.format(z)

    def write(self, window: tuple[slice, ...], values: np.ndarray) -> None:
        check_present(self.tmp)
        window, values = fit_window(self.shape, self.channels, window, values)
        whole = all(s.start == 0 and s.stop == n for s, n in zip(window[1:], self.shape[1:]))
        for k, z in enumerate(range(window[0].start, window[0].stop)):
            if whole:
                page = values[:, k]
            else:  # part of a slice: the rest as written so far
                page = self._read(z)
                page[(slice(None), *window[1:])] = values[:, k]
            self._write(z, page)

    def _read(self, z: int) -> np.ndarray:
        tifffile = require("tifffile")
        path = self._name(z)
        if not path.exists():
            return np.zeros((self.channels, *self.shape[1:]), self.dtype)
        return tifffile.imread(path).reshape(self.channels, *self.shape[1:])

    def _write(self, z: int, page: np.ndarray) -> None:
        """One slice, atomically within the temporary folder (a rewrite never leaves half a file)."""
        tifffile = require("tifffile")
        voxel = dict(self.voxel)
        values = page.astype(self.dtype, copy=False)
        values = values[0] if self.channels == 1 else values
        options: dict[str, Any] = {}
        if "x" in voxel and "y" in voxel:
            options["resolution"] = (1.0 / voxel["x"], 1.0 / voxel["y"])
        if self.dtype in IMAGEJ_DTYPES:
            meta: dict[str, Any] = {"axes": "YX" if self.channels == 1 else "CYX", "unit": "micron"}
            if "z" in voxel:
                meta["spacing"] = voxel["z"]
            if self.class_names:
                meta["Info"] = json.dumps({"class_names": list(self.class_names)})
            options.update(imagej=True, metadata=meta)
        elif "resolution" in options:  # plain TIFF: x/y in the TIFF's own unit, centimetres
            options.update(resolution=(1e4 / voxel["x"], 1e4 / voxel["y"]), resolutionunit="CENTIMETER")
        part = self._name(z).with_name(f".{self._name(z).name}.part")
        tifffile.imwrite(part, values, **options)
        os.chmod(part, atomic.file_mode())
        os.replace(part, self._name(z))

    def commit(self) -> Path:
        check_present(self.tmp)
        for z in range(self.shape[0]):
            if not self._name(z).exists():
                self._write(z, self._read(z))
        final = move_into_place(Path(self.tmp), atomic.check_new(self.path, self.force), self.force)
        log.info("wrote %s (%d slices)", final, self.shape[0])
        return final

    def abort(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(self.tmp)
