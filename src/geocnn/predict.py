"""``geocnn predict``: a trained model over whole grids, in bounded memory, written as it goes.

Dense models (regression, segmentation): windows tile the grid with the requested overlap (the
last window of each axis is aligned to the end, so every sample is covered; a grid smaller than
the window is reflect-padded). Window predictions are blended with Gaussian or linear weights.
Windows are visited in order of their start along the first grid axis, and a ring buffer holds
only the rows still open: once no later window can touch a row it is normalised and written.
Memory is therefore one slab of window height, whatever the survey size. Because the tiling is a
product of per-axis tilings and the weights are separable, the weight sum is a product of 1D
sums and needs no buffer of its own.

Patch/trace models (classification, scalar) give one score per window position: a map whose
axes are the grid's, sampled at the window centres (full resolution along axes the patch does
not span — e.g. one score per trace). The map is regular: windows start every ``stride``
samples/lines of each axis (``--stride``; default 1 along axes the patch does not span, the
overlap's step along those it does), so its spacing is stride × the input's. A ``.npy`` map's
sidecar gives the cells' inline/crossline numbers, the map's ``spacing`` and ``stride``, and the
window centres; a SEG-Y map has one trace per map cell along the trace axes, carrying the
headers of the input trace at the cell's centre, and its samples are the cells along time when
there are several (interval stride × dt, first sample at the first window's centre) — else the
score channels (sample k = channel k, first sample at the window's centre time).

Class probabilities of more than two classes go to one file per class on request
(``split_classes``: ``NAME.class-K.sgy``), committed together or not at all.

On a GPU the ring buffer, the blending and the output conversion live on the device (only
finished rows come back, through a pinned buffer), batches go up from pinned host memory without
blocking, IBM and integer SEG-Y samples travel as stored and are decoded there
(:mod:`geocnn.gpu_decode`), and the batch size is chosen from the device's free memory. A thread
reads windows one slab of rows ahead of the model on every device.

Trace reconstruction (``reconstruct_traces``) fills the missing traces only: those the grid's
dead-trace mask (irregular SEG-Y) or a ``--mask`` file marks. They are zeroed in the model's input,
as hidden traces were in training, and every other trace is written back exactly as read
(``--all`` writes the model's prediction everywhere instead).

Under ``torchrun`` each process takes a contiguous range of first-axis rows, computes every window
that touches it (a few windows are computed by both neighbours) and writes its rows into the
shared output, so the result equals a single process's.
"""

from __future__ import annotations

import dataclasses
import heapq
import logging
import queue
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from geocnn import device, gpu_decode, guardband, plots, sanity
from geocnn.config import Config, parse_config
from geocnn.errors import ConfigError, DataError
from geocnn.grids import writer
from geocnn.grids.grid import Grid, open_stack
from geocnn.grids.normalize import Normalization
from geocnn.grids.sidecar import number_range
from geocnn.grids.spec import InputSpec
from geocnn.model import accepts, build
from geocnn.patches import BLENDS, PatchGeometry, WindowPlan, live_fraction, patch_geometry, plan_windows
from geocnn.progress import SILENT, Reporter
from geocnn.runs import load_checkpoint, resolve_checkpoint
from geocnn.yamlsource import Source

log = logging.getLogger(__name__)


@dataclass
class Trained:
    """What a checkpoint gives prediction: config, weights, normalisation, classes."""

    cfg: Config
    state: dict
    norm: Normalization
    target_norm: Normalization | None
    classes: int | None
    patch_axes: tuple[str, ...]
    path: Path
    channel_names: tuple[str, ...] = ()


def load_trained(run_or_checkpoint: str | Path) -> Trained:
    path = resolve_checkpoint(run_or_checkpoint)
    ckpt = load_checkpoint(path)
    cfg = parse_config(ckpt.config, Source(str(path)))
    return Trained(cfg, ckpt.model_state, ckpt.normalization, ckpt.target_normalization, ckpt.classes,
                   ckpt.patch_axes, path, ckpt.channel_names)


def input_specs(trained: Trained, inputs: Sequence[str | Path]) -> list[InputSpec]:
    """The training inputs' options (axes, channels_from, header bytes) on the new files."""
    train_specs = trained.cfg.inputs
    if len(inputs) != len(train_specs):
        names = ", ".join(Path(s.path).name for s in train_specs)
        raise ConfigError(f"the run was trained on {len(train_specs)} input file(s) stacked as channels ({names}), "
                          f"but {len(inputs)} were given", fix="give one file per training input, in the same order")
    return [InputSpec(**{**spec.__dict__, "path": str(p)}) for spec, p in zip(train_specs, inputs)]


