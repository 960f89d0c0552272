"""Prediction throughput: ``geocnn predict`` versus MONAI's ``sliding_window_inference``.

The same 3-layer 8-channel 3D CNN (``_models.NET3D_YAML`` / ``_models.net3d``, the weights of one
geocnn run copied into the plain build) runs over the same 256³ float32 volume (64 MiB ``.npy``)
with 64³ windows, overlap 0.25 (125 windows), Gaussian blending (σ = window / 8), batches of 4:

- ``geocnn``: ``geocnn.predict.predict(run, [volume.npy], out.npy, ...)`` (the library call behind
  ``geocnn predict``, without the preview pictures) in a fresh child process: it reads windows
  lazily from the memory-mapped input, blends into a ring buffer and writes rows as they finish.
  Its time is the call's ``Report.seconds`` (model build, every window, blending, writing);
- ``monai default`` / ``monai tuned``: the volume loaded and normalised in memory, one
  ``sliding_window_inference`` call, the result de-normalised and saved with ``np.save`` (timed:
  normalise + inference + save); default = glibc's allocator and layout, tuned = the ``MALLOC_*``
  variables and a channels_last model (what geocnn does by default);
- ``geocnn auto`` / ``geocnn onnxruntime``: the same call with ``engine="auto"`` (the fastest of
  PyTorch in both layouts and ONNX Runtime, measured and cached on a first run that is timed apart:
  ``first auto``, tracing and timing included) and ``engine="onnxruntime"``;
- ``model alone <engine>``: the run's own network on one fixed batch of windows of the run's
  shape, nothing else — PyTorch NCDHW, PyTorch channels_last and ONNX Runtime (its graph traced by
  :mod:`geocnn.graph`), interleaved in one child — as volume voxels/s: the volume's voxels ÷ (the
  windows geocnn ran ÷ batch × seconds per batch). The fastest of them is the ceiling, and the
  headline ratio is geocnn ÷ that rate.

``--bf16`` adds ``geocnn torch bf16`` and ``geocnn auto bf16`` (``precision="bf16"``: bf16
autocast on the CPU, see ``geocnn predict --precision``) and PyTorch channels_last under bf16
autocast alone; the net3d check below then gives bf16's error against the fp32 whole-volume pass.

``--model`` picks the network: ``net3d`` (the 3-layer CNN above, 64³ windows, batches of 4),
``denoiser`` (``configs/denoise2d.yaml``'s DnCNN on inline sections of the cube, 32 × 64 windows,
batches of 16: a whole-cube 2D run) or ``unet`` (``configs/faults3d.yaml``'s fault U-Net, 24 × 24 × 32
windows, batches of 4, fault probabilities out). MONAI runs ``net3d`` only.

Peak RSS is each child's own ``VmHWM`` (resident anonymous and file-backed pages, at their peak);
peak anon is the highest ``RssAnon`` polled from ``/proc`` (private memory only). MONAI is a
benchmark-only dependency (``pip install -e .[bench]``); without it, geocnn is reported alone.
Targets: geocnn ≥ 1.8 × MONAI default, ≥ 0.95 × MONAI tuned, peak RSS below MONAI's; issue 19:
geocnn auto ≥ 1.4 × geocnn torch (net3d, denoiser) and ≥ 0.8 × the fastest model-alone rate, ≥ 0.95 ×
geocnn torch on the U-Net, peak RSS no higher than geocnn torch's.
"""

from __future__ import annotations

import copy
import importlib.util
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import _common as C
import _models as M
import numpy as np

ROI, OVERLAP, BATCH = 64, 0.25, 4


@dataclass(frozen=True)
class Bench:
    """One network of the benchmark: its model section, task, window (the training patch) and batch."""

    model: Callable[[], dict]
    task: str
    patch: tuple[int, ...]
    batch: int
    section: str | None = None  # a 2D model on inline sections of the cube


