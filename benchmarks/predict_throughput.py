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
- ``model alone``: ``compute_limit``'s forward pass on a fixed batch of four 64³ windows (tuned),
  as volume voxels/s (÷ 1.95, the windows' overlap): the ceiling.

Peak RSS is each child's own ``VmHWM`` (resident anonymous and file-backed pages, at their peak);
peak anon is the highest ``RssAnon`` polled from ``/proc`` (private memory only). MONAI is a
benchmark-only dependency (``pip install -e .[bench]``); without it, geocnn is reported alone.
Targets: geocnn ≥ 1.8 × MONAI default, ≥ 0.95 × MONAI tuned, peak RSS below MONAI's.
"""

from __future__ import annotations

import importlib.util
import sys
import time
from pathlib import Path

import _common as C
import _models as M
import numpy as np

ROI, OVERLAP, BATCH = 64, 0.25, 4


def make_run(folder: Path) -> Path:
    """A geocnn run of the 3D model (one optimizer step on a small cube: the weights only need to exist)."""
    import yaml

    shape = (ROI + 16,) * 3
    clean = M.layered_volume(shape, seed=3)
    np.save(folder / "train_in.npy", clean + 0.3 * np.random.default_rng(4).standard_normal(shape, np.float32))
    np.save(folder / "train_out.npy", clean)
    cfg = {"name": "bench-predict", "task": "regression",
           "data": {"inputs": ["train_in.npy"], "target": "train_out.npy", "patch": [ROI] * 3,
                    "split": {"fraction": 0.0}, "sampling": {"patches_per_epoch": 2, "val_patches": 1}},
           "model": yaml.safe_load(M.NET3D_YAML),
           "train": {"epochs": 1, "batch_size": 2, "examples": 0, "seed": 0}}
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
                     batch_size=BATCH, device_name="cpu", force=True, pictures=False)
    C.report({"seconds": report.seconds, "windows": report.windows, "buffer_bytes": report.buffer_bytes})


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

def run_side(side: str, folder: Path, run: Path, volume: Path) -> C.ChildResult:
    out = str(folder / f"out_{side.replace(' ', '_')}.npy")
    payload = {"side": side, "run": str(run), "volume": str(volume), "out": out,
               "channels_last": side == "monai tuned"}
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
    p.add_argument("--size", type=int, default=256, help="volume edge (cube), voxels")
    p.add_argument("--no-limit", action="store_true", help="skip the model-alone row")
    args = p.parse_args()
    C.header(f"predict throughput: geocnn predict vs MONAI sliding_window_inference on {args.size}³", args)
    monai = have_monai()
    if not monai:
        print("MONAI is not installed (pip install -e '.[bench]'): reporting geocnn alone")
    sides = ["geocnn", *(("monai default", "monai tuned") if monai else ())]
    voxels = args.size**3
    rate = {s: C.Series() for s in [*sides, "model alone"]}
    rss = {s: C.Series() for s in sides}
    anon = {s: C.Series() for s in sides}
    errors: dict[str, float] = {}
    with C.workdir(args, "predict") as folder:
        run = make_run(folder)
        volume = folder / "volume.npy"
        np.save(volume, M.layered_volume((args.size,) * 3, seed=5))
        for r in range(args.rounds):
            for side in sides:
                res = run_side(side, folder, run, volume)
                rate[side].add(voxels / res.data["seconds"] / 1e6)
                rss[side].add(res.peak_rss / 2**20)
                anon[side].add(res.peak_anon / 2**20)
            if r == 0:
                errors = reference_errors(folder, run, volume, sides)
            if not args.no_limit:
                from compute_limit import OVERLAP_FACTOR, limits

                alone = limits("tuned", seconds=1.0, workloads=("predict 3D",), size=min(ROI, args.size))
                rate["model alone"].add(alone["predict 3D"]["voxels_per_s"] / OVERLAP_FACTOR / 1e6)
    rows = []
    regime = {"geocnn": "geocnn", "monai default": "default", "monai tuned": "tuned", "model alone": "tuned"}
    for side, series in rate.items():
        if not series.values:
            continue
        vs = C.ratios(rate["geocnn"], series) if side != "geocnn" else None
        rows.append([side, regime[side], series.span("{:.2f}"), rss[side].span() if side in rss else "",
                     anon[side].span() if side in anon else "", vs.span("{:.2f}") if vs else ""])
    print(C.table(["side", "regime", "Mvoxel/s", "peak RSS MiB", "peak anon MiB", "geocnn / side"], rows))
    print("regimes: " + "; ".join(f"{k}: {v}" for k, v in C.REGIMES.items()))
    print("check, largest error against a whole-volume pass (share of the output range): "
          + ", ".join(f"{side} {e:.1e}" for side, e in errors.items()))
    if "monai default" in errors:
        print("  (MONAI clamps its 3D Gaussian map at 1e-3 of the peak, so a window's corner, which its zero "
              "padding distorts, weighs about as much there as the neighbouring windows' interiors; geocnn's "
              "weights are products of 1D weights clamped per axis)")
    figures = {"rate": {k: v.values for k, v in rate.items()}, "peak_rss_mib": {k: v.values for k, v in rss.items()},
               "peak_anon_mib": {k: v.values for k, v in anon.items()}}
    head = f"HEADLINE predict_throughput: geocnn {rate['geocnn'].median:.2f} Mvoxel/s, peak RSS {rss['geocnn'].median:.0f} MiB"
    if monai:
        head += (f" = {C.ratios(rate['geocnn'], rate['monai default']).median:.2f}× MONAI default (target ≥ 1.8), "
                 f"{C.ratios(rate['geocnn'], rate['monai tuned']).median:.2f}× MONAI tuned (target ≥ 0.95); "
                 f"MONAI peak RSS {rss['monai default'].median:.0f} MiB")
    else:
        head += " (MONAI not installed: no comparison)"
    C.footer(head, args, figures)


def child(payload: dict) -> None:
    (geocnn_child if payload["side"] == "geocnn" else monai_child)(payload)


if __name__ == "__main__":
    C.entry(main, child)
