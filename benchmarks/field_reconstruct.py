"""Trace reconstruction on field-like noise: geocnn beside linear interpolation and POCS.

Two cubes, each with field noise (``geocnn.synth.noise``: band-limited in time, AR(1) across
traces with lag-1 correlation 0.5, spikes, bad traces, a smooth level trend) at SNR 2 dB, and a
clean twin for scoring only:

- ``sample``: ``data_samples/seismic_noisy.sgy`` and its clean twin (``make_samples.py`` adds the
  field noise to ``seismic_clean.sgy``);
- ``held-out``: ``geocnn.synth.faults.fault_cube`` (seeded; differently generated: random wavelet,
  folds, planar faults; its noise at 2 dB with lag-1 correlation 0.5), never used to choose anything.

For each cube, ``configs/reconstruct_traces.yaml`` trains on the noisy cube alone (inputs and
clean twin overridden; the clean twin only scores validation). Two patterns of missing traces are
then filled by ``geocnn predict --mask`` on the whole cube: 20 % of the traces at random, and gaps of
3 adjacent traces along the crossline covering 20 % of each inline. Every method is scored by
SNR = 10 log10(Σ clean² / Σ (x − clean)²) over the missing traces of the held-out inlines (the
split's validation block, the last 20 % of inlines, never trained on):

- linear: interpolation along the crossline between the nearest live traces (geocnn's baseline);
- POCS: ``geocnn.classical.interpolation.pocs_fill`` over the whole cube (f-k-k), its defaults;
- POCS, best threshold: the last threshold of {0.03, 0.05, 0.08, 0.1, 0.13} that scores best
  against the clean cube — an oracle a user cannot run, shown so the default is not a straw man;
- geocnn: the trained network, filling each missing trace from outside its guard block.

``--config`` and ``--set KEY=VALUE`` train something else for an ablation (e.g. ``--set
data.mask.guard=0``: the same network scored against hidden traces next to live ones).

``--quick`` trains a few steps on smaller cubes (a check that the script runs, not figures).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import _common as C
import numpy as np

from geocnn.classical.interpolation import pocs_fill
from geocnn.config import load_config
from geocnn.grids.grid import open_grid
from geocnn.predict import predict
from geocnn.selfsup.masking import fill_linear
from geocnn.synth.faults import FaultCubeSpec, fault_cube
from geocnn.train import train

SEED = 16
CONFIG = C.ROOT / "configs" / "reconstruct_traces.yaml"
ORACLE_LAST = (0.03, 0.05, 0.08, 0.1, 0.13)
HELD_OUT = 0.2  # the config's split fraction: the last 20 % of inlines


def sample_cube(quick: bool) -> tuple[np.ndarray, np.ndarray]:
    """(clean, noisy): the sample survey, ``data_samples/seismic_{clean,noisy}.sgy`` (field noise at 2 dB)."""
    cubes = []
    for name in ("seismic_clean.sgy", "seismic_noisy.sgy"):
        grid = open_grid(C.ROOT / "data_samples" / name)
        cube = grid.read(tuple(slice(0, n) for n in grid.shape))[0]
        cubes.append(cube[:24, :24, :64] if quick else cube)
    return cubes[0], cubes[1]


def held_out_cube(quick: bool) -> tuple[np.ndarray, np.ndarray]:
    """(clean, noisy) of a seeded faulted cube, field noise at 2 dB."""
    shape = (24, 24, 64) if quick else (64, 64, 112)
    spec = FaultCubeSpec(shape=shape, snr_db=(2.0, 2.0), noise_corr=(0.5, 0.5))  # as hard as the field's noise
    cube = fault_cube(spec, np.random.default_rng(SEED + 1))
    return cube.clean, cube.noisy


def missing_patterns(shape: tuple[int, int], rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Bool (inline, crossline) masks, True = missing: 20 % random, and 3-trace gaps (20 % per inline)."""
    scattered = rng.random(shape) < 0.2
    gaps = np.zeros(shape, bool)
    slots = shape[1] // 3
    for line in gaps:
        start = int(rng.integers(0, shape[1] - 3 * slots + 1))
        for s in rng.choice(slots, round(0.2 * shape[1] / 3), replace=False):
            line[start + 3 * s:start + 3 * s + 3] = True
    return {"20 % random": scattered, "3-trace gaps": gaps}


def snr_db(x: np.ndarray, clean: np.ndarray) -> float:
    return float(10 * np.log10(np.sum(clean.astype(np.float64) ** 2) / np.sum((x - clean.astype(np.float64)) ** 2)))


