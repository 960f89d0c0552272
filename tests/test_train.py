"""``geocnn train``: run folder, checkpoints, determinism, exact resume, tasks, bad input."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import torch
import yaml

from geocnn.config import load_config
from geocnn.errors import ConfigError, DataError
from geocnn.runs.checkpoint import Checkpoint, load_checkpoint
from geocnn.train import TrainingDiverged, TrainingInterrupted, train
from tests import trainkit

train_mod = sys.modules["geocnn.train"]  # the module (geocnn.train is the public function)


def weights(run):
    return load_checkpoint(run / "checkpoints" / "last.pt").model_state


def test_run_folder_contents(tmp_path):
    cfg = load_config(trainkit.regression_config(tmp_path, examples=2))
    run = train(cfg, tmp_path / "run")
    names = {p.name for p in run.iterdir()}
    assert {"config.yaml", "summary.json", "split.json", "metrics.jsonl", "loss.png", "examples.png",
            "checkpoints"} <= names
    assert {p.name for p in (run / "checkpoints").iterdir()} == {"last.pt", "best.pt"}
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in lines] == [1, 2]
    assert {"train_loss", "val_loss", "val", "lr", "patches_per_s", "data_wait_fraction"} <= set(lines[0])
    assert {"mse", "snr_db", "baseline"} <= set(lines[0]["val"])
    assert 0 <= lines[0]["data_wait_fraction"] <= 1
    summary = json.loads((run / "summary.json").read_text())
    assert summary["input_shape"] == [1, 8, 16] and summary["total_params"] == (9 * 4 + 4) + (9 * 4 + 1)
    split = json.loads((run / "split.json").read_text())
    assert split["axis"] == "inline" and split["train"][1] + split["gap"] <= split["validation"][0]
    effective = yaml.safe_load((run / "config.yaml").read_text())
    assert effective["train"]["epochs"] == 2 and effective["data"]["inputs"][0].endswith("noisy.npy")


def test_checkpoint_is_plain_data_with_provenance(tmp_path):
    run = train(load_config(trainkit.regression_config(tmp_path)), tmp_path / "run")
    stored = torch.load(run / "checkpoints" / "best.pt", weights_only=True)  # no pickled objects
    assert stored["format"] == "geocnn-checkpoint/1"
    ckpt = Checkpoint.from_dict(stored, "best.pt")
    assert ckpt.to_dict().keys() == stored.keys()
    assert ckpt.torch_version == torch.__version__ and ckpt.geocnn_version
    assert len(ckpt.config_hash) == 16
    assert ckpt.normalization.method == "standard"
    assert ckpt.grid_axes == ("inline", "crossline", "sample")
    assert (ckpt.patch_size, ckpt.patch_axes) == ((8, 16), ("crossline", "sample"))
    assert set(ckpt.model_state) == {"steps.0.conv.weight", "steps.0.conv.bias", "steps.2.conv.weight",
                                        "steps.2.conv.bias"}


@pytest.mark.slow
def test_same_seed_same_losses(tmp_path):
    path = trainkit.regression_config(tmp_path)
    a = train(load_config(path), tmp_path / "a")
    b = train(load_config(path), tmp_path / "b")
    losses = [[json.loads(x)["train_loss"] for x in (r / "metrics.jsonl").read_text().splitlines()] for r in (a, b)]
    assert losses[0] == losses[1]
    for k, v in weights(a).items():
        assert torch.equal(v, weights(b)[k])


@pytest.mark.slow
def test_resume_gives_the_same_weights_as_straight(tmp_path):
    # 2 epochs straight, and 1 epoch (--max-steps: 16 patches / batch 4 = 4 steps) + resume 1
    path = trainkit.regression_config(tmp_path, epochs=2)
    straight = train(load_config(path), tmp_path / "straight")
    train(load_config(path, ["train.max_steps=4"]), tmp_path / "split")
    assert load_checkpoint(tmp_path / "split" / "checkpoints" / "last.pt").epoch == 1
    resumed = train(load_config(path), tmp_path / "split", resume=True)
    for k, v in weights(straight).items():
        assert torch.equal(v, weights(resumed)[k]), k
    lines = (resumed / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(x)["epoch"] for x in lines] == [1, 2]
    assert (json.loads(lines[1])["train_loss"]
            == json.loads((straight / "metrics.jsonl").read_text().splitlines()[1])["train_loss"])


@pytest.mark.slow
def test_extending_epochs_with_a_step_schedule_is_exact(tmp_path):
    path = trainkit.regression_config(tmp_path, epochs=2, scheduler="step", step_epochs=1)
    straight = train(load_config(path), tmp_path / "straight")
    train(load_config(path, ["train.epochs=1"]), tmp_path / "split")
    resumed = train(load_config(path), tmp_path / "split", resume=True)
    for k, v in weights(straight).items():
        assert torch.equal(v, weights(resumed)[k]), k


@pytest.mark.slow
def test_max_steps_inside_an_epoch_resumes_where_it_stopped(tmp_path):
    path = trainkit.regression_config(tmp_path, epochs=2)
    straight = train(load_config(path), tmp_path / "straight")
    train(load_config(path, ["train.max_steps=6"]), tmp_path / "split")
    ckpt = load_checkpoint(tmp_path / "split" / "checkpoints" / "last.pt")
    assert (ckpt.epoch, ckpt.step, ckpt.batch_in_epoch) == (1, 6, 2)
    assert json.loads((tmp_path / "split" / "metrics.jsonl").read_text().splitlines()[-1])["partial"] is True
    resumed = train(load_config(path), tmp_path / "split", resume=True)
    for k, v in weights(straight).items():
        assert torch.equal(v, weights(resumed)[k]), k


@pytest.mark.slow
def test_ctrl_c_saves_and_resume_is_exact(tmp_path, monkeypatch):
    path = trainkit.regression_config(tmp_path, epochs=2)
    straight = train(load_config(path), tmp_path / "straight")

    real = train_mod.make_loss
    calls = {"n": 0}

    def interrupting(*args, **kwargs):
        loss = real(*args, **kwargs)

        class Once(torch.nn.Module):
            def forward(self, out, y):
                calls["n"] += torch.is_grad_enabled()  # training steps only, not validation
                if calls["n"] == 6:  # in epoch 2 (4 steps per epoch), after 1 step
                    raise KeyboardInterrupt
                return loss(out, y)

        return Once()

    monkeypatch.setattr(train_mod, "make_loss", interrupting)
    with pytest.raises(TrainingInterrupted) as err:
        train(load_config(path), tmp_path / "cut")
    assert "resume with: geocnn train" in err.value.message and "--resume" in err.value.message
    assert err.value.exit_code == 130
    ckpt = load_checkpoint(tmp_path / "cut" / "checkpoints" / "last.pt")
    assert (ckpt.epoch, ckpt.batch_in_epoch) == (1, 1)
    monkeypatch.setattr(train_mod, "make_loss", real)
    resumed = train(load_config(path), tmp_path / "cut", resume=True)
    for k, v in weights(straight).items():
        assert torch.equal(v, weights(resumed)[k]), k


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path, monkeypatch):
    path = trainkit.regression_config(tmp_path, epochs=3)
    real = train_mod.make_loss

    def poisoned(*args, **kwargs):
        loss = real(*args, **kwargs)
        state = {"n": 0}

        class Late(torch.nn.Module):
            def forward(self, out, y):
                state["n"] += 1
                value = loss(out, y)
                return value * float("nan") if state["n"] > 5 else value

        return Late()

    monkeypatch.setattr(train_mod, "make_loss", poisoned)
    with pytest.raises(TrainingDiverged) as err:
        train(load_config(path), tmp_path / "run")
    assert "loss became nan at epoch 2" in err.value.message
    assert "checkpoints/last.pt holds the last good state (epoch 1, step 4)" in err.value.message
    assert load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt").epoch == 1


def test_existing_run_folder_is_not_clobbered(tmp_path):
    path = trainkit.regression_config(tmp_path, epochs=1)
    train(load_config(path), tmp_path / "run")
    with pytest.raises(ConfigError, match="run folder already exists"):
        train(load_config(path), tmp_path / "run")
    train(load_config(path), tmp_path / "run", force=True)


def test_resume_refuses_a_different_model(tmp_path):
    path = trainkit.regression_config(tmp_path, epochs=1)
    train(load_config(path), tmp_path / "run")
    cfg = yaml.safe_load(path.read_text())
    cfg["model"]["layers"][0]["conv"]["out"] = 8
    other = tmp_path / "other.yaml"
    other.write_text(yaml.safe_dump(cfg))
    with pytest.raises(ConfigError, match="model differs from the run being resumed"):
        train(load_config(other, ["train.epochs=2"]), tmp_path / "run", resume=True)


@pytest.mark.parametrize("classes,loss", [(2, "bce_balanced"), (2, "dice"), (2, "focal"), (4, "cross_entropy")])
def test_segmentation_tasks(tmp_path, classes, loss):
    data = trainkit.write_segmentation(tmp_path, classes=classes)
    out = 1 if loss == "bce_balanced" else classes
    path = trainkit.write_config(tmp_path, "segmentation", data, trainkit.SMALL_2D % {"out": out},
                                 {"loss": {"kind": loss, "class_weights": "auto" if loss == "cross_entropy" else "none"}},
                                 patch=[8, 16], section="inline",
                                 sampling={"patches_per_epoch": 16, "val_patches": 8, "balance": 0.5})
    run = train(load_config(path), tmp_path / "run")
    val = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])["val"]
    if classes == 2:
        assert {"precision", "recall", "f1", "iou", "baseline"} <= set(val)
        assert val["baseline"]["f1"] == 0.0  # all-majority (background) never finds the positive class
    else:
        assert {"pixel_accuracy", "class_accuracy", "mean_class_accuracy", "fw_iou", "miou"} <= set(val)
        assert len(val["class_accuracy"]) == 4


def test_balanced_bce_is_refused_for_more_than_two_classes(tmp_path):
    # it scores class 1 against class 0: a third class would silently count as a negative
    data = trainkit.write_segmentation(tmp_path, classes=3)
    path = trainkit.write_config(tmp_path, "segmentation", data, trainkit.SMALL_2D % {"out": 3},
                                 {"loss": "bce_balanced"}, patch=[8, 16], section="inline")
    with pytest.raises(ConfigError, match="loss bce_balanced scores two classes, but the model outputs 3"):
        train(load_config(path), tmp_path / "run")


def test_classification_from_per_trace_labels(tmp_path):
    data = trainkit.write_traces(tmp_path)
    path = trainkit.write_config(tmp_path, "classification", data, trainkit.SMALL_1D_CLASSIFIER,
                                 {"epochs": 3}, patch=[64], split={"axis": "trace", "fraction": 0.25},
                                 sampling={"patches_per_epoch": 32, "val_patches": 16, "balance": 0.5})
    run = train(load_config(path), tmp_path / "run")
    val = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])["val"]
    assert {"accuracy", "precision", "recall", "f1", "confusion"} <= set(val)
    assert np.array(val["confusion"]).sum() == 16
    assert json.loads((run / "split.json").read_text())["gap"] == 0


def test_classification_and_scalar_from_a_target_grid(tmp_path):
    data = trainkit.write_segmentation(tmp_path, classes=3)
    model = """
        dims: 2
        in_channels: 1
        layers: [{conv: {out: 4, kernel: 3}}, relu, {global_pool: mean}, {dense: %d}]
    """
    path = trainkit.write_config(tmp_path, "classification", data, model % 3, patch=[8, 8], section="inline",
                                 target_from_patch="center")
    run = train(load_config(path), tmp_path / "cls")
    assert "accuracy" in json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])["val"]
    data = trainkit.write_regression(tmp_path)
    path = trainkit.write_config(tmp_path, "scalar", {**data, "target": "clean.npy"}, model % 1,
                                 {"loss": "l1"}, name="scalar.yaml", patch=[8, 8], section="inline",
                                 target_from_patch="mean")
    run = train(load_config(path), tmp_path / "scalar")
    val = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])["val"]
    assert {"mse", "mae", "r2", "baseline"} <= set(val)


def error_of(tmp_path, mutate, data=None):
    data = data or trainkit.write_regression(tmp_path)
    path = trainkit.write_config(tmp_path, "regression", data, trainkit.SMALL_2D % {"out": 1}, patch=[8, 16],
                                 section="inline")
    cfg = yaml.safe_load(path.read_text())
    mutate(cfg)
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    with pytest.raises((ConfigError, DataError)) as err:
        train(load_config(path), tmp_path / "run")
    return err.value.message


def test_bad_input_is_caught_before_training(tmp_path):
    def set_(section, key, value):
        return lambda c: c[section].__setitem__(key, value)

    assert "unknown key 'lrate'" in error_of(tmp_path, set_("train", "lrate", 1))
    assert "epochs must be an integer ≥ 1, got 'ten'" in error_of(tmp_path, set_("train", "epochs", "ten"))
    assert "patch size 99 along crossline is larger than the grid (12)" in error_of(
        tmp_path, set_("data", "patch", [99, 16]))
    assert "data.inputs give 2 channel(s)" in error_of(
        tmp_path, set_("data", "inputs", ["noisy.npy", "clean.npy"]))
    missing = error_of(tmp_path, set_("data", "target", "missing.npy"))
    assert "missing.npy" in missing and "not found" in missing


def test_label_problems(tmp_path):
    data = trainkit.write_segmentation(tmp_path, classes=2)
    labels = np.load(tmp_path / "labels.npy")
    labels[0, 0, 0] = 7
    np.save(tmp_path / "bad_labels.npy", labels)
    path = trainkit.write_config(tmp_path, "segmentation", {**data, "target": "bad_labels.npy"},
                                 trainkit.SMALL_2D % {"out": 2}, patch=[8, 16], section="inline")
    with pytest.raises(DataError, match=r"label value\(s\) \[7\] out of range for 2 classes"):
        train(load_config(path), tmp_path / "run")
    np.save(tmp_path / "short.npy", labels[:8])
    path = trainkit.write_config(tmp_path, "segmentation", {**data, "target": "short.npy"},
                                 trainkit.SMALL_2D % {"out": 2}, patch=[8, 16], section="inline")
    with pytest.raises(DataError, match="target has shape 8 × 12 × 48"):
        train(load_config(path), tmp_path / "run")


def test_nan_in_data_is_caught(tmp_path):
    data = trainkit.write_regression(tmp_path)
    noisy = np.load(tmp_path / "noisy.npy")
    noisy[:, :, 5] = np.nan
    np.save(tmp_path / "noisy.npy", noisy)
    path = trainkit.write_config(tmp_path, "regression", data, trainkit.SMALL_2D % {"out": 1}, patch=[8, 16],
                                 section="inline")
    with pytest.raises(DataError, match="inputs contain NaN or inf"):
        train(load_config(path), tmp_path / "run")


def test_cli_train_and_overrides(tmp_path, cli):
    path = trainkit.regression_config(tmp_path)
    result = cli("train", path, "--out", tmp_path / "run", "--epochs", "1", "--set", "train.lr=0.005")
    assert result.exit_code == 0, result.stderr
    effective = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert effective["train"]["epochs"] == 1 and effective["train"]["lr"] == 0.005
    bad = cli("train", path, "--out", tmp_path / "run2", "--set", "train.lr=fast")
    assert bad.exit_code == 2 and bad.stderr.startswith("error: --set train.lr: lr must be a number")
    again = cli("train", path, "--out", tmp_path / "run")
    assert again.exit_code == 2 and "run folder already exists" in again.stderr and "--resume" in again.stderr


def test_precision_and_layout_settings(tmp_path):
    path = trainkit.regression_config(tmp_path, epochs=1)
    cfg = load_config(path, ["train.amp=fp32", "train.channels_last=false"])
    assert cfg.train.amp == "fp32" and cfg.train.channels_last is False
    with pytest.raises(ConfigError, match="YAML reads on/off/yes/no as true/false"):
        load_config(path, ["train.amp=off"])


@pytest.mark.slow
def test_resume_is_exact_with_workers_and_dropout(tmp_path):
    data = trainkit.write_regression(tmp_path)
    model = trainkit.SMALL_2D.replace("  - relu\n", "  - relu\n  - dropout: 0.3\n") % {"out": 1}
    path = trainkit.write_config(tmp_path, "regression", data, model, {"epochs": 2, "workers": 2},
                                 patch=[8, 16], section="inline", augment={"flip": ["crossline"], "noise": 0.1})
    straight = train(load_config(path), tmp_path / "straight")
    train(load_config(path, ["train.max_steps=4"]), tmp_path / "split")
    resumed = train(load_config(path), tmp_path / "split", resume=True)
    for k, v in weights(straight).items():
        assert torch.equal(v, weights(resumed)[k]), k
