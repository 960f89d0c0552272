"""A request resolved against its model and input, once (:class:`Job`), and what a prediction did (:class:`Report`)."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from geocnn import device, sanity
from geocnn.errors import ConfigError, DataError
from geocnn.grids.grid import Grid, open_stack
from geocnn.grids.normalize import estimate
from geocnn.grids.pending import OutputSpec, output_spec
from geocnn.grids.waveforms import WaveformSource
from geocnn.outputs import Output
from geocnn.patches import PatchGeometry
from geocnn.picking import Pick, Picker, thresholds
from geocnn.predict.fill import TraceFill, trace_fill
from geocnn.predict.plan import geometry
from geocnn.predict.request import PredictRequest
from geocnn.predict.trained import (
    Trained,
    check_grid,
    input_specs,
    patch_axes_on,
    score_channels,
    window_size,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class Job:
    """What dense and map prediction read: the request, the model, the open input, the windows' geometry."""

    request: PredictRequest
    trained: Trained
    output: Output  # what is written (--output resolved for the task)
    grid: Grid
    patch_axes: tuple[str, ...]  # the training patch axes, as the input names them
    geom: PatchGeometry
    scores: int  # the model's score channels
    fill: TraceFill | None  # trace reconstruction: what is filled
    rt: device.Runtime
    warnings: tuple[str, ...] = ()  # the input sanity checks that fired

    @property
    def channels(self) -> int:
        """Channels written per position."""
        return self.output.channels(self.scores)

    @property
    def records(self) -> WaveformSource | None:
        """The earthquake records predicted on (one such input), else None."""
        sources = self.grid.inputs
        return sources[0] if len(sources) == 1 and isinstance(sources[0], WaveformSource) else None

    @property
    def phases(self) -> tuple[str | None, ...]:
        """The phase each written channel holds (its class name; None for class 0, noise)."""
        return _phase_names(self.trained, self.output.class_numbers(self.channels))

    @property
    def class_phases(self) -> tuple[str, ...]:
        """The phase of each class but noise (classes 1, 2, ...: their class names): what labels mark."""
        classes = self.trained.classes or max(self.scores, 2)
        return tuple(str(name) for name in _phase_names(self.trained, range(1, classes)))

    def spec(self, channels: int | None = None, **layout) -> OutputSpec:
        """The output of this job (``layout``: a score map's shape, trace positions, sample axis...);
        one file per class with ``--split-classes``."""
        req, out = self.request, self.output
        names = self.trained.cfg.data.class_names
        if out.of_classes and names:  # every format's class metadata (sidecar, flag_meanings, GeoTIFF tags)
            layout["class_names"] = tuple(names)
            if channels is None:  # the job's own channels: bands named "labels", or by class
                layout.setdefault("channel_names", out.band_names(tuple(names), self.channels))
        channels = self.channels if channels is None else channels
        split = out.class_numbers(channels) if req.split_classes else ()
        spec = output_spec(req.out_path, self.grid, channels, out.dtype, req.force, split=split, **layout)
        if not split:
            out.check_format(spec.format, channels, req.out_path)
        return spec


def check_fits(request: PredictRequest, trained: Trained, output: Output) -> None:
    """The options that depend on the kind of model, checked before the input is opened."""
    if request.stride is not None and trained.cfg.dense:
        raise ConfigError("--stride applies to patch/trace models (one score per window); this model answers "
                          "every sample", fix="leave --stride out (use --overlap for dense models)")
    if request.picks is not None and not trained.cfg.dense:
        raise ConfigError("--picks finds peaks in probability traces of a dense model (one probability per sample)",
                          fix="leave --picks out for patch/trace models")
    if request.picks is not None and not output.probability:
        raise ConfigError(f"--picks finds the peaks of class probabilities; this prediction writes {output.name}",
                          fix="pass --output probabilities (a picking model's probabilities)")
    if request.picks is not None:
        thresholds(request.threshold, [n for n in _phase_names(trained, range(trained.classes or 0)) if n])
    if request.split_classes and not output.per_class:
        raise ConfigError("--split-classes writes one file of probabilities per class",
                          fix="use it with --output probabilities on a classifying model")