def patch_axes_on(trained: Trained, grid: Grid, axis_map: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """The training patch axes as the input's axis names: ``axis_map`` (input axis → training axis,
    e.g. ``{"trace": "crossline"}``) lets a section model run along a 2D line's trace axis."""
    axis_map = dict(axis_map or {})
    trained_axes = trained.patch_axes
    for given, meant in axis_map.items():
        if given not in grid.axes:
            raise ConfigError(f"--axes {given}={meant}: '{given}' is not an axis of the input "
                              f"({', '.join(grid.axes)})", fix="name an input axis on the left of '='")
        if meant not in trained_axes:
            raise ConfigError(f"--axes {given}={meant}: '{meant}' is not one of the model's patch axes "
                              f"({', '.join(trained_axes)})", fix="name a training patch axis on the right of '='")
    inverse = {meant: given for given, meant in axis_map.items()}
    return tuple(inverse.get(a, a) for a in trained_axes)


def _check_grid(trained: Trained, grid: Grid, patch_axes: tuple[str, ...] | None = None) -> None:
    spec = trained.cfg.model
    if grid.channels != spec.in_channels:
        raise DataError(f"the input gives {grid.channels} channel(s) ({', '.join(grid.channel_names)}) but the "
                        f"model was trained on {spec.in_channels}", where=grid.sources[0],
                        fix="give the same channels as in training (files, channels_from)")
    patch_axes = patch_axes or trained.patch_axes
    missing = [a for a in patch_axes if a not in grid.axes]
    if missing:
        extra = [a for a in grid.axes if a not in patch_axes]
        example = f", e.g. --axes {extra[0]}={missing[0]}" if extra else ""
        raise DataError(f"the model was trained on patches along {', '.join(trained.patch_axes)}, but the input's "
                        f"axes are {', '.join(grid.axes)}", where=grid.sources[0],
                        fix=f"give a grid with the training axes (geocnn inspect shows them), or map an input axis "
                            f"onto a training one{example}")


# ----------------------------------------------------------------------------- missing traces

@dataclass
class TraceFill:
    """Trace reconstruction at prediction: which traces are missing, and whether live ones are kept."""

    missing: np.ndarray  # bool over the grid's trace axes (all but the last): True = missing
    keep_live: bool  # live traces pass through unchanged (not --all)
    center: np.ndarray  # (C,) the run's normalisation centre: a trace set to it is zero once normalised

    def hide(self, block: np.ndarray, origin: Sequence[int]) -> np.ndarray:
        """Hide the missing traces of a (C, *window) grid-order block in the input's units: set to the
        normalisation centre, they are zero in the model's input, as hidden traces were in training
        (padding is never missing)."""
        window = tuple(slice(o, o + n) for o, n in zip(origin, block.shape[1:-1]))
        miss = self.missing[window]
        pad = [(0, n - m) for n, m in zip(block.shape[1:-1], miss.shape)]
        miss = np.pad(miss, pad) if any(p[1] for p in pad) else miss
        block = block.copy()
        block[:, miss] = self.center.astype(block.dtype)[:, None, None]
        return block

    def compose(self, grid: Grid, first: int, values: np.ndarray) -> np.ndarray:
        """Rows ``first ..`` of the output: predictions on missing traces, the input elsewhere."""
        if not self.keep_live:
            return values
        rows = slice(first, first + values.shape[1])
        raw = grid.read((rows, *(slice(0, n) for n in grid.shape[1:])))
        miss = self.missing[rows][None, ..., None]
        return np.where(miss, values, raw).astype(values.dtype)


def trace_fill(trained: Trained, grid: Grid, mask: str | Path | None, fill_all: bool) -> TraceFill | None:
    """What a reconstruct_traces model fills: the ``--mask`` file (True = missing) or the dead traces."""
    masking = trained.cfg.task.masking
    if masking is None or not masking.fills_traces:
        if mask is not None or fill_all:
            raise ConfigError(f"--mask and --all are for trace-reconstruction models, not {trained.cfg.task.name}",
                              fix="leave them out")
        return None
    shape = grid.shape[:-1]
    if mask is None:
        live = grid.live()
        missing = np.zeros(shape, bool) if live is None else ~live
    else:
        missing = _read_mask(mask, shape)
    if not missing.any() and not fill_all:
        log.warning("no trace is missing (no dead traces%s): the output equals the input",
                    "" if mask is None else " in the mask")
    log.info("filling %d of %d traces%s", int(missing.sum()), missing.size,
             "; --all: every trace is the model's prediction" if fill_all else "")
    return TraceFill(missing, keep_live=not fill_all, center=np.asarray(trained.norm.center, np.float32))


def _read_mask(path: str | Path, shape: tuple[int, ...]) -> np.ndarray:
    """A --mask file: a .npy of bools (or 0/1) over the grid's trace positions, True = missing."""
    try:
        mask = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read the mask: {exc}", where=str(path),
                        fix="give a .npy file of booleans (True = missing trace)") from None
    if mask.shape != shape:
        raise DataError(f"the mask has shape {mask.shape} but the grid has {shape} trace positions",
                        where=str(path), fix="give one value per trace (all grid axes but the sample axis)")
    if mask.dtype != bool and not np.isin(mask, (0, 1)).all():
        raise DataError("the mask holds values other than 0/1", where=str(path),
                        fix="give booleans: True (1) = missing trace")
    return mask.astype(bool)


# ----------------------------------------------------------------------------- windows

def _read_window(grid: Grid, geom: PatchGeometry, origin: Sequence[int], raw: bool = False) -> np.ndarray:
    """(C, *extent) input window (float32, or the stored words when ``raw``); axes shorter than the
    window are reflect-padded (padding copies values, so raw words pad as their floats would)."""
    ext = geom.extent
    window = tuple(slice(o, min(o + e, n)) for o, e, n in zip(origin, ext, grid.shape))
    block = grid.read_raw(window) if raw else grid.read(window)
    pad = [(0, 0)] + [(0, e - (w.stop - w.start)) for w, e in zip(window, ext)]
    if any(p[1] for p in pad):
        mode = "reflect" if all(block.shape[i + 1] > p[1] for i, p in enumerate(pad[1:]) if p[1]) else "symmetric"
        block = np.pad(block, pad, mode=mode)
    return block


