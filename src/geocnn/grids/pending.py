"""The one interface every output format is written through: prepare → write rows → commit or abort.

One process creates the complete output as a temporary file or folder beside its final name
(:meth:`PendingOutput.prepare`); any process fills disjoint parts of it (:meth:`~PendingOutput.write_rows`
for whole first-axis rows, :meth:`~PendingOutput.write` for any window); one process renames it into
place (:meth:`~PendingOutput.commit`) or removes it (:meth:`~PendingOutput.abort`). A pending output is
small and picklable (paths, shapes, a trace geometry): other processes — torchrun ranks — describe
the same temporary file with ``prepare(spec, attach=tmp)`` and write their rows.

What is created is an :class:`OutputSpec`, the same record for every format. A new format is one
:class:`PendingOutput` subclass, one :class:`~geocnn.grids.formats.Format` record and its line in
:data:`geocnn.grids.writer.OUTPUT_CLASSES`.
"""

from __future__ import annotations

import abc
import contextlib
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from geocnn import atomic
from geocnn.errors import DataError
from geocnn.grids.formats import FORMATS, Format, output_format
from geocnn.grids.grid import Grid
from geocnn.grids.sidecar import geometry
from geocnn.grids.sidecar import make as make_sidecar
from geocnn.grids.tiff import GeoRef, georef_of

log = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class OutputSpec:
    """What an output holds and how it lines up with the grid it was computed from.

    ``shape`` is the spatial shape (the sample axis may differ from ``like``'s; a score map has
    its own), ``channels`` values per position. ``positions`` (SEG-Y) holds one integer array per
    grid trace axis, shaped like the output's trace axes: the grid trace whose headers each output
    trace carries (a map's cell centres); None lines the output up trace for trace with ``like``.
    ``clear_offsets`` zeroes the offset fields of those headers (a map collapsing an offset axis).
    ``split`` makes a class set: one one-channel output per class number (``NAME.class-K``).
    ``class_names`` reach every format from here: the sidecar (``.npy``, Zarr attributes), a netCDF's
    ``flag_meanings``, a GeoTIFF's ``class_names`` tag, an OME-TIFF's description.
    """

    path: str
    like: Grid
    shape: tuple[int, ...]
    channels: int = 1
    dtype: str = "float32"
    force: bool = False
    sample_interval_us: float | None = None
    sample_start_ms: float | None = None
    channel_names: tuple[str, ...] | None = None
    class_names: tuple[str, ...] = ()  # what label values 0, 1 ... mean (classifying models)
    sidecar_extra: dict = field(default_factory=dict)
    positions: tuple[np.ndarray, ...] | None = None
    clear_offsets: bool = False
    split: tuple[int, ...] = ()

    @property
    def format(self) -> Format:
        """The output format its name says (DataError listing the writable suffixes otherwise)."""
        return FORMATS[output_format(self.path)]

    @property
    def stored_shape(self) -> tuple[int, ...]:
        """Shape of the stored array: a leading channel axis when there are several channels."""
        return self.shape if self.channels == 1 else (self.channels, *self.shape)

    @property
    def axes(self) -> tuple[str, ...]:
        """Names of the stored array's axes."""
        return self.like.axes if self.channels == 1 else ("channel", *self.like.axes)

    @property
    def interval_us(self) -> float | None:
        """The output's sample interval: its own, else the input's."""
        return self.sample_interval_us if self.sample_interval_us is not None else self.like.meta.sample_interval_us

    @property
    def start_ms(self) -> float:
        """Time of the output's first sample: its own, else the input's."""
        return self.sample_start_ms if self.sample_start_ms is not None else self.like.meta.sample_start_ms

    def sidecar(self) -> dict:
        """The JSON description a ``.npy`` sidecar (and a store's attributes) carries."""
        m = self.like.meta
        names = list(self.channel_names) if self.channel_names else [f"channel {c}" for c in range(self.channels)]
        return make_sidecar(axes=self.axes, shape=self.stored_shape, dtype=self.dtype, channel_names=names,
                            sample_interval_us=self.interval_us, sample_start_ms=self.start_ms, kind=m.kind,
                            sources=list(self.like.sources), ilines=m.ilines, xlines=m.xlines, offsets=m.offsets,
                            extra={**geometry(self.spacing(), self.georef()),
                                   **({"class_names": list(self.class_names)} if self.class_names else {}),
                                   **self.sidecar_extra})

    def spacing(self) -> dict[str, tuple[float, str]]:
        """The input's spacing along the axes the output keeps whole (a score map's strided axes have
        their own), the sample axis at the output's own interval."""
        kept = {a for a, n, m in zip(self.like.axes, self.shape, self.like.shape) if n == m}
        out = {a: v for a, v in self.like.spacing().items() if a in kept}
        if "sample" in self.like.axes and self.interval_us:
            out["sample"] = (self.interval_us / 1000.0, "ms")
        return out

    def georef(self) -> GeoRef | None:
        """The input's GeoTIFF georeferencing when the output is its raster, pixel for pixel."""
        return georef_of(self.like) if self.shape == self.like.shape else None


