"""The arithmetic of ``geocnn predict`` (``--precision`` / ``predict.precision``): ``auto`` keeps the
CPU in fp32 (the engines agree to 1e-4 there), ``bf16`` runs bf16 autocast on the CPU too — scores
that move by bf16's rounding, not more — and each precision keeps its own cached engine choice."""

from __future__ import annotations

from pathlib import Path
from typing import get_args

import numpy as np
import pytest
import torch
import yaml

from geocnn import device
from geocnn.config import PrecisionName, load_config
from geocnn.errors import ConfigError
from geocnn.predict import engines, predict
from geocnn.predict.request import PredictRequest
from geocnn.predict.trained import load_trained
from geocnn.train import train
from tests import trainkit

# bf16 keeps 8 bits of mantissa (a relative rounding of 2^-9 per value); through a few conv layers the
# scores move by well under 5 % of their scale, and never by nothing (that would be fp32 again)
BF16_BOUND = 0.05


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """A denoiser (values) and a 3-class U-Net (probabilities), a few optimizer steps each."""
    return trainkit.values_and_classes(tmp_path_factory.mktemp("precision"), max_steps=3)


def predicted(run: Path, inputs: list[Path], out: Path, **options) -> np.ndarray:
    predict(run, inputs, out, pictures=False, force=True, threads=1, **options)
    return np.load(out)


@pytest.mark.parametrize(("precision", "train_amp", "expected"), [
    ("auto", "auto", ("auto", False)),   # CUDA's mixed precision as trained; the CPU stays fp32
    ("auto", "bf16", ("bf16", False)),   # a run trained in bf16 on the CPU still predicts in fp32 there
    ("auto", "fp16", ("fp16", False)),
    ("fp32", "bf16", ("fp32", False)),
    ("bf16", "fp32", ("bf16", True)),    # asked for: bf16 on every device
    ("bf16", "auto", ("bf16", True)),
])
def test_prediction_amp_follows_the_run_only_for_auto(precision, train_amp, expected):
    assert device.prediction_amp(precision, train_amp) == expected


@pytest.mark.parametrize(("run", "inputs", "output"), [
    ("values", ["noisy.npy"], "values"),
    ("seg", ["seis.npy"], "probabilities"),
])
def test_bf16_scores_stay_within_bf16_rounding_of_fp32(run, inputs, output, runs, tmp_path):
    files = [runs["tmp"] / name for name in inputs]
    fp32 = predicted(runs[run], files, tmp_path / "fp32.npy", output=output, precision="fp32")
    auto = predicted(runs[run], files, tmp_path / "auto.npy", output=output)
    bf16 = predicted(runs[run], files, tmp_path / "bf16.npy", output=output, precision="bf16")
    assert np.array_equal(auto, fp32)  # on the CPU, auto is fp32 bit for bit
    scale = max(1.0, float(np.max(np.abs(fp32))))
    diff = float(np.max(np.abs(bf16 - fp32))) / scale
    assert 0 < diff <= BF16_BOUND, diff
    assert bf16.dtype == fp32.dtype == np.float32 and bf16.shape == fp32.shape


def test_bf16_labels_equal_fp32_labels_where_the_classes_are_not_close(runs, tmp_path):
    files = [runs["tmp"] / "seis.npy"]
    probs = predicted(runs["seg"], files, tmp_path / "p.npy", output="probabilities", precision="fp32")
    moved = float(np.max(np.abs(probs - predicted(runs["seg"], files, tmp_path / "p16.npy",
                                                  output="probabilities", precision="bf16"))))
    fp32 = predicted(runs["seg"], files, tmp_path / "l32.npy", output="labels", precision="fp32")
    bf16 = predicted(runs["seg"], files, tmp_path / "l16.npy", output="labels", precision="bf16")
    top2 = np.sort(probs, axis=0)[-2:]
    clear = (top2[1] - top2[0]) > 2 * moved  # no probability moved enough to swap these two classes
    assert 0 < moved <= BF16_BOUND and clear.mean() > 0.5, (moved, clear.mean())  # most samples compared
    assert np.array_equal(bf16[clear], fp32[clear])


def test_predict_precision_in_the_config_is_the_default_and_precision_overrides_it(tmp_path, cli):
    cfg = trainkit.regression_config(tmp_path, max_steps=1)
    run = train(load_config(cfg, ["predict.precision=bf16"]), tmp_path / "run")
    assert yaml.safe_load((run / "config.yaml").read_text())["predict"]["precision"] == "bf16"
    noisy = tmp_path / "noisy.npy"
    assert cli("predict", run, noisy, "--out", tmp_path / "run.npy", "--threads", "1").exit_code == 0
    assert cli("predict", run, noisy, "--out", tmp_path / "fp32.npy", "--threads", "1",
               "--precision", "fp32").exit_code == 0
    assert cli("predict", run, noisy, "--out", tmp_path / "bf16.npy", "--threads", "1",
               "--precision", "bf16").exit_code == 0
    as_run, fp32, bf16 = (np.load(tmp_path / f"{n}.npy") for n in ("run", "fp32", "bf16"))
    assert np.array_equal(as_run, bf16) and not np.array_equal(as_run, fp32)


@pytest.mark.parametrize("name", ["fp16", "BF16", "half", ""])
def test_unknown_precisions_are_refused_before_any_work(name, runs, tmp_path, cli):
    with pytest.raises(ConfigError, match="--precision must be one of auto, fp32, bf16"):
        PredictRequest(runs["values"], (runs["tmp"] / "noisy.npy",), tmp_path / "p.npy", precision=name)
    result = cli("predict", runs["values"], runs["tmp"] / "noisy.npy", "--out", tmp_path / "p.npy",
                 "--precision", name)
    assert result.exit_code == 2 and "--precision must be one of" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not (tmp_path / "p.npy").exists()


def test_an_unknown_predict_precision_fails_when_the_config_is_read(tmp_path):
    cfg = trainkit.regression_config(tmp_path, max_steps=1)
    with pytest.raises(ConfigError, match="precision: unknown value 'fp16'"):
        load_config(cfg, ["predict.precision=fp16"])


def test_the_cli_help_names_every_precision(cli):
    text = " ".join(cli("predict", "--help").output.split())
    assert " | ".join(get_args(PrecisionName)) in text


def test_each_precision_keeps_its_own_cached_engine_choice(runs):
    trained = load_trained(runs["seg"])
    keys = {}
    for precision in ("fp32", "bf16"):
        amp, cpu_bf16 = device.prediction_amp(precision, "auto")
        rt = device.setup("cpu", amp, cpu_bf16=cpu_bf16)
        ctx = engines.Context(trained, rt, (8, 16), 4, torch.nn.Identity())
        keys[precision] = engines.choice_key(ctx)
    assert keys["bf16"] == keys["fp32"] + "|bfloat16"  # fp32 keys as before: earlier choices stay valid
    assert keys["fp32"].count("|") == 4
