"""A short check of geocnn's GPU path, for a machine with a CUDA GPU.

Runs, each step on its own so one failure does not hide the others:

1. the quickstart denoiser on CUDA with bf16 autocast (the default), fp16 + grad scaler, and fp32;
2. ``--compile`` (torch.compile) for one epoch;
3. the 3D fault U-Net with bf16 and channels-last 3D;
4. prediction on CUDA against the same prediction on the CPU;
5. ``torchrun`` with one process (NCCL process group, DistributedDataParallel on a GPU);
6. throughput of a 3-layer 8-channel 3D CNN over a 256³ volume (the benchmark model), voxels/s;
7. IBM words decoded on the device, bit for bit against the host decoder;
8. the GPU data-path targets of issue 13, each printed with its figures and PASS or FAIL:
   - training ≥ 0.9 × the model-alone step (forward, backward, optimizer step and reading the loss,
     on a fixed batch with the same precision and layout) for denoise2d and faults3d, in patches/s
     of the last epoch (the first carries cuDNN's autotuning);
   - prediction end to end ≥ 0.5 × the lower of the model-alone forward rate (volume voxels/s: the
     windows' rate ÷ their overlap) and the raw read rate of the input file (bytes/s ÷ 4), for a
     ``.npy`` cube and the same cube as IBM SEG-Y (decoded on the device).

Usage: ``python benchmarks/gpu_check.py [--out DIR]`` from the repository root. Prints a report and
writes ``gpu_check.json`` into DIR (default: a temporary folder). ``--device cpu --quick`` is a dry run
of every step but torch.compile and torchrun at small sizes (under a minute), to keep this script
working on machines without a GPU; its figures say nothing about a GPU.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
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

from geocnn import device as device_mod  # noqa: E402
from geocnn import gpu_decode  # noqa: E402
from geocnn.config import load_config  # noqa: E402
from geocnn.grids.ibm import ibm_to_float32  # noqa: E402
from geocnn.losses import make_loss  # noqa: E402
from geocnn.model.network import build  # noqa: E402
from geocnn.predict import predict  # noqa: E402
from geocnn.synth.write import write_fault_cubes  # noqa: E402
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
QUICK = False
TRAIN_TARGET, PREDICT_TARGET = 0.9, 0.5


def small(config: str) -> list[str]:
    """--quick: fewer patches per epoch (the configs' own sizes otherwise)."""
    if not QUICK:
        return []
    n = {"denoise2d": (64, 16), "faults3d": (8, 4)}[config]
    return [f"data.sampling.patches_per_epoch={n[0]}", f"data.sampling.val_patches={n[1]}", "train.examples=0"]


def sync() -> None:
    if DEVICE == "cuda":
        torch.cuda.synchronize()


def model_alone_train(config: str, steps: int) -> float:
    """Patches/s of the config's model alone: forward, loss, backward, Adam step and reading the loss
    (as any loop that logs it), on one fixed batch already on the device, same precision and layout."""
    cfg = load_config(ROOT / f"configs/{config}.yaml", [f"train.device={DEVICE}"])
    rt = device_mod.setup(DEVICE, cfg.train.amp)
    place = device_mod.placement(rt, cfg.model.dims, cfg.train.channels_last)
    model = place.model(build(cfg.model, cfg.patch)[0]).train()
    bs = cfg.train.batch_size
    x = place.batch(torch.randn(bs, cfg.model.in_channels, *cfg.patch))
    if cfg.task.classifies:
        y = (torch.rand(bs, *cfg.patch) < 0.1).long().to(rt.device)
    else:
        y = torch.randn(bs, 1, *cfg.patch).to(rt.device)
    loss_fn = make_loss(cfg.task.classifies, cfg.train.loss, np.array([0.9, 0.1])).to(rt.device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    scaler = rt.grad_scaler()

    def step() -> None:
        with rt.autocast():
            loss = loss_fn(model(x), y)
        float(loss.detach())
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()

    for _ in range(3):
        step()
    sync()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    sync()
    return bs * steps / (time.perf_counter() - t0)


def verdict(name: str, value: float, limit: float, detail: str) -> dict:
    ok = value >= limit
    print(f"TARGET {name}: {value:.3f} >= {limit:.3f}? {'PASS' if ok else 'FAIL'} ({detail})", flush=True)
    return {"value": round(value, 4), "limit": limit, "pass": ok, "detail": detail}


def train_denoise(tmp: Path, amp: str, epochs: int, compile_: bool = False) -> dict:
    over = [f"train.device={DEVICE}", f"train.amp={amp}", f"train.epochs={epochs}", f"train.compile={str(compile_).lower()}",
            *small("denoise2d")]
    run = train(load_config(ROOT / "configs/denoise2d.yaml", over), tmp / f"denoise_{amp}_{compile_}", force=True)
    lines = metrics(run)
    return {"snr_db": [round(r["val"]["snr_db"], 2) for r in lines],
            "baseline_snr_db": round(lines[0]["val"]["baseline"]["snr_db"], 2),
            "patches_per_s": [round(r["patches_per_s"], 1) for r in lines],
            "data_wait": [round(r["data_wait_fraction"], 3) for r in lines], "run": str(run)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--device", default="cuda", help="cpu: a dry run of this script (slow, smaller cube)")
    parser.add_argument("--quick", action="store_true", help="small sizes, no torch.compile or torchrun (a dry run)")
    args = parser.parse_args()
    global DEVICE, QUICK
    DEVICE, QUICK = args.device, args.quick
    out = args.out or Path(tempfile.mkdtemp())
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp())
    try:
        run_steps(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # the runs and volumes; the report stays in ``out``


def run_steps(tmp: Path, out: Path) -> None:
    report: dict = {"torch": torch.__version__, "cuda": torch.version.cuda,
                    "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
                    "bf16": torch.cuda.is_available() and torch.cuda.is_bf16_supported()}
    print(json.dumps(report), flush=True)
    step(report, "denoise_bf16", lambda: train_denoise(tmp, "auto", 3 if DEVICE == "cuda" else 2))
    if not QUICK:  # AMP settings are CUDA's: on a CPU dry run they would repeat the step above
        step(report, "denoise_fp16", lambda: train_denoise(tmp, "fp16", 1))
        step(report, "denoise_fp32", lambda: train_denoise(tmp, "fp32", 1))
        step(report, "denoise_compile", lambda: train_denoise(tmp, "auto", 1, compile_=True))

    def faults() -> dict:
        cubes = write_fault_cubes(tmp / "synth", cubes=2 if QUICK else 8, size=48 if QUICK else 128)  # its data
        over = [f"train.device={DEVICE}", f"train.epochs={2 if QUICK else 3}", *small("faults3d"),
                f"data.inputs=[{cubes.out / 'seismic.npy'}]", f"data.target={cubes.out / 'faults.npy'}"]
        run = train(load_config(ROOT / "configs/faults3d.yaml", over), tmp / "faults", force=True)
        lines = metrics(run)
        return {"f1": [round(r["val"]["f1"], 3) for r in lines], "patches_per_s": [round(r["patches_per_s"], 1) for r in lines]}

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

    if not QUICK:
        step(report, "torchrun_nccl", torchrun_one)

    def bench_predict() -> dict:
        folder = tmp / "bench"
        folder.mkdir()
        rng = np.random.default_rng(0)
        n = 256 if DEVICE == "cuda" else (64 if QUICK else 96)
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
    step(report, "gpu_decode_bits", decode_bits)
    step(report, "targets", lambda: targets(report, tmp))
    (out / "gpu_check.json").write_text(json.dumps(report, indent=2))
    print(f"wrote {out / 'gpu_check.json'}")


def decode_bits() -> dict:
    """IBM words decoded by torch on the device against the NumPy decoder, bit for bit."""
    rng = np.random.default_rng(5)
    words = rng.integers(0, 2**32, size=1 << 20 if not QUICK else 1 << 16, dtype=np.uint64).astype(np.uint32)
    words[:6] = [0, 0x80000000, 0x00000001, 0x61200000, 0xC276A000, 0x7FFFFFFF]
    stored = words.astype(">u4")
    data = gpu_decode.as_bytes(stored).to(DEVICE)
    ours = gpu_decode.decode(data, 1, ">", words.shape).cpu().numpy()
    differ = int(np.count_nonzero(ours.view(np.uint32) != ibm_to_float32(words).view(np.uint32)))
    if differ:
        raise AssertionError(f"{differ} of {words.size} IBM words decode differently on {DEVICE}")
    return {"words": int(words.size), "differ": 0}


def read_rate(path: Path) -> float:
    """Bytes/s of reading the whole file sequentially into one buffer (page cache as it is)."""
    size = path.stat().st_size
    buf = bytearray(min(size, 64 << 20))
    t0 = time.perf_counter()
    with path.open("rb", buffering=0) as fh:
        while fh.readinto(buf):
            pass
    return size / (time.perf_counter() - t0)


def predict_target(folder: Path, run: Path, source: Path, n: int, window: int, batch: int) -> dict:
    """End-to-end Mvoxel/s of one input against the model alone and the file's raw read rate."""
    rep = predict(run, [source], folder / f"out_{source.suffix[1:]}.npy", device_name=DEVICE, pictures=False,
                  force=True)
    e2e = n**3 / rep.seconds
    cfg = load_config(folder / "bench3d.yaml", [f"train.device={DEVICE}"])
    rt = device_mod.setup(DEVICE, cfg.train.amp)
    place = device_mod.placement(rt, 3, cfg.train.channels_last)
    model = place.model(build(cfg.model, (window,) * 3)[0]).eval()
    x = place.batch(torch.randn(batch, 1, window, window, window))
    with torch.no_grad(), rt.autocast():
        for _ in range(2):
            model(x)
        sync()
        reps = 3 if QUICK else 20
        t0 = time.perf_counter()
        for _ in range(reps):
            model(x)
        sync()
    overlap = rep.windows * window**3 / n**3  # window voxels computed per volume voxel
    alone = batch * window**3 * reps / (time.perf_counter() - t0) / overlap
    read = read_rate(source) / 4
    detail = (f"{source.name}: end to end {e2e / 1e6:.3g} Mvoxel/s, model alone {alone / 1e6:.3g}, raw read "
              f"{read / 1e6:.4g} (overlap {overlap:.2f}, {rep.windows} windows)")
    return verdict(f"predict {source.suffix[1:]} >= 0.5 x min(model alone, raw read)", e2e / min(alone, read),
                   PREDICT_TARGET, detail)


def targets(report: dict, tmp: Path) -> dict:
    """Issue 13's GPU data-path targets, each with its figures and PASS/FAIL."""
    out = {}
    for config, name in (("denoise2d", "denoise_bf16"), ("faults3d", "faults3d_bf16")):
        if not report.get(name, {}).get("ok"):
            out[config] = {"pass": False, "detail": f"{name} failed"}
            continue
        achieved = report[name]["patches_per_s"][-1]
        alone = model_alone_train(config, 5 if QUICK else 50)
        out[config] = verdict(f"train {config} >= 0.9 x model alone", achieved / alone, TRAIN_TARGET,
                              f"{achieved:.4g} against {alone:.4g} patches/s, last epoch")
    folder = tmp / "targets"
    folder.mkdir()
    n, window = (48, 16) if QUICK else (256, 64)
    vol = np.random.default_rng(1).standard_normal((n, n, n), dtype=np.float32)
    np.save(folder / "vol.npy", vol)
    from tests.segyfactory import write_segy

    write_segy(folder / "vol.sgy", range(1, n + 1), range(1, n + 1), n, format=1, values=vol)
    (folder / "bench3d.yaml").write_text(BENCH_MODEL.replace("[64, 64, 64]", f"[{window}, {window}, {window}]"))
    run = train(load_config(folder / "bench3d.yaml", [f"train.device={DEVICE}"]), folder / "run", force=True)
    for source in (folder / "vol.npy", folder / "vol.sgy"):
        out[f"predict_{source.suffix[1:]}"] = predict_target(folder, run, source, n, window, 4)
    failed = [k for k, v in out.items() if not v["pass"]]
    print(f"TARGETS on {DEVICE}: {len(out) - len(failed)} of {len(out)} PASS"
          + (f"; FAIL: {', '.join(failed)}" if failed else ""), flush=True)
    return out


if __name__ == "__main__":
    main()