def _config_model(name: str) -> Callable[[], dict]:
    def read() -> dict:
        import yaml

        return yaml.safe_load((C.ROOT / "configs" / name).read_text())["model"]

    return read


def _yaml(text: str) -> Callable[[], dict]:
    def read() -> dict:
        import yaml

        return yaml.safe_load(text)

    return read


BENCHES = {
    "net3d": Bench(_yaml(M.NET3D_YAML), "regression", (ROI,) * 3, BATCH),
    "denoiser": Bench(_config_model("denoise2d.yaml"), "regression", (32, 64), 16, section="inline"),
    "unet": Bench(_config_model("faults3d.yaml"), "segmentation", (24, 24, 32), 4),
}


def make_run(folder: Path, bench: Bench) -> Path:
    """A geocnn run of ``bench``'s model (one optimizer step on a small cube: the weights only need to exist)."""
    import yaml

    shape = (max(bench.patch) + 16,) * 3
    clean = M.layered_volume(shape, seed=3)
    np.save(folder / "train_in.npy", clean + 0.3 * np.random.default_rng(4).standard_normal(shape, np.float32))
    np.save(folder / "train_out.npy", clean if bench.task == "regression" else (clean > 0.9).astype(np.uint8))
    data = {"inputs": ["train_in.npy"], "target": "train_out.npy", "patch": list(bench.patch),
            "split": {"fraction": 0.0}, "sampling": {"patches_per_epoch": 2, "val_patches": 1}}
    if bench.section:
        data["section"] = bench.section
    cfg = {"name": "bench-predict", "task": bench.task, "data": data, "model": bench.model(),
           "train": {"epochs": 1, "batch_size": 2, "examples": 0, "seed": 0,
                     **({"loss": "dice"} if bench.task == "segmentation" else {})}}
    path = folder / "bench_predict.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    run = folder / "run"
    C.run_child([sys.executable, "-m", "geocnn", "train", str(path), "--out", str(run)], C.child_env("default"),
                cwd=folder)
    return run


def have_monai() -> bool:
    return importlib.util.find_spec("monai") is not None


# ----------------------------------------------------------------------------- children

def geocnn_child(payload: dict) -> None:
    from geocnn.predict import predict

    report = predict(payload["run"], [payload["volume"]], payload["out"], overlap=OVERLAP, blend="gaussian",
                     batch_size=payload["batch"], device_name="cpu", force=True, pictures=False,
                     engine=payload["engine"], precision=payload.get("precision"))
    C.report({"seconds": report.seconds, "windows": report.windows, "buffer_bytes": report.buffer_bytes})


ALONE = ("torch", "torch channels_last", "onnxruntime")
ALONE_BF16 = "torch channels_last bf16"  # --bf16: PyTorch channels_last under bf16 autocast


def alone_child(payload: dict) -> None:
    """Seconds per batch of the run's network alone, each engine in turn (A B C A B C ...), medians."""
    import statistics

    import torch
    from compute_limit import onnxruntime_forward

    from geocnn import device
    from geocnn.model.network import build
    from geocnn.predict import load_trained

    trained = load_trained(payload["run"])
    spec = trained.cfg.model
    device.setup("cpu", "fp32", None)
    network, _ = build(spec, tuple(trained.cfg.patch))
    network.load_state_dict(trained.state)
    network.eval()
    x = torch.randn((payload["batch"], spec.in_channels, *trained.cfg.patch), generator=torch.Generator().manual_seed(0))
    fmt = device.memory_format(spec.dims)
    last = copy.deepcopy(network).to(memory_format=fmt)
    x_last = x.contiguous(memory_format=fmt)

    def forward(model, batch):
        def step() -> None:
            with torch.no_grad():
                model(batch)
        return step

    steps = {"torch": forward(network, x), "torch channels_last": forward(last, x_last),
             "onnxruntime": onnxruntime_forward(network, x)}
    if payload.get("bf16"):
        def bf16_step() -> None:
            with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
                last(x_last)
        steps[ALONE_BF16] = bf16_step
    times: dict[str, list[float]] = {k: [] for k in steps}
    for step in steps.values():
        step()  # warm-up
    t_end = time.perf_counter() + payload["seconds"]
    while time.perf_counter() < t_end or min(map(len, times.values())) < 3:
        for name, step in steps.items():
            t0 = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - t0)
    C.report({name: statistics.median(v) for name, v in times.items()})


