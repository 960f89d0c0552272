"""What runs the network over the prediction windows: a closed registry of engines (``--engine``).

No engine or memory layout wins everywhere on a CPU: ONNX Runtime runs plain conv stacks up to
twice as fast as PyTorch, and is slower than PyTorch on a U-Net (pooling, upsampling,
concatenation), where even PyTorch's default layout can beat channels_last (issue 19's table).
So ``auto`` decides by measurement, not by rule:

1. The candidates that apply: PyTorch in the run's memory layout, PyTorch in the other one (2D/3D
   networks on the CPU), and ONNX Runtime (CPU, when ``geocnn[export]`` is installed) on a graph
   of the prediction window traced once by :mod:`geocnn.graph` and cached beside the checkpoint
   (``checkpoints/engines/<checkpoint hash>-<window>-torch<v>-ort<v>.onnx``, written atomically).
2. ONNX Runtime's graph must give PyTorch's scores on a seeded batch within
   :data:`geocnn.graph.TOLERANCE` of their scale, else it is left out (with the figure).
3. Each candidate runs a warm-up and then timed batches of the real batch shape, in turns (A B C
   A B C ...); the fastest median is kept if it beats the run's PyTorch by :data:`MARGIN` (else the
   run's PyTorch is), and the log names it with every candidate's milliseconds per batch.
4. The choice is cached per checkpoint hash, window, batch size, thread count and machine
   (``checkpoints/engines/choices.json``), so the next prediction builds the chosen candidate
   alone: no timing, and no ONNX Runtime session (nor its import, graph check and memory) when
   PyTorch won.

PyTorch runs at the prediction's precision (``--precision``: bf16 autocast where asked); ONNX
Runtime always runs fp32, so under bf16 ``auto`` weighs bf16 PyTorch against fp32 ONNX Runtime.

``torch`` is PyTorch in the run's layout (what prediction always did, and the default: every
process of a torchrun job and every repeat gives the same bits); ``onnxruntime`` is ONNX Runtime
or a one-line error saying why it cannot run. Only the model call changes: windows, blending,
ring buffers, outputs and ranks are the same path whatever the engine.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import logging
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from geocnn import atomic, device, graph, machine
from geocnn.errors import ConfigError, GeocnnError
from geocnn.predict.trained import Trained

log = logging.getLogger(__name__)

Forward = Callable[[torch.Tensor], torch.Tensor]  # normalised (B, C, *window) → raw network output
TIMED_BATCHES = 5  # timed runs per candidate, in turns, after one warm-up
# Another engine replaces the run's PyTorch only when its median is this much faster: a choice is cached
# for good, and on a shared machine a burst of load during the timing once made auto pick ONNX Runtime
# for the fault U-Net at 0.3-0.5x the run's PyTorch (and +80 MiB of memory).
MARGIN = 1.10


@dataclass(frozen=True)
class EngineKind:
    """One ``--engine`` value: what it is, for ``--help`` and errors."""

    name: str
    help: str


ENGINES: dict[str, EngineKind] = {e.name: e for e in (
    EngineKind("torch", "PyTorch in the run's memory layout (the default; the same bits in every process)"),
    EngineKind("onnxruntime", "ONNX Runtime's CPU provider on the window's graph (pip install 'geocnn[export]')"),
    EngineKind("auto", "the fastest of PyTorch (both layouts) and ONNX Runtime, measured on this machine and cached"),
)}


def check_engine(name: str) -> str:
    """The engine name, or a one-line error listing the choices."""
    if name not in ENGINES:
        raise ConfigError(f"--engine must be one of {', '.join(ENGINES)}, got '{name}'",
                          fix="; ".join(f"{e.name}: {e.help}" for e in ENGINES.values()))
    return name


@dataclass
class Candidate:
    """One way to run the network: its name in the log, the call, and the batches' placement."""

    name: str
    forward: Forward
    place: device.Placement