def open_job(request: PredictRequest, trained: Trained, output: Output, rt: device.Runtime) -> Job:
    """Open the input and check it against the model: channels, axes, window, what is filled.

    The job's ``trained`` is the one prediction uses: with ``--normalize input`` its statistics are
    the input's own."""
    grid = open_stack(input_specs(trained, request.inputs))
    patch_axes = patch_axes_on(trained, grid, request.axes)
    check_grid(trained, grid, patch_axes)
    if request.normalize == "input":
        trained = normalized_on(trained, grid)
    warnings = tuple(sanity.check_input(grid, trained.norm)) if rt.main else ()
    size = window_size(trained, request.window)
    geom = geometry(grid, size, patch_axes, trained.cfg.dense)
    fill = trace_fill(trained, grid, request.mask, request.fill_all)
    return Job(request, trained, output, grid, patch_axes, geom, score_channels(trained, size), fill, rt, warnings)


def picker_for(job: Job) -> Picker | None:
    """What picks the released probability rows for ``--picks`` (None without it): every class but
    class 0 (noise) is a phase named by its class name."""
    req = job.request
    if req.picks is None:
        return None
    if job.rt.distributed:
        raise ConfigError("--picks collects the picks of every station in one process",
                          fix="run geocnn predict without torchrun to write picks")
    if job.records is None:
        raise DataError("--picks needs one input of earthquake records (miniSEED, SAC ... read through ObsPy)",
                        where=", ".join(map(str, req.inputs)), fix="leave --picks out for other grids")
    phases = job.phases
    return Picker(job.records, phases, thresholds(req.threshold, [p for p in phases if p]), req.min_separation)


def _phase_names(trained: Trained, classes: Iterable[int]) -> tuple[str | None, ...]:
    """The phase each class is (its class name; None for class 0, noise)."""
    names = tuple(trained.cfg.data.class_names or ())
    return tuple(None if k == 0 else (names[k] if k < len(names) else f"class {k}") for k in classes)


@dataclass
class Report:
    """What a prediction did (for the CLI, tests and benchmarks)."""

    output: Path
    windows: int
    buffer_bytes: int
    seconds: float
    pictures: list[Path]
    outputs: list[Path] = dataclasses.field(default_factory=list)  # every file written (one per class if split)
    warnings: list[str] = dataclasses.field(default_factory=list)  # the input sanity checks that fired
    picks: Path | None = None  # the pick list written (--picks)
    picked: tuple[Pick, ...] = ()  # its picks, as found (for the preview)


def normalized_on(trained: Trained, grid: Grid) -> Trained:
    """``trained`` with normalisation statistics estimated on ``grid`` the way training estimates them
    (same method, trace count and seed): a network pretrained on other amplitudes (unit-scale synthetic
    cubes, another survey's gain) sees this input as it saw its training data. A target normalised like
    the input (denoising) follows, so values come back in this input's units."""
    d = trained.cfg.data.normalize
    norm = estimate(grid, trained.norm.method, d.max_traces, trained.cfg.train.seed)
    follows = trained.target_norm is not None and trained.same_units
    log.info("--normalize input: %s statistics of the input (center %s, scale %s) instead of the run's (%s, %s)",
             norm.method, _numbers(norm.center), _numbers(norm.scale), _numbers(trained.norm.center),
             _numbers(trained.norm.scale))
    return dataclasses.replace(trained, norm=norm, target_norm=norm if follows else trained.target_norm)


def _numbers(values: tuple[float, ...]) -> str:
    return ", ".join(f"{v:.4g}" for v in values)


def largest_output_bytes(request: PredictRequest, trained: Trained, output: Output) -> tuple[int, str]:
    """At most how many bytes ``request``'s prediction holds, and what it is, read from the input's
    header only: a value per grid position and channel written (a score map has fewer positions),
    so that a prediction meant for memory is refused before any work."""
    grid = open_stack(input_specs(trained, request.inputs))
    channels = output.channels(score_channels(trained, trained.cfg.patch))
    positions = 1
    for n in grid.shape:
        positions *= int(n)
    itemsize = np.dtype(output.dtype).itemsize
    shape = " × ".join(map(str, (channels, *grid.shape)))
    return positions * channels * itemsize, f"the prediction (up to {shape} {output.dtype})"