def monai_child(payload: dict) -> None:
    import torch
    from monai.inferers import sliding_window_inference

    from geocnn.runs.checkpoint import load_checkpoint, resolve_checkpoint

    ckpt = load_checkpoint(resolve_checkpoint(payload["run"]))
    model = M.net3d()
    M.copy_weights(ckpt.model_state, model)
    if payload["channels_last"]:
        model = model.to(memory_format=torch.channels_last_3d)
    model.eval()
    norm_in, norm_out = ckpt.normalization, ckpt.target_normalization
    volume = np.load(payload["volume"])
    t0 = time.perf_counter()
    x = torch.from_numpy((volume - norm_in.center[0]) / norm_in.scale[0])[None, None]
    with torch.no_grad():
        y = sliding_window_inference(x, (ROI,) * 3, BATCH, model, overlap=OVERLAP, mode="gaussian")
    y = y[0, 0].numpy()
    if norm_out is not None:
        y = y * norm_out.scale[0] + norm_out.center[0]
    np.save(payload["out"], y.astype(np.float32))
    C.report({"seconds": time.perf_counter() - t0})


# ----------------------------------------------------------------------------- main

def run_side(side: str, folder: Path, run: Path, volume: Path, bench: Bench) -> C.ChildResult:
    out = str(folder / f"out_{side.replace(' ', '_')}.npy")
    engine, precision = "torch", None
    if side.startswith("geocnn "):  # geocnn ENGINE [bf16]
        engine, _, precision = side.split(" ", 1)[1].partition(" ")
    payload = {"side": side, "run": str(run), "volume": str(volume), "out": out, "batch": bench.batch,
               "engine": engine, "precision": precision or None, "channels_last": side == "monai tuned"}
    regime = "tuned" if side == "monai tuned" else "default"
    return C.python_child("predict_throughput", payload, regime)


