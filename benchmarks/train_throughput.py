"""Training throughput: ``geocnn train`` versus a minimal hand-written PyTorch loop.

Both sides train the same 2D DnCNN-style denoiser (``_models.DENOISER_YAML`` / ``_models.Denoiser``:
21,385 parameters) on 64 × 64 inline-section patches of the same noisy/clean cube (``.npy``), batch
32, Adam (lr 1e-3, constant), MSE, no augmentation, torch's default threads, one process each:

- ``geocnn``: the command line, ``python -m geocnn train CONFIG`` in a child process (geocnn tunes
  the allocator itself at start-up, so it must start fresh); patches/s and the data-wait share
  are read from the run's ``metrics.jsonl`` (the timed part is the step loop of each epoch:
  reading, normalising, collating, forward, backward, step — not validation, plots or checkpoints,
  whose cost shows in the wall time column);
- ``plain default``: a hand-written loop (patches sliced from the array loaded in memory,
  ``np.stack``, ``torch.from_numpy``), glibc's default allocator, default memory layout;
- ``plain tuned``: the same loop with ``MALLOC_MMAP_THRESHOLD_``/``MALLOC_TRIM_THRESHOLD_`` set in
  its environment and the model and batches in channels_last — what geocnn does by default;
- ``model alone``: ``compute_limit``'s training step on one fixed batch (tuned): the ceiling.

The first epoch of every run (warm-up: oneDNN primitives, page faults) is left out; the figure of
a run is the median of its other epochs; the table shows the median (min–max) over rounds, the
sides interleaved in every round. Targets: geocnn ≥ 1.2 × plain default, ≥ 0.95 × plain tuned.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

import _common as C
import _models as M
import numpy as np


def write_inputs(folder: Path, shape: tuple[int, int, int]) -> None:
    """clean.npy (layered cube) and noisy.npy (plus Gaussian noise), seeded."""
    clean = M.layered_volume(shape, seed=0)
    noisy = clean + 0.5 * np.random.default_rng(1).standard_normal(shape, dtype=np.float32)
    np.save(folder / "clean.npy", clean)
    np.save(folder / "noisy.npy", noisy)


def write_config(folder: Path, args) -> Path:
    """The fixed geocnn config of this benchmark."""
    import yaml

    cfg = {
        "name": "bench-train",
        "task": "regression",
        "data": {"inputs": ["noisy.npy"], "target": "clean.npy", "patch": [args.patch, args.patch],
                 "section": "inline", "split": {"axis": "inline", "fraction": 0.1},
                 "sampling": {"patches_per_epoch": args.patches_per_epoch, "val_patches": args.batch}},
        "model": yaml.safe_load(M.DENOISER_YAML),
        "train": {"epochs": args.epochs, "batch_size": args.batch, "lr": 1e-3, "optimizer": "adam",
                  "scheduler": "none", "loss": "mse", "examples": 0, "seed": 0},
    }
    path = folder / "bench_train.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


# ----------------------------------------------------------------------------- the two sides

def run_geocnn(folder: Path, config: Path, n: int) -> dict:
    """``geocnn train`` in a fresh process; per-epoch figures from metrics.jsonl."""
    run = folder / f"run{n}"
    cmd = [sys.executable, "-m", "geocnn", "train", str(config), "--out", str(run)]
    res = C.run_child(cmd, C.child_env("default"), cwd=folder)
    lines = (run / "metrics.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines if line.strip()]
    return {"patches_per_s": [r["patches_per_s"] for r in records],
            "data_wait": [r["data_wait_fraction"] for r in records], "wall_s": res.wall_s,
            "peak_rss": res.peak_rss}


def plain_loop(payload: dict) -> None:
    """The hand-written loop (child process): per-epoch patches/s and share of time spent on data."""
    import torch

    torch.manual_seed(0)
    folder, p, bs = Path(payload["folder"]), payload["patch"], payload["batch"]
    noisy, clean = np.load(folder / "noisy.npy"), np.load(folder / "clean.npy")
    mean, std = float(noisy.mean()), float(noisy.std())
    model = M.Denoiser()
    fmt = torch.channels_last if payload["channels_last"] else torch.contiguous_format
    model = model.to(memory_format=fmt)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    rng = np.random.default_rng(0)
    hi = np.array(noisy.shape) - (1, p, p)
    steps = -(-payload["patches_per_epoch"] // bs)
    rates, waits = [], []
    for _ in range(payload["epochs"]):
        t0, wait, seen = time.perf_counter(), 0.0, 0
        for _ in range(steps):
            t_data = time.perf_counter()
            o = rng.integers(0, hi + 1, size=(bs, 3))
            x = np.stack([noisy[i, j:j + p, k:k + p] for i, j, k in o])[:, None]
            y = np.stack([clean[i, j:j + p, k:k + p] for i, j, k in o])[:, None]
            x = torch.from_numpy((x - mean) / std).contiguous(memory_format=fmt)
            y = torch.from_numpy((y - mean) / std).contiguous(memory_format=fmt)
            wait += time.perf_counter() - t_data
            loss = torch.nn.functional.mse_loss(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            float(loss)
            seen += bs
        elapsed = time.perf_counter() - t0
        rates.append(seen / elapsed)
        waits.append(wait / elapsed)
    C.report({"patches_per_s": rates, "data_wait": waits})


def run_plain(folder: Path, args, tuned: bool) -> dict:
    payload = {"folder": str(folder), "patch": args.patch, "batch": args.batch, "epochs": args.epochs,
               "patches_per_epoch": args.patches_per_epoch, "channels_last": tuned}
    res = C.python_child("train_throughput", payload, "tuned" if tuned else "default")
    return {**res.data, "wall_s": res.wall_s, "peak_rss": res.peak_rss}


def steady(values: list[float]) -> float:
    """A run's figure: the median of its epochs after the first (warm-up)."""
    return statistics.median(values[1:] if len(values) > 1 else values)


