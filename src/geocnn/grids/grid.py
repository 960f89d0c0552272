"""Grids: lazy, channels-first views of SEG-Y and NumPy data.

A :class:`Grid` is what training and prediction see: spatial ``axes`` (``inline, crossline,
sample`` and friends), a ``shape``, ``channels``, and :meth:`Grid.read` that returns a float32
window ``(channels, *window)``. Nothing big is read before :meth:`Grid.read` is called: SEG-Y
traces come through :mod:`geocnn.grids.segy`'s memmap, ``.npy`` files through ``np.load(mmap_mode='r')``,
uncompressed ``.npz`` members through a memmap at their offset inside the zip.

Channels come from several files stacked (:func:`open_stack`: three components, angle stacks,
attributes; geometries must match) or from an axis of one file (``channels_from: offset`` on a
pre-stack SEG-Y, ``channels_from: component`` on a NumPy array).

Example
-------
>>> g = open_stack([InputSpec("near.sgy"), InputSpec("far.sgy")])     # doctest: +SKIP
>>> g.axes, g.shape, g.channels                                      # doctest: +SKIP
(('inline', 'crossline', 'sample'), (100, 120, 250), 2)
>>> g.read((slice(0, 64), slice(0, 64), slice(100, 164))).shape      # doctest: +SKIP
(2, 64, 64, 64)
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from geocnn import extras, machine
from geocnn.errors import ConfigError, DataError
from geocnn.fmt import fmt_shape
from geocnn.grids.coords import Coordinate, coordinates, located
from geocnn.grids.kinds import open_source
from geocnn.grids.segy import SegyFile
from geocnn.grids.sidecar import MARK, number_range
from geocnn.grids.sources import ArraySource, SegySource, Source
from geocnn.grids.spec import InputSpec, as_spec
from geocnn.grids.stores import StoreSource
from geocnn.grids.tiff import georef_of

# --------------------------------------------------------------------------------------------
# The grid
# --------------------------------------------------------------------------------------------

@dataclass
class _Part:
    source: Source
    channel_axis: int | None  # index in source.axes of the axis used as channels
    names: tuple[str, ...] = field(default=())


def _check_window(window: tuple[slice, ...], shape: tuple[int, ...]) -> tuple[slice, ...]:
    if len(window) != len(shape):
        raise ValueError(f"window has {len(window)} slices for a grid of {len(shape)} axes")
    out = []
    for s, n in zip(window, shape):
        start, stop, step = s.indices(n)
        inside = all(v is None or 0 <= v <= n for v in (s.start, s.stop))
        if step != 1 or not inside:
            raise ValueError(f"window slice {s} is not a step-1 slice inside 0..{n}")
        out.append(slice(start, max(start, stop)))
    return tuple(out)


class Grid:
    """A lazy, read-only, channels-first view of one or more files.

    Attributes
    ----------
    axes
        Spatial axes in order, e.g. ``("inline", "crossline", "sample")`` or ``("trace", "sample")``.
    shape
        Spatial shape (no channel axis).
    channels, channel_names
        Number and names of channels (file stems, ``offset 5``, ``component 0``...).
    sources
        File paths.
    meta
        :class:`GridMeta` of the first SEG-Y input (else the first input).

    Examples
    --------
    >>> g = open_grid("data_samples/seismic_noisy.sgy")
    >>> g.axes, g.shape, g.read((slice(0, 2), slice(0, 3), slice(0, 4))).shape
    (('inline', 'crossline', 'sample'), (64, 48, 100), (1, 2, 3, 4))
    >>> [(c.axis, int(c.values[0])) for c in g.coordinates()]
    [('inline', 1000), ('crossline', 2000), ('sample', 0)]
    """

    def __init__(self, parts: list[_Part]) -> None:
        self._parts = parts
        first = parts[0]
        axes = list(first.source.axes)
        shape = list(first.source.shape)
        if first.channel_axis is not None:
            del axes[first.channel_axis], shape[first.channel_axis]
        self.axes = tuple(axes)
        self.shape = tuple(shape)
        self.channel_names = tuple(n for p in parts for n in p.names)
        self.channels = len(self.channel_names)
        self.sources = tuple(p.source.path for p in parts)
        segy = [p.source for p in parts if isinstance(p.source, SegySource)]
        self.meta = (segy[0] if segy else first.source).meta

    def __repr__(self) -> str:
        return (f"Grid(axes={self.axes}, shape={self.shape}, channels={self.channels}, "
                f"kind={self.meta.kind!r}, sources={list(self.sources)})")

    @property
    def inputs(self) -> tuple[Source, ...]:
        """The opened files, one :class:`~geocnn.grids.sources.Source` each, in channel order."""
        return tuple(p.source for p in self._parts)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def explicit_axes(self) -> bool:
        """Were the axis names given (SEG-Y, config ``axes``, a sidecar) rather than defaulted?"""
        return all(p.source.explicit_axes for p in self._parts)

    def read(self, window: tuple[slice, ...]) -> np.ndarray:
        """float32 ``(channels, *window sizes)``; window = one step-1 slice per spatial axis."""
        window = _check_window(tuple(window), self.shape)
        blocks = []
        for part in self._parts:
            if part.channel_axis is None:
                blocks.append(part.source.read(window)[None])
            else:
                w = list(window)
                w.insert(part.channel_axis, slice(None))
                blocks.append(np.moveaxis(part.source.read(tuple(w)), part.channel_axis, 0))
        return blocks[0] if len(blocks) == 1 else np.concatenate(blocks, axis=0)

    def raw_format(self) -> tuple[int, str] | None:
        """(SEG-Y format code, byte order) when every channel is a whole SEG-Y file with the same
        undecoded sample format (IBM, integers), so :meth:`read_raw` can stand in for
        :meth:`read` with the decoding done elsewhere (on a GPU); else None."""
        found = {p.source.raw_format if isinstance(p.source, SegySource) and p.channel_axis is None else None
                 for p in self._parts}
        return found.pop() if len(found) == 1 else None

    def read_raw(self, window: tuple[slice, ...]) -> np.ndarray:
        """``(channels, *window sizes)`` samples as stored (see :meth:`raw_format`); dead traces are
        zero words."""
        if self.raw_format() is None:
            raise ValueError("read_raw needs SEG-Y inputs with one undecoded sample format (raw_format())")
        window = _check_window(tuple(window), self.shape)
        blocks = [p.source.read_raw(window)[None] for p in self._parts]
        return blocks[0] if len(blocks) == 1 else np.concatenate(blocks, axis=0)

    def live(self, window: tuple[slice, ...] | None = None) -> np.ndarray | None:
        """Mask over all axes but the last: True where a trace exists (in every stacked file).

        None when every position holds a trace (NumPy inputs, regular SEG-Y). For offsets used as
        channels, a position is live when any of its offset traces exists.
        """
        window = _check_window(tuple(window), self.shape) if window is not None else \
            tuple(slice(0, n) for n in self.shape)
        mask = None
        for part in self._parts:
            w = list(window[:-1])
            if part.channel_axis is not None:
                w.insert(part.channel_axis, slice(None))
            m = part.source.live(tuple(w))
            if m is None:
                continue
            if part.channel_axis is not None and part.channel_axis < m.ndim:
                m = m.any(axis=part.channel_axis)
            mask = m if mask is None else mask & m
        return mask

    @property
    def masked(self) -> bool:
        """Some single sample may be missing (a GeoTIFF's nodata or internal mask): see :meth:`valid`."""
        return any(p.source.masked for p in self._parts)

    def valid(self, window: tuple[slice, ...] | None = None) -> np.ndarray | None:
        """Per-sample mask over the window's spatial axes: True where every stacked file holds data.

        None when no input marks single samples missing (:attr:`masked` is False): SEG-Y and NumPy
        inputs, whose missing data are whole traces (:meth:`live`).
        """
        window = _check_window(tuple(window), self.shape) if window is not None else \
            tuple(slice(0, n) for n in self.shape)
        mask = None
        for part in self._parts:
            m = part.source.valid(window)
            if m is not None:
                mask = m if mask is None else mask & m
        return mask

    def valid_traces(self, positions: np.ndarray) -> np.ndarray | None:
        """bool ``(n, n_samples)``: :meth:`valid` of whole traces at flat trace positions (as
        :meth:`read_traces` takes them); None when :attr:`masked` is False."""
        if not self.masked:
            return None
        positions = np.asarray(positions, dtype=np.int64).reshape(-1)
        out = np.ones((len(positions), self.shape[-1]), bool)
        for k, index in enumerate(zip(*np.unravel_index(positions, self.shape[:-1]))):
            window = tuple(slice(int(i), int(i) + 1) for i in index) + (slice(0, self.shape[-1]),)
            out[k] = self.valid(window).reshape(-1)
        return out

    def read_traces(self, positions: np.ndarray) -> np.ndarray:
        """float32 ``(channels, n, n_samples)`` of whole traces at flat trace positions.

        ``positions`` index the trace axes (all but the last) in C order, as
        ``np.ravel_multi_index`` gives them; dead traces read as zeros.
        """
        positions = np.asarray(positions, dtype=np.int64).reshape(-1)
        if self.ndim == 1:  # a single trace: every position is that trace
            return np.repeat(self.read((slice(0, self.shape[0]),))[:, None], len(positions), axis=1)
        index = np.unravel_index(positions, self.shape[:-1])
        blocks = []
        for part in self._parts:
            if part.channel_axis is None:
                blocks.append(part.source.read_traces(index)[None])
                continue
            for c in range(part.source.shape[part.channel_axis]):
                idx = list(index)
                idx.insert(part.channel_axis, np.full(len(positions), c))
                blocks.append(part.source.read_traces(tuple(idx))[None])
        return np.concatenate(blocks, axis=0)

    def spacing(self) -> dict[str, tuple[float, str]]:
        """Physical spacing per axis when known, e.g. ``{"sample": (4.0, "ms"), "inline": (25.0, "m")}``."""
        for part in self._parts:
            if isinstance(part.source, SegySource):
                return {a: v for a, v in part.source.file.spacing.items() if a in self.axes}
        for part in self._parts:
            declared = part.source.spacing()
            if declared:
                return {a: v for a, v in declared.items() if a in self.axes}
        if self.meta.sample_interval_us and "sample" in self.axes:
            return {"sample": (self.meta.sample_interval_us / 1000.0, "ms")}
        return {}

    def release(self) -> None:
        """Unmap every file (they are mapped again on the next read); for long sequential scans."""
        for part in self._parts:
            part.source.release()

    def coordinates(self) -> tuple[Coordinate, ...]:
        """Coordinates of the spatial axes: inline/crossline/offset numbers, sample times in ms, a netCDF's
        coordinate values, a GeoTIFF's easting/northing, a TIFF stack's positions in µm (an axis the
        files say nothing about: its index). See :mod:`geocnn.grids.coords`."""
        first = self._parts[0].source
        described = getattr(first, "sidecar", None) or getattr(first, "attrs", None)
        return coordinates(self.axes, self.shape, self.meta, described if isinstance(described, dict) else None,
                           located(first, self.axes, self.shape))

    def to_xarray(self, window: tuple[slice, ...] | None = None, max_bytes: int | None = None) -> Any:
        """The grid (or a ``window`` of it) read into an ``xarray.DataArray`` with survey coordinates.

        Dimensions are the grid's axes (``inline, crossline, sample``...), led by ``channel`` when
        there are several; coordinates are inline/crossline/offset numbers and the sample time in
        ms (see :meth:`coordinates`). The values are read now, so the size is checked first against
        ``max_bytes`` (default: half the available memory). Needs ``pip install 'geocnn[xarray]'``.

        Examples
        --------
        >>> da = open_grid("data_samples/seismic_noisy.sgy").to_xarray()       # doctest: +SKIP
        >>> da.dims, int(da.inline[0]), float(da.sample[1])                      # doctest: +SKIP
        (('inline', 'crossline', 'sample'), 1000, 4.0)
        >>> da.sel(inline=1032).plot()                                            # doctest: +SKIP
        """
        window = _check_window(tuple(window), self.shape) if window is not None else \
            tuple(slice(0, n) for n in self.shape)
        sizes = tuple(s.stop - s.start for s in window)
        extras.require("xarray", "xarray", "xarray grids")  # before the read, not after
        machine.check_in_memory(4 * self.channels * int(np.prod(sizes, dtype=np.int64)),
                                f"the grid window ({fmt_shape((self.channels, *sizes))} float32)", max_bytes)
        values = self.read(window)
        return self.labelled(values if self.channels > 1 else values[0], window)

    def labelled(self, values: np.ndarray, window: tuple[slice, ...] | None = None) -> Any:
        """``values`` of this grid's ``window`` (``(channels, *sizes)``, or ``sizes`` for one channel; any
        dtype) as an ``xarray.DataArray`` with the grid's dims and coordinates (see :meth:`to_xarray`)."""
        xr = extras.require("xarray", "xarray", "xarray grids")
        window = window if window is not None else tuple(slice(0, n) for n in self.shape)
        coords: dict[str, Any] = {c.axis: (c.axis, c.values[w], c.attrs) for c, w in zip(self.coordinates(), window)}
        dims = self.axes
        if self.channels > 1:
            dims = ("channel", *dims)
            coords["channel"] = ("channel", list(self.channel_names))
        attrs = {"source": [str(s) for s in self.sources], "kind": self.meta.kind}
        name = self.channel_names[0] if self.channels == 1 else None
        return xr.DataArray(values, dims=dims, coords=coords, name=name, attrs=attrs)

    def segy_template(self) -> tuple[SegyFile, str | None] | None:
        """The first SEG-Y input and the axis it gives channels from, for writing results back."""
        for part in self._parts:
            if isinstance(part.source, SegySource):
                ch = part.source.axes[part.channel_axis] if part.channel_axis is not None else None
                return part.source.file, ch
        return None


def _part(spec: InputSpec, random_access: bool = False) -> _Part:
    source = open_source(spec, random_access)
    if spec.channels_from is None:
        written = (isinstance(source, ArraySource) and source.sidecar) or \
            (isinstance(source, StoreSource) and source.attrs.get("geocnn") == MARK) or source.geocnn_output
        if written and "channel" in source.axes:  # a geocnn output of several channels
            return _channels_from(source, "channel")
        if source.channel_axis is not None:  # the file says which axis holds channels (bands, OME C)
            return _channels_from(source, source.channel_axis)
        return _Part(source, None, (source.label(),))
    return _channels_from(source, spec.channels_from)


def _channels_from(source: Source, axis: str) -> _Part:
    if axis not in source.axes or axis == source.axes[-1]:
        kinds = f"a {source.meta.kind} file" if source.meta.kind != "numpy" else "this array"
        raise DataError(f"channels_from: '{axis}' is not an axis of {kinds} (axes: {', '.join(source.axes)})",
                        where=source.path,
                        fix="use one of its axes other than the last, or remove channels_from")
    a = source.axes.index(axis)
    names = tuple(source.channel_label(axis, i) for i in range(source.shape[a]))
    return _Part(source, a, names)


def open_grid(spec: InputSpec | str | os.PathLike, random_access: bool = False) -> Grid:
    """Open one input as a :class:`Grid` (nothing big is read).

    Example
    -------
    >>> g = open_grid(InputSpec("gathers.sgy", channels_from="offset"))   # doctest: +SKIP
    >>> g.axes, g.channel_names                                          # doctest: +SKIP
    (('inline', 'crossline', 'sample'), ('offset 5', 'offset 15', 'offset 25'))
    """
    return Grid([_part(as_spec(spec), random_access)])


def single_source_grid(source: Source) -> Grid:
    """A grid of one channel over a source built in memory (labels computed from picks), not opened from a path."""
    return Grid([_Part(source, None, (source.label(),))])


def open_stack(specs: Sequence[InputSpec | str | os.PathLike], random_access: bool = False) -> Grid:
    """Several inputs stacked as channels; their geometries must match.

    Raises
    ------
    DataError
        Naming the file that differs from the first and how (axes, shape, inline/crossline/offset
        numbers, sample interval or start).
    """
    if not specs:
        raise ConfigError("no input files given", fix="name at least one input")
    parts = [_part(as_spec(s), random_access) for s in specs]
    grids = [Grid([p]) for p in parts]
    for g in grids[1:]:
        problem = stack_mismatch(grids[0], g)
        if problem:
            raise DataError(f"cannot stack as channels: {problem}", where=g.sources[0],
                            fix="give inputs with the same geometry (resample or crop them first)")
    return Grid(parts)


def stack_mismatch(ref: Grid, other: Grid) -> str | None:
    """How ``other`` differs from ``ref`` (None when they stack), in words."""
    name = Path(ref.sources[0]).name
    if ref.explicit_axes and other.explicit_axes and other.axes != ref.axes:
        return f"its axes ({', '.join(other.axes)}) differ from {name}'s ({', '.join(ref.axes)})"
    if other.shape != ref.shape:
        return (f"its shape {_shape(other)} differs from {name}'s {_shape(ref)}")
    geo_a, geo_b = georef_of(ref), georef_of(other)
    if geo_a is not None and geo_b is not None:
        if geo_a.crs != geo_b.crs:
            return f"its CRS differs from {name}'s (reproject one onto the other's grid)"
        if geo_a.transform != geo_b.transform:
            return f"its transform {_affine(geo_b.transform)} differs from {name}'s {_affine(geo_a.transform)}"
    a, b = ref.meta, other.meta
    for label, x, y in (("inline", a.ilines, b.ilines), ("crossline", a.xlines, b.xlines),
                        ("offset", a.offsets, b.offsets)):
        if x is not None and y is not None and not np.array_equal(x, y):
            return f"its {label} numbers {_numbers(y)} differ from {name}'s {_numbers(x)}"
    if a.sample_interval_us and b.sample_interval_us and a.sample_interval_us != b.sample_interval_us:
        return (f"its sample interval {b.sample_interval_us / 1000:g} ms differs from {name}'s "
                f"{a.sample_interval_us / 1000:g} ms")
    if a.format == b.format == "segy" and a.sample_start_ms != b.sample_start_ms:
        return f"its first sample is at {b.sample_start_ms:g} ms, {name}'s at {a.sample_start_ms:g} ms"
    return None


def _affine(t: tuple[float, ...]) -> str:
    return f"(pixel {t[0]:g} × {t[4]:g}, origin {t[2]:.12g}, {t[5]:.12g})"


def _shape(g: Grid) -> str:
    return " × ".join(f"{n} {a}" for a, n in zip(g.axes, g.shape))


def _numbers(v: np.ndarray) -> str:
    r = number_range(v)
    step = f" step {r['step']}" if r["step"] not in (None, 1) else ""
    return f"{r['first']}–{r['last']}{step} ({r['count']})"