def train_on(folder: Path, noisy: np.ndarray, clean: np.ndarray, args: argparse.Namespace) -> tuple[Path, float]:
    """Train the config on ``noisy`` (clean twin for validation scores only)."""
    np.save(folder / "noisy.npy", noisy)
    np.save(folder / "clean.npy", clean)
    overrides = [f"data.inputs=[{folder / 'noisy.npy'}]", f"data.clean={folder / 'clean.npy'}", "train.threads=1"]
    if args.quick:
        overrides += ["train.epochs=1", "data.sampling.patches_per_epoch=16", "data.sampling.val_patches=4"]
    t0 = time.perf_counter()
    run = train(load_config(args.config, [*overrides, *args.set]), folder / "run")
    return run, time.perf_counter() - t0


def fills(folder: Path, run: Path, noisy: np.ndarray, clean: np.ndarray, missing: np.ndarray) -> dict:
    """Every method's SNR on the missing traces of the held-out inlines, and its seconds."""
    held = slice(clean.shape[0] - round(HELD_OUT * clean.shape[0]), None)
    gone = missing[held]

    def score(filled: np.ndarray) -> float:
        return snr_db(filled[held][gone], clean[held][gone])

    out, seconds = {}, {}
    t0 = time.perf_counter()
    out["linear"] = score(fill_linear(noisy[None], np.broadcast_to(missing[..., None], noisy.shape), 1)[0])
    seconds["linear"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    out["POCS"] = score(pocs_fill(noisy, missing))
    seconds["POCS"] = time.perf_counter() - t0
    out["POCS, best threshold (oracle)"] = max(score(pocs_fill(noisy, missing, last=v)) for v in ORACLE_LAST)
    np.save(folder / "mask.npy", missing)
    t0 = time.perf_counter()
    report = predict(run, [folder / "noisy.npy"], folder / "filled.npy", mask=folder / "mask.npy",
                     threads=1, pictures=False, force=True)
    filled = np.load(report.output)
    seconds["geocnn"] = time.perf_counter() - t0
    assert np.array_equal(filled[~missing], noisy[~missing]), "predict changed a live trace"
    out["geocnn"] = score(filled)
    return {"snr_db": out, "seconds": seconds, "missing_scored": int(gone.sum())}


def main() -> None:
    p = C.parser(__doc__, rounds=1)
    p.add_argument("--quick", action="store_true", help="small cubes, a few training steps (checks the script)")
    p.add_argument("--config", type=Path, default=CONFIG, help="the reconstruct_traces config to train")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="config override for an ablation, e.g. data.mask.guard=0 (repeatable)")
    args = p.parse_args()
    C.header("trace reconstruction on field-like noise (SNR on the missing traces of held-out inlines)", args)
    print(f"seed {SEED}; config {args.config} {' '.join(args.set)}; one thread")
    figures, rows = {}, []
    with C.workdir(args, "reconstruct") as work:
        for name, make in (("sample", sample_cube), ("held-out", held_out_cube)):
            folder = work / name
            folder.mkdir()
            clean, noisy = make(args.quick)
            run, train_s = train_on(folder, noisy, clean, args)
            patterns = missing_patterns(clean.shape[:2], np.random.default_rng(SEED + 2))
            for pattern, missing in patterns.items():
                got = fills(folder, run, noisy, clean, missing)
                figures[f"{name}, {pattern}"] = {**got, "train_s": train_s, "shape": list(clean.shape)}
                s = got["snr_db"]
                rows.append([f"{name} {clean.shape}, {pattern} ({got['missing_scored']} traces)",
                             f"{s['linear']:.2f}", f"{s['POCS']:.2f}", f"{s['POCS, best threshold (oracle)']:.2f}",
                             f"{s['geocnn']:.2f}", f"{s['geocnn'] - s['linear']:+.2f}", f"{s['geocnn'] - s['POCS']:+.2f}"])
            print(f"{name}: trained in {train_s:.0f} s")
    print(C.table(["cube, missing traces", "linear dB", "POCS dB", "POCS oracle dB", "geocnn dB",
                   "geocnn − linear", "geocnn − POCS"], rows))
    for key, fig in figures.items():
        t = fig["seconds"]
        print(f"{key}: seconds linear {t['linear']:.2f}, POCS {t['POCS']:.2f}, geocnn predict {t['geocnn']:.1f} "
              f"(training {fig['train_s']:.0f})")
    worst_linear = min(f["snr_db"]["geocnn"] - f["snr_db"]["linear"] for f in figures.values())
    worst_pocs = min(f["snr_db"]["geocnn"] - f["snr_db"]["POCS"] for f in figures.values())
    headline = (f"HEADLINE field_reconstruct: geocnn − linear ≥ {worst_linear:+.2f} dB, "
                f"geocnn − POCS ≥ {worst_pocs:+.2f} dB over both cubes and both patterns")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
        args.json = None
    C.footer(headline, args, figures)


if __name__ == "__main__":
    main()