# ----------------------------------------------------------------------------- main

SIDES = ("geocnn", "plain default", "plain tuned", "model alone")
REGIME = {"geocnn": "geocnn", "plain default": "default", "plain tuned": "tuned", "model alone": "tuned"}


def main() -> None:
    p = C.parser(__doc__, rounds=3)
    p.add_argument("--patch", type=int, default=64, help="patch size (square, crossline × sample)")
    p.add_argument("--batch", type=int, default=32, help="batch size")
    p.add_argument("--epochs", type=int, default=3, help="epochs per run (the first is warm-up)")
    p.add_argument("--patches-per-epoch", type=int, default=256, help="patches per epoch")
    p.add_argument("--shape", type=int, nargs=3, default=(24, 160, 160), help="cube (inline crossline sample)")
    p.add_argument("--no-limit", action="store_true", help="skip the model-alone row")
    args = p.parse_args()
    C.header("train throughput: geocnn train vs a plain PyTorch loop", args)
    print(f"model: 2D denoiser, 21,385 parameters; patch {args.patch}², batch {args.batch}, "
          f"{args.patches_per_epoch} patches/epoch × {args.epochs} epochs (first = warm-up)")
    rate = {s: C.Series() for s in SIDES}
    wait = {s: C.Series() for s in SIDES[:3]}
    wall = {s: C.Series() for s in SIDES[:3]}
    with C.workdir(args, "train") as folder:
        write_inputs(folder, tuple(args.shape))
        config = write_config(folder, args)
        for r in range(args.rounds):
            results = {"geocnn": run_geocnn(folder, config, r),
                       "plain default": run_plain(folder, args, tuned=False),
                       "plain tuned": run_plain(folder, args, tuned=True)}
            for side, res in results.items():
                rate[side].add(steady(res["patches_per_s"]))
                wait[side].add(steady(res["data_wait"]))
                wall[side].add(res["wall_s"])
            if not args.no_limit:
                from compute_limit import limits

                alone = limits("tuned", seconds=1.0, workloads=("train 2D",), size=args.patch, batch=args.batch)
                rate["model alone"].add(alone["train 2D"]["samples_per_s"])
    rows = []
    for side in SIDES:
        if not rate[side].values:
            continue
        vs = C.ratios(rate["geocnn"], rate[side]) if side != "geocnn" else None
        rows.append([side, REGIME[side], rate[side].span("{:.1f}"),
                     wait[side].span("{:.2f}") if side in wait else "",
                     wall[side].span("{:.1f}") if side in wall else "",
                     vs.span("{:.2f}") if vs else ""])
    print(C.table(["side", "regime", "patches/s", "data wait", "wall s", "geocnn / side"], rows))
    print("regimes: " + "; ".join(f"{k}: {v}" for k, v in C.REGIMES.items()))
    vs_default = C.ratios(rate["geocnn"], rate["plain default"])
    vs_tuned = C.ratios(rate["geocnn"], rate["plain tuned"])
    alone = ""
    if rate["model alone"].values:
        alone = f"; geocnn at {C.ratios(rate['geocnn'], rate['model alone']).median:.0%} of the model alone"
    figures = {"rate": {k: v.values for k, v in rate.items()}, "data_wait": {k: v.values for k, v in wait.items()}}
    C.footer(f"HEADLINE train_throughput: geocnn {rate['geocnn'].median:.1f} patches/s = "
             f"{vs_default.median:.2f}× plain default (target ≥ 1.2), {vs_tuned.median:.2f}× plain tuned "
             f"(target ≥ 0.95){alone}", args, figures)


if __name__ == "__main__":
    C.entry(main, plain_loop)
