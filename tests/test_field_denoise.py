"""Learning thresholds of self-supervised denoising on field-like noise, on a held-out cube.

The cube is a :func:`geocnn.synth.faults.fault_cube` (seed 2024: a 33 Hz wavelet rotated −51°,
5 faults, folds; 64 × 64 × 128) with :mod:`geocnn.synth.noise`'s field-like noise at SNR 2 dB and
lag-1 correlation 0.63 across traces (the draw; the samples' is 0.5) — generated differently from
``data_samples/``, which the shipped config was developed on. The shipped
``configs/denoise_n2v.yaml`` trains on its noisy copy alone (``mask: auto``, a blind network with a
``posterior`` layer, 8 × 512 patches, about 75 CPU-s), ``geocnn predict`` denoises the whole cube,
and the held-out inlines
(the run's validation block) are scored against the clean twin, beside f-x deconvolution and
supervised training with the same steps (``benchmarks/field_denoise.py`` prints the table).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import segyio
from typer.testing import CliRunner

from geocnn.classical.fx import fx_decon_lines
from geocnn.cli import app
from geocnn.synth.faults import FaultCubeSpec, fault_cube

pytestmark = pytest.mark.slow  # long end-to-end runs: python -m pytest -m slow

ROOT = Path(__file__).resolve().parents[1]
STEPS = ["--threads", "1", "--set", "train.seed=0"]


def snr_db(x: np.ndarray, clean: np.ndarray) -> float:
    return float(10 * np.log10(np.sum(clean.astype(np.float64) ** 2) / np.sum((x - clean.astype(np.float64)) ** 2)))


def geocnn(*args) -> None:
    result = CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == 0, result.stderr[-2000:]


@pytest.fixture(scope="module")
def cube(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("held-out")
    c = fault_cube(FaultCubeSpec(shape=(64, 64, 128), snr_db=(2.0, 2.0)), np.random.default_rng(2024))
    noisy, clean = folder / "noisy.sgy", folder / "clean.sgy"
    segyio.tools.from_array3D(str(noisy), c.noisy, format=5, dt=4000)  # tests write their own SEG-Y
    segyio.tools.from_array3D(str(clean), c.clean, format=5, dt=4000)
    return {"folder": folder, "noisy": noisy, "clean": clean, "arrays": (c.noisy, c.clean)}


def trained_prediction(cube: dict, config: str, name: str, data: list[str]) -> tuple[np.ndarray, slice]:
    run = cube["folder"] / name
    geocnn("train", ROOT / "configs" / config, "--out", run, *STEPS, *[a for s in data for a in ("--set", s)])
    geocnn("predict", run, cube["noisy"], "-o", run / "out.sgy", "--threads", "1")
    val = json.loads((run / "split.json").read_text())["validation"]
    return segyio.tools.cube(str(run / "out.sgy")), slice(*val)


@pytest.fixture(scope="module")
def self_supervised(cube) -> tuple[np.ndarray, slice]:
    return trained_prediction(cube, "denoise_n2v.yaml", "self",
                              [f"data.inputs=[{cube['noisy']}]", f"data.clean={cube['clean']}"])


def test_self_supervised_beats_fx_deconvolution_on_the_held_out_cube(cube, self_supervised):
    out, block = self_supervised
    noisy, clean = (a[block] for a in cube["arrays"])
    fx = fx_decon_lines(cube["arrays"][0], 0.004, axis=1)[block]
    gain_fx = snr_db(fx, clean) - snr_db(noisy, clean)
    gain = snr_db(out[block], clean) - snr_db(noisy, clean)
    # measured: input 2.45 dB, f-x +2.43 dB, self-supervised +3.77 dB (without the posterior: +2.2 to +2.5)
    assert snr_db(noisy, clean) == pytest.approx(2.45, abs=0.01)  # the cube is the one measured
    assert gain_fx == pytest.approx(2.43, abs=0.05)
    assert gain >= gain_fx + 0.8


def test_self_supervised_gains_at_least_40_percent_of_supervised_with_the_same_steps(cube, self_supervised):
    out, block = self_supervised
    sup, _ = trained_prediction(cube, "denoise2d.yaml", "supervised",
                                [f"data.inputs=[{cube['noisy']}]", f"data.target={cube['clean']}", "train.epochs=8",
                                 "data.sampling.patches_per_epoch=512", "data.sampling.val_patches=64"])
    noisy, clean = (a[block] for a in cube["arrays"])
    base = snr_db(noisy, clean)
    gain, gain_sup = snr_db(out[block], clean) - base, snr_db(sup[block], clean) - base
    assert gain >= 0.4 * gain_sup  # measured: +3.77 dB of +5.37 dB (70 %)
