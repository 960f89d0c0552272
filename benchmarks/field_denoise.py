"""Denoising on field-like noise: the input, f-x deconvolution, geocnn self-supervised, and
supervised training on the clean twin with the same steps — on two differently generated cubes.

Cubes (both SNR 2 dB, :mod:`geocnn.synth.noise`'s field-like noise: band-limited 5-65 Hz, correlated
across traces, spikes, 2 % bad traces, a smooth level trend):

- ``samples``: ``data_samples/seismic_noisy.sgy`` and its clean twin (64 × 48 × 100);
- ``synth``: a :func:`geocnn.synth.faults.fault_cube` (seed 2024: 33 Hz wavelet rotated −51°,
  5 faults, folds; 64 × 64 × 128; its noise drawn with lag-1 correlation 0.63 across traces,
  harder than the samples' 0.5), written as SEG-Y into a temporary folder — generated
  differently from the samples, so nothing is tuned to one cube.

Every figure is the SNR, 10 log10(Σ clean² / Σ (x − clean)²), over the held-out inlines (the
validation block of the run's split, ``split.json``) of the whole cube after ``geocnn predict``.

- ``f-x decon``: :func:`geocnn.classical.fx.fx_decon_lines` along the crosslines of every inline,
  textbook parameters (20-trace windows, 4-trace filter);
- ``self-supervised``: ``geocnn train configs/denoise_n2v.yaml`` on the noisy cube alone
  (``mask: auto``), then ``geocnn predict``;
- ``supervised``: ``configs/denoise2d.yaml`` (trained on the clean twin) with the self-supervised
  run's epochs, patches per epoch and validation patches, so both take the same optimizer steps.

Targets (issue 16): self-supervised gain ≥ f-x's and ≥ 40 % of the supervised gain, on both cubes.
Runs take about a minute of CPU each (``--threads 1``); the table gives each one's CPU time.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import _common as C
import numpy as np
import segyio
import yaml

from geocnn.classical.fx import fx_decon_lines
from geocnn.synth.faults import FaultCubeSpec, fault_cube

SAMPLES = C.ROOT / "data_samples"
SELF = C.ROOT / "configs" / "denoise_n2v.yaml"
SUPERVISED = C.ROOT / "configs" / "denoise2d.yaml"
HELD_OUT_SEED = 2024
HELD_OUT_SHAPE = (64, 64, 128)
DT_S = 0.004


def held_out_cube(folder: Path) -> tuple[Path, Path]:
    """The synth cube as noisy.sgy and clean.sgy (IEEE floats, inline/crossline bytes 189/193)."""
    cube = fault_cube(FaultCubeSpec(shape=HELD_OUT_SHAPE, snr_db=(2.0, 2.0)), np.random.default_rng(HELD_OUT_SEED))
    noisy, clean = folder / "synth_noisy.sgy", folder / "synth_clean.sgy"
    segyio.tools.from_array3D(str(noisy), cube.noisy, format=5, dt=int(DT_S * 1e6))
    segyio.tools.from_array3D(str(clean), cube.clean, format=5, dt=int(DT_S * 1e6))
    return noisy, clean


def snr_db(x: np.ndarray, clean: np.ndarray) -> float:
    return float(10 * np.log10(np.sum(clean.astype(np.float64) ** 2) / np.sum((x - clean.astype(np.float64)) ** 2)))


def held_out(run: Path) -> slice:
    """The validation block of a run (grid indices along its split axis, the inlines here)."""
    val = json.loads((run / "split.json").read_text())["validation"]
    return slice(val[0], val[1])


def geocnn(*args: str) -> float:
    """Run the geocnn command line; its CPU seconds (user + system)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run([sys.executable, "-m", "geocnn", *args], capture_output=True, text=True,
                          env=C.child_env("default"))
    if done.returncode != 0:
        raise RuntimeError(f"geocnn {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def train_and_predict(config: Path, run: Path, noisy: Path, sets: list[str], threads: int) -> tuple[Path, float]:
    """(prediction file, training CPU seconds)."""
    cpu = geocnn("train", str(config), "--out", str(run), "--threads", str(threads), "--force",
                 *[a for s in sets for a in ("--set", s)])
    out = run / "prediction.sgy"
    geocnn("predict", str(run), str(noisy), "-o", str(out), "--threads", str(threads))
    return out, cpu


def measure(name: str, noisy: Path, clean: Path, folder: Path, args) -> dict:
    """Every method's held-out SNR on one cube."""
    steps = yaml.safe_load(SELF.read_text())
    sampling = {**steps["data"]["sampling"], **({"patches_per_epoch": args.patches} if args.patches else {})}
    epochs = args.epochs or steps["train"]["epochs"]
    common = [f"train.seed={args.seed}", f"train.epochs={epochs}",
              f"data.sampling.patches_per_epoch={sampling['patches_per_epoch']}",
              f"data.sampling.val_patches={sampling['val_patches']}"]
    ss, ss_cpu = train_and_predict(SELF, folder / f"{name}-self", noisy,
                                   [f"data.inputs=[{noisy}]", f"data.clean={clean}", *common], args.threads)
    sup, sup_cpu = train_and_predict(SUPERVISED, folder / f"{name}-supervised", noisy,
                                     [f"data.inputs=[{noisy}]", f"data.target={clean}", *common], args.threads)
    block = held_out(folder / f"{name}-self")
    c = segyio.tools.cube(str(clean))[block]
    x = segyio.tools.cube(str(noisy))
    t0 = time.process_time()
    fx = fx_decon_lines(x, DT_S, axis=1)[block]
    fx_cpu = time.process_time() - t0
    scores = {"input": snr_db(x[block], c), "f-x decon": snr_db(fx, c),
              "self-supervised": snr_db(segyio.tools.cube(str(ss))[block], c),
              "supervised": snr_db(segyio.tools.cube(str(sup))[block], c)}
    return {"cube": name, "inlines": f"{block.start}-{block.stop - 1}", "snr": scores,
            "cpu_s": {"f-x decon": fx_cpu, "self-supervised": ss_cpu, "supervised": sup_cpu},
            "steps": f"{epochs} × {sampling['patches_per_epoch']} patches"}


def _seconds(cpu: float | None) -> str:
    return "" if cpu is None else f"{cpu:.1f}" if cpu < 10 else f"{cpu:.0f}"


def gain(r: dict, method: str) -> float:
    return r["snr"][method] - r["snr"]["input"]


def main() -> None:
    p = C.parser(__doc__, rounds=1)
    p.add_argument("--threads", type=int, default=1, help="CPU threads of every geocnn run")
    p.add_argument("--seed", type=int, default=0, help="train.seed of both trainings")
    p.add_argument("--epochs", type=int, default=None, help="override both trainings' epochs (default: the config's)")
    p.add_argument("--patches", type=int, default=None, help="override both trainings' patches per epoch")
    p.add_argument("--cubes", nargs="+", default=["samples", "synth"], choices=["samples", "synth"])
    args = p.parse_args()
    print(f"machine: {C.machine()}; {C.load()}; seed {args.seed}, {args.threads} thread(s) per run")
    results = []
    with C.workdir(args, "field-denoise") as folder:
        synth = held_out_cube(folder) if "synth" in args.cubes else None
        cubes = {"samples": (SAMPLES / "seismic_noisy.sgy", SAMPLES / "seismic_clean.sgy"), "synth": synth}
        for name in args.cubes:
            results.append(measure(name, *cubes[name], folder, args))
    rows = []
    for r in results:
        sup = gain(r, "supervised")
        for method in ("input", "f-x decon", "self-supervised", "supervised"):
            g = gain(r, method)
            share = f"{100 * g / sup:.0f} %" if method != "input" and sup > 0 else ""
            cpu = r["cpu_s"].get(method)
            rows.append([f"{r['cube']} (inlines {r['inlines']})" if method == "input" else "", method,
                         f"{r['snr'][method]:.2f}", f"{g:+.2f}" if method != "input" else "", share,
                         _seconds(cpu), r["steps"] if method in ("self-supervised", "supervised") else ""])
    print(C.table(["cube", "method", "SNR dB", "gain dB", "of supervised", "CPU s", "training"], rows))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    parts = [f"{r['cube']} self-supervised {gain(r, 'self-supervised'):+.2f} dB vs f-x {gain(r, 'f-x decon'):+.2f} "
             f"dB, supervised {gain(r, 'supervised'):+.2f} dB" for r in results]
    print("HEADLINE field_denoise: " + "; ".join(parts))


if __name__ == "__main__":
    main()
