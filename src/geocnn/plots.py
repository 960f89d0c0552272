"""Pictures people look at instead of reading numbers: loss curves, validation examples, previews.

Every seismic panel is drawn in survey coordinates (inline/crossline numbers from the grid's
geometry, two-way time or depth from the sample interval and delay), with a colorbar whose label
states the symmetric clip; its title names the line shown ("inline 1031"), never window indices.
A section has its first axis across and its last down (time grows downward); a map (a GeoTIFF
scene, a netCDF's northing/easting or latitude/longitude, a depth slice of a model) is drawn north
up, east to the right, as GIS tools show it (:meth:`Frame.north_up`, drawn by :func:`show`).
Classes get a categorical palette with a legend of their names, and probabilities one map per
class. Earthquake records are drawn as traces against seconds from a stated UTC time, a panel group
per station: its components over its phase probabilities and picks (:func:`records_figure`). Which pictures fit a task is the :class:`Pictures` its record names (:data:`PICTURES`).

Builders (``*_figure`` and the renderers in :class:`Pictures`) return a matplotlib
:class:`~matplotlib.figure.Figure`, so tests can look at its axes; the public savers wrap them in
:func:`never_fails`: a picture never stops a run, any error in drawing is a logged warning.
Figures are made without pyplot (no global figure registry, no GUI backend); PNGs are written
atomically.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.colors import BoundaryNorm, ListedColormap
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator, ScalarFormatter

from geocnn import atomic
from geocnn.grids import sidecar
from geocnn.grids.coords import NUMBERED, is_map
from geocnn.grids.grid import open_grid
from geocnn.outputs import Output
from geocnn.picking import LabelSpan, RecordView, label_spans
from geocnn.runs.metrics_log import BASELINE, EpochRecord

log = logging.getLogger(__name__)

SEISMIC = "gray"
PROBABILITY = "magma"
CLIP_PERCENTILE = 99  # the clip of a seismic panel: this percentile of |amplitude|
DPI = 90


# ----------------------------------------------------------------------------- the guard

def never_fails(draw: Callable) -> Callable:
    """Decorator of every public plot function: an error while drawing is a warning, not a failed run."""
    @functools.wraps(draw)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        try:
            return draw(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - whatever went wrong, training/prediction results stand
            log.warning("could not draw %s (%s: %s); the run goes on without it", draw.__name__,
                        type(exc).__name__, exc)
            return None
    return guarded


def save(fig: Figure, path: Path) -> Path:
    """Write ``fig`` as a PNG, atomically."""
    path = Path(path)
    with atomic.replacing(path) as tmp:
        fig.savefig(tmp, dpi=DPI, format="png")
    return path


# ----------------------------------------------------------------------------- survey coordinates

@dataclass(frozen=True)
class Coords:
    """Survey coordinates along one grid axis: what a tick or a title says about index ``i``."""

    name: str  # inline, crossline, offset, time, depth, trace...
    values: np.ndarray  # one number per grid index
    unit: str = ""  # ms, m, ft or ""
    indexed: bool = False  # the numbers are plain indices: the file says nothing better

    @property
    def label(self) -> str:
        """Axis label: ``inline``, ``two-way time (ms)``, ``trace (index)``."""
        if self.indexed:
            return f"{self.name} (index)"
        name = "two-way time" if self.name == "time" and self.unit == "ms" else self.name
        return f"{name} ({self.unit})" if self.unit else name

    def at(self, i: int) -> str:
        """The line at index ``i``: ``inline 1031``, ``time 200 ms``."""
        value = _number(float(self.values[int(i)]))
        return f"{self.name} {value}" + (f" {self.unit}" if self.unit else "")

    def window(self, start: int, stop: int) -> Coords:
        return Coords(self.name, self.values[start:stop], self.unit, self.indexed)

    def edges(self) -> tuple[float, float]:
        """First and last value, each widened by half a step (the pixel edges of an image)."""
        v = np.asarray(self.values, dtype=np.float64)
        half = (v[-1] - v[0]) / (len(v) - 1) / 2 if len(v) > 1 else 0.5
        return float(v[0] - half), float(v[-1] + half)


def _number(v: float) -> str:
    return str(int(v)) if v == int(v) else f"{v:.4g}"


def index_coords(name: str, n: int) -> Coords:
    return Coords(name, np.arange(n, dtype=np.float64), indexed=True)


def declared_spacing(spec, model_axes: Sequence[str]) -> dict[str, tuple[float, str]]:
    """The model's ``spacing`` (e.g. ``["2 ms"]``) by grid axis name: the sample axis of an array
    that does not say its own sample interval."""
    declared = getattr(spec, "spacing", None) or ()
    return {a: (float(v), u) for a, (v, u) in zip(model_axes, declared) if u in ("ms", "m", "ft")}


def survey_coords(grid, declared: dict[str, tuple[float, str]] | None = None) -> tuple[Coords, ...]:
    """One :class:`Coords` per grid axis, from the grid's coordinates (:mod:`geocnn.grids.coords`, the
    one mapping of each format's geometry): header numbers (inline, crossline, offset), two-way time
    from the sample interval and delay, a netCDF's coordinates (depth, latitude, time... in their
    units), a GeoTIFF's easting/northing, a TIFF stack's positions in µm; else time or depth of the
    last axis from the model's ``declared`` spacing; else indices."""
    spacing = {**(declared or {}), **grid.spacing()}
    out = []
    for a, c in enumerate(grid.coordinates()):
        n = len(c.values)
        if c.axis in NUMBERED and c.long_name == f"{c.axis} number":
            out.append(Coords(c.axis, np.asarray(c.values, dtype=np.float64)))
        elif not c.long_name.endswith(" index"):
            out.append(Coords(c.long_name or c.axis, np.asarray(c.values, dtype=np.float64), c.units))
        elif a == grid.ndim - 1 and c.axis in spacing and spacing[c.axis][1] in ("ms", "m", "ft"):
            step, unit = spacing[c.axis]
            start = grid.meta.sample_start_ms if unit == "ms" else 0.0
            out.append(Coords("time" if unit == "ms" else "depth", start + step * np.arange(n), unit))
        else:
            out.append(index_coords(c.axis, n))
    return tuple(out)


