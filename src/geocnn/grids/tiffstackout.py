"""TIFF stack outputs: a contiguous OME-TIFF, filled row by row through a memory map.

:meth:`TiffStackOutput.prepare` has tifffile write the whole file (header and OME metadata with the
input's voxel size, channel names and class names; values zero) under a temporary name; any process then writes its
first-axis rows (``z`` pages of a volume) through a memory map (:func:`geocnn.grids.npyout.write_mapped`),
and :meth:`~geocnn.grids.pending.FileOutput.commit` renames it into place. tifffile, ImageJ/Fiji and
napari open it with the voxel size kept.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from geocnn import atomic
from geocnn.errors import DataError
from geocnn.grids.npyout import write_mapped
from geocnn.grids.pending import FileOutput, OutputSpec, check_present, fit_window
from geocnn.grids.tiff import require


def _ome_metadata(axes: tuple[str, ...], voxel: dict[str, tuple[float, str]], names: tuple[str, ...] | None,
                  class_names: tuple[str, ...]) -> dict:
    """tifffile's OME metadata for a geocnn output: axis letters, voxel size, channel names (given, or
    ``channel k`` when there are several), class names as the image's JSON description."""
    letters = {"channel": "C", "z": "Z", "y": "Y", "x": "X"}
    meta: dict[str, Any] = {"axes": "".join(letters.get(a, "Q") for a in axes)}
    for axis, (value, unit) in voxel.items():
        if axis in ("x", "y", "z") and unit == "µm":
            meta[f"PhysicalSize{axis.upper()}"] = value
            meta[f"PhysicalSize{axis.upper()}Unit"] = "µm"
    if names:
        meta["Channel"] = {"Name": list(names)}
    if class_names:
        meta["Description"] = json.dumps({"class_names": list(class_names)})
    return meta


@dataclass(frozen=True, eq=False)
class TiffStackOutput(FileOutput):
    """A contiguous OME-TIFF being written: ``(channels, *shape)``, or ``shape`` for one channel."""

    path: str
    tmp: str
    shape: tuple[int, ...]
    channels: int
    dtype: str
    force: bool
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
                                 metadata=_ome_metadata(axes, spec.like.spacing(), names, spec.class_names))
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