def output_spec(out: str | os.PathLike, like: Grid, channels: int = 1, dtype: str = "float32", force: bool = False,
                *, n_samples: int | None = None, shape: tuple[int, ...] | None = None, **options) -> OutputSpec:
    """An :class:`OutputSpec` shaped like ``like`` (or ``shape``; ``n_samples`` per trace)."""
    shape = tuple(shape) if shape is not None else (*like.shape[:-1], n_samples or like.shape[-1])
    return OutputSpec(os.fspath(out), like, shape, channels, dtype, force, **options)


def fit_window(shape: tuple[int, ...], channels: int, window: tuple[slice, ...],
               values: np.ndarray) -> tuple[tuple[slice, ...], np.ndarray]:
    """A write's window clipped to the output ``shape`` and its values as (channels, *window sizes)
    (one channel may come without its axis); ValueError when they do not fit. Every output checks here."""
    if len(window) != len(shape):
        raise ValueError(f"window has {len(window)} slices for an output of {len(shape)} axes")
    window = tuple(slice(*s.indices(n)[:2]) for s, n in zip(window, shape))
    sizes = tuple(max(s.stop - s.start, 0) for s in window)
    values = np.asarray(values)
    if values.shape == sizes and channels == 1:
        values = values[None]
    if values.shape != (channels, *sizes):
        raise ValueError(f"values shaped {values.shape} for a window of {sizes} with {channels} channels")
    return window, values


def check_present(tmp: str) -> None:
    """A write into a temporary output that was committed, aborted or removed is a DataError."""
    if not Path(tmp).exists():
        raise DataError("temporary output is gone (committed, aborted or removed)", where=tmp)


class PendingOutput(abc.ABC):
    """An output being written (see the module docstring). Subclasses have at least ``path`` (final name),
    ``tmp`` (what other processes attach to), ``shape`` and ``channels``: a format's output declares them
    as :class:`SingleOutput`'s fields, a set of outputs derives them from its parts."""

    path: str
    tmp: str
    shape: tuple[int, ...]
    channels: int

    @classmethod
    @abc.abstractmethod
    def prepare(cls, spec: OutputSpec, attach: str | None = None) -> PendingOutput:
        """Create the complete output as a temporary file; with ``attach`` (another process's
        :attr:`tmp`), describe that one without creating anything."""

    @abc.abstractmethod
    def write(self, window: tuple[slice, ...], values: np.ndarray) -> None:
        """Write ``values`` shaped ``(channels, *window sizes)`` (or the window's shape for one channel)."""

    def write_rows(self, first: int, values: np.ndarray) -> None:
        """Write whole first-axis rows ``first ..``: ``values`` shaped ``(channels, rows, *shape[1:])``.

        Every driver writes rows through here, so what the operating system refuses mid-write (a
        full disk, an I/O error) is one :class:`~geocnn.errors.OutputError` naming the output,
        whatever its kind; the driver then ends it with :meth:`finish`, which removes the temporary output.
        """
        window = (slice(first, first + values.shape[1]), *(slice(0, n) for n in self.shape[1:]))
        with atomic.writing(self.path):
            self.write(window, values)

    def finish(self, ok: bool) -> Path | None:
        """Commit when ``ok``, else abort: how every driver ends an output (its final path, or None).

        A commit the operating system refuses (a full disk at the flush, a failed rename) is one
        :class:`~geocnn.errors.OutputError`, and the temporary output is removed: nothing partial is
        left under the final name or beside it.
        """
        if not ok:
            self.abort()
            return None
        try:
            with atomic.writing(self.path):
                return self.commit()
        except BaseException:
            self.abort()
            raise

    @abc.abstractmethod
    def commit(self) -> Path:
        """Rename the finished output into place (one process, after every write); its final path."""

    @abc.abstractmethod
    def abort(self) -> None:
        """Remove the temporary output; the final path is untouched."""

    @property
    def row_block(self) -> int:
        """Processes split first-axis rows in multiples of this, so no two write one chunk (files: any split)."""
        return 1

    @property
    def paths(self) -> list[Path]:
        """Every file :meth:`commit` puts in place."""
        return [Path(self.path)]


@dataclass(frozen=True, eq=False)
class SingleOutput(PendingOutput):
    """One output at one final name, written through one temporary file, folder or store — every format's
    output, as opposed to a set of them (:class:`~geocnn.grids.writer.PendingSet`). Its fields come first
    in every subclass; a subclass (a frozen dataclass too) adds what its format needs."""

    path: str  # the final name
    tmp: str  # the temporary file or folder beside it (what other processes attach to)
    shape: tuple[int, ...]  # spatial shape
    channels: int
    dtype: str  # NumPy dtype written
    force: bool  # replace an existing output (checked at prepare and again at commit)


class FileOutput(SingleOutput):
    """An output that is one file (``.npy``, SEG-Y): committed by flushing it and renaming the temporary
    file onto :attr:`path`, aborted by removing it."""

    def commit(self) -> Path:
        final = atomic.check_new(self.path, self.force)
        with open(self.tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        beside = self._beside(final)
        try:
            os.replace(self.tmp, final)
        except BaseException:  # no sidecar without its output
            for path in beside:
                path.unlink(missing_ok=True)
            raise
        log.info("wrote %s", final)
        return final

    def _beside(self, final: Path) -> list[Path]:
        """Write what goes beside the output (a sidecar) just before it is renamed into place; its paths."""
        return []  # a default: most formats carry everything inside the file

    def abort(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.tmp)
