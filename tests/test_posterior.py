"""The posterior of a blind denoiser: the layer (shapes, receptive field, blindness while training),
the Wiener taps against an independent least-squares fit, the noise level, and a run that fits them."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
import yaml

from geocnn.classical.noisecorr import NoiseCorrelation, measure_lines
from geocnn.config import load_config
from geocnn.errors import ConfigError
from geocnn.model import parse_model
from geocnn.model.blind import blind_over, blind_region, posterior_applied, posteriors
from geocnn.model.modules import Posterior
from geocnn.model.network import build
from geocnn.predict import predict
from geocnn.runs.checkpoint import load_checkpoint
from geocnn.selfsup import posterior
from geocnn.selfsup.blindspots import BlindShape
from geocnn.summary import summarize
from geocnn.synth.faults import FaultCubeSpec, fault_cube
from geocnn.train import train
from geocnn.yamlsource import Source
from tests import trainkit

NET = """
dims: 2
in_channels: 1
axes: [crossline, sample]
layers:
  - conv: {out: 6, kernel: [7, 5], padding: same, blind: [3, all]}
  - relu
  - conv: {out: 6, kernel: [1, 5], padding: same}
  - relu
  - conv: {out: 1, kernel: 1}
  - posterior: %s
"""


def spec_of(text: str):
    return parse_model(yaml.safe_load(text), Source("posterior.yaml"))


# ----------------------------------------------------------------------------- the layer

def test_the_layer_adds_no_parameters_and_says_what_it_does():
    spec = spec_of(NET % "[5, 1]")
    model, _ = build(spec, (16, 32))
    rows = summarize(spec, (1, 16, 32), 1)
    assert rows.total_params == sum(p.numel() for p in model.parameters())  # the taps are a buffer
    assert "p + h∗(x − p), 5×1 taps fitted after each epoch" in rows.records[-1].note
    assert [tuple(layer.taps.shape) for layer in posteriors(model)] == [(5, 1)]
    assert [k for k in model.state_dict() if k.endswith("taps")] == ["steps.5.taps"]  # saved with the weights (the blind conv's mask is not)


def test_zero_taps_or_switched_off_give_the_blind_prediction_and_a_centre_tap_of_one_gives_the_input():
    layer = Posterior(2, 1, (3, 1))
    p, x = torch.randn(2, 1, 8, 12), torch.randn(2, 1, 8, 12)
    assert torch.equal(layer(p, x), p)
    layer.taps[1, 0] = 1.0
    assert torch.allclose(layer(p, x), x, atol=1e-6)
    layer.applied = False
    assert torch.equal(layer(p, x), p)


def test_the_receptive_field_is_the_union_of_the_prediction_and_the_taps_window():
    spec = spec_of(NET % "[5, 3]")
    net, inf = build(spec, (24, 40))
    torch.manual_seed(0)
    for p in net.parameters():
        torch.nn.init.uniform_(p, 0.1, 1.0)  # positive weights: no accidental cancellation
    for layer in posteriors(net):
        layer.taps.fill_(0.3)
    x = torch.randn(1, 1, 24, 40, requires_grad=True)
    centre = (12, 20)
    g, = torch.autograd.grad(net(x)[0, 0, centre[0], centre[1]], x)
    read = g[0, 0].nonzero()
    out = inf.output
    for a in range(2):
        assert (int(read[:, a].min()), int(read[:, a].max())) == (int(out.lo[a][centre[a]]), int(out.hi[a][centre[a]]))
    assert inf.records[-1].receptive_field == [7 + 4, 5 + 4 + 2]  # the conv stack's 7 × 9, widened by the 5 × 3 taps


def test_the_blindness_check_measures_the_network_as_it_trains():
    spec = spec_of(NET % "[5, 1]")
    assert blind_over(spec, (16, 32), BlindShape.parse([3, "all"])) == (True, None)
    assert blind_region(spec, (16, 32)).to_config() == [3, "all"]
    model, _ = build(spec, (16, 32))
    for layer in posteriors(model):
        layer.taps.fill_(0.2)
    x = torch.randn(1, 1, 16, 32, requires_grad=True)
    with posterior_applied(model, False):
        g, = torch.autograd.grad(model(x)[0, 0, 8, 16], x)
    assert (g[0, 0, 7:10] == 0).all()  # switched off, the fitted taps read nothing
    g, = torch.autograd.grad(model(x)[0, 0, 8, 16], x)
    assert g[0, 0, 8, 16] != 0  # applied, it reads the sample itself


def test_an_even_kernel_is_refused():
    assert "kernel [4, 1] must be odd" in summarize(spec_of(NET % "[4, 1]"), (1, 16, 32), 1).error.problem


def test_the_taps_weigh_the_network_input_only():
    with pytest.raises(ConfigError, match="with"):
        spec_of(NET % "{kernel: [3, 1], with: conv1}")


def test_a_prediction_with_other_channels_than_the_input_is_refused():
    spec = spec_of(NET.replace("conv: {out: 1, kernel: 1}", "conv: {out: 2, kernel: 1}") % "[5, 1]")
    assert "the prediction is 2 × 16 × 32 and the input 1 × 16 × 32" in summarize(spec, (1, 16, 32), 1).error.problem


# ----------------------------------------------------------------------------- the taps

LANES = (400, 48, 32)  # lines × traces × samples of the Gaussian check


def gaussian_case(seed: int = 0):
    """Signal correlated 0.9 across traces (white in time), noise 0.5 across traces, unit powers; a
    linear 'blind' prediction from the traces 2 away: p = 0.4 (x[j − 2] + x[j + 2])."""
    rng = np.random.default_rng(seed)

    def ar1(rho):
        z = rng.standard_normal(LANES)
        for j in range(1, LANES[1]):
            z[:, j] = rho * z[:, j - 1] + np.sqrt(1 - rho * rho) * z[:, j]
        return z

    s, n = ar1(0.9), ar1(0.5)
    x = s + n
    p = np.zeros_like(x)
    p[:, 2:-2] = 0.4 * (x[:, :-4] + x[:, 4:])
    jac = np.zeros((9, 1))
    jac[2, 0] = jac[6, 0] = 0.4  # ∂p/∂x at offsets −2 and +2, centre at 4
    noise = NoiseCorrelation({"trace": tuple(0.5 ** k for k in range(5))}, (1.0,), "sample", LANES[0], 0.5)
    return s[:, 2:-2], x[:, 2:-2], p[:, 2:-2], jac, noise


def oracle_taps(s, x, p, kernel: int) -> np.ndarray:
    """Least squares of s − p on the residual's shifts, with the clean signal (what the fit must reach
    without it)."""
    r, m = x - p, kernel // 2
    cols = [r[:, m + o: r.shape[1] - m + o].ravel() for o in range(-m, m + 1)]
    target = (s - p)[:, m: r.shape[1] - m].ravel()
    return np.linalg.lstsq(np.stack(cols, axis=1), target, rcond=None)[0]


def fitted(x, p, jac, noise, kernel: int, carried: bool = True) -> posterior.PosteriorFit:
    r = x - p  # (lines, traces, samples)
    shifts = posterior.differences((kernel, 1))
    cov = dict(zip(map(tuple, shifts.tolist()), posterior.residual_covariance(r, shifts, (0, 0))))
    offs = posterior.kernel_offsets((kernel, 1))
    leak = posterior.carried_noise(jac, noise, ("trace", "sample"), offs) if carried else np.zeros(len(offs))
    return posterior.solve(cov, 1.0, noise, leak, ("trace", "sample"), (kernel, 1))


def mse(a, b) -> float:
    return float(np.mean((a - b) ** 2))


def apply(x, p, taps):
    r, m = x - p, len(taps) // 2
    padded = np.pad(r, ((0, 0), (m, m), (0, 0)))
    return p + sum(t * padded[:, k: k + r.shape[1]] for k, t in enumerate(taps))


def test_the_taps_match_least_squares_with_the_clean_signal_without_reading_it():
    s, x, p, jac, noise = gaussian_case()
    fit = fitted(x, p, jac, noise, 5)
    np.testing.assert_allclose(fit.taps[:, 0], oracle_taps(s, x, p, 5), atol=0.02)
    assert fit.leak == pytest.approx(0.4 * 0.25 * 2, abs=1e-12)  # p reads the traces 2 away, noise shared 0.25
    out = apply(x, p, fit.taps[:, 0])
    assert mse(out, s) < 0.8 * mse(p, s) and mse(out, s) < 0.5 * mse(x, s)


def test_leaving_out_the_noise_the_prediction_carries_costs_accuracy():
    s, x, p, jac, noise = gaussian_case(1)
    right, wrong = fitted(x, p, jac, noise, 5), fitted(x, p, jac, noise, 5, carried=False)
    assert mse(apply(x, p, right.taps[:, 0]), s) < mse(apply(x, p, wrong.taps[:, 0]), s) - 0.01


def test_carried_noise_of_a_response_two_traces_away():
    noise = NoiseCorrelation({"trace": (1.0, 0.5, 0.25, 0.125, 0.0625)}, (1.0, 0.6), "sample", 1, 0.5)
    jac = np.zeros((9, 5))
    jac[6, 2] = 1.0  # the prediction copies the sample 2 traces on
    offs = posterior.kernel_offsets((5, 3))
    got = posterior.carried_noise(jac, noise, ("trace", "sample"), offs)
    expected = [noise.along("trace", np.array(o[0] + 2)) * noise.along("sample", np.array(o[1])) for o in offs]
    np.testing.assert_allclose(got, expected)
    assert got[list(map(tuple, offs)).index((-2, 0))] == 1.0  # the prediction at −2 holds that very noise


def test_residual_covariance_is_the_mean_product_of_shifted_samples():
    r = np.random.default_rng(5).standard_normal((3, 10, 12))
    got = posterior.residual_covariance(r, np.array([[0, 0], [1, 0], [-2, 3]]), (1, 2))
    inner = r[:, 1:9, 2:10]
    assert got[0] == pytest.approx(np.mean(inner * inner))
    assert got[1] == pytest.approx(np.mean(inner[:, :-1] * inner[:, 1:]))
    assert got[2] == pytest.approx(np.mean(inner[:, 2:, :-3] * inner[:, :-2, 3:]))


# ----------------------------------------------------------------------------- the noise level

@pytest.mark.slow
def test_the_noise_share_is_measured_from_the_noisy_cube_alone():
    cube = fault_cube(FaultCubeSpec(shape=(48, 48, 128), snr_db=(2.0, 2.0), noise_corr=(0.5, 0.5)),
                      np.random.default_rng(2024))
    m = measure_lines({"inline": np.moveaxis(cube.noisy, 0, 1), "crossline": cube.noisy})
    noise = cube.noisy - cube.clean
    true = float(np.sum(noise.astype(np.float64) ** 2) / np.sum((cube.noisy - cube.noisy.mean()) ** 2))
    assert true == pytest.approx(0.387, abs=0.005)
    assert m.share == pytest.approx(true, abs=0.03) and m.share < true  # measured 0.379: it reads low
    assert m.snr_db() == pytest.approx(10 * np.log10((1 - m.share) / m.share))
    assert m.lines_text()[-1].startswith("level: 38 % of the data's power")


# ----------------------------------------------------------------------------- a run

def posterior_config(tmp_path, model: str, task: str = "denoise_self", mask="auto"):
    data = trainkit.write_regression(tmp_path, shape=(16, 24, 48))
    data = {"inputs": data["inputs"], "clean": "clean.npy"} if task == "denoise_self" else data
    extra = {"mask": mask} if task == "denoise_self" else {}
    return trainkit.write_config(tmp_path, task, data, model, patch=[16, 32], section="inline", **extra)


def test_a_run_fits_the_taps_after_each_epoch_and_predict_applies_them(tmp_path, caplog):
    path = posterior_config(tmp_path, NET % "[5, 1]")
    with caplog.at_level(logging.INFO):
        run = train(load_config(path, ["train.epochs=1"]), tmp_path / "run")
    assert "posterior taps " in caplog.text and "the blind prediction carries" in caplog.text
    state = load_checkpoint(run / "checkpoints" / "best.pt").model_state
    taps = next(v for k, v in state.items() if k.endswith("taps"))
    assert taps.shape == (5, 1) and taps.abs().sum() > 0 and 0 < float(taps[2, 0]) < 1
    out = tmp_path / "out.npy"
    predict(run, [tmp_path / "noisy.npy"], out)
    noisy = np.load(tmp_path / "noisy.npy")
    assert np.load(out).shape == noisy.shape and not np.allclose(np.load(out), noisy)


def test_a_posterior_on_a_network_that_is_not_blind_is_refused(tmp_path):
    model = NET.replace(", blind: [3, all]", "") % "[5, 1]"
    path = posterior_config(tmp_path, model, task="regression")
    with pytest.raises(ConfigError, match="not blind by construction"):
        train(load_config(path, ["train.max_steps=1"]), tmp_path / "run")