def reference_errors(folder: Path, run: Path, volume: Path, sides: list[str]) -> dict[str, float]:
    """Each side's largest error against one forward pass over the whole volume (no windows),
    relative to the output's range, on an inner block that holds window corners and edges.

    The block is computed from a crop with a 3-voxel margin (the model's receptive radius), so
    the reference is exact there; windows differ from it only where a window's own zero padding
    reaches in, weighted by the blending.
    """
    import torch

    from geocnn.predict import load_trained

    trained = load_trained(run)
    model = M.net3d()
    M.copy_weights(trained.state, model)
    model.eval()
    vol = np.load(volume, mmap_mode="r")
    n = vol.shape[0]
    lo = min(96, n // 4)
    hi = min(n, lo + 80)
    a, b = max(lo - 3, 0), min(hi + 3, n)
    crop = np.array(vol[a:b, a:b, a:b])
    x = torch.from_numpy((crop - trained.norm.center[0]) / trained.norm.scale[0])[None, None]
    with torch.no_grad():
        ref = model(x)[0, 0].numpy()
    if trained.target_norm is not None:
        ref = ref * trained.target_norm.scale[0] + trained.target_norm.center[0]
    inner = (slice(lo - a, hi - a),) * 3
    ref = ref[inner]
    span = float(np.ptp(ref)) or 1.0
    errors = {}
    for side in sides:
        out = np.load(folder / f"out_{side.replace(' ', '_')}.npy", mmap_mode="r")[lo:hi, lo:hi, lo:hi]
        errors[side] = float(np.abs(out - ref).max()) / span
    return errors


def main() -> None:
    p = C.parser(__doc__, rounds=3)
    p.add_argument("--model", choices=list(BENCHES), default="net3d", help="the network (see above)")
    p.add_argument("--size", type=int, default=256, help="volume edge (cube), voxels")
    p.add_argument("--no-limit", action="store_true", help="skip the model-alone rows")
    p.add_argument("--no-monai", action="store_true", help="skip MONAI even where it is installed")
    p.add_argument("--engines", default="torch,auto,onnxruntime", help="geocnn engines, separated by commas")
    p.add_argument("--bf16", action="store_true", help="also geocnn torch and auto with --precision bf16, and "
                   "PyTorch channels_last under bf16 autocast alone")
    args = p.parse_args()
    bench = BENCHES[args.model]
    C.header(f"predict throughput: geocnn predict ({args.model}) vs the model alone"
             f"{' and MONAI sliding_window_inference' if args.model == 'net3d' else ''} on {args.size}³", args)
    monai = have_monai() and args.model == "net3d" and not args.no_monai
    if args.model == "net3d" and not have_monai():
        print("MONAI is not installed (pip install -e '.[bench]'): no MONAI rows")
    engines = args.engines.split(",")
    bf16 = [f"geocnn {e} bf16" for e in engines if e != "onnxruntime"] if args.bf16 else []
    sides = [*(f"geocnn {e}" for e in engines), *bf16, *(("monai default", "monai tuned") if monai else ())]
    alone_names = [*ALONE, *([ALONE_BF16] if args.bf16 else [])]
    alone_sides = [] if args.no_limit else [f"model alone {e}" for e in alone_names]
    voxels = args.size**3
    rate = {s: C.Series() for s in [*sides, *alone_sides]}
    rss = {s: C.Series() for s in sides}
    anon = {s: C.Series() for s in sides}
    errors: dict[str, float] = {}
    first_auto = None
    with C.workdir(args, "predict") as folder:
        run = make_run(folder, bench)
        volume = folder / "volume.npy"
        np.save(volume, M.layered_volume((args.size,) * 3, seed=5))
        for side in sides:  # auto traces the graph and times the candidates once per precision; later runs
            if side.startswith("geocnn auto"):  # read the cache
                first = run_side(side, folder, run, volume, bench)
                first_auto = first if first_auto is None else first_auto
        windows = 0
        for r in range(args.rounds):
            for side in sides:
                res = run_side(side, folder, run, volume, bench)
                rate[side].add(voxels / res.data["seconds"] / 1e6)
                rss[side].add(res.peak_rss / 2**20)
                anon[side].add(res.peak_anon / 2**20)
                windows = res.data.get("windows", windows)
            if r == 0 and args.model == "net3d":
                errors = reference_errors(folder, run, volume, sides)
            if alone_sides:
                alone = C.python_child("predict_throughput", {"side": "alone", "run": str(run), "batch": bench.batch,
                                                              "seconds": 3.0, "bf16": args.bf16}, "tuned").data
                for name in alone_names:  # the volume's windows in batches, at this batch time
                    rate[f"model alone {name}"].add(voxels / (windows / bench.batch * alone[name]) / 1e6)
    print_table(rate, rss, anon, sides)
    if first_auto is not None:
        print(f"first auto run (traces the graph, times the candidates): {voxels / first_auto.data['seconds'] / 1e6:.2f} "
              f"Mvoxel/s, {first_auto.wall_s:.1f} s wall; {windows} windows of {'×'.join(map(str, bench.patch))}, "
              f"batches of {bench.batch}")
    print("regimes: " + "; ".join(f"{k}: {v}" for k, v in C.REGIMES.items()))
    if errors:
        print("check, largest error against a whole-volume pass (share of the output range): "
              + ", ".join(f"{side} {e:.1e}" for side, e in errors.items()))
    if "monai default" in errors:
        print("  (MONAI clamps its 3D Gaussian map at 1e-3 of the peak, so a window's corner, which its zero "
              "padding distorts, weighs about as much there as the neighbouring windows' interiors; geocnn's "
              "weights are products of 1D weights clamped per axis)")
    figures = {"rate": {k: v.values for k, v in rate.items()}, "peak_rss_mib": {k: v.values for k, v in rss.items()},
               "peak_anon_mib": {k: v.values for k, v in anon.items()}}
    C.footer(headline(rate, rss, sides, alone_sides, monai), args, figures)


def print_table(rate: dict[str, C.Series], rss: dict[str, C.Series], anon: dict[str, C.Series],
                sides: list[str]) -> None:
    """Every side's rate and memory, and geocnn torch and auto ÷ the side, round by round."""
    rows = []
    regime = {"monai default": "default", "monai tuned": "tuned"}
    mine = [s for s in ("geocnn torch", "geocnn auto") if s in sides]
    for side, series in rate.items():
        if not series.values:
            continue
        vs = [C.ratios(rate[m], series).span("{:.2f}") if side != m else "" for m in mine]
        rows.append([side, regime.get(side, "geocnn" if side.startswith("geocnn") else "tuned"), series.span("{:.2f}"),
                     rss[side].span() if side in rss else "", anon[side].span() if side in anon else "", *vs])
    print(C.table(["side", "regime", "Mvoxel/s", "peak RSS MiB", "peak anon MiB", *(f"{m} / side" for m in mine)],
                  rows))


def headline(rate: dict[str, C.Series], rss: dict[str, C.Series], sides: list[str], alone_sides: list[str],
             monai: bool) -> str:
    """geocnn (torch, auto) ÷ the fastest model-alone rate, auto ÷ torch, and MONAI where it ran."""
    main = "geocnn auto" if "geocnn auto" in sides else sides[0]
    head = f"HEADLINE predict_throughput: {main} {rate[main].median:.2f} Mvoxel/s, peak RSS {rss[main].median:.0f} MiB"
    fp32_alone = [s for s in alone_sides if not s.endswith(" bf16")]
    if fp32_alone:
        best = max(fp32_alone, key=lambda s: rate[s].median)
        head += f" = {C.ratios(rate[main], rate[best]).median:.2f}× the fastest model alone ({best.split(' ', 2)[2]})"
    if main != "geocnn torch" and "geocnn torch" in sides:
        head += (f"; {C.ratios(rate[main], rate['geocnn torch']).median:.2f}× geocnn torch "
                 f"({rate['geocnn torch'].median:.2f} Mvoxel/s, peak RSS {rss['geocnn torch'].median:.0f} MiB)")
    for side in ("geocnn torch bf16", "geocnn auto bf16"):
        if side in sides and "geocnn torch" in sides:
            head += f"; {side} {C.ratios(rate[side], rate['geocnn torch']).median:.2f}× geocnn torch"
    if f"model alone {ALONE_BF16}" in alone_sides and "geocnn auto bf16" in sides:
        head += (f" ({C.ratios(rate['geocnn auto bf16'], rate[f'model alone {ALONE_BF16}']).median:.2f}× "
                 f"the model alone in bf16)")
    if monai:
        head += (f"; {C.ratios(rate[main], rate['monai default']).median:.2f}× MONAI default (target ≥ 1.8), "
                 f"{C.ratios(rate[main], rate['monai tuned']).median:.2f}× MONAI tuned (target ≥ 0.95); "
                 f"MONAI peak RSS {rss['monai default'].median:.0f} MiB")
    return head


def child(payload: dict) -> None:
    if payload["side"] == "alone":
        alone_child(payload)
    else:
        (geocnn_child if payload["side"].startswith("geocnn") else monai_child)(payload)


if __name__ == "__main__":
    C.entry(main, child)
