"""``.npy`` outputs with a JSON sidecar, written in parts (:class:`~geocnn.grids.pending.PendingOutput`).

The temporary file holds the complete array from the start (header written, values zero and
sparse); a write maps just the rows it touches, per channel, so memory stays at the write's size.
The sidecar (axes, sample axis, sources, channel names) is written at commit, just before the rename.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from geocnn import atomic
from geocnn.errors import OutputExistsError
from geocnn.grids.pending import FileOutput, OutputSpec, check_present, fit_window
from geocnn.grids.sidecar import path_for as sidecar_path


@dataclass(frozen=True, eq=False)
class NpyOutput(FileOutput):
    """A ``.npy`` being written: ``(channels, *shape)``, or ``shape`` for one channel."""

    force: bool = False
    data_offset: int = 0  # where the values start in the file (after the .npy header)
    sidecar: dict = field(default_factory=dict)

    @classmethod
    def prepare(cls, spec: OutputSpec, attach: str | None = None) -> NpyOutput:
        final = atomic.check_new(spec.path, spec.force) if attach is None else Path(spec.path)
        side = sidecar_path(final)
        if side.exists() and not spec.force and attach is None:
            raise OutputExistsError("the output's JSON sidecar already exists", where=str(side),
                                    fix="choose another output name or pass --force")
        tmp = Path(attach) if attach is not None else create_temp(final, spec.stored_shape, spec.dtype)
        return cls(str(final), str(tmp), spec.shape, spec.channels, str(np.dtype(spec.dtype)), spec.force,
                   data_offset(tmp), spec.sidecar())

    def write(self, window: tuple[slice, ...], values: np.ndarray) -> None:
        check_present(self.tmp)
        write_mapped(self.tmp, self.data_offset, np.dtype(self.dtype), self.shape,
                     *fit_window(self.shape, self.channels, window, values))

    def _beside(self, final: Path) -> list[Path]:
        return [atomic.write_json(sidecar_path(final), self.sidecar, force=True)]


def write_mapped(path: str, offset: int, dtype: np.dtype, shape: tuple[int, ...], window: tuple[slice, ...],
                 values: np.ndarray) -> None:
    """Write ``values`` ``(channels, *window sizes)`` into a C-order ``(channels, *shape)`` array stored raw at
    ``offset`` of ``path``, mapping just the first-axis rows the window touches, one channel at a time (memory
    stays at the write's size). ``.npy``, OME-TIFF and GeoTIFF outputs all write through here."""
    rows = window[0]
    if rows.stop <= rows.start:
        return
    row_items = int(np.prod(shape[1:], dtype=np.int64))
    for c in range(values.shape[0]):
        first_row = c * shape[0] + rows.start
        block = np.memmap(path, dtype=dtype, mode="r+", offset=offset + first_row * row_items * dtype.itemsize,
                          shape=(rows.stop - rows.start, *shape[1:]))
        block[(slice(None), *window[1:])] = values[c].astype(dtype, copy=False)
        del block


def create_temp(final: Path, shape: tuple[int, ...], dtype: str, suffix: str | None = None) -> Path:
    """The temporary ``.npy`` beside ``final``: header written, values zero (sparse); writers map what they
    write. ``suffix`` names it for another format's output that is assembled from it at commit (GeoTIFF)."""
    tmp = atomic.temp_path(final, suffix)
    try:
        created = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.dtype(dtype), shape=shape)
        del created
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def data_offset(path: Path) -> int:
    """Bytes before the values of a ``.npy`` file (its magic and header)."""
    with open(path, "rb") as fh:
        version = np.lib.format.read_magic(fh)
        if version == (1, 0):
            np.lib.format.read_array_header_1_0(fh)
        else:
            np.lib.format.read_array_header_2_0(fh)
        return fh.tell()