@dataclass(frozen=True)
class Frame:
    """Where a picture lies in the survey: the line it shows and the coordinates of its drawn axes
    in grid order (the image's two axes, or (along the trace,) of a 1D picture). A 3D patch is drawn
    one slice along its first axis (the middle one unless a picture picks another): ``slices``
    names the line of each."""

    line: str
    axes: tuple[Coords, ...]
    slices: tuple[str, ...] = ()

    def slice(self, k: int | None) -> Frame:
        """The frame of slice ``k`` of a 3D patch (None, or a 2D patch: this frame)."""
        return Frame(self.slices[k], self.axes, self.slices) if k is not None and self.slices else self

    @property
    def north_up(self) -> bool:
        """The image is a map (:func:`geocnn.grids.coords.is_map`, in known coordinates): drawn with
        easting across and northing up, not as a section (first axis across, second down)."""
        return (len(self.axes) == 2 and is_map(self.axes[0].name, self.axes[1].name)
                and not (self.axes[0].indexed or self.axes[1].indexed))

    @property
    def horizontal(self) -> Coords:
        return self.axes[1] if self.north_up else self.axes[0]

    @property
    def vertical(self) -> Coords:
        return self.axes[0] if self.north_up else self.axes[-1]

    def points(self, i: np.ndarray, j: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(horizontal, vertical) coordinates of the image's cells at grid indices ``(i, j)``."""
        first, second = self.axes[0].values[i], self.axes[1].values[j]
        return (second, first) if self.north_up else (first, second)


def patch_frame(coords: Sequence[Coords], geom, origin: Sequence[int]) -> Frame:
    """The frame of the patch at ``origin`` (a :class:`geocnn.patches.PatchGeometry`'s window): fixed
    axes name the line; a 3D patch is drawn at the middle of its first model axis."""
    fixed = [coords[a].at(origin[a]) for a in geom.fixed_axes]
    shown = list(geom.patch_axes)
    a = shown.pop(0) if len(shown) == 3 else None  # the axis a 3D patch is sliced along
    axes = tuple(coords[b].window(int(origin[b]), int(origin[b]) + geom.extent[b]) for b in shown)
    if a is None:
        return Frame(", ".join(fixed), axes)
    last = len(coords[a].values) - 1
    slices = tuple(", ".join([*fixed, coords[a].at(min(origin[a] + k, last))]) for k in range(geom.extent[a]))
    return Frame(slices[geom.extent[a] // 2], axes, slices)


def patch_frames(coords: Sequence[Coords], geom, origins: np.ndarray) -> list[Frame]:
    return [patch_frame(coords, geom, o) for o in origins]


def _index_frame(shape: Sequence[int], names: Sequence[str] = ()) -> Frame:
    """A frame with plain indices, for patches whose place in the survey is unknown."""
    names = list(names) or [f"axis {i}" for i in range(len(shape))]
    return Frame("", tuple(index_coords(n, s) for n, s in zip(names[-len(shape):], shape)))


# ----------------------------------------------------------------------------- names

@dataclass(frozen=True)
class Names:
    """What the pictures call channels and classes (from the config when it names them)."""

    channels: tuple[str, ...] = ()
    classes: tuple[str, ...] = ()

    def channel(self, c: int) -> str:
        return self.channels[c] if c < len(self.channels) else f"channel {c}"

    @classmethod
    def of(cls, cfg, grid) -> Names:
        """A config's ``data.channel_names``/``class_names``, the grid's channel names by default."""
        return cls(tuple(cfg.data.channel_names or grid.channel_names), tuple(cfg.data.class_names or ()))

    def class_names(self, k: int) -> list[str]:
        """``k`` class names: the configured ones, else ``class 0`` ... ``class k-1``."""
        if len(self.classes) == k:
            return list(self.classes)
        return [f"class {i}" for i in range(k)]


# ----------------------------------------------------------------------------- panels

def clip_of(values: np.ndarray) -> float:
    """Symmetric clip of a seismic panel: the 99th percentile of |values| (1 when all zero)."""
    v = np.abs(np.asarray(values, dtype=np.float64))
    v = v[np.isfinite(v)]
    c = float(np.percentile(v, CLIP_PERCENTILE)) if v.size else 0.0
    return c if c > 0 else 1.0


def clip_text(clip: float) -> str:
    """``clip ±2.31 (99th percentile)``; large amplitudes in full (``±2,320``), not in e-notation."""
    value = f"{clip:,.0f}" if abs(clip) >= 100 else f"{clip:.3g}"
    return f"clip ±{value} ({CLIP_PERCENTILE}th percentile)"


def show(ax, img: np.ndarray, frame: Frame, **style):
    """Draw the 2D ``img`` (grid order: ``frame.axes``) at its pixel edges in survey coordinates; the
    one place that decides which axis goes across and which down. A section: its first axis across
    and its second down, time growing downward. A map (:attr:`Frame.north_up`): easting across
    increasing to the right and northing up increasing upwards, row 0 at the top when northing falls
    along the rows (a GeoTIFF's negative y pixel size) and at the bottom when it rises (south-up
    rasters, a netCDF's rising latitude); equal aspect when both axes share a unit, as in a GIS."""
    style = {"aspect": "auto", "interpolation": "nearest", **style}
    if not frame.north_up:
        (x0, x1), (y0, y1) = frame.axes[0].edges(), frame.axes[1].edges()
        return ax.imshow(img.T, extent=(x0, x1, y1, y0), **style)
    (n0, n1), (e0, e1) = frame.axes[0].edges(), frame.axes[1].edges()
    if frame.axes[0].unit and frame.axes[0].unit == frame.axes[1].unit:
        style["aspect"] = "equal"
    im = ax.imshow(img, origin="upper" if n0 > n1 else "lower", extent=(e0, e1, min(n0, n1), max(n0, n1)),
                   **style)
    ax.set_xlim(min(e0, e1), max(e0, e1))  # east to the right even when the columns run westward
    return im


def _axes_labels(ax, frame: Frame, left: bool = True) -> None:
    ax.set_xlabel(frame.horizontal.label, fontsize=7)
    if left:
        ax.set_ylabel(frame.vertical.label, fontsize=7)
    ax.tick_params(labelsize=7)
    for axis, coords in zip((ax.xaxis, ax.yaxis), (frame.horizontal, frame.vertical)):
        if not coords.unit:
            axis.set_major_locator(MaxNLocator(nbins=5, integer=True))
        elif frame.north_up:  # map coordinates in full (4650000, not 4.65 + 1e6), few enough not to collide
            axis.set_major_locator(MaxNLocator(nbins=3))
            plain = ScalarFormatter(useOffset=False)
            plain.set_scientific(False)
            axis.set_major_formatter(plain)


def _image(patch: np.ndarray, k: int | None = None) -> np.ndarray:
    """A 2D view of one channel: the patch itself (2D), its slice ``k`` (default the middle one)
    along the first axis (3D)."""
    if patch.ndim != 3:
        return patch
    return patch[patch.shape[0] // 2 if k is None else k]


def seismic_panel(ax, img: np.ndarray, frame: Frame, title: str, clip: float, left: bool = True):
    """A 2D amplitude panel on a symmetric clip; returns the image for its colorbar."""
    im = show(ax, img, frame, cmap=SEISMIC, vmin=-clip, vmax=clip)
    ax.set_title(title, fontsize=8)
    _axes_labels(ax, frame, left)
    return im


def probability_panel(ax, img: np.ndarray, frame: Frame, title: str, left: bool = False):
    im = show(ax, img, frame, cmap=PROBABILITY, vmin=0, vmax=1)
    ax.set_title(title, fontsize=8)
    _axes_labels(ax, frame, left)
    return im


def palette(k: int) -> tuple[ListedColormap, BoundaryNorm]:
    """A categorical palette of ``k`` classes: one distinct colour each, no interpolation between them."""
    from matplotlib import colormaps

    base = colormaps["tab10" if k <= 10 else "tab20"]
    colors = [base(i % base.N) for i in range(k)]
    return ListedColormap(colors), BoundaryNorm(np.arange(-0.5, k), k)


def class_panel(ax, img: np.ndarray, frame: Frame, title: str, k: int, left: bool = False):
    cmap, norm = palette(k)
    im = show(ax, np.asarray(img), frame, cmap=cmap, norm=norm)
    ax.set_title(title, fontsize=8)
    _axes_labels(ax, frame, left)
    return im


def class_legend(fig: Figure, names: Sequence[str]) -> None:
    """One legend for the figure: a colour patch per class name."""
    cmap, _ = palette(len(names))
    handles = [Patch(color=cmap(i), label=n) for i, n in enumerate(names)]
    fig.legend(handles=handles, loc="outside lower center", ncols=min(len(names), 6), fontsize=8, frameon=False)


def _amplitude_bar(fig: Figure, im, axes, clip: float, what: str = "amplitude") -> None:
    """The colorbar of seismic panels, its label stating the clip."""
    bar = fig.colorbar(im, ax=axes, shrink=0.95, pad=0.01)
    bar.set_label(f"{what}\n{clip_text(clip)}", fontsize=7)
    bar.ax.tick_params(labelsize=6)


def _probability_bar(fig: Figure, im, axes) -> None:
    bar = fig.colorbar(im, ax=axes, shrink=0.95, pad=0.01)
    bar.set_label("probability", fontsize=7)
    bar.ax.tick_params(labelsize=6)


def _figure(rows: int, cols: int, width: float = 2.7, height: float = 2.4) -> tuple[Figure, np.ndarray]:
    fig = Figure(figsize=(min(width * cols + 1.2, 16), height * rows + 0.6), layout="constrained")
    axes = np.asarray(fig.subplots(rows, cols, squeeze=False))
    return fig, axes


def _with_line(frame: Frame, what: str) -> str:
    return f"{what} — {frame.line}" if frame.line else what


def _fmt(v: Any) -> str:
    v = np.asarray(v)
    return _number(float(v)) if v.size == 1 else np.array2string(v, precision=2)


# ----------------------------------------------------------------------------- validation examples

@dataclass
class Examples:
    """A few validation patches for ``examples.png``, as NumPy arrays in their own units.

    ``x`` (B, C, *patch) inputs; ``target`` (B, C, *patch) values, (B, *patch) labels, or (B,) one
    per patch; ``pred`` the same layout (values in target units, or class labels); ``probs``
    (B, K, *patch) or (B, K) class probabilities (classifying tasks); ``origins`` the patches'
    window origins in the grid, which :func:`examples` turns into ``frames`` (where each patch lies
    in the survey); ``same_units``: the input is in the target's units (denoising), so the residual
    input − prediction is drawn on the input's scale.

    Self-supervised tasks: ``target`` is the unmasked noisy input (the training target), ``pred``
    what ``geocnn predict`` would write for the patch (the hidden traces filled, the others as
    read, for trace reconstruction), ``hidden`` (B, *patch) bool the samples hidden from the
    network, and ``clean`` (B, C, *patch) the clean twin when ``data.clean`` is given.
    """

    x: np.ndarray
    target: np.ndarray
    pred: np.ndarray
    probs: np.ndarray | None = None
    origins: np.ndarray | None = None
    same_units: bool = False
    frames: list[Frame] = field(default_factory=list)
    hidden: np.ndarray | None = None
    clean: np.ndarray | None = None

    def frame(self, i: int) -> Frame:
        if i < len(self.frames):
            return self.frames[i]
        return _index_frame(_image(self.x[i, 0]).shape)


def values_examples(ex: Examples, names: Names) -> Figure:
    """Regression: input, target, prediction and residual per patch, one colour scale per row."""
    if ex.x.ndim == 3:
        return _trace_examples(ex, names)
    n = len(ex.x)
    fig, axes = _figure(n, 4)
    for i in range(n):
        frame = ex.frame(i)
        inp, tgt, prd = (_image(a[i, 0]) for a in (ex.x, ex.target, ex.pred))
        row = axes[i]
        label = f"input ({names.channel(0)})" if ex.x.shape[1] > 1 else "input"
        if ex.same_units:  # denoising: everything, the removed noise included, on the input's clip
            panels = [(inp, label), (tgt, "target"), (prd, "prediction"), (inp - prd, "residual (input − prediction)")]
            _one_scale_row(fig, row, frame, panels)
        else:  # the input has units of its own: its own clip; target, prediction and error share one
            clip_in, clip = clip_of(inp), clip_of(tgt)
            im = seismic_panel(row[0], inp, frame, _with_line(frame, label), clip_in)
            _amplitude_bar(fig, im, [row[0]], clip_in, "input")
            for j, (img, title) in enumerate([(tgt, "target"), (prd, "prediction"), (tgt - prd, "target − prediction")]):
                im = seismic_panel(row[j + 1], img, frame, title, clip, False)
            _amplitude_bar(fig, im, list(row[1:]), clip, "target units")
    fig.suptitle("validation examples", fontsize=10)
    return fig


def _one_scale_row(fig: Figure, row: Sequence, frame: Frame, panels: Sequence[tuple[np.ndarray, str]]) -> None:
    """Amplitude panels on the first one's clip, the first titled with the line, one colorbar."""
    clip = clip_of(panels[0][0])
    for j, (img, title) in enumerate(panels):
        im = seismic_panel(row[j], img, frame, _with_line(frame, title) if j == 0 else title, clip, j == 0)
    _amplitude_bar(fig, im, list(row), clip)


NOISY = "noisy input (the training target)"
CLEAN = "clean twin (never trained on)"
FILLED = "filled traces"  # the label of the marks on the traces a reconstruction filled
FILL_COLOR = "C3"
BLANK = "#e9dfc9"  # where a residual is not defined (the traces that were not filled)


def blind_spot_examples(ex: Examples, names: Names) -> Figure:
    """Self-supervised denoising: the noisy input (the training target), the clean twin when there
    is one, the prediction and the noise it removed, one scale per row."""
    if ex.x.ndim == 3:
        return _trace_examples(ex, names)
    n = len(ex.x)
    fig, axes = _figure(n, 3 + (ex.clean is not None))
    for i in range(n):
        noisy, prd = _image(ex.target[i, 0]), _image(ex.pred[i, 0])
        panels = [(noisy, NOISY), *_clean_panel(ex, i, None), (prd, "prediction"),
                  (noisy - prd, "residual (noisy input − prediction)")]
        _one_scale_row(fig, axes[i], ex.frame(i), panels)
    fig.suptitle("validation examples", fontsize=10)
    return fig


def trace_fill_examples(ex: Examples, names: Names) -> Figure:
    """Trace reconstruction: the noisy input (the training target), the clean twin when there is
    one, the input with the hidden traces filled by the network, and the residual on those traces
    only; the hidden traces marked on every panel. A 3D patch is drawn at its slice with the most
    hidden traces."""
    n = len(ex.x)
    fig, axes = _figure(n, 3 + (ex.clean is not None))
    for i in range(n):
        k = busiest(ex.hidden[i].sum(axis=(1, 2)))[0] if ex.hidden[i].ndim == 3 else None
        frame = ex.frame(i).slice(k)
        noisy, filled, hidden = (_image(a, k) for a in (ex.target[i, 0], ex.pred[i, 0], ex.hidden[i]))
        residual = np.where(hidden, noisy - filled, np.nan)
        panels = [(noisy, NOISY), *_clean_panel(ex, i, k), (filled, "hidden traces filled (marked)"),
                  (residual, "residual on the filled traces (input − prediction)")]
        _one_scale_row(fig, axes[i], frame, panels)
        axes[i][len(panels) - 1].set_facecolor(BLANK)
        for ax in axes[i]:
            mark_traces(ax, frame, hidden.any(axis=1))
    fig.suptitle("validation examples", fontsize=10)
    return fig


def _clean_panel(ex: Examples, i: int, k: int | None) -> list[tuple[np.ndarray, str]]:
    return [(_image(ex.clean[i, 0], k), CLEAN)] if ex.clean is not None else []


def busiest(counts: np.ndarray) -> tuple[int, ...]:
    """The position of the largest of ``counts``, the one nearest the middle among ties (so the
    middle when every count is zero)."""
    counts = np.asarray(counts)
    best = np.argwhere(counts == counts.max())
    distance = np.abs(best - np.asarray(counts.shape) // 2).sum(axis=1)
    return tuple(int(v) for v in best[np.argmin(distance)])


def mark_traces(ax, frame: Frame, traces: np.ndarray) -> None:
    """A tick at the edge of the panel beside each filled trace (``traces``: bool along the image's
    first grid axis): above a section, left of a map, whose first axis runs up."""
    positions = frame.axes[0].values[np.asarray(traces)]
    if not len(positions):
        return
    edge = np.ones(len(positions))
    if frame.north_up:
        ax.plot(0 * edge, positions, ls="none", marker=">", ms=4, color=FILL_COLOR, clip_on=False,
                transform=ax.get_yaxis_transform(), label=FILLED)
    else:
        ax.plot(positions, edge, ls="none", marker="v", ms=4, color=FILL_COLOR, clip_on=False,
                transform=ax.get_xaxis_transform(), label=FILLED)


def class_examples(ex: Examples, names: Names) -> Figure:
    """Segmentation: input, target labels, predicted labels and a probability map per class."""
    if ex.x.ndim == 3:
        return _trace_examples(ex, names)
    n, k = len(ex.x), ex.probs.shape[1]
    shown = [1] if k == 2 else list(range(k))  # binary: P(class 1) says it all
    class_names = names.class_names(k)
    fig, axes = _figure(n, 3 + len(shown))
    for i in range(n):
        frame, row = ex.frame(i), axes[i]
        inp = _image(ex.x[i, 0])
        clip = clip_of(inp)
        im = seismic_panel(row[0], inp, frame, _with_line(frame, "input"), clip)
        _amplitude_bar(fig, im, [row[0]], clip)
        class_panel(row[1], _image(ex.target[i]), frame, "target", k)
        class_panel(row[2], _image(ex.pred[i]), frame, "prediction", k)
        for j, c in enumerate(shown):
            pim = probability_panel(row[3 + j], _image(ex.probs[i, c]), frame, f"P({class_names[c]})")
        _probability_bar(fig, pim, list(row[3:]))
    class_legend(fig, class_names)
    fig.suptitle("validation examples", fontsize=10)
    return fig


def patch_examples(ex: Examples, names: Names) -> Figure:
    """Classification/scalar: each patch with its target and prediction (and probability) as the title."""
    if ex.x.ndim == 3:
        return _trace_examples(ex, names)
    n = len(ex.x)
    cols = min(n, 4)
    rows = -(-n // cols)
    fig, axes = _figure(rows, cols, 3.0, 2.7)
    for i in range(n):
        frame, ax = ex.frame(i), axes.flat[i]
        inp = _image(ex.x[i, 0])
        clip = clip_of(inp)
        im = seismic_panel(ax, inp, frame, f"{frame.line}\n{_score_text(ex, i, names)}", clip, i % cols == 0)
        _amplitude_bar(fig, im, [ax], clip)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    fig.suptitle("validation examples", fontsize=10)
    return fig


def _score_text(ex: Examples, i: int, names: Names) -> str:
    """``target gas — predicted gas (P 0.93)`` for a class, ``target 5.1 — predicted 4.9`` for a value."""
    if ex.probs is None:
        return f"target {_fmt(ex.target[i])} — predicted {_fmt(ex.pred[i])}"
    k = ex.probs.shape[1]
    class_names = names.class_names(k)
    t, p = int(np.asarray(ex.target[i])), int(np.asarray(ex.pred[i]))
    return f"target {class_names[t]} — predicted {class_names[p]} (P {float(ex.probs[i, p]):.2f})"


def _trace_examples(ex: Examples, names: Names) -> Figure:
    """1D patches: one axes per trace, each channel a line (named Z/N/E when the config says so),
    the target and prediction below, and the scores in the title."""
    n = len(ex.x)
    fig = Figure(figsize=(8, 1.2 + 1.3 * n + 0.25 * n * ex.x.shape[1]), layout="constrained")
    axes = np.asarray(fig.subplots(n, 1, squeeze=False))[:, 0]
    for i in range(n):
        ax = axes[i]
        frame = ex.frames[i] if i < len(ex.frames) else _index_frame(ex.x.shape[-1:], ("sample",))
        t = frame.axes[-1].values
        ticks, labels = [], []
        c_count = ex.x.shape[1]
        for c in range(c_count):
            y0 = c_count - c  # first channel on top
            trace = ex.x[i, c]
            ax.plot(t, trace / (np.abs(trace).max() or 1.0) * 0.45 + y0, lw=0.6, color="0.15")
            ticks.append(y0)
            labels.append(names.channel(c))
        title = _trace_scores(ex, i, names, ax, t)
        ax.set_yticks(ticks, labels, fontsize=7)
        ax.set_title(f"{frame.line}: {title}" if frame.line else title, fontsize=8)
        ax.set_xlabel(frame.axes[-1].label, fontsize=7)
        ax.tick_params(labelsize=7)
        ax.set_xlim(t[0], t[-1])
    fig.suptitle("validation examples", fontsize=10)
    return fig


def _trace_scores(ex: Examples, i: int, names: Names, ax, t: np.ndarray) -> str:
    """Draw a dense target and prediction under the traces; return the title with the scores."""
    if ex.target.ndim <= 1 or np.asarray(ex.target[i]).size == 1:
        return _score_text(ex, i, names)
    target = np.asarray(ex.target[i]).reshape(-1, len(t))[0]
    pred = np.asarray(ex.pred[i]).reshape(-1, len(t))[0]
    scale = np.abs(target).max() or 1.0
    ax.plot(t, target / scale * 0.45, lw=0.9, color="k", label="target")
    ax.plot(t, pred / scale * 0.45, lw=0.9, color="C3", ls="--", label="prediction")
    ax.legend(fontsize=7, loc="upper right")
    if ex.probs is not None:
        return f"accuracy {float(np.mean(target == pred)):.2f}"
    rms = float(np.sqrt(np.mean((target - pred) ** 2)))
    return f"error rms {rms:.3g}"


@never_fails
def examples(ex: Examples, task, path: Path, names: Names = Names(), grid=None, geom=None,
             spec=None) -> Path | None:
    """``examples.png``: the task's example picture (its record's ``pictures.examples``), each patch
    in the survey coordinates of ``grid`` when its window geometry ``geom`` and origins are given
    (the model ``spec``'s spacing stands in for a sample interval the grid does not know)."""
    if len(ex.x) == 0:
        return None
    if grid is not None and geom is not None and ex.origins is not None:
        coords = survey_coords(grid, declared_spacing(spec, geom.model_axes))
        ex.frames = patch_frames(coords, geom, ex.origins)
    return save(PICTURES[task.pictures].examples(ex, names), path)


# ----------------------------------------------------------------------------- loss and confusion

def smooth(values: np.ndarray, span: int) -> np.ndarray:
    """Exponential moving average of ``values`` (debiased, so the first points are not pulled to 0)."""
    alpha = 2.0 / (max(span, 1) + 1)
    out, acc, weight = np.empty(len(values)), 0.0, 0.0
    for i, v in enumerate(values):
        acc = (1 - alpha) * acc + alpha * v
        weight = (1 - alpha) * weight + alpha
        out[i] = acc / weight
    return out


def loss_figure(records: Sequence[EpochRecord], metric: str | None = None) -> Figure:
    """Left: training loss per step (raw, faint) and smoothed, validation loss per epoch; right: the
    headline validation metric per epoch beside what each compared method scored on it."""
    panels = 2 if metric else 1
    fig = Figure(figsize=(5.2 * panels, 3.6), layout="constrained")
    axes = fig.subplots(1, panels, squeeze=False)[0]
    _loss_panel(axes[0], records)
    if metric:
        _metric_panel(axes[1], records, metric)
    return fig


def _loss_panel(ax, records: Sequence[EpochRecord]) -> None:
    steps: list[int] = []
    losses: list[float] = []
    for r in records:
        if r.step_loss:
            steps += r.step_loss.steps
            losses += r.step_loss.loss
        elif r.train_loss is not None:  # an older run: one point per epoch
            steps.append(r.step)
            losses.append(r.train_loss)
    steps, losses = np.asarray(steps), np.asarray(losses, dtype=np.float64)
    few = len(losses) < 30
    ax.plot(steps, losses, "o-" if few else "-", ms=3, lw=0.8, color="C0", alpha=0.3, label="training (per step)")
    if len(losses) > 2:
        ax.plot(steps, smooth(losses, max(len(losses) // 20, 3)), lw=1.6, color="C0", label="training (smoothed)")
    val = [(r.step, r.val_loss) for r in records if r.val_loss is not None]
    if val:
        ax.plot(*zip(*val), "s-", ms=6, color="C1", label="validation (per epoch)")
    if len(losses) and (losses > 0).all() and all(v > 0 for _, v in val):
        ax.set_yscale("log")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss")
    ax.set_title("loss")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if len(steps) == 1:
        ax.set_xlim(steps[0] - 1, steps[0] + 1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)


def _metric_panel(ax, records: Sequence[EpochRecord], metric: str) -> None:
    """The metric per epoch, and each method it is compared with (the trivial baseline dashed, the
    field's own method dotted, e.g. f-x deconvolution), by the name the records give it."""
    epochs = [r.epoch for r in records if r.val.value(metric) is not None]
    ax.plot(epochs, [r.val.value(metric) for r in records if r.val.value(metric) is not None], "o-", ms=6,
            color="C2", label=metric)
    methods = dict.fromkeys(m for r in records for m in r.val.baselines)  # in order, each once
    for j, method in enumerate(methods):
        scored = [(r.epoch, r.val.baseline(metric, method), r.val.label(method)) for r in records]
        line = [(e, b) for e, b, _ in scored if b is not None]
        if not line:  # compared on other metrics only (f-x deconvolution: against the clean twin)
            continue
        style = {"ls": "--", "color": "0.4"} if method == BASELINE else {"ls": ":", "color": f"C{3 + j}"}
        label = next(name for _, b, name in reversed(scored) if b is not None)
        if len({b for _, b in line}) == 1:  # one value for the whole run: a line across the panel
            ax.axhline(line[0][1], label=label, **style)
        else:
            ax.plot(*zip(*line), marker=".", label=label, **style)
    ax.set_xlabel("epoch")
    ax.set_title(f"validation {metric}")
    last = max((r.epoch for r in records), default=1)
    if last <= 12:
        ax.set_xticks(range(1, last + 1))
    else:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlim(0.5, last + 0.5)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)


@never_fails
def loss_curve(records: Sequence[EpochRecord], path: Path, metric: str | None = None) -> Path:
    """``loss.png`` from the records of ``metrics.jsonl``."""
    return save(loss_figure(records, metric), path)


def confusion_figure(matrix: Sequence[Sequence[float]], names: Names = Names(), title: str = "confusion matrix"
                     ) -> Figure:
    """Counts per (true, predicted) class; colour is the share of the true class (recall per row)."""
    cm = np.asarray(matrix, dtype=np.float64)
    k = len(cm)
    share = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    class_names = names.class_names(k)
    size = 2.4 + 0.55 * k
    fig = Figure(figsize=(size + 1.2, size), layout="constrained")
    ax = fig.subplots()
    im = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    for i in range(k):
        for j in range(k):
            ax.text(j, i, f"{int(cm[i, j])}\n{100 * share[i, j]:.0f}%", ha="center", va="center", fontsize=7,
                    color="white" if share[i, j] > 0.6 else "black")
    ax.set_xticks(range(k), class_names, rotation=30, ha="right", fontsize=8)
    ax.set_yticks(range(k), class_names, fontsize=8)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title, fontsize=9)
    fig.colorbar(im, ax=ax, label="share of the true class")
    return fig


@never_fails
def confusion_matrix(matrix: Sequence[Sequence[float]], path: Path, names: Names = Names(),
                     title: str = "confusion matrix") -> Path:
    """``confusion.png`` beside ``confusion.json``."""
    return save(confusion_figure(matrix, names, title), path)


# ----------------------------------------------------------------------------- prediction previews

def preview_path(output: Path) -> Path:
    """``faults.sgy`` → ``faults.preview.png``."""
    return output.with_name(output.name.split(".")[0] + ".preview.png")


def _views(coords: Sequence[Coords], shape: Sequence[int], place: Callable[[tuple[int, int]], list[int]] | None = None
           ) -> list[tuple[Frame, tuple[slice, ...]]]:
    """Inline, crossline and time slice of a 3D grid, each non-sample axis against the samples of a
    pre-stack grid, the section of a 2D one: each with its frame in survey coordinates. Every axis
    not drawn is at its middle, or where ``place`` (drawn pair → an index per grid axis) puts it."""
    n = len(shape)
    # every other axis against the last (sample) axis: pre-stack grids show their offset gathers too
    pairs = [(a, n - 1) for a in reversed(range(n - 1))] + ([(0, 1)] if n == 3 else [])
    out = []
    for pair in pairs:
        at = place(pair) if place is not None else [s // 2 for s in shape]
        window = tuple(drawn_span(s, at[a]) if a in pair else slice(at[a], at[a] + 1) for a, s in enumerate(shape))
        line = ", ".join(coords[a].at(at[a]) for a in range(n) if a not in pair)
        out.append((Frame(line, tuple(coords[a].window(window[a].start, window[a].stop) for a in pair)), window))
    return out


MAX_DRAWN = 4096
"""Samples a picture draws along one axis at most: more than its pixels show, and a preview of a
scene of 100,000² pixels or a day of records reads 4,096² values, never the whole grid."""


def drawn_span(size: int, centre: int) -> slice:
    """The part of an axis of ``size`` a picture draws: all of it, or :data:`MAX_DRAWN` samples
    around ``centre`` kept inside the axis.

    >>> drawn_span(100, 50), drawn_span(10_000, 5_000), drawn_span(10_000, 100)
    (slice(0, 100, None), slice(2952, 7048, None), slice(0, 4096, None))
    """
    if size <= MAX_DRAWN:
        return slice(0, size)
    start = min(max(centre - MAX_DRAWN // 2, 0), size - MAX_DRAWN)
    return slice(start, start + MAX_DRAWN)


def _most_filled(filled: np.ndarray, shape: Sequence[int]) -> Callable[[tuple[int, int]], list[int]]:
    """A ``place`` for :func:`_views`: every trace axis not drawn at the line with the most filled
    traces (``filled``: bool over the trace positions), the sample axis at its middle."""
    def place(pair: tuple[int, int]) -> list[int]:
        at = [s // 2 for s in shape]
        lateral = range(len(shape) - 1)
        fixed = [a for a in lateral if a not in pair]
        if fixed:
            counts = filled.sum(axis=tuple(a for a in lateral if a in pair))  # over the fixed axes, in order
            for a, i in zip(fixed, busiest(counts)):
                at[a] = i
        return at
    return place


def _section(grid, window: tuple[slice, ...], channel: int = 0) -> np.ndarray:
    """One channel of a window, with its length-1 axes dropped (2D)."""
    block = grid.read(window)[channel]
    return block.reshape([s.stop - s.start for s in window if s.stop - s.start > 1])


def _trace_section(traces: np.ndarray, window: tuple[slice, ...]) -> np.ndarray:
    """A bool over the trace positions (all axes but the sample axis) as :func:`_section` shapes a window."""
    sizes = [s.stop - s.start for s in window]
    block = np.broadcast_to(traces[window[:-1]][..., None], sizes)
    return block.reshape([n for n in sizes if n > 1])


@dataclass(frozen=True)
class Preview:
    """What a prediction preview draws: the input grid, the written output, what it holds."""

    grid: Any
    pred: Any
    output: Output  # values, probabilities or labels: how they are drawn is the record's
    names: Names = Names()
    same_units: bool = False
    classes: int | None = None
    map_centres: dict = field(default_factory=dict)  # score maps: grid axis → window centre indices
    declared: dict = field(default_factory=dict)  # the model's spacing by grid axis (see declared_spacing)
    filled: np.ndarray | None = None  # trace reconstruction: bool over the trace positions, True = filled

    def coords(self) -> tuple[Coords, ...]:
        return survey_coords(self.grid, self.declared)


def values_preview(p: Preview) -> Figure:
    """Dense values: input, prediction and (denoising) the residual on middle slices, one scale per row."""
    if p.grid.ndim == 1:
        return _trace_preview(p)
    coords = p.coords()
    views = _views(coords, p.grid.shape)
    same = p.same_units and p.pred.channels == p.grid.channels
    cols = 3 if same else 2
    fig, axes = _figure(len(views), cols, 3.2, 2.8)
    label = f"input ({p.names.channel(0)})" if p.grid.channels > 1 else "input"
    for row, (frame, window) in zip(axes, views):
        x, y = _section(p.grid, window), _section(p.pred, window)
        clip = clip_of(x)
        im = seismic_panel(row[0], x, frame, _with_line(frame, label), clip)
        if same:
            seismic_panel(row[1], y, frame, "prediction", clip, False)
            im = seismic_panel(row[2], x - y, frame, "residual (input − prediction)", clip, False)
            _amplitude_bar(fig, im, list(row), clip)
        else:
            _amplitude_bar(fig, im, [row[0]], clip, "input")
            pclip = clip_of(y)
            im = seismic_panel(row[1], y, frame, "prediction", pclip, False)
            _amplitude_bar(fig, im, [row[1]], pclip, "prediction")
    fig.suptitle("prediction preview", fontsize=10)
    return fig


def fill_preview(p: Preview) -> Figure:
    """Trace reconstruction: the input, the output (the filled traces marked) and the residual on
    the filled traces only, at the inline and crossline with the most filled traces and the middle
    time slice. Without filled traces (``--all``), the values preview."""
    if p.filled is None or p.grid.ndim == 1:
        return values_preview(p)
    views = _views(p.coords(), p.grid.shape, _most_filled(p.filled, p.grid.shape))
    fig, axes = _figure(len(views), 3, 3.2, 2.8)
    label = f"input ({p.names.channel(0)})" if p.grid.channels > 1 else "input"
    for row, (frame, window) in zip(axes, views):
        x, y, filled = _section(p.grid, window), _section(p.pred, window), _trace_section(p.filled, window)
        panels = [(x, label), (y, "output: the marked traces filled"),
                  (np.where(filled, x - y, np.nan), "residual on the filled traces (input − output)")]
        _one_scale_row(fig, row, frame, panels)
        row[2].set_facecolor(BLANK)
        section = window[-1].stop - window[-1].start > 1  # the samples drawn: a section, else a time slice
        for ax in row if section else row[:2]:  # (a time slice's residual shows only the filled traces)
            _mark_filled(ax, frame, filled, section)
    fig.suptitle(f"prediction preview: {int(p.filled.sum())} of {p.filled.size} traces filled", fontsize=10)
    return fig


def _mark_filled(ax, frame: Frame, filled: np.ndarray, section: bool) -> None:
    """The filled traces of a panel: ticks above a section, a hollow square on each in a time slice."""
    if section:
        mark_traces(ax, frame, filled.any(axis=1))
        return
    i, j = np.nonzero(filled)
    if len(i):
        ax.plot(*frame.points(i, j), ls="none", marker="s", ms=3, mfc="none",
                mew=0.6, color=FILL_COLOR, label=FILLED)


def class_preview(p: Preview) -> Figure:
    """Dense classes: input beside the labels (categorical, with a legend) or a probability map per
    class (P(class 1) alone when the output holds one channel)."""
    if p.grid.ndim == 1:
        return _trace_preview(p)
    coords = p.coords()
    views = _views(coords, p.grid.shape)
    k = p.classes or (p.pred.channels if p.pred.channels > 1 else 2)
    class_names = p.names.class_names(k)
    channels = [0] if p.output.categorical else list(range(p.pred.channels))
    fig, axes = _figure(len(views), 1 + len(channels), 3.0, 2.8)
    for row, (frame, window) in zip(axes, views):
        x = _section(p.grid, window)
        clip = clip_of(x)
        im = seismic_panel(row[0], x, frame, _with_line(frame, "input"), clip)
        _amplitude_bar(fig, im, [row[0]], clip)
        if p.output.categorical:
            class_panel(row[1], _section(p.pred, window), frame, p.output.label, k)
            continue
        for j, c in enumerate(channels):
            cls = c if len(channels) > 1 else 1  # one channel holds P(class 1)
            pim = probability_panel(row[1 + j], _section(p.pred, window, c), frame, f"P({class_names[cls]})")
        _probability_bar(fig, pim, list(row[1:]))
    if p.output.categorical:
        class_legend(fig, class_names)
    fig.suptitle("prediction preview", fontsize=10)
    return fig


def _trace_preview(p: Preview) -> Figure:
    """A single trace (1D grid): input and prediction as lines in survey time."""
    coords = p.coords()[0]
    n = p.grid.shape[0]
    x = p.grid.read((slice(0, n),))
    y = p.pred.read((slice(0, n),))
    fig = Figure(figsize=(8, 3), layout="constrained")
    ax = fig.subplots()
    t = coords.values
    ax.plot(t, x[0] / (np.abs(x[0]).max() or 1), lw=0.7, color="0.2", label=f"input ({p.names.channel(0)})")
    for c in range(y.shape[0]):
        ax.plot(t, y[c] / (np.abs(y[c]).max() or 1) - 1.5 * (c + 1), lw=0.7, label=f"prediction {p.output.name} {c}")
    ax.set_xlabel(coords.label)
    ax.set_yticks([])
    ax.legend(fontsize=7)
    ax.set_title("prediction preview", fontsize=9)
    return fig


def map_preview(p: Preview) -> Figure:
    """Patch/trace models: the map of window scores in survey coordinates (classes with a legend)."""
    coords = _map_coords(p)
    values = p.pred.read(tuple(slice(0, n) for n in p.pred.shape))
    k = p.classes or 2
    class_names = p.names.class_names(k)
    fig = Figure(figsize=(7, 4.2), layout="constrained")
    ax = fig.subplots()
    if sum(n > 1 for n in values.shape[1:]) <= 1:  # a line of scores (one per trace, say)
        along = int(np.argmax(values.shape[1:]))
        v = values.reshape(values.shape[0], -1)
        for c in range(v.shape[0]):
            style = ".-" if v.shape[1] <= 60 else "."  # many windows: dots, a line would hide them
            ax.plot(coords[along].values, v[c], style, lw=0.8, ms=4, label=_channel_label(p, c, class_names))
        ax.set_xlabel(coords[along].label)
        ax.set_ylabel(p.output.label)
        ax.legend(fontsize=7)
        if p.output.probability:
            ax.set_ylim(-0.02, 1.02)
    else:
        channel = 1 if p.output.probability and values.shape[0] > 1 else 0
        img = values[channel]
        while img.ndim > 2:  # a 3D map: its middle slice along the last axis
            img = img[..., img.shape[-1] // 2]
        frame = Frame("", (coords[0], coords[1]))
        if p.output.categorical:
            class_panel(ax, img, frame, "", k, True)
            class_legend(fig, class_names)
        elif p.output.probability:
            im = probability_panel(ax, img, frame, "", True)
            _probability_bar(fig, im, [ax])
        else:
            im = show(ax, img, frame, cmap="viridis")
            _axes_labels(ax, frame)
            fig.colorbar(im, ax=ax, label="value")
    ax.set_title(f"{p.output.label} per window", fontsize=9)
    return fig


def _channel_label(p: Preview, c: int, class_names: list[str]) -> str:
    if p.output.probability:
        return f"P({class_names[c if p.pred.channels > 1 else 1]})"
    return p.output.label


def _map_coords(p: Preview) -> list[Coords]:
    """Survey coordinates of a score map's axes: the grid's at the window centres (from the sidecar),
    the grid's own where the map lines up with it, else the map file's own."""
    grid_coords = p.coords()
    own = survey_coords(p.pred)
    out = []
    for a, n in enumerate(p.pred.shape):
        name = p.pred.axes[a]
        ga = p.grid.axes.index(name) if name in p.grid.axes else None
        centres = p.map_centres.get(name)
        if ga is not None and centres is not None and len(centres) == n:
            g = grid_coords[ga]
            out.append(Coords(g.name, g.values[np.asarray(centres)], g.unit, g.indexed))
        elif ga is not None and p.grid.shape[ga] == n:
            out.append(grid_coords[ga])
        else:
            out.append(own[a])
    return out


@dataclass(frozen=True)
class Pictures:
    """Which pictures fit a task (named by its record, :class:`geocnn.tasks.Task`): its validation
    examples and its prediction preview, each a builder returning a Figure."""

    examples: Callable[[Examples, Names], Figure]
    preview: Callable[[Preview], Figure]


PICTURES: dict[str, Pictures] = {
    "dense_values": Pictures(values_examples, values_preview),
    "blind_spots": Pictures(blind_spot_examples, values_preview),
    "trace_fill": Pictures(trace_fill_examples, fill_preview),
    "dense_classes": Pictures(class_examples, class_preview),
    "patch_scores": Pictures(patch_examples, map_preview),
}
"""Each picture set a task may name (:data:`geocnn.tasks.PictureSet`), by that name."""


@never_fails
def prediction_previews(grid, output: Path, task, what: Output, names: Names = Names(), same_units: bool = False,
                        classes: int | None = None, spec=None, model_axes: Sequence[str] = (),
                        filled: np.ndarray | None = None) -> list[Path]:
    """``<out>.preview.png``: the task's preview (its record's ``pictures.preview``); reads only slices.
    ``filled``: the traces a reconstruction filled (bool over the grid's trace positions)."""
    output = Path(output)
    pred = open_grid(output)
    side = sidecar.read(output) if output.suffix == ".npy" else None
    centres = ((side or {}).get("map") or {}).get("centres") or {}
    preview = Preview(grid, pred, what, names, same_units, classes, centres, declared_spacing(spec, model_axes),
                      filled)
    return [save(PICTURES[task.pictures].preview(preview), preview_path(output))]


# ----------------------------------------------------------------------------- earthquake records

COMPONENT_GAP = 2.2  # vertical distance between a station's component traces (each scaled to ±1)


def phase_color(k: int) -> str:
    """The colour of the ``k``-th phase (0-based, noise left out): its probability trace and its pick lines."""
    return f"C{k}"


def _station_traces(ax, t: np.ndarray, traces: np.ndarray, components: Sequence[str], station: str) -> None:
    """One station's components (``traces``: (components, samples), NaN in a gap) stacked, each scaled to
    its own largest |amplitude|: the upper panel of both records previews."""
    for c in range(len(components)):
        x = traces[c]
        peak = float(np.nanmax(np.abs(x))) if np.isfinite(x).any() else 0.0
        ax.plot(t, x / (peak or 1) - COMPONENT_GAP * c, lw=0.6, color="0.15")
    ax.set_yticks([-COMPONENT_GAP * c for c in range(len(components))], list(components))
    ax.set_title(station, fontsize=9)


def _station_panels(view: RecordView, ratios: tuple[int, int]) -> tuple[Figure, np.ndarray]:
    """A figure with two panels per station of ``view`` (records over what the network said), sharing time."""
    rows = len(view.stations)
    fig = Figure(figsize=(9, 0.52 * sum(ratios) * rows), layout="constrained")
    axes = np.asarray(fig.subplots(2 * rows, 1, sharex=True, gridspec_kw={"height_ratios": list(ratios) * rows}))
    return fig, axes


def _time_axis(fig: Figure, axes: np.ndarray, view: RecordView, title: str) -> None:
    t = view.seconds
    axes[-1].set_xlabel(view.time_label)
    axes[-1].set_xlim(t[0], t[-1] if len(t) > 1 else 1.0)
    fig.suptitle(title, fontsize=10)


def records_figure(view: RecordView, records: np.ndarray, probs: np.ndarray, components: Sequence[str],
                   phases: Sequence[str]) -> Figure:
    """A panel group per station of ``view``: its components (``records``: (components, stations, samples),
    each trace scaled to its own largest |amplitude|) over the probability of each phase (``probs``:
    (phases, stations, samples), 0–1), the picks as vertical lines coloured per phase on both."""
    fig, axes = _station_panels(view, (3, 2))
    t = view.seconds
    for r, station in enumerate(view.stations):
        top, bottom = axes[2 * r], axes[2 * r + 1]
        _station_traces(top, t, records[:, r], components, station)
        for k, phase in enumerate(phases):
            bottom.plot(t, probs[k, r], lw=0.9, color=phase_color(k), label=phase)
        bottom.set_ylim(-0.02, 1.02)
        bottom.set_ylabel("probability", fontsize=8)
        for line in (ln for ln in view.lines if ln.row == r):
            color = phase_color(list(phases).index(line.phase)) if line.phase in phases else "0.5"
            for ax in (top, bottom):
                ax.axvline(line.seconds, color=color, lw=1.0, ls="--", label=f"{line.phase} pick")
            bottom.annotate(f"{line.phase} {line.probability:.2f}", (line.seconds, 1.0), fontsize=7, color=color,
                            xytext=(2, -8), textcoords="offset points")
        if r == 0:  # one entry per label: each phase's trace and its picks
            unique = dict(zip(*reversed(bottom.get_legend_handles_labels())))
            bottom.legend(list(unique.values()), list(unique), fontsize=7, loc="upper right", ncols=2)
    _time_axis(fig, axes, view, f"prediction preview: {len(view.lines)} pick(s) shown")
    return fig


def labels_figure(view: RecordView, records: np.ndarray, spans: Sequence[LabelSpan], components: Sequence[str],
                  phases: Sequence[str]) -> Figure:
    """The records preview of ``--output labels``: per station of ``view``, its components (as
    :func:`records_figure`) shaded where the network labels a phase, over a strip with one lane per phase
    (``phases``: the names of classes 1, 2, ...) holding the same stretches (``spans``,
    :func:`geocnn.picking.label_spans`), coloured as that phase's probability trace is."""
    fig, axes = _station_panels(view, (3, 1))
    t = view.seconds
    lanes = len(phases)
    for r, station in enumerate(view.stations):
        top, strip = axes[2 * r], axes[2 * r + 1]
        _station_traces(top, t, records[:, r], components, station)
        for span in (s for s in spans if s.row == r):
            color = phase_color(span.label - 1) if span.label <= lanes else "0.5"
            top.axvspan(span.start, span.stop, color=color, alpha=0.25, lw=0)
            lane = lanes - min(span.label, lanes)  # the first phase on top
            strip.broken_barh([(span.start, span.stop - span.start)], (lane + 0.1, 0.8), color=color)
        strip.set_ylim(0, max(lanes, 1))
        strip.set_yticks([lanes - k - 0.5 for k in range(lanes)], list(phases), fontsize=7)
        strip.set_ylabel("label", fontsize=8)
    shaded = sum(s.stop - s.start for s in spans)
    _time_axis(fig, axes, view, f"prediction preview: labels, {len(spans)} labelled stretch(es), {shaded:.2f} s")
    return fig


def _view_records(grid, view: RecordView) -> tuple[np.ndarray, list[str]]:
    """The input records in ``view``'s window ((components, stations, samples), NaN in a gap: a gap is drawn
    as a gap, not as the zeros it reads as) and the components' names."""
    records = grid.read(view.window)
    recorded = grid.valid(view.window)
    if recorded is not None:
        records[:, ~recorded] = np.nan
    return records, [grid.channel_names[c] for c in range(records.shape[0])]


@never_fails
def records_preview(grid, pred, view: RecordView, phase_channels: Sequence[int], phases: Sequence[str],
                    output: Path) -> list[Path]:
    """``<out>.preview.png`` of a prediction on earthquake records: reads only ``view``'s window of the
    input ``grid`` and of the prediction ``pred`` (anything with ``read((station, sample) window)`` →
    (channels, stations, samples)); ``phase_channels``: the prediction channel of each phase."""
    records, components = _view_records(grid, view)
    probs = pred.read(view.window)[list(phase_channels)]
    return [save(records_figure(view, records, probs, components, phases), preview_path(Path(output)))]


@never_fails
def labels_preview(grid, pred, view: RecordView, phases: Sequence[str], output: Path) -> list[Path]:
    """``<out>.preview.png`` of ``--output labels`` on earthquake records: reads only ``view``'s window of the
    input ``grid`` and of the labels ``pred`` ((1, stations, samples) class indices); ``phases``: the names of
    classes 1, 2, ... (class 0 is noise)."""
    records, components = _view_records(grid, view)
    spans = label_spans(pred.read(view.window)[0], view.rate)
    return [save(labels_figure(view, records, spans, components, phases), preview_path(Path(output)))]