@dataclass(frozen=True)
class Context:
    """What every candidate is built from."""

    trained: Trained
    rt: device.Runtime
    window: tuple[int, ...]
    batch: int
    model: torch.nn.Module  # the network with the checkpoint's weights, in eval mode, placed in the run's layout

    @functools.cached_property
    def digest(self) -> str:
        """The checkpoint's hash, read once (the graph's name and the choice's key both carry it)."""
        return checkpoint_hash(self.trained.path)


def choose(engine: str, ctx: Context) -> Candidate:
    """The candidate ``engine`` asks for (see the module's docstring)."""
    spec = ctx.trained.cfg.model
    run_layout = device.placement(ctx.rt, spec.dims, ctx.trained.cfg.train.channels_last)
    if engine == "torch":
        return _torch(ctx, run_layout, own_copy=False)
    if engine == "onnxruntime":
        return _onnxruntime(ctx, strict=True)
    if ctx.rt.device.type != "cpu":
        log.info("engine auto: PyTorch on %s (ONNX Runtime's CPU provider and layout timing are for CPUs)",
                 ctx.rt.device)
        return _torch(ctx, run_layout, own_copy=False)
    builders: dict[str, Callable[[], Candidate | None]] = {
        _torch_name(run_layout): lambda: _torch(ctx, run_layout, own_copy=False)}
    if spec.dims in (2, 3):
        other = device.Placement(run_layout.device, not run_layout.channels_last, spec.dims)
        builders[_torch_name(other)] = lambda: _torch(ctx, other, own_copy=True)
    builders["onnxruntime"] = lambda: _onnxruntime(ctx, strict=False)
    return _fastest(builders, ctx)


# ----------------------------------------------------------------------------- candidates

