"""Self-supervised tasks: blind-spot and trace masks, the hidden-only loss, scores, config errors,
and a tiny train + predict (denoise_self, reconstruct_traces)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from geocnn import data as data_mod
from geocnn import plots
from geocnn.config import load_config
from geocnn.errors import ConfigError, DataError
from geocnn.losses import HiddenLoss
from geocnn.metrics import HiddenMetrics
from geocnn.predict import predict
from geocnn.runs.metrics_log import read as read_metrics
from geocnn.runs.writer import outcome_line
from geocnn.selfsup.masking import fill_linear, hidden_traces, hide_samples, hide_traces, neighbour_offsets
from geocnn.train import train
from tests import trainkit

AXES = ("crossline", "sample")


def mask(**kw):
    base = {"ratio": 0.02, "radius": 2, "replace": "neighbour", "axis": None, "length": 5, "gap": 1, "shape": None,
            "guard": 0}
    return SimpleNamespace(**{**base, **kw})


def position_patch(shape=(32, 64)) -> np.ndarray:
    """(1, *shape) patch whose value encodes its position: 1000 × crossline + sample."""
    i, j = np.meshgrid(*[np.arange(n) for n in shape], indexing="ij")
    return (1000.0 * i + j)[None].astype(np.float32)


# ----------------------------------------------------------------------------- blind spots

def test_blind_spots_hide_the_ratio_and_show_a_neighbour_within_the_radius():
    x = position_patch()
    masked, hidden = hide_samples(x, mask(ratio=0.02, radius=2), AXES, np.random.default_rng(0))
    assert hidden.sum() == round(0.02 * 32 * 64) == 41
    assert np.array_equal(masked[0][~hidden], x[0][~hidden])  # visible samples untouched
    for i, j in np.argwhere(hidden):
        si, sj = divmod(int(masked[0, i, j]), 1000)  # the value says where it came from
        assert 0 < max(abs(si - i), abs(sj - j)) <= 2


def test_zero_replacement_masks_the_blind_spots():
    x = position_patch() + 1
    masked, hidden = hide_samples(x, mask(replace="zero", ratio=0.1), AXES, np.random.default_rng(1))
    assert hidden.sum() == 205 and (masked[0][hidden] == 0).all()
    assert np.array_equal(masked[0][~hidden], x[0][~hidden])


def test_structured_mask_hides_a_line_along_the_axis_and_never_copies_from_it():
    x = position_patch() + 1  # no zero value in the patch
    masked, hidden = hide_samples(x, mask(axis="sample", length=5, ratio=0.01), AXES, np.random.default_rng(2))
    spots = np.argwhere(hidden)
    line = np.zeros_like(hidden)
    for i, j in spots:
        line[i, max(j - 2, 0):j + 3] = True
    line &= ~hidden
    assert (masked[0][line] == 0).all()  # ±2 samples along the sample axis are zeroed
    assert np.array_equal(masked[0][~line & ~hidden], x[0][~line & ~hidden])
    for i, j in spots:
        si, _ = divmod(int(masked[0, i, j] - 1), 1000)
        assert si != i  # the shown neighbour is on another trace, off the hidden line
    assert len(neighbour_offsets(2, 1, line_axis=1)) == 8 - 2  # 3×3 without the centre and the two along the line


def test_masks_are_deterministic_per_epoch_and_index(tmp_path):
    d = data_mod.build(load_config(denoise_config(tmp_path)))
    train_set, val_set = d.training_set(), d.validation_set()
    x1, y1 = train_set[(1, 3)]
    x2, y2 = train_set[(1, 3)]
    x3, _ = train_set[(2, 3)]
    assert torch.equal(x1, x2) and torch.equal(y1, y2)
    assert not torch.equal(x1, x3)
    v1, w1 = val_set[0]
    v2, w2 = val_set[0]
    assert torch.equal(v1, v2) and torch.equal(w1, w2)
    # target: the unmasked input, the hidden mask, and (validation only) the clean twin
    assert y1.shape == (2, 8, 16) and w1.shape == (3, 8, 16)
    hidden = y1[1] > 0.5
    assert int(hidden.sum()) == round(0.05 * 128)
    assert torch.equal(x1[0][~hidden], y1[0][~hidden])


# ----------------------------------------------------------------------------- loss and scores

def test_loss_reads_hidden_samples_only():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 1, 8, 16)).astype(np.float32)
    hidden = np.zeros((2, 1, 8, 16), np.float32)
    hidden[0, 0, 1, 2] = hidden[1, 0, 5, 7] = 1
    y = torch.from_numpy(np.concatenate([x, hidden], axis=1))
    out = torch.zeros(2, 1, 8, 16, requires_grad=True)
    loss = HiddenLoss("mse", 1.0)(out, y)
    assert float(loss.detach()) == pytest.approx((x[0, 0, 1, 2] ** 2 + x[1, 0, 5, 7] ** 2) / 2)
    loss.backward()
    grad = out.grad.numpy()
    assert (grad[hidden == 0] == 0).all()
    assert grad[0, 0, 1, 2] == pytest.approx(-x[0, 0, 1, 2])


def test_identity_network_scores_exactly_the_replaced_value_error():
    x = np.random.default_rng(4).standard_normal((1, 16, 32)).astype(np.float32)
    masked, hidden = hide_samples(x, mask(ratio=0.05), AXES, np.random.default_rng(5))
    y = torch.from_numpy(np.concatenate([x, hidden[None].astype(np.float32)])[None])
    loss = float(HiddenLoss("mse", 1.0)(torch.from_numpy(masked[None]), y))
    replaced = float(np.mean((masked[0][hidden] - x[0][hidden]) ** 2))
    assert loss == pytest.approx(replaced, rel=1e-6) and loss > 0.1


def test_hidden_metrics_by_hand():
    target = torch.tensor([[[1.0, 2.0, 3.0, 4.0]]])
    pred = torch.tensor([[[9.0, 2.0, 9.0, 9.0]]])
    base = torch.tensor([[[9.0, 0.0, 9.0, 2.0]]])
    hidden = torch.tensor([[[False, True, False, True]]])
    m = HiddenMetrics()
    m.update(pred, target, base, hidden)
    m.update_clean(pred, target, base)
    out = m.compute()
    # hidden samples 2 and 4: Σt² = 20, Σ(p − t)² = 25, Σ(b − t)² = 4 + 4 = 8
    assert out["mse"] == pytest.approx(12.5) and out["baseline"]["mse"] == pytest.approx(4.0)
    assert out["snr_db"] == pytest.approx(10 * np.log10(20 / 25))
    assert out["baseline"]["snr_db"] == pytest.approx(10 * np.log10(20 / 8))
    # clean over all four samples: Σc² = 30, Σ(p − c)² = 64 + 0 + 36 + 25 = 125
    assert out["clean_snr_db"] == pytest.approx(10 * np.log10(30 / 125))


# ----------------------------------------------------------------------------- traces

def test_trace_gaps_hide_whole_traces_in_runs_of_the_gap_width():
    rng = np.random.default_rng(6)
    hidden = hidden_traces((32, 64), 1, 0, 0.25, 1, rng)
    cols = hidden.all(axis=1)
    assert cols.sum() == 8 and (hidden.any(axis=1) == cols).all()  # whole traces, 25 % of 32
    hidden = hidden_traces((32, 64), 1, 0, 0.25, 3, rng)
    cols = hidden[:, 0]
    assert cols.sum() == 9  # round(0.25 × 32 / 3) = 3 gaps of 3
    runs = np.diff(np.flatnonzero(np.diff(np.r_[0, cols.astype(int), 0])))[::2]
    assert all(r % 3 == 0 for r in runs)
    h3 = hidden_traces((6, 10, 16), 2, 1, 0.2, 2, rng)  # 3D: time last, gaps along axis 1
    assert (h3 == h3[:, :, :1]).all() and h3[:, :, 0].sum() == 12  # round(0.2 × 60 / 2) = 6 gaps of 2


def test_linear_interpolation_between_live_traces_by_hand():
    values = np.array([[[0.0, 10.0], [7.0, 7.0], [7.0, 7.0], [3.0, 13.0], [7.0, 7.0]]], np.float32)
    hidden = np.array([[False] * 2, [True] * 2, [True] * 2, [False] * 2, [True] * 2])
    filled = fill_linear(values, hidden, 0)
    assert np.allclose(filled[0, :, 0], [0, 1, 2, 3, 3]) and np.allclose(filled[0, :, 1], [10, 11, 12, 13, 13])
    masked, hid = hide_traces(position_patch((8, 4)), mask(ratio=0.25, gap=1, axis=None), AXES,
                              np.random.default_rng(0))
    assert (masked[0][hid] == 0).all() and hid.sum() == 8


# ----------------------------------------------------------------------------- config

def denoise_config(tmp_path, task="denoise_self", mask_cfg=None, **extra):
    data = trainkit.write_regression(tmp_path)
    data = {"inputs": data["inputs"], "clean": "clean.npy", **extra}
    return trainkit.write_config(tmp_path, task, data, trainkit.SMALL_2D % {"out": 1}, patch=[8, 16],
                                 section="inline", mask=mask_cfg or {"ratio": 0.05})


@pytest.mark.parametrize("task, mask_cfg, extra, message", [
    ("denoise_self", {"ratio": 0.7}, {}, "ratio"),
    ("denoise_self", {"gap": 2}, {}, "mask.gap does not apply to task denoise_self"),
    ("denoise_self", {"axis": "sample", "length": 4}, {}, "length 4 is even"),
    ("denoise_self", {"axis": "inline"}, {}, "not a patch axis"),
    ("denoise_self", {"axis": "sample", "length": 17}, {}, "longer than the patch along sample (16)"),
    ("denoise_self", {"radius": 16}, {}, "radius 16 does not fit"),
    ("denoise_self", {}, {"target": "clean.npy"}, "data.target is not read"),
    ("reconstruct_traces", {"radius": 1}, {}, "mask.radius does not apply to task reconstruct_traces"),
    ("reconstruct_traces", {"axis": "sample"}, {}, "gaps run along a lateral axis"),
    ("reconstruct_traces", {"gap": 5}, {}, "gap 5 leaves no live trace"),
])
def test_config_errors_name_the_yaml_line(tmp_path, task, mask_cfg, extra, message):
    path = denoise_config(tmp_path, task, mask_cfg, **extra)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert message in str(err.value) and f"{path}:" in str(err.value)


def test_mask_and_clean_are_refused_for_supervised_tasks(tmp_path):
    data = trainkit.write_regression(tmp_path)
    path = trainkit.write_config(tmp_path, "regression", data, trainkit.SMALL_2D % {"out": 1}, patch=[8, 16],
                                 section="inline", mask={"ratio": 0.1})
    with pytest.raises(ConfigError, match="data.mask is for the self-supervised tasks"):
        load_config(path)
    path = trainkit.write_config(tmp_path, "regression", data, trainkit.SMALL_2D % {"out": 1}, patch=[8, 16],
                                 section="inline", clean="clean.npy")
    with pytest.raises(ConfigError, match="data.clean"):
        load_config(path)


def test_defaults_fill_the_task_ratio(tmp_path):
    cfg = load_config(denoise_config(tmp_path, mask_cfg={"radius": 3}))
    assert (cfg.data.mask.ratio, cfg.data.mask.radius, cfg.data.mask.replace) == (0.02, 3, "neighbour")
    cfg = load_config(denoise_config(tmp_path, "reconstruct_traces", {"gap": 2}))
    assert (cfg.data.mask.ratio, cfg.data.mask.gap) == (0.15, 2)


# ----------------------------------------------------------------------------- end to end

def snr_db(x: np.ndarray, clean: np.ndarray) -> float:
    return float(10 * np.log10((clean ** 2).sum() / ((x - clean) ** 2).sum()))


def test_tiny_denoise_self_beats_the_input(tmp_path):
    path = denoise_config(tmp_path, mask_cfg={"ratio": 0.05})
    run = train(load_config(path, [
        "train.epochs=3", "train.lr=0.01", "data.sampling.patches_per_epoch=96", "data.sampling.val_patches=16",
        "data.patch=[12, 16]"]), tmp_path / "run")
    last = read_metrics(run)[-1].val
    assert last.value("clean_snr_db") > last.baseline("clean_snr_db") + 1.0
    # the clean twin's figure heads the run (best_metric stays val_loss: the twin is for evaluation only)
    assert read_metrics(run)[-1].best.headline == "clean_snr_db"
    assert (f"; clean_snr_db {last.value('clean_snr_db'):.4g} (baseline {last.baseline('clean_snr_db'):.4g}, "
            f"f-x deconvolution {last.baseline('clean_snr_db', 'classical'):.4g}) there; ") in outcome_line(run)
    report = predict(run, [tmp_path / "noisy.npy"], tmp_path / "out.npy", pictures=False)
    clean, noisy, out = (np.load(p) for p in (tmp_path / "clean.npy", tmp_path / "noisy.npy", report.output))
    assert snr_db(out, clean) > snr_db(noisy, clean) + 1.0
    with pytest.raises(ConfigError, match="--mask and --all are for trace-reconstruction models"):
        predict(run, [tmp_path / "noisy.npy"], tmp_path / "all.npy", fill_all=True, pictures=False)


def test_reconstruction_fills_only_the_missing_traces(tmp_path, cli):
    path = denoise_config(tmp_path, "reconstruct_traces", {"ratio": 0.25})
    run = train(load_config(path, ["train.max_steps=2"]), tmp_path / "run")
    noisy = np.load(tmp_path / "noisy.npy")
    missing = np.zeros(noisy.shape[:-1], bool)
    missing[3, 4] = missing[10, 0] = missing[10, 1] = True
    np.save(tmp_path / "mask.npy", missing)
    out = np.load(predict(run, [tmp_path / "noisy.npy"], tmp_path / "out.npy", mask=tmp_path / "mask.npy",
                          pictures=False).output)
    assert np.array_equal(out[~missing], noisy[~missing])  # live traces pass through, bit for bit
    assert not np.allclose(out[missing], noisy[missing])
    everything = np.load(predict(run, [tmp_path / "noisy.npy"], tmp_path / "all.npy", mask=tmp_path / "mask.npy",
                                 fill_all=True, pictures=False).output)
    assert np.array_equal(everything[missing], out[missing]) and not np.allclose(everything, noisy)
    np.save(tmp_path / "bad.npy", missing[:, :3])
    result = cli("predict", run, tmp_path / "noisy.npy", "--out", tmp_path / "x.npy", "--mask", tmp_path / "bad.npy")
    assert result.exit_code == 2 and "the mask has shape (16, 3) but the grid has (16, 12)" in result.stderr
    with pytest.raises(DataError):
        predict(run, [tmp_path / "noisy.npy"], tmp_path / "y.npy", mask=tmp_path / "bad.npy", pictures=False)


def test_reconstruction_pictures_show_the_filled_traces(tmp_path, monkeypatch):
    drawn = {}
    save = plots.save

    def keep(fig, path):
        drawn[path.name] = fig
        return save(fig, path)

    monkeypatch.setattr(plots, "save", keep)
    path = denoise_config(tmp_path, "reconstruct_traces", {"ratio": 0.25})
    train(load_config(path, ["train.max_steps=2", "train.examples=2"]), tmp_path / "run")
    panels = [ax for ax in drawn["examples.png"].axes if ax.images]
    assert [ax.get_title() for ax in panels[1:4]] == ["clean twin (never trained on)", "hidden traces filled (marked)",
                                                      "residual on the filled traces (input − prediction)"]
    noisy, filled, residual = (np.ma.filled(ax.images[0].get_array().T.astype(float), np.nan)
                               for ax in (panels[0], panels[2], panels[3]))
    crosslines = panels[0].images[0].get_extent()[0] + 0.5 + np.arange(len(noisy))  # patch columns as crosslines
    marked = [line.get_xdata() for line in panels[2].lines if line.get_label() == plots.FILLED][0]
    hidden = np.isin(crosslines, marked)
    assert hidden.sum() == 2  # 25 % of the 8 traces of a patch
    assert np.isfinite(residual[hidden]).all() and np.isnan(residual[~hidden]).all()
    assert np.array_equal(filled[~hidden], noisy[~hidden]) and not np.allclose(filled[hidden], noisy[hidden])
    missing = np.zeros((16, 12), bool)
    missing[5, [2, 7]] = missing[9, 3] = True
    np.save(tmp_path / "mask.npy", missing)
    predict(tmp_path / "run", [tmp_path / "noisy.npy"], tmp_path / "out.npy", mask=tmp_path / "mask.npy")
    panels = [ax for ax in drawn["out.preview.png"].axes if ax.images]
    assert panels[0].get_title() == "input — inline 5"  # .npy: indices; the middle inline (8) has none filled
    assert [line.get_xdata().tolist() for line in panels[0].lines if line.get_label() == plots.FILLED] == [[2, 7]]


def test_reconstruction_fills_the_dead_traces_of_an_irregular_segy(tmp_path):
    from tests import segyfactory

    path = denoise_config(tmp_path, "reconstruct_traces", {"ratio": 0.25})
    run = train(load_config(path, ["train.max_steps=1"]), tmp_path / "run")
    values = trainkit.layered_volume((5, 12, 48))
    survey = segyfactory.write_segy(tmp_path / "irr.sgy", range(1, 6), range(20, 32), 48, values=values[:, :, None],
                                    missing=[(2, 22), (4, 30)])
    out = np.load(predict(run, [tmp_path / "irr.sgy"], tmp_path / "out.npy", pictures=False).output)
    dead, vals = ~survey.live, survey.values.reshape(5, 12, 48)
    assert dead.sum() == 2 and dead[1, 2] and dead[3, 10]
    assert np.array_equal(out[~dead], vals[~dead])
    assert np.abs(out[dead]).sum() > 0  # filled, not left at zero


def test_run_records_hidden_scores_in_metrics_jsonl(tmp_path):
    path = denoise_config(tmp_path, "reconstruct_traces", {"ratio": 0.25})
    run = train(load_config(path, ["train.max_steps=2", "train.epochs=1"]), tmp_path / "run")
    record = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    assert {"mse", "snr_db", "clean_snr_db"} <= set(record["val"])
    assert {"snr_db", "clean_snr_db"} <= set(record["val"]["baseline"])


def test_json_schema_has_the_mask_section(cli):
    schema = json.loads(cli("schema").stdout)
    data = schema["properties"]["data"]["properties"]
    record, shorthand = data["mask"]["anyOf"]  # mask: auto is mask: {shape: auto}
    assert set(record["properties"]) == {"ratio", "radius", "replace", "axis", "length", "gap", "shape", "guard"}
    assert record["properties"]["ratio"]["maximum"] == 0.5
    assert record["properties"]["replace"]["enum"] == ["neighbour", "zero"]
    assert shorthand == record["properties"]["shape"]
    assert "clean" in data and {"denoise_self", "reconstruct_traces"} <= set(schema["properties"]["task"]["enum"])


def test_dead_traces_are_shown_as_zero_and_never_scored(tmp_path):
    from tests import segyfactory

    values = trainkit.layered_volume((6, 12, 48)) + 3.0  # no zero sample in a live trace
    segyfactory.write_segy(tmp_path / "irr.sgy", range(1, 7), range(20, 32), 48, values=values[:, :, None],
                           missing=[(1, 21), (6, 25)])
    path = trainkit.write_config(tmp_path, "reconstruct_traces", {"inputs": ["irr.sgy"]},
                                 trainkit.SMALL_2D % {"out": 1}, patch=[12, 16], section="inline",
                                 mask={"ratio": 0.5, "axis": "crossline"},
                                 split={"fraction": 0.34, "gap": 0}, normalize="none")
    d = data_mod.build(load_config(path))
    train_set, origins = d.training_set(), d.epoch_origins(1)
    k = next(k for k, o in enumerate(origins) if o[0] == 0)  # a patch of inline 1, dead at crossline 21
    x, y = train_set[(1, k)]
    assert (x[0, 1] == 0).all() and (y[0, 1] == 0).all() and (y[1, 1] == 0).all()  # shown as 0, never scored
    live = [j for j in range(12) if j != 1]
    assert (y[0, live] != 0).all() and y[1, live].any()


def test_a_supervised_run_reloads_with_the_default_mask_section(tmp_path):
    run = train(load_config(trainkit.regression_config(tmp_path, max_steps=1)), tmp_path / "run")
    from geocnn.predict import load_trained

    assert load_trained(run).cfg.task.name == "regression"