# ----------------------------------------------------------------------------- streaming blend

class Blender:
    """Ring buffer over first-axis rows: accumulate weighted windows, release finished rows.

    NumPy arrays by default (the CPU); torch tensors on ``device`` when one is given, so on a GPU
    windows are blended where they were computed. The float32 arithmetic is the same, operation
    for operation, either way (the same bits). The CPU keeps NumPy: torch's elementwise ops there
    run on its thread pool, and on a busy machine each one waits for both threads to be scheduled
    (measured 28 ms against NumPy's 0.12 ms for one window's product under load).
    """

    def __init__(self, shape: tuple[int, ...], channels: int, plans: list[WindowPlan],
                 device: torch.device | None = None) -> None:
        self.shape, self.plans, self.device = shape, plans, device
        self.cap = max(p.geom.extent[0] for p in plans)
        size = (len(plans), channels, self.cap, *shape[1:])
        self.buf = np.zeros(size, np.float32) if device is None else torch.zeros(size, device=device)
        self.weights = [self._array(p.weight) for p in plans]
        self.sums = [[self._array(a.astype(np.float32)) for a in p.sums] for p in plans]
        self.base = 0  # first row not yet released

    def _array(self, values: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
        """``values`` as this blender's kind of array (no copy where none is needed)."""
        return np.asarray(values) if self.device is None else torch.as_tensor(values, device=self.device)

    def _arange(self, start: int, stop: int) -> np.ndarray | torch.Tensor:
        return np.arange(start, stop) if self.device is None else torch.arange(start, stop, device=self.device)

    @property
    def nbytes(self) -> int:
        return int(self.buf.nbytes) if self.device is None else self.buf.numel() * self.buf.element_size()

    def add(self, plan_index: int, origin: Sequence[int], values: np.ndarray | torch.Tensor) -> None:
        """Accumulate one window's (C, *extent) values × weight (clipped to the grid)."""
        plan = self.plans[plan_index]
        ext = plan.geom.extent
        # rows before ``base`` belong to another process (or are released): skip them
        skip = max(self.base - origin[0], 0)
        valid = (slice(skip, min(ext[0], self.shape[0] - origin[0])),) + tuple(
            slice(0, min(e, n - o)) for o, e, n in zip(origin[1:], ext[1:], self.shape[1:]))
        weighted = (self._array(values) * self.weights[plan_index])[(slice(None), *valid)]
        rows = self._ring(origin[0] + skip, weighted.shape[1])
        rest = tuple(slice(o, o + v.stop) for o, v in zip(origin[1:], valid[1:]))
        view = self.buf[plan_index]
        view[(slice(None), rows, *rest)] += weighted

    def release(self, upto: int) -> tuple[int, np.ndarray | torch.Tensor] | None:
        """Rows [base, upto): blended (mean over plans), as (first row, (C, rows, ...)); ring cleared.

        Done a few rows at a time on the CPU (:attr:`chunk_rows`: each chunk's weights, values and
        result stay in the cache; whole slabs made four trips through memory) and without a gather
        where the rows wrap around the ring; the arithmetic is the same either way.
        """
        upto = min(upto, self.shape[0])
        if upto <= self.base:
            return None
        first, n_plans = self.base, len(self.plans)
        out = self._empty((self.buf.shape[1], upto - first, *self.shape[1:]))
        a = first
        while a < upto:
            start = a % self.cap
            b = min(upto, a + self.cap - start, a + self.chunk_rows)
            ring, dst = slice(start, start + b - a), out[:, a - first:b - first]
            rows = self._arange(a, b)
            for p in range(n_plans):
                part = self.buf[p][:, ring]
                if p == 0:
                    self._divide(part, _outer(self.sums[p], rows)[None], dst)
                else:
                    dst += part / _outer(self.sums[p], rows)[None]
                part[...] = 0
            if n_plans > 1:
                dst /= n_plans
            a = b
        self.base = upto
        return first, out

    @property
    def chunk_rows(self) -> int:
        """Rows released per step: about 512 KiB of values on the CPU; the whole span on a device."""
        if self.device is not None:
            return self.cap
        return max(1, (1 << 17) // max(1, int(np.prod(self.buf.shape[1:2] + self.buf.shape[3:]))))

    def _empty(self, shape: tuple[int, ...]) -> np.ndarray | torch.Tensor:
        return np.empty(shape, np.float32) if self.device is None else torch.empty(shape, device=self.device)

    def _divide(self, a, b, out) -> None:
        if self.device is None:
            np.divide(a, b, out=out)
        else:
            torch.div(a, b, out=out)

    def _ring(self, start: int, n: int) -> slice | np.ndarray | torch.Tensor:
        """Ring positions of rows ``start .. start + n``: a slice (a view: no gather, no scatter)
        unless they wrap around the end of the ring."""
        first = start % self.cap
        if first + n <= self.cap:
            return slice(first, first + n)
        return self._arange(start, start + n) % self.cap


def _outer(sums: list, rows):
    """Weight sum over the rows × full other axes: product of the per-axis sums (float32)."""
    out = sums[0][rows]
    for s in sums[1:]:
        out = out[..., None] * s
    return out


# ----------------------------------------------------------------------------- the model

class Runner:
    """Batches windows through the model (mixed precision on CUDA), reading ahead in a thread.

    Windows come from ``read(key)`` as (C, *window) blocks in model order, not normalised: float32,
    or the stored SEG-Y words when ``raw`` = (format, byte order) is given (decoded on the device).
    On the CPU they are normalised in the reading thread, straight into the batch; elsewhere on
    the device, after a non-blocking copy from pinned memory.
    """

    def __init__(self, trained: Trained, rt: device.Runtime, window: tuple[int, ...], batch: int | None,
                 raw: tuple[int, str] | None = None) -> None:
        spec = trained.cfg.model
        self.model, _ = build(spec, window)
        self.model.load_state_dict(trained.state)
        self.place = device.placement(rt, spec.dims, trained.cfg.train.channels_last)
        self.model = self.place.model(self.model).eval()
        self.rt, self.trained, self.raw = rt, trained, raw
        self.norm_on_device = raw is not None or rt.device.type == "cuda"
        self.batch = batch or self._auto_batch(window)

    def _auto_batch(self, window: tuple[int, ...]) -> int:
        """The configured batch size, or on CUDA as many windows as half the free memory holds."""
        fallback = self.trained.cfg.train.batch_size
        free = device.free_memory(self.rt)
        if free is None:
            return fallback
        batch = device.batch_for_memory(free, self._window_bytes(window), fallback)
        log.info("batch size %d (from %.1f GiB free on %s)", batch, free / 2**30, self.rt.device)
        return batch

    def _window_bytes(self, window: tuple[int, ...]) -> int:
        """Peak CUDA bytes of one window's forward pass, measured on a batch of two."""
        dev = self.rt.device
        torch.cuda.synchronize(dev)
        before = torch.cuda.memory_allocated(dev)
        torch.cuda.reset_peak_memory_stats(dev)
        x = torch.zeros((2, self.trained.cfg.model.in_channels, *window), device=dev)
        self.scores(self.place.batch(x))
        torch.cuda.synchronize(dev)
        return max(1, (torch.cuda.max_memory_allocated(dev) - before) // 2)

    def scores(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, *window) normalised input on the device → (B, K, *window) or (B, K) there:
        probabilities or values."""
        with torch.no_grad(), self.rt.autocast():
            out = self.model(x).float()
        return self.trained.cfg.task.scores(out)

    def _stage(self, blocks: list[np.ndarray]) -> torch.Tensor:
        """Host batch of the blocks (pinned on CUDA), normalised here unless the device does it."""
        shape = (len(blocks), *blocks[0].shape)
        if self.raw is not None:  # the stored bytes, block after block
            staged = device.host_buffer((sum(b.nbytes for b in blocks),), torch.uint8, self.rt)
            np.concatenate([b.view(np.uint8).reshape(-1) for b in blocks], out=staged.numpy())
            return staged
        staged = device.host_buffer(shape, torch.float32, self.rt)
        out = staged.numpy()
        if self.norm_on_device:
            np.stack(blocks, out=out)
            return staged
        center = np.asarray(self.trained.norm.center, np.float32).reshape(-1, *[1] * (len(shape) - 2))
        scale = np.asarray(self.trained.norm.scale, np.float32).reshape(center.shape)
        for i, block in enumerate(blocks):  # (x - center) / scale, as Normalization.apply, in place
            np.subtract(block, center, out=out[i])
            np.divide(out[i], scale, out=out[i])
        return staged

    def _upload(self, staged: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
        """The staged batch on the device: decoded, normalised and laid out for the model."""
        x = staged.to(self.rt.device, non_blocking=True)
        if self.raw is not None:
            x = gpu_decode.decode(x, *self.raw, shape)
        if self.norm_on_device:
            x = self.trained.norm.apply(x, channel_axis=1)
        return self.place.batch(x)

    def stream(self, items: Iterator, read, ahead: int = 2) -> Iterator[tuple[list, torch.Tensor]]:
        """Yield (keys, scores on the device) per batch; a thread reads up to ``ahead`` batches
        ahead of the model. An error in the reader is raised here, as it was raised there."""
        q: queue.Queue = queue.Queue(maxsize=max(1, ahead))
        stop = threading.Event()

        def put(item) -> bool:
            while not stop.is_set():
                try:
                    q.put(item, timeout=0.1)
                    return True
                except queue.Full:
                    continue
            return False

        def producer() -> None:
            try:
                keys: list = []
                for key in items:
                    keys.append(key)
                    if len(keys) == self.batch:
                        blocks = [read(k) for k in keys]
                        if not put((keys, blocks[0].shape, self._stage(blocks))):
                            return
                        keys = []
                if keys:
                    blocks = [read(k) for k in keys]
                    put((keys, blocks[0].shape, self._stage(blocks)))
            except BaseException as exc:  # surfaced in the consumer
                put(exc)
            put(None)

        thread = threading.Thread(target=producer, daemon=True, name="geocnn-predict-reader")
        thread.start()
        try:
            while (item := q.get()) is not None:
                if isinstance(item, BaseException):
                    raise item
                keys, shape, staged = item
                yield keys, self.scores(self._upload(staged, (len(keys), *shape)))
        finally:
            stop.set()  # a consumer that stops early (an error) releases the reader
            thread.join()


def _device_decoding(rt: device.Runtime, grid: Grid) -> tuple[int, str] | None:
    """(format, byte order) when the grid's samples are best decoded on the device: on a GPU, for
    IBM and integer SEG-Y (raw words up, floats never built on the host)."""
    raw = grid.raw_format()
    if rt.device.type != "cuda" or raw is None or not gpu_decode.supported(raw[0]):
        return None
    return raw


def _ahead(plans: list[WindowPlan], batch: int) -> int:
    """Batches the reader may run ahead: one slab of rows (the windows sharing a first-axis start)."""
    per_slab = max(int(np.prod(p.shape[1:], dtype=np.int64)) for p in plans)
    return max(2, -(-per_slab // batch))


# ----------------------------------------------------------------------------- entry point

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


def predict(run_or_checkpoint: str | Path, inputs: Sequence[str | Path], out: str | Path, *,
            overlap: float = 0.25, blend: str = "gaussian", batch_size: int | None = None,
            device_name: str = "auto", output: str = "auto", force: bool = False,
            window: Sequence[int] | None = None, both_orientations: bool = False,
            pictures: bool = True, threads: int | None = None, mask: str | Path | None = None,
            fill_all: bool = False, reporter: Reporter = SILENT,
            stride: int | Sequence[int] | Mapping[str, int] | None = None, split_classes: bool = False,
            axes: Mapping[str, str] | None = None) -> Report:
    """Apply a trained model to whole grids and write the result (see the module docstring).

    ``stride`` (patch/trace models): map step per grid axis — one number for every axis, one
    per axis in grid order, or ``{axis: step}``. ``split_classes``: one output per class
    (``NAME.class-K.sgy``/``.npy``). ``axes``: input axis → training patch axis, for a section
    model on a 2D line (``{"trace": "crossline"}``). Sanity checks on the input's amplitudes
    are logged as warnings and listed in :attr:`Report.warnings`.
    """
    if not 0 <= overlap < 1:
        raise ConfigError(f"--overlap must be in [0, 1), got {overlap}")
    if blend not in BLENDS:
        raise ConfigError(f"--blend must be one of {', '.join(BLENDS)}, got {blend}")
    trained = load_trained(run_or_checkpoint)
    writer.output_format(out)  # a bad output name fails before any work
    kind = trained.cfg.task.output_kind(output, trained.classes)
    if stride is not None and trained.cfg.dense:
        raise ConfigError("--stride applies to patch/trace models (one score per window); this model answers "
                          "every sample", fix="leave --stride out (use --overlap for dense models)")
    rt = device.setup(device_name, trained.cfg.train.amp, threads or trained.cfg.train.threads)
    try:
        grid = open_stack(input_specs(trained, inputs))
        patch_axes = patch_axes_on(trained, grid, axes)
        _check_grid(trained, grid, patch_axes)
        found = sanity.check_input(grid, trained.norm) if rt.main else []
        t0 = time.perf_counter()
        size = _window_size(trained, window)
        geom = _geometry(grid, trained, size, patch_axes)
        fill = trace_fill(trained, grid, mask, fill_all)
        # hidden traces are set in the input's units, before normalisation: decode on the host then
        runner = Runner(trained, rt, size, batch_size, None if fill is not None else _device_decoding(rt, grid))
        if fill is not None:  # a guard-trained model fills in passes (geocnn.guardband)
            runner.model = guardband.wrap(runner.model, trained.cfg.data.mask, geom.model_axes, fill_all)
        target = _Target(out, force, split_classes)
        if trained.cfg.dense:
            report = _predict_dense(trained, grid, geom, runner, target, overlap, blend, kind,
                                    both_orientations, rt, reporter, fill)
        else:
            report = _predict_map(trained, grid, geom, runner, target, overlap, stride, kind, rt, reporter)
        report.seconds = time.perf_counter() - t0
        report.warnings = found
        if pictures and rt.main:
            report.pictures = plots.prediction_previews(grid, report.output, trained.cfg.task, kind,
                                                        plots.Names.of(trained.cfg, grid), _same_units(trained),
                                                        trained.classes, trained.cfg.model, patch_axes) or []
        return report
    finally:
        device.teardown(rt)


@dataclass(frozen=True)
class _Target:
    """Where the prediction goes: one output, or one per class."""

    out: str | Path
    force: bool
    split_classes: bool

    def prepare(self, trained: Trained, grid: Grid, channels: int, dtype: str, kind: str,
                attach: str | None, **options) -> writer.PendingOutput | writer.PendingSet:
        """The pending output(s) for ``channels`` values per position."""
        if not self.split_classes:
            _check_segy_channels(trained, self.out, channels, kind)
            return writer.prepare(self.out, grid, channels, dtype, self.force, attach=attach, **options)
        if not trained.cfg.task.classifies or kind != "probabilities":
            raise ConfigError("--split-classes writes one file of probabilities per class",
                              fix="use it with --output probabilities on a classifying model")
        classes = range(channels) if channels > 1 else [1]  # one channel: P(class 1) of a binary model
        return writer.prepare_set(writer.class_paths(self.out, classes), grid, dtype, self.force,
                                  attach=attach, **options)


def _check_segy_channels(trained: Trained, out, channels: int, kind: str) -> None:
    """Several class probabilities per position do not fit one SEG-Y (even a pre-stack one)."""
    if writer.output_format(out) == "segy" and trained.cfg.task.classifies and kind == "probabilities" \
            and channels > 1:
        raise DataError(f"{channels} class probabilities per sample do not fit one SEG-Y", where=str(out),
                        fix="pass --split-classes for one SEG-Y per class (NAME.class-K.sgy), or write a .npy output")


def _same_units(trained: Trained) -> bool:
    """Is the prediction in the input's units (denoising), so the preview shows input − prediction?"""
    if not trained.cfg.task.input_baseline:
        return False
    if trained.target_norm is None:
        return trained.norm.method == "none"
    return trained.target_norm.to_dict() == trained.norm.to_dict()


def _window_size(trained: Trained, window: Sequence[int] | None) -> tuple[int, ...]:
    patch = trained.cfg.patch
    if window is None:
        return patch
    window = tuple(window)
    spec = trained.cfg.model
    if len(window) != spec.dims:
        raise ConfigError(f"--window needs {spec.dims} sizes, got {len(window)}")
    if not trained.cfg.dense and window != patch:
        raise ConfigError("--window applies to dense models only; this model takes "
                          f"{'×'.join(map(str, patch))} patches")
    if not accepts(spec, window):
        from geocnn.model import nearest_accepted

        near = nearest_accepted(spec, window)
        raise ConfigError(f"the model does not accept windows of {'×'.join(map(str, window))}",
                          fix=f"use {'×'.join(map(str, near))}" if near else "use the training patch size")
    return window


def _geometry(grid: Grid, trained: Trained, size: tuple[int, ...], patch_axes: tuple[str, ...]) -> PatchGeometry:
    """Windows along the training patch axes; dense models pad a grid smaller than the window."""
    small = [f"{a} {grid.shape[grid.axes.index(a)]} < {n}" for a, n in zip(patch_axes, size)
             if grid.shape[grid.axes.index(a)] < n]
    if small and not trained.cfg.dense:
        raise DataError(f"the grid is smaller than the model's patch ({', '.join(small)})", where=grid.sources[0],
                        fix="a patch/trace classifier needs whole patches")
    idx = tuple(grid.axes.index(a) for a in patch_axes)
    return PatchGeometry(grid.axes, grid.shape, idx, tuple(size))


def _orientation_geoms(trained: Trained, grid: Grid, geom: PatchGeometry, both: bool) -> list[PatchGeometry]:
    if not both:
        return [geom]
    axes = trained.patch_axes
    swap = {"crossline": "inline", "inline": "crossline"}
    if trained.cfg.model.dims != 2 or not (set(axes) & set(swap)) or any(a not in grid.axes for a in swap):
        raise ConfigError("--both-orientations is for 2D models trained on inline or crossline sections of a 3D volume")
    other = tuple(swap.get(a, a) for a in axes)
    return [geom, patch_geometry(grid.axes, grid.shape, geom.size, other, None)]


def _rank_rows(n: int, rt: device.Runtime, block: int = 1) -> tuple[int, int]:
    """This process's first-axis rows, in multiples of the output's chunk rows (``block``), so that
    processes writing a chunked store never share a chunk."""
    blocks = -(-n // block)
    per = -(-blocks // rt.world_size) * block
    return min(rt.rank * per, n), min((rt.rank + 1) * per, n)


def _share_output(pending: writer.PendingOutput | writer.PendingSet | None, rt: device.Runtime) -> str | None:
    """Rank 0's temporary output path on every process (sent as bytes, nothing pickled)."""
    if not rt.distributed:
        return None
    path = (pending.tmp if pending is not None else "").encode()
    length = torch.tensor([len(path)], dtype=torch.int64)
    dist.broadcast(length, 0)
    buf = torch.zeros(int(length), dtype=torch.uint8)
    if rt.main:
        buf[:] = torch.frombuffer(bytearray(path), dtype=torch.uint8)
    dist.broadcast(buf, 0)
    return bytes(buf.tolist()).decode()


def _prepare(rt: device.Runtime, make) -> writer.PendingOutput | writer.PendingSet:
    """Rank 0 creates the temporary output; the others attach to the same file."""
    pending = make(None) if rt.main else None
    tmp = _share_output(pending, rt)
    if pending is None:
        pending = make(tmp)
    return pending


def _finish(pending: writer.PendingOutput | writer.PendingSet, rt: device.Runtime, ok: bool) -> Path:
    if rt.distributed:
        flag = torch.tensor([int(ok)])
        dist.all_reduce(flag, op=dist.ReduceOp.MIN)
        ok = bool(flag.item())
    if rt.main:
        if ok:
            pending.commit()
        else:
            pending.abort()
    device.barrier(rt)  # every process leaves together, after the rename
    return Path(pending.path)


def _predict_dense(trained, grid, geom, runner, target, overlap, blend, kind, both, rt, reporter,
                   fill: TraceFill | None = None) -> Report:
    geoms = _orientation_geoms(trained, grid, geom, both)
    plans = [plan_windows(g, overlap=overlap, blend=blend) for g in geoms]
    scores = _model_channels(trained, geom.size)
    channels, dtype = trained.cfg.task.output_channels(kind, scores)
    pending = _prepare(rt, lambda tmp: target.prepare(trained, grid, channels, dtype, kind, tmp))
    rows = _rank_rows(grid.shape[0], rt, pending.row_block)
    blender = Blender(grid.shape, scores, plans, _blend_on(rt))
    blender.base = rows[0]
    live = grid.live()
    total = sum(p.count(rows) for p in plans)
    task = reporter.task("predict", total=total, unit="window")
    ok = False
    try:
        with pending.open() as w:
            items = _merged_windows(plans, rows)
            raw = runner.raw is not None

            def read(key):
                p, origin = key
                block = _read_window(grid, plans[p].geom, origin, raw)
                if fill is not None:
                    block = fill.hide(block, origin)
                return plans[p].geom.to_model(block)

            for keys, batch_scores in runner.stream(items, read, _ahead(plans, runner.batch)):
                if blender.device is None:
                    batch_scores = batch_scores.cpu().numpy()  # the CPU's tensor's own memory
                for (p, origin), s in zip(keys, batch_scores):
                    if _flush(blender, origin[0], rows, w, trained, kind, live, fill, grid):
                        # Rows before this window are final: let their input pages leave this process
                        # (mapped pages count in its memory; the reader maps the file again).
                        grid.release()
                    blender.add(p, origin, _grid_layout(plans[p].geom, s))
                task.advance(len(keys))
            _flush(blender, rows[1], rows, w, trained, kind, live, fill, grid)
        ok = True
    finally:
        task.close()
        path = _finish(pending, rt, ok)
    return Report(path, total, blender.nbytes, 0.0, [], _paths(pending))


def _paths(pending: writer.PendingOutput | writer.PendingSet) -> list[Path]:
    return pending.paths if isinstance(pending, writer.PendingSet) else [Path(pending.path)]


def _blend_on(rt: device.Runtime) -> torch.device | None:
    """Where the ring buffer lives: NumPy on the CPU (None), a tensor on any other device."""
    return None if rt.device.type == "cpu" else rt.device


def _grid_layout(geom: PatchGeometry, t: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
    """``geom.to_grid`` for a tensor too: (C, *patch) in model order → (C, *extent) in grid order."""
    if isinstance(t, np.ndarray):
        return geom.to_grid(t)
    order = np.argsort(geom.patch_axes)
    return t.permute(0, *(1 + int(i) for i in order)).reshape((t.shape[0], *geom.extent))


def _model_channels(trained: Trained, size: tuple[int, ...]) -> int:
    from geocnn.model import infer

    return infer(trained.cfg.model, size, receptive=False).output.channels


def _merged_windows(plans: list[WindowPlan], rows: tuple[int, int]) -> Iterator[tuple[int, tuple[int, ...]]]:
    """Windows of all plans, in order of their first-axis start (what the ring buffer needs)."""
    def tagged(p: int, plan: WindowPlan) -> Iterator[tuple[int, int, tuple[int, ...]]]:
        for origin in plan.windows(rows):
            yield origin[0], p, origin

    iters = [tagged(p, plan) for p, plan in enumerate(plans)]
    for _, p, origin in heapq.merge(*iters, key=lambda t: (t[0], t[1])):
        yield p, origin


def _flush(blender: Blender, upto: int, rows: tuple[int, int], w, trained: Trained, kind: str,
           live: np.ndarray | None, fill: TraceFill | None = None, grid: Grid | None = None) -> bool:
    """Write rows before ``upto`` (within this process's range); dead traces stay zero unless they
    are filled. True when rows were written."""
    released = blender.release(min(upto, rows[1]))
    if released is None:
        return False
    first, values = released
    values = trained.cfg.task.to_output(values, kind, trained.target_norm)
    if fill is not None:  # the input's live traces come from the host
        values = fill.compose(grid, first, values if isinstance(values, np.ndarray) else device.to_host(values))
    elif live is not None:
        mask = live[first:first + values.shape[1]]
        if not isinstance(values, np.ndarray):
            mask = torch.from_numpy(mask).to(values.device)
        values = values * mask[(None, ...) + (None,) * (values.ndim - 1 - mask.ndim)]
    window = (slice(first, first + values.shape[1]),) + tuple(slice(0, n) for n in blender.shape[1:])
    w.write(window, values if isinstance(values, np.ndarray) else device.to_host(values))
    return True


def map_plan(geom: PatchGeometry, overlap: float = 0.0,
             stride: int | Sequence[int] | Mapping[str, int] | None = None) -> tuple[WindowPlan, tuple[int, ...]]:
    """The regular windows of a score map, and its step per grid axis.

    Windows start at 0 and every ``step`` along each axis while they fit (no window is moved
    to the end, so the map's cells are evenly spaced: stride × the input's spacing).

    Examples
    --------
    >>> geom = PatchGeometry(("inline", "crossline", "sample"), (5, 40, 100), (1, 2), (16, 64))
    >>> plan, steps = map_plan(geom, stride={"inline": 2, "crossline": 8, "sample": 12})
    >>> steps, plan.shape, plan.centres[1]
    ((2, 8, 12), (3, 4, 4), [8, 16, 24, 32])
    """
    steps = _map_steps(geom, overlap, stride)
    starts = tuple(tuple(range(0, n - e + 1, s)) for n, e, s in zip(geom.grid_shape, geom.extent, steps))
    return dataclasses.replace(plan_windows(geom, overlap=overlap), starts=starts), steps


def _map_steps(geom: PatchGeometry, overlap: float, stride) -> tuple[int, ...]:
    """``--stride`` resolved per grid axis; default 1 off the patch, the overlap's step along it."""
    axes = geom.grid_axes
    default = [1 if e == 1 else max(1, int(round(e * (1 - overlap)))) for e in geom.extent]
    if stride is None:
        return tuple(default)
    if isinstance(stride, int):
        steps = [stride] * len(axes)
    elif isinstance(stride, Mapping):
        unknown = [a for a in stride if a not in axes]
        if unknown:
            raise ConfigError(f"--stride names {', '.join(unknown)}, not an axis of the input ({', '.join(axes)})",
                              fix="use the input's axis names, e.g. --stride inline=2,crossline=4")
        steps = [stride.get(a, d) for a, d in zip(axes, default)]
    else:
        steps = list(stride)
        if len(steps) != len(axes):
            raise ConfigError(f"--stride needs one step, or one per input axis ({', '.join(axes)}), got {len(steps)}",
                              fix=f"e.g. --stride {','.join(map(str, default))}")
    if any(int(v) < 1 for v in steps):
        raise ConfigError(f"--stride steps must be at least 1, got {','.join(map(str, steps))}")
    return tuple(int(v) for v in steps)


def _map_sidecar(grid: Grid, plan: WindowPlan, steps: tuple[int, ...]) -> dict:
    """What a map's sidecar adds: window, stride, centres, the cells' line numbers, the map's spacing."""
    extent, centres, m = plan.geom.extent, plan.centres, grid.meta
    cells = {"window": list(extent), "stride": dict(zip(grid.axes, steps)),
             "centres": {grid.axes[a]: c for a, c in enumerate(centres) if extent[a] > 1 or steps[a] > 1}}
    side: dict = {}
    for axis, key, numbers in (("inline", "ilines", m.ilines), ("crossline", "xlines", m.xlines),
                               ("offset", "offsets", m.offsets)):
        if axis in grid.axes and numbers is not None:
            at = np.asarray(numbers)[centres[grid.axes.index(axis)]]
            cells[key] = [int(v) for v in at]
            side[key] = number_range(at)
    spacing = grid.spacing()
    side["spacing"] = {a: {"value": spacing[a][0] * s, "unit": spacing[a][1]} for a, s in zip(grid.axes, steps)
                       if a in spacing}
    if "sample" in grid.axes:
        dt = m.sample_interval_us or 1000.0
        side["sample_start_ms"] = m.sample_start_ms + centres[-1][0] * dt / 1000.0
    return {**side, "map": cells}


def _map_output(target: _Target, trained: Trained, grid: Grid, plan: WindowPlan, steps: tuple[int, ...],
                channels: int, dtype: str, kind: str, attach: str | None
                ) -> tuple[writer.PendingOutput | writer.PendingSet, bool]:
    """The output of a score map, and whether its samples hold the score channels (see the module
    docstring for the SEG-Y layout)."""
    shape, centres, m = plan.shape, plan.centres, grid.meta
    dt = m.sample_interval_us
    side = _map_sidecar(grid, plan, steps)
    if writer.output_format(target.out) != "segy":
        pending = target.prepare(trained, grid, channels, dtype, kind, attach, shape=shape, sidecar_extra=side,
                                 sample_interval_us=dt * steps[-1] if dt else None)
        return pending, False
    positions = tuple(np.meshgrid(*[np.asarray(c) for c in centres[:-1]], indexing="ij"))
    collapsed = "offset" in grid.axes and shape[grid.axes.index("offset")] == 1 \
        and grid.shape[grid.axes.index("offset")] > 1
    options = {"traces": writer.trace_selection(grid, positions, clear_offsets=collapsed),
               "sample_start_ms": side.get("sample_start_ms")}
    as_samples = shape[-1] == 1 and channels > 1 and not target.split_classes
    if as_samples:  # one cell along time: sample k holds score channel k
        pending = target.prepare(trained, grid, 1, dtype, kind, attach, shape=(*shape[:-1], channels), **options)
    else:
        pending = target.prepare(trained, grid, channels, dtype, kind, attach, shape=shape,
                                 sample_interval_us=(dt or 1000.0) * steps[-1], **options)
    return pending, as_samples


def _predict_map(trained, grid, geom, runner, target, overlap, stride, kind, rt, reporter) -> Report:
    """One score per window position (patch/trace models), on a regular map."""
    plan, steps = map_plan(geom, overlap, stride)
    shape = plan.shape
    scores = _model_channels(trained, geom.size)
    channels, dtype = trained.cfg.task.output_channels(kind, scores)
    made: list[bool] = []

    def make(tmp):
        pending, as_samples = _map_output(target, trained, grid, plan, steps, channels, dtype, kind, tmp)
        made.append(as_samples)
        return pending

    pending = _prepare(rt, make)
    as_samples = made[-1]
    keys = list(plan.indices(range(*_rank_rows(shape[0], rt, pending.row_block))))
    task = reporter.task("predict", total=len(keys), unit="window")
    ok = False
    live = grid.live()
    try:
        with pending.open() as w:
            raw = runner.raw is not None

            def read(key):
                window = geom.window(plan.origin(key))
                return geom.to_model(grid.read_raw(window) if raw else grid.read(window))

            for batch_keys, batch_scores in runner.stream(iter(keys), read, _ahead([plan], runner.batch)):
                batch_scores = batch_scores.cpu().numpy()  # a few numbers per window
                for key, s in zip(batch_keys, batch_scores):
                    values = trained.cfg.task.to_output(s.reshape(-1, *([1] * len(shape))), kind, trained.target_norm)
                    if live is not None and live_fraction(geom, live, np.array([plan.origin(key)]))[0] == 0:
                        values = values * 0  # a window without a live trace
                    window = tuple(slice(k, k + 1) for k in key)
                    if as_samples:  # (K, 1, ..., 1) → (1, 1, ..., K)
                        values = values.reshape(1, *([1] * (len(shape) - 1)), -1)
                        window = (*window[:-1], slice(0, values.shape[-1]))
                    w.write(window, values)
                task.advance(len(batch_keys))
        ok = True
    finally:
        task.close()
        path = _finish(pending, rt, ok)
    return Report(path, len(keys), 0, 0.0, [], _paths(pending))
