"""``geocnn convert``: SEG-Y -> ``.npy`` and ``.npy`` -> SEG-Y, block by block in bounded memory.

* SEG-Y -> ``.npy``: the grid's axis order (inline, crossline, [offset,] sample; or trace, sample),
  float32 values equal to what segyio reads, dead traces of irregular surveys as zeros, plus the
  JSON sidecar (axes, sample interval, source).
* ``.npy``/``.npz`` -> SEG-Y: headers from ``template`` (a SEG-Y file with the same geometry),
  samples as IEEE float.
* SEG-Y -> SEG-Y: the same traces and headers re-encoded as IEEE float (e.g. from IBM float).
* TIFF (GeoTIFF, stacks) <-> ``.npy``/``.zarr``/TIFF, every band or channel kept; ``template`` (a GeoTIFF)
  puts an array back onto a scene's CRS and transform.
* SEG-Y -> MDIO and back (``.mdio`` made from SEG-Y): ``mdio``'s own converters
  (:mod:`geocnn.grids.mdioconvert`); SEG-Y -> ``.zarr`` and MDIO/Zarr -> SEG-Y with ``template``:
  block by block like the rest.
* Between any other pair of array formats (NumPy, Zarr, MDIO, TIFF, netCDF): every channel, with the
  input's spacing, a GeoTIFF's CRS and transform (sidecar, store attributes, a netCDF's coordinates and
  grid mapping) where the output holds them. Only a SEG-Y output needs trace headers: a template, or a
  SEG-Y input; without one it is one line saying so (``tests/test_convert_matrix.py`` tries every pair).

Memory is one block of whole rows of the first axis (about :data:`BLOCK_BYTES`), whatever the
file size: reads and writes map only the block they touch.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from geocnn.errors import DataError
from geocnn.grids import mdioconvert, writer
from geocnn.grids.grid import Grid, open_grid
from geocnn.grids.spec import InputSpec, format_from_suffix
from geocnn.progress import SILENT, Reporter

log = logging.getLogger(__name__)

BLOCK_BYTES = 16 << 20
# An input format without trace headers, as the convert error names it.
HEADERLESS = {"npy": "a NumPy array", "npz": "a NumPy archive", "zarr": "a Zarr array",
              "mdio": "this MDIO dataset (not made from SEG-Y)", "netcdf": "a netCDF/HDF5 variable"}


@dataclass(frozen=True)
class ConvertResult:
    """What :func:`convert` wrote."""

    source: str
    output: str
    format: str  # npy | segy
    axes: tuple[str, ...]
    shape: tuple[int, ...]
    traces: int


def convert(src: str | os.PathLike, dst: str | os.PathLike, *, template: str | os.PathLike | None = None,
            force: bool = False, spec: InputSpec | None = None, template_spec: InputSpec | None = None,
            reporter: Reporter = SILENT, block_bytes: int = BLOCK_BYTES) -> ConvertResult:
    """Convert ``src`` to ``dst`` (format from the suffixes).

    Parameters
    ----------
    src, dst
        Input and output files: SEG-Y -> ``.npy``, ``.npy``/``.npz`` -> SEG-Y (needs ``template``),
        or SEG-Y -> SEG-Y (IEEE float).
    template
        SEG-Y whose headers and geometry the output SEG-Y takes (NumPy input only).
    force
        Replace an existing output.
    spec, template_spec
        Reading options for the input and the template (header bytes, endian, axes, npz key);
        their ``path`` is replaced by ``src``/``template``.
    reporter
        Progress (``convert`` task, in traces).

    Example
    -------
    >>> convert("volume.sgy", "volume.npy")                              # doctest: +SKIP
    >>> convert("pred.npy", "pred.sgy", template="volume.sgy")          # doctest: +SKIP
    """
    src_spec = _with_path(spec, src)
    src_fmt, dst_fmt = src_spec.resolved_format, writer.output_format(dst)
    if src_fmt == "segy":
        if template is not None:
            raise DataError("--template is for NumPy inputs; a SEG-Y input is its own template",
                            where=str(src))
        grid = open_grid(src_spec)
        if dst_fmt == "mdio":  # mdio's own converter: every header kept, so the dataset converts back
            return _result(grid, mdioconvert.segy_to_mdio(grid, src_spec, dst, force), dst_fmt)
        return _copy(grid, grid, dst, force, reporter, block_bytes, dst_fmt)
    if src_fmt == "mdio" and dst_fmt == "segy" and template is None and mdioconvert.has_segy_headers(str(src)):
        _check_one_channel(open_grid(src_spec))
        out = mdioconvert.mdio_to_segy(str(src), dst, force, src_spec)
        return _result(open_grid(src_spec), out, dst_fmt)
    if "tiff" in (src_fmt, dst_fmt):
        return _convert_tiff(src_spec, dst, template, template_spec, force, reporter, block_bytes, dst_fmt)
    if dst_fmt != "segy":  # between array formats: the input is its own geometry
        if template is not None:
            raise DataError("--template is for SEG-Y outputs (their headers)", where=str(template),
                            fix="leave --template out")
        grid = open_grid(src_spec)
        return _copy(grid, grid, dst, force, reporter, block_bytes, dst_fmt, grid.channels)
    if template is None:
        raise DataError(f"{HEADERLESS.get(src_fmt, 'this input')} holds no SEG-Y trace headers, so a SEG-Y "
                        "output takes them from a template", where=str(src),
                        fix="pass --template SOURCE.sgy (the SEG-Y survey it was computed from)")
    if format_from_suffix(template) != "segy":
        raise DataError("the template must be a SEG-Y file", where=str(template))
    like = open_grid(_with_path(template_spec, template))
    grid = open_grid(src_spec)
    _check_against_template(grid, like, str(template))
    return _copy(grid, like, dst, force, reporter, block_bytes, dst_fmt)


def _convert_tiff(src_spec: InputSpec, dst: str | os.PathLike, template: str | os.PathLike | None,
                  template_spec: InputSpec | None, force: bool, reporter: Reporter, block_bytes: int,
                  dst_fmt: str) -> ConvertResult:
    """TIFF ⇄ ``.npy``/``.zarr``/``.mdio``/TIFF, every channel kept; ``template`` (a GeoTIFF) gives a ``.tif``
    output its CRS and transform, so an array made from a scene goes back onto the scene's map."""
    grid = open_grid(src_spec)
    if dst_fmt == "segy":
        raise DataError("a TIFF has no trace headers to make SEG-Y from", where=str(src_spec.path),
                        fix="convert it to .npy, .zarr or another .tif")
    like = grid
    if template is not None:
        like = open_grid(_with_path(template_spec, template))
        if like.shape != grid.shape:
            raise DataError(f"array shape {grid.shape} does not match the template {Path(template).name}'s "
                            f"{like.shape}", where=grid.sources[0], fix="give the template the array was made from")
    return _copy(grid, like, dst, force, reporter, block_bytes, dst_fmt, grid.channels)