def _torch(ctx: Context, place: device.Placement, own_copy: bool) -> Candidate:
    """PyTorch (mixed precision where the run's device uses it), in ``place``'s layout: the network as
    placed, or (``own_copy``, another layout) a copy whose weights are converted to it."""
    model = ctx.model
    if own_copy:
        fmt = device.memory_format(place.dims) if place.channels_last else torch.contiguous_format
        model = copy.deepcopy(model).to(memory_format=fmt).to(place.device)
    rt = ctx.rt

    def forward(x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad(), rt.autocast():
            return model(x).float()

    forward.module = model  # type: ignore[attr-defined]  # what guard passes and tests wrap
    return Candidate(_torch_name(place), forward, place)


def _torch_name(place: device.Placement) -> str:
    return "torch channels_last" if place.channels_last else "torch"


def _onnxruntime(ctx: Context, strict: bool) -> Candidate | None:
    """ONNX Runtime on the window's cached graph; None (``strict``: a one-line error) when it cannot run."""
    try:
        if ctx.rt.device.type != "cpu":
            raise _NotHere(f"ONNX Runtime runs here on the CPU, but the device is {ctx.rt.device}",
                           "use --device cpu, or --engine torch")
        session = _session(ctx, _graph(ctx))
    except _NotHere as why:
        if strict:
            raise ConfigError(f"--engine onnxruntime cannot run: {why.problem}", fix=why.fix) from None
        log.info("engine auto: ONNX Runtime left out (%s)", why.problem)
        return None
    place = device.Placement(torch.device("cpu"), False, ctx.trained.cfg.model.dims)
    if strict and ctx.rt.amp_dtype is not None:
        log.info("engine onnxruntime runs fp32 (the %s precision applies to PyTorch)", ctx.rt.amp_dtype)

    def forward(x: torch.Tensor) -> torch.Tensor:
        out = session.run(None, {graph.INPUT_NAME: x.detach().contiguous().numpy()})[0]
        return torch.from_numpy(out)

    return Candidate("onnxruntime", forward, place)


class _NotHere(Exception):
    """Why ONNX Runtime does not apply (a problem and a fix)."""

    def __init__(self, problem: str, fix: str) -> None:
        super().__init__(problem)
        self.problem, self.fix = problem, fix


def _session(ctx: Context, path: Path):
    """An ONNX Runtime session with the process's thread count, after checking its scores."""
    try:
        import onnxruntime
    except ImportError:
        raise _NotHere("onnxruntime is not installed", "pip install 'geocnn[export]'") from None
    x = _seeded_batch(ctx)
    with torch.no_grad():
        expected = ctx.model(x).float().numpy()
    try:
        session = onnxruntime.InferenceSession(str(path), session_options(onnxruntime),
                                               providers=["CPUExecutionProvider"])
        got = session.run(None, {graph.INPUT_NAME: x.numpy()})[0]
    except Exception as exc:  # noqa: BLE001  onnxruntime's own exception types (a damaged cached graph)
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
        raise _NotHere(f"ONNX Runtime cannot run the cached graph {path.name} ({first})",
                       f"delete {path} to trace it again, or use --engine torch") from None
    diff = float(np.max(np.abs(got - expected))) if got.shape == expected.shape else float("inf")
    scale = max(1.0, float(np.max(np.abs(expected))))
    if not diff <= graph.TOLERANCE * scale:
        raise _NotHere(f"its graph differs from PyTorch by {diff:.3g} (scale {scale:.3g}) on a seeded batch",
                       "use --engine torch, and report the model section of the config as a geocnn bug")
    return session


def session_options(onnxruntime):
    """How geocnn runs ONNX Runtime (the engine, and the benchmarks that measure it): torch's thread
    count (``--threads``), one inter-op thread, and no busy-waiting between runs — spinning ORT threads
    take the cores from geocnn's reader and blending (net3d on 192³, 2 cores, interleaved: 0.50×
    PyTorch's rate spinning, 0.79× not) and from PyTorch running in the same process."""
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3
    return options


def _graph(ctx: Context) -> Path:
    """The window's ONNX graph beside the checkpoint (traced once; a temporary file when the
    checkpoint's folder cannot be written)."""
    try:
        import onnx  # noqa: F401  (the export extra's packages, asked before tracing)
        import onnxruntime
        import onnxscript  # noqa: F401
    except ImportError as exc:
        raise _NotHere(f"the package '{exc.name}' is not installed", "pip install 'geocnn[export]'") from None
    versions = f"torch{torch.__version__.split('+')[0]}-ort{onnxruntime.__version__}"
    name = f"{ctx.digest}-{'x'.join(map(str, ctx.window))}-{versions}.onnx"
    path = cache_folder(ctx.trained) / name
    if path.is_file():
        return path
    try:
        program = graph.trace_fixed(ctx.model, _seeded_batch(ctx, 2))
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic.replacing(path, force=True) as tmp:
            graph.write_onnx(program, tmp, {
                "producer": "geocnn predict engine", "task": ctx.trained.cfg.task.name,
                "layout": json.dumps(["batch", "channel", *ctx.trained.cfg.model.axes]),
                "output": f"raw network output for windows of {'x'.join(map(str, ctx.window))}"})
    except (GeocnnError, OSError) as exc:
        raise _NotHere(f"its graph could not be cached ({exc})", "use --engine torch") from None
    except Exception as exc:  # noqa: BLE001  torch.export/ONNX exporter failures of any kind
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
        raise _NotHere(f"the network could not be traced for ONNX ({first})", "use --engine torch") from None
    return path


# ----------------------------------------------------------------------------- measuring

def _seeded_batch(ctx: Context, batch: int | None = None) -> torch.Tensor:
    """Normalised-looking input (standard normal, seeded) of the batch's shape."""
    gen = torch.Generator().manual_seed(0)
    return torch.randn((batch or ctx.batch, ctx.trained.cfg.model.in_channels, *ctx.window), generator=gen)


def _fastest(builders: dict[str, Callable[[], Candidate | None]], ctx: Context) -> Candidate:
    """The fastest candidate: the cached choice, built alone (no ONNX Runtime session, graph check or
    import when PyTorch won), or every candidate built and measured now (and the choice cached)."""
    key = choice_key(ctx)
    cached = _read_choices(ctx.trained).get(key)
    if cached is not None and cached.get("engine") in builders:
        chosen = builders[cached["engine"]]()
        if chosen is not None:
            log.info("engine auto: %s (measured before on this machine: %s)", chosen.name,
                     _figures(cached.get("ms_per_batch", {})))
            return chosen
    candidates = [c for c in (build() for build in builders.values()) if c is not None]
    if len(candidates) == 1:
        return candidates[0]
    timings = _times(candidates, ctx)
    default = candidates[0].name  # the run's PyTorch: what --engine torch runs
    best = min(timings, key=timings.__getitem__)
    if timings[best] * MARGIN > timings[default]:
        best = default
    log.info("engine auto: %s (%s per batch of %d)", best, _figures(timings), ctx.batch)
    _write_choice(ctx.trained, key, {"engine": best, "ms_per_batch": {k: round(v, 2) for k, v in timings.items()}})
    return next(c for c in candidates if c.name == best)


def _times(candidates: list[Candidate], ctx: Context) -> dict[str, float]:
    """Median milliseconds per batch of each candidate, after one warm-up each, timed in turns
    (A B C A B C ...) so that a burst of load elsewhere on the machine falls on all of them."""
    batches = {c.name: c.place.batch(_seeded_batch(ctx)) for c in candidates}
    for c in candidates:
        c.forward(batches[c.name])
    runs: dict[str, list[float]] = {c.name: [] for c in candidates}
    for _ in range(TIMED_BATCHES):
        for c in candidates:
            t0 = time.perf_counter()
            c.forward(batches[c.name])
            runs[c.name].append(1000 * (time.perf_counter() - t0))
    return {name: float(np.median(r)) for name, r in runs.items()}


def _figures(ms: dict[str, float]) -> str:
    return ", ".join(f"{name} {value:.1f} ms" for name, value in sorted(ms.items(), key=lambda kv: kv[1]))


# ----------------------------------------------------------------------------- the cache

def checkpoint_hash(path: Path) -> str:
    """The first 16 hex digits of the checkpoint file's SHA-256 (new weights, new graph)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()[:16]


def cache_folder(trained: Trained) -> Path:
    """``checkpoints/engines/`` beside the checkpoint."""
    return trained.path.parent / "engines"


def machine_name() -> str:
    """The CPU's model name and the cores this process may use (the cache's machine key)."""
    name = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            name = next((line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")), name)
    except OSError:
        pass
    return f"{name} ×{machine.cpu_count()}"


def choice_key(ctx: Context) -> str:
    """Checkpoint, window, batch size, precision, threads and machine: what the fastest engine depends on
    (a fp32 key is written as before precision was a choice, so earlier choices stay valid)."""
    amp = "" if ctx.rt.amp_dtype is None else f"|{str(ctx.rt.amp_dtype).removeprefix('torch.')}"
    return "|".join((ctx.digest, "x".join(map(str, ctx.window)), f"batch {ctx.batch}",
                     f"threads {torch.get_num_threads()}", machine_name())) + amp


def _read_choices(trained: Trained) -> dict:
    path = cache_folder(trained) / "choices.json"
    try:
        found = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


def _write_choice(trained: Trained, key: str, choice: dict) -> None:
    """Add one choice to ``choices.json`` (atomically; skipped where the run folder is read-only)."""
    choices = {**_read_choices(trained), key: choice}
    try:
        cache_folder(trained).mkdir(parents=True, exist_ok=True)
        atomic.write_json(cache_folder(trained) / "choices.json", choices, force=True)
    except (OSError, GeocnnError) as exc:
        log.debug("engine choice not cached: %s", exc)
