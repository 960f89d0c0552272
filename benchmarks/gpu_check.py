"""A short check of geocnn's GPU path, for a machine with a CUDA GPU.

Runs, each step on its own so one failure does not hide the others:

1. the quickstart denoiser on CUDA with bf16 autocast (the default), fp16 + grad scaler, and fp32;
2. ``--compile`` (torch.compile) for one epoch;
3. the 3D fault U-Net with bf16 and channels-last 3D;
4. prediction on CUDA against the same prediction on the CPU;
5. ``torchrun`` with one process (NCCL process group, DistributedDataParallel on a GPU);
6. throughput of a 3-layer 8-channel 3D CNN over a 256³ volume (the benchmark model), voxels/s.

Usage: ``python benchmarks/gpu_check.py [--out DIR]`` from the repository root. Prints a report and
writes ``gpu_check.json`` into DIR (default: a temporary folder).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from geocnn.config import load_config  # noqa: E402
from geocnn.predict import predict  # noqa: E402
from geocnn.train import train  # noqa: E402

BENCH_MODEL = """
name: bench3d
task: regression
data:
  inputs: [vol.npy]
  target: vol.npy
  patch: [64, 64, 64]
  split: {fraction: 0.0}
model:
  dims: 3
  in_channels: 1
  layers:
    - conv: {out: 8, kernel: 3, padding: same}
    - relu
    - conv: {out: 8, kernel: 3, padding: same}
    - relu
    - conv: {out: 1, kernel: 3, padding: same}
train: {max_steps: 1, batch_size: 4}
"""


def metrics(run: Path) -> list[dict]:
    return [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]


def step(report: dict, name: str, fn) -> None:
    t0 = time.perf_counter()
    try:
        report[name] = {"ok": True, **fn()}
    except Exception as exc:  # report and go on
        report[name] = {"ok": False, "error": f"{type(exc).__name__}: {exc}", "trace": traceback.format_exc()[-1500:]}
    report[name]["seconds"] = round(time.perf_counter() - t0, 1)
    print(f"== {name}: {json.dumps({k: v for k, v in report[name].items() if k != 'trace'})}", flush=True)


DEVICE = "cuda"


def train_denoise(tmp: Path, amp: str, epochs: int, compile_: bool = False) -> dict:
    over = [f"train.device={DEVICE}", f"train.amp={amp}", f"train.epochs={epochs}", f"train.compile={str(compile_).lower()}"]
    run = train(load_config(ROOT / "configs/denoise2d.yaml", over), tmp / f"denoise_{amp}_{compile_}", force=True)
    lines = metrics(run)
    return {"snr_db": [round(r["val"]["snr_db"], 2) for r in lines],
            "baseline_snr_db": round(lines[0]["val"]["baseline"]["snr_db"], 2),
            "patches_per_s": [round(r["patches_per_s"]) for r in lines],
            "data_wait": [round(r["data_wait_fraction"], 3) for r in lines], "run": str(run)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--device", default="cuda", help="cpu: a dry run of this script (slow, smaller cube)")
    args = parser.parse_args()
    global DEVICE
    DEVICE = args.device
    out = args.out or Path(tempfile.mkdtemp())
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp())
    report: dict = {"torch": torch.__version__, "cuda": torch.version.cuda,
                    "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
                    "bf16": torch.cuda.is_available() and torch.cuda.is_bf16_supported()}
    print(json.dumps(report), flush=True)
    step(report, "denoise_bf16", lambda: train_denoise(tmp, "auto", 3 if DEVICE == "cuda" else 1))
    step(report, "denoise_fp16", lambda: train_denoise(tmp, "fp16", 1))
    step(report, "denoise_fp32", lambda: train_denoise(tmp, "fp32", 1))
    step(report, "denoise_compile", lambda: train_denoise(tmp, "auto", 1, compile_=True))

    def faults() -> dict:
        run = train(load_config(ROOT / "configs/faults3d.yaml", [f"train.device={DEVICE}", "train.epochs=3"]),
                    tmp / "faults", force=True)
        lines = metrics(run)
        return {"f1": [round(r["val"]["f1"], 3) for r in lines], "patches_per_s": [round(r["patches_per_s"]) for r in lines]}

    step(report, "faults3d_bf16", faults)

    def predict_gpu_vs_cpu() -> dict:
        run = Path(report["denoise_bf16"]["run"])
        src = ROOT / "data_samples/seismic_noisy.sgy"
        gpu = predict(run, [src], tmp / "gpu.npy", device_name=DEVICE, pictures=False, force=True)
        cpu = predict(run, [src], tmp / "cpu.npy", device_name="cpu", pictures=False, force=True)
        a, b = np.load(gpu.output), np.load(cpu.output)
        return {"max_abs_diff_over_std": float(np.abs(a - b).max() / b.std()),
                "gpu_windows_per_s": round(gpu.windows / gpu.seconds, 1),
                "cpu_windows_per_s": round(cpu.windows / cpu.seconds, 1)}

    step(report, "predict_cuda_vs_cpu", predict_gpu_vs_cpu)

    def torchrun_one() -> dict:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "1", "-m", "geocnn", "train",
               str(ROOT / "configs/denoise2d.yaml"), "--out", str(tmp / "ddp"), "--epochs", "1", "--device", DEVICE]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
        if done.returncode:
            raise RuntimeError(done.stderr[-1500:])
        return {"snr_db": round(metrics(tmp / "ddp")[0]["val"]["snr_db"], 2)}

    step(report, "torchrun_nccl", torchrun_one)

    def bench_predict() -> dict:
        folder = tmp / "bench"
        folder.mkdir()
        rng = np.random.default_rng(0)
        n = 256 if DEVICE == "cuda" else 96
        np.save(folder / "vol.npy", rng.standard_normal((n, n, n), dtype=np.float32))
        (folder / "bench3d.yaml").write_text(BENCH_MODEL)
        run = train(load_config(folder / "bench3d.yaml", [f"train.device={DEVICE}"]), folder / "run", force=True)
        if DEVICE == "cuda":
            torch.cuda.reset_peak_memory_stats()
        rep = predict(run, [folder / "vol.npy"], folder / "out.npy", device_name=DEVICE, batch_size=4,
                      pictures=False, force=True)
        peak = torch.cuda.max_memory_allocated() / 2**20 if DEVICE == "cuda" else 0
        return {"cube": n, "mvoxel_per_s": round(n**3 / rep.seconds / 1e6, 2), "seconds": round(rep.seconds, 2),
                "gpu_peak_mib": round(peak)}

    step(report, "predict_256cube", bench_predict)
    (out / "gpu_check.json").write_text(json.dumps(report, indent=2))
    print(f"wrote {out / 'gpu_check.json'}")


if __name__ == "__main__":
    main()
