"""Outputs, by format: one :class:`~geocnn.grids.pending.PendingOutput` class per writable format.

Writing is split in three steps so that prediction can write slab by slab, and several processes
(torchrun ranks) can fill disjoint parts of one output:

1. :func:`prepare` (one process, e.g. rank 0) creates the complete output as a temporary file in the
   destination folder and returns a small, picklable pending output (other processes describe the
   same file with ``prepare(..., attach=pending.tmp)``);
2. any process writes its parts (:meth:`~geocnn.grids.pending.PendingOutput.write_rows`, ``write``);
3. one process calls ``commit`` (after a barrier) to rename the file into place, or ``abort``.

The formats (:data:`OUTPUT_CLASSES`): SEG-Y with the source's headers (:mod:`geocnn.grids.segyout`),
``.npy`` with a JSON sidecar (:mod:`geocnn.grids.npyout`), ``.mdio``/``.zarr`` stores
(:mod:`geocnn.grids.storeout`), netCDF with the input's coordinates (:mod:`geocnn.grids.netcdfout`), miniSEED probability traces
of earthquake records (:mod:`geocnn.grids.seismoout`); and a :class:`PendingSet` writes one file per class of any of them.

Example
-------
>>> pending = prepare("pred.sgy", like=grid, force=True)     # doctest: +SKIP
>>> pending.write_rows(0, values[:, :10])                     # doctest: +SKIP
>>> pending.commit()                                          # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from geocnn import atomic
from geocnn.grids.formats import output_format as output_format
from geocnn.grids.geotiffout import GeoTiffOutput
from geocnn.grids.grid import Grid
from geocnn.grids.netcdfout import NetcdfOutput
from geocnn.grids.npyout import NpyOutput
from geocnn.grids.pending import OutputSpec, PendingOutput, output_spec
from geocnn.grids.segyout import SegyOutput
from geocnn.grids.seismoout import SeismoOutput
from geocnn.grids.sidecar import path_for as sidecar_path
from geocnn.grids.storeout import StoreOutput
from geocnn.grids.tiff import output_family, slice_pattern
from geocnn.grids.tiffstackout import TiffSlicesOutput, TiffStackOutput


class TiffOutput:
    """A ``.tif`` output: a folder of slices for a name with a number field (``ct/slice_{:04d}.tif``), a
    GeoTIFF for a 2D grid read from a georeferenced TIFF, else an OME-TIFF stack
    (:func:`geocnn.grids.tiff.slice_pattern` and :func:`~geocnn.grids.tiff.output_family` say which)."""

    FAMILIES: dict[str, type[PendingOutput]] = {"geotiff": GeoTiffOutput, "stack": TiffStackOutput}

    @classmethod
    def prepare(cls, spec: OutputSpec, attach: str | None = None) -> PendingOutput:
        if slice_pattern(spec.path) is not None:
            return TiffSlicesOutput.prepare(spec, attach)
        return cls.FAMILIES[output_family(spec.like, len(spec.shape))].prepare(spec, attach)


# Format name (geocnn.grids.formats) → the class that writes it.
OUTPUT_CLASSES: dict[str, type[PendingOutput] | type[TiffOutput]] = {
    "segy": SegyOutput,
    "npy": NpyOutput,
    "mdio": StoreOutput,
    "zarr": StoreOutput,
    "tiff": TiffOutput,
    "netcdf": NetcdfOutput,
    "seismo": SeismoOutput,
}


def open_output(spec: OutputSpec, attach: str | None = None) -> PendingOutput:
    """The pending output ``spec`` asks for: its format's class, or a class set (``spec.split``).

    Every kind is created under the same error wrapping (:func:`geocnn.atomic.writing`); each checks
    its final names with :func:`geocnn.atomic.check_new` first.
    """
    with atomic.writing(spec.path):
        if spec.split:
            return PendingSet.prepare(spec, attach)
        return OUTPUT_CLASSES[spec.format.name].prepare(spec, attach)


def prepare(out: str | os.PathLike, like: Grid, channels: int = 1, dtype: str = "float32",
            force: bool = False, *, attach: str | None = None, **options: Any) -> PendingOutput:
    """Create the complete output for a grid shaped like ``like`` in a temporary file.

    Parameters
    ----------
    out
        Final path: ``.sgy``/``.segy`` (needs a SEG-Y input in ``like`` for its headers), ``.npy``, or a
        ``.mdio``/``.zarr`` store.
    like
        The grid the output lines up with (its axes, shape, geometry, metadata).
    channels
        Output channels. SEG-Y takes one, or one per offset when ``like`` used offsets as channels.
    dtype
        ``.npy`` value type (``float32``, ``uint8`` for labels...). SEG-Y is always IEEE float32.
    force
        Replace an existing output (checked now and again at commit).
    attach
        The temporary file another process already prepared: describe it without creating
        anything (torchrun ranks writing parts of one output).
    options
        :class:`~geocnn.grids.pending.OutputSpec` fields (``n_samples``, ``shape``,
        ``sample_interval_us``, ``sample_start_ms``, ``channel_names``, ``sidecar_extra``, ``positions``...).

    Returns
    -------
    PendingOutput
        Write with ``.write_rows(first, values)`` (any process), then ``.commit()``.
    """
    return open_output(output_spec(out, like, channels, dtype, force, **options), attach)


def class_paths(out: str | os.PathLike, classes: Sequence[int]) -> list[Path]:
    """One output name per class: ``pred.sgy`` → ``pred.class-0.sgy``, ``pred.class-1.sgy`` ..."""
    out = Path(out)
    return [out.with_name(f"{out.stem}.class-{k}{out.suffix}") for k in classes]


@dataclass(frozen=True, eq=False)
class PendingSet(PendingOutput):
    """Several outputs written and committed together, channel ``c`` into ``parts[c]`` (one file per
    class). All or none: a failed commit removes the files already renamed into place."""

    parts: tuple[PendingOutput, ...]

    @classmethod
    def prepare(cls, spec: OutputSpec, attach: str | None = None) -> PendingSet:
        """One one-channel output per class number of ``spec.split`` (``NAME.class-K``); ``attach`` is
        another process's :attr:`tmp`."""
        outs = class_paths(spec.path, spec.split)
        tmps = attach.split("\n") if attach is not None else [None] * len(outs)
        parts: list[PendingOutput] = []
        try:
            for c, (out, tmp) in enumerate(zip(outs, tmps)):
                names = spec.channel_names[c:c + 1] if spec.channel_names and len(spec.channel_names) == len(outs) \
                    else None
                part = dataclasses.replace(spec, path=os.fspath(out), channels=1, split=(), channel_names=names)
                parts.append(OUTPUT_CLASSES[part.format.name].prepare(part, tmp))
        except BaseException:
            if attach is None:
                for p in parts:
                    p.abort()
            raise
        return cls(tuple(parts))

    @property
    def path(self) -> str:
        return self.parts[0].path

    @property
    def paths(self) -> list[Path]:
        return [Path(p.path) for p in self.parts]

    @property
    def shape(self) -> tuple[int, ...]:
        return self.parts[0].shape

    @property
    def channels(self) -> int:
        return len(self.parts)

    @property
    def row_block(self) -> int:
        """Rows split between processes in multiples of every part's block."""
        return math.lcm(*(p.row_block for p in self.parts))

    @property
    def tmp(self) -> str:
        """The temporary files, one a line (what other torchrun ranks attach to)."""
        return "\n".join(p.tmp for p in self.parts)

    def write(self, window: tuple[slice, ...], values: np.ndarray) -> None:
        """Channel ``c`` of ``values`` into the ``c``-th output."""
        values = np.asarray(values)
        if values.shape[0] != len(self.parts):
            raise ValueError(f"values with {values.shape[0]} channels for {len(self.parts)} outputs")
        for c, part in enumerate(self.parts):
            part.write(window, values[c:c + 1])

    def commit(self) -> Path:
        done: list[Path] = []
        try:
            for p in self.parts:  # every name is checked before any file is renamed
                atomic.check_new(p.path, p.force)
            for p in self.parts:
                done.append(p.commit())
        except BaseException:
            for path in done:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                    sidecar_path(path).unlink()
            self.abort()
            raise
        return Path(self.path)

    def abort(self) -> None:
        for p in self.parts:
            p.abort()


def write_array(out: str | os.PathLike, like: Grid, values: np.ndarray, *, force: bool = False,
                dtype: str = "float32", channel_names: tuple[str, ...] | None = None) -> Path:
    """Write a whole in-memory array shaped like ``like`` (``(C, *shape)`` or ``shape``) in one go."""
    values = np.asarray(values)
    channels = 1 if values.shape == like.shape else values.shape[0]
    pending = prepare(out, like, channels, dtype, force, n_samples=values.shape[-1], channel_names=channel_names)
    ok = False
    try:
        pending.write_rows(0, values.reshape(channels, *pending.shape))
        ok = True
    finally:
        final = pending.finish(ok)
    return final