def _result(grid: Grid, out: os.PathLike, dst_fmt: str) -> ConvertResult:
    return ConvertResult(grid.sources[0], str(out), dst_fmt, grid.axes, grid.shape,
                         int(np.prod(grid.shape[:-1], dtype=np.int64)))


def _with_path(spec: InputSpec | None, path: str | os.PathLike) -> InputSpec:
    base = spec if spec is not None else InputSpec(path=os.fspath(path))
    fields = {**base.__dict__, "path": os.fspath(path)}
    return InputSpec(**fields)


def _check_against_template(grid: Grid, like: Grid, template: str) -> None:
    """The array must have the template's trace axes (the sample count may differ)."""
    where = grid.sources[0]
    name = Path(template).name
    _check_one_channel(grid)
    if grid.ndim != like.ndim or grid.shape[:-1] != like.shape[:-1]:
        raise DataError(f"array shape {grid.shape} does not match the template {name} "
                        f"({' × '.join(f'{n} {a}' for a, n in zip(like.axes, like.shape))})", where=where,
                        fix="give the template the array was made from, or name its axes with --axes")
    if grid.explicit_axes and grid.axes != like.axes:
        raise DataError(f"array axes ({', '.join(grid.axes)}) differ from the template {name}'s "
                        f"({', '.join(like.axes)})", where=where,
                        fix="transpose the array to the template's order")
    if grid.shape[-1] != like.shape[-1]:
        log.warning("%s: %d samples per trace, the template has %d: the output's headers say %d",
                    where, grid.shape[-1], like.shape[-1], grid.shape[-1])


def _check_one_channel(grid: Grid) -> None:
    if grid.channels != 1:
        raise DataError(f"array has {grid.channels} channels; a SEG-Y holds one value per sample",
                        where=grid.sources[0], fix="write one channel per file")


def _copy(grid: Grid, like: Grid, dst: str | os.PathLike, force: bool, reporter: Reporter, block_bytes: int,
          dst_fmt: str, channels: int = 1) -> ConvertResult:
    """Stream ``grid`` into an output shaped like ``like``, a block of first-axis rows at a time."""
    n_samples = grid.shape[-1] if grid.shape[-1] != like.shape[-1] else None
    interval = grid.meta.sample_interval_us if n_samples else None
    pending = writer.prepare(dst, like, channels, "float32", force, n_samples=n_samples, sample_interval_us=interval,
                             channel_names=grid.channel_names)
    row_bytes = 4 * channels * int(np.prod(grid.shape[1:], dtype=np.int64))
    rows = max(1, block_bytes // max(row_bytes, 1))
    traces_per_row = int(np.prod(grid.shape[1:-1], dtype=np.int64))
    task = reporter.task("convert", int(np.prod(grid.shape[:-1], dtype=np.int64)), unit="traces")
    ok = False
    try:
        for start in range(0, grid.shape[0], rows):
            stop = min(start + rows, grid.shape[0])
            window = (slice(start, stop), *(slice(0, n) for n in grid.shape[1:]))
            pending.write_rows(start, grid.read(window))
            grid.release()  # what this block mapped leaves memory with it
            task.advance((stop - start) * traces_per_row)
        ok = True
    finally:
        task.close()
        grid.release()
        final = pending.finish(ok)  # commit, or remove the temporary output
    return ConvertResult(grid.sources[0], str(final), dst_fmt, like.axes, pending.shape,
                         int(np.prod(pending.shape[:-1], dtype=np.int64)))
