"""train.init_from (weights by layer name), train.freeze, early stopping and the run's last line."""

from __future__ import annotations

import json
import logging
import sys

import pytest
import torch
import yaml

from geocnn.config import load_config, parse_config
from geocnn.errors import ConfigError
from geocnn.metric_names import METRICS
from geocnn.model.network import build
from geocnn.predict.trained import load_trained
from geocnn.runs.checkpoint import load_checkpoint
from geocnn.runs.early_stop import EarlyStopping
from geocnn.runs.writer import outcome_line
from geocnn.train import train
from geocnn.yamlsource import Source
from tests import trainkit

train_mod = sys.modules["geocnn.train"]  # the module (geocnn.train is the public function)

# conv1 (1→4), relu, conv2 (4→OUT): conv1 named so a second model can match it by name
NAMED_2D = """
dims: 2
in_channels: 1
layers:
  - conv: {out: 4, kernel: 3, padding: same}
    name: body
  - relu
  - conv: {out: %(out)d, kernel: 3, padding: same}
    name: head
"""

# the same body, an extra layer before a head for another class count
WIDER_2D = """
dims: 2
in_channels: 1
layers:
  - conv: {out: 4, kernel: 3, padding: same}
    name: body
  - relu
  - conv: {out: 4, kernel: 1}
    name: mix
  - conv: {out: %(out)d, kernel: 3, padding: same}
    name: head
"""


def seg_config(tmp_path, model: str, out: int, name: str = "cfg.yaml", **train):
    data = trainkit.write_segmentation(tmp_path, classes=2)
    loss = "bce_balanced" if out == 1 else "cross_entropy"
    return trainkit.write_config(tmp_path, "segmentation", data, model % {"out": out},
                                 {"loss": loss, "best_metric": "val_loss", **train}, name=name,
                                 patch=[8, 16], section="inline")


def lines_of(run):
    return [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]


# ----------------------------------------------------------------------------- init_from

@pytest.mark.slow
def test_init_from_loads_by_layer_name_and_reports_each_layer(tmp_path):
    pre = train(load_config(seg_config(tmp_path, NAMED_2D, 1, "pre.yaml")), tmp_path / "pre")
    # another class count (3 → cross entropy), an extra layer: body loads, head is skipped, mix is new
    path = seg_config(tmp_path, WIDER_2D, 3, "fine.yaml", init_from="pre", epochs=1)
    fine = train(load_config(path), tmp_path / "fine")
    report = json.loads((fine / "init.json").read_text())
    assert report["source"].endswith("pre/checkpoints/best.pt")
    status = {r["layer"]: (r["status"], r["shapes"], r["source_shapes"]) for r in report["layers"]}
    assert status == {
        "body": ("loaded", "conv.weight 4 × 1 × 3 × 3, conv.bias 4", "conv.weight 4 × 1 × 3 × 3, conv.bias 4"),
        "mix": ("new", "conv.weight 4 × 4 × 1 × 1, conv.bias 4", ""),
        "head": ("skipped", "conv.weight 3 × 4 × 3 × 3, conv.bias 3", "conv.weight 1 × 4 × 3 × 3, conv.bias 1"),
    }
    assert report["counts"] == {"loaded": 1, "skipped": 1, "new": 1, "unused": 0}
    assert report["before_training"]["val_loss"] > 0 and "pixel_accuracy" in report["before_training"]["val"]
    # the loaded layer started from the pretrained weights: freeze it to compare after training
    frozen = train(load_config(path, ["train.freeze=[body]"]), tmp_path / "frozen")
    source = load_checkpoint(pre / "checkpoints" / "best.pt").model_state
    after = load_checkpoint(frozen / "checkpoints" / "last.pt").model_state
    assert torch.equal(after["steps.0.conv.weight"], source["steps.0.conv.weight"])
    assert torch.equal(after["steps.0.conv.bias"], source["steps.0.conv.bias"])


def test_init_from_a_missing_run_is_one_line(tmp_path, cli):
    path = seg_config(tmp_path, NAMED_2D, 1, init_from="no/such/run")
    result = cli("train", path, "--out", tmp_path / "run")
    assert result.exit_code == 2
    assert result.stderr.strip() == (f"error: {tmp_path / 'no/such/run'}: train.init_from: no such run folder or "
                                     "checkpoint — give a run folder written by geocnn train, or one of its "
                                     "checkpoints/*.pt")
    assert not (tmp_path / "run").exists()


# ----------------------------------------------------------------------------- freeze

def test_frozen_layers_stay_bit_identical_and_leave_the_optimizer(tmp_path):
    path = seg_config(tmp_path, NAMED_2D, 1, freeze=["body"], epochs=2)
    cfg = load_config(path)
    run = train(cfg, tmp_path / "run")
    last = load_checkpoint(run / "checkpoints" / "last.pt")
    torch.manual_seed(cfg.train.seed)  # train() builds the model right after seeding: the same initial weights
    init = build(cfg.model, cfg.patch)[0].state_dict()
    assert torch.equal(last.model_state["steps.0.conv.weight"], init["steps.0.conv.weight"])
    assert torch.equal(last.model_state["steps.0.conv.bias"], init["steps.0.conv.bias"])
    assert not torch.equal(last.model_state["steps.2.conv.weight"], init["steps.2.conv.weight"])
    # the optimizer holds head's two tensors only
    assert last.optimizer_state["param_groups"][0]["params"] == [0, 1]
    assert len(last.optimizer_state["state"]) == 2
    summary = json.loads((run / "summary.json").read_text())
    assert (summary["total_params"], summary["trainable_params"]) == (40 + 37, 37)


def test_frozen_normalisation_keeps_its_statistics(tmp_path):
    model = NAMED_2D.replace("    name: body\n", "    name: body\n  - norm: batch\n")
    path = seg_config(tmp_path, model, 1, freeze=["body", "norm1"], epochs=1)
    cfg = load_config(path)
    run = train(cfg, tmp_path / "run")
    torch.manual_seed(cfg.train.seed)
    init = build(cfg.model, cfg.patch)[0].state_dict()
    after = load_checkpoint(run / "checkpoints" / "last.pt").model_state
    for key in ("steps.1.weight", "steps.1.bias", "steps.1.running_mean", "steps.1.running_var"):
        assert torch.equal(after[key], init[key]), key
    assert torch.equal(init["steps.1.running_mean"], torch.zeros(4))  # never updated from the batches


def test_freeze_unknown_name_suggests(tmp_path):
    path = seg_config(tmp_path, NAMED_2D, 1, freeze=["bodi"])
    with pytest.raises(ConfigError, match=r"cfg.yaml:\d+:\d+: train.freeze: no layer is named 'bodi' .* did you mean 'body'\? "
                       r"\(valid: body, head, relu1\)"):
        load_config(path)


def test_freezing_every_layer_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="nothing is left to train"):
        train(load_config(seg_config(tmp_path, NAMED_2D, 1, freeze=["body", "head"])), tmp_path / "run")


def test_summarize_shows_trainable_and_total(tmp_path, cli):
    path = seg_config(tmp_path, NAMED_2D, 1, freeze=["body"])
    result = cli("summarize", path)
    assert result.exit_code == 0, result.stderr
    # body: 3·3·1·4 + 4 = 40, head: 3·3·4·1 + 1 = 37
    assert "parameters: 77 (trainable 37)" in result.stdout


# ----------------------------------------------------------------------------- early stopping

def test_early_stopping_counts_gains_over_min_delta():
    stop = EarlyStopping(METRICS["val_loss"], patience=2, min_delta=0.05)
    # 1.0 → 0.8 improves by 0.2; 0.79 by only 0.01 (waited 1); 0.85 is worse (waited 2): stop at epoch 4
    assert [stop.update(e, v) for e, v in enumerate([1.0, 0.8, 0.79, 0.85], start=1)] == [False, False, False, True]
    assert (stop.best, stop.best_epoch, stop.waited) == (0.8, 2, 2)


SCRIPT = [1.0, 0.8, 0.79, 0.85, 0.5, 0.4]  # without early stopping, epochs 5 and 6 would improve


@pytest.fixture
def scripted_val_loss(monkeypatch):
    """Validation returns SCRIPT[epoch - 1] as its loss (the epoch is counted by calls)."""
    calls = []

    def fake(model, d, loader, loss_fn, rt, place, n_examples):
        calls.append(1)
        return SCRIPT[len(calls) - 1], {}, None

    monkeypatch.setattr(train_mod, "_validate", fake)
    return calls


def test_early_stop_at_the_computed_epoch_and_resume(tmp_path, scripted_val_loss, cli):
    path = seg_config(tmp_path, NAMED_2D, 1, epochs=6, early_stop={"patience": 2, "min_delta": 0.05})
    result = cli("train", path, "--out", tmp_path / "run")
    assert result.exit_code == 0, result.stderr
    lines = lines_of(tmp_path / "run")
    assert [r["epoch"] for r in lines] == [1, 2, 3, 4]
    assert [r["stopped_early"] for r in lines] == [False, False, False, True]
    assert lines[-1]["early_stop"] == {"best": 0.8, "best_epoch": 2, "waited": 2, "patience": 2, "min_delta": 0.05}
    assert lines[-1]["best"] == {"metric": "val_loss", "value": 0.79, "epoch": 3, "headline": "f1"}
    ckpts = tmp_path / "run" / "checkpoints"
    assert load_checkpoint(ckpts / "best.pt").epoch == 3
    assert result.stdout.splitlines()[-1] == (
        f"best epoch 3 of 4: val_loss 0.79; stopped early: 2 epochs without a val_loss gain over 0.05 since "
        f"epoch 2; predict uses {ckpts / 'best.pt'} (epoch 3, the best val_loss; last.pt is epoch 4)")
    # resumed after epoch 3 (waited 1) from the checkpoint's state: stops at epoch 4 again
    scripted_val_loss.clear()
    result = cli("train", path, "--out", tmp_path / "again", "--max-steps", "12")  # 4 steps per epoch
    assert result.exit_code == 0 and load_checkpoint(tmp_path / "again" / "checkpoints" / "last.pt").epoch == 3
    assert load_checkpoint(tmp_path / "again" / "checkpoints" / "last.pt").early_stop["waited"] == 1
    result = cli("train", path, "--out", tmp_path / "again", "--resume")
    assert result.exit_code == 0, result.stderr
    assert [r["epoch"] for r in lines_of(tmp_path / "again")] == [1, 2, 3, 4]
    assert lines_of(tmp_path / "again")[-1]["stopped_early"] is True


def test_last_line_without_a_best_epoch_names_last_pt(tmp_path, monkeypatch, cli):
    # validation that gives no f1 value (scripted): no epoch selects best.pt
    monkeypatch.setattr(train_mod, "_validate", lambda *args: (0.5, {}, None))
    path = seg_config(tmp_path, NAMED_2D, 1, epochs=1, best_metric="f1")
    result = cli("train", path, "--out", tmp_path / "run")
    assert result.exit_code == 0, result.stderr
    ckpts = tmp_path / "run" / "checkpoints"
    assert not (ckpts / "best.pt").exists()
    assert result.stdout.splitlines()[-1] == (f"predict uses {ckpts / 'last.pt'} (epoch 1; no f1 value selected a "
                                              "best epoch)")


# ----------------------------------------------------------------------------- no validation block

def with_data(path, **data):
    """The config at ``path`` with these ``data`` keys replaced."""
    cfg = yaml.safe_load(path.read_text())
    cfg["data"].update(data)
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


@pytest.mark.parametrize("settings, key, message", [
    ({"early_stop": 3}, "early_stop",
     "train.early_stop needs a validation block, but data.split.fraction is 0 and leaves none — set "
     "data.split.fraction above 0 (e.g. 0.2), or remove train.early_stop"),
    ({"best_metric": "f1"}, "best_metric",
     "best_metric 'f1' is scored on the validation block, but data.split.fraction is 0 and leaves none: best.pt "
     "would never be written — set data.split.fraction above 0 (e.g. 0.2), or best_metric: val_loss (the training "
     "loss when there is no validation block)"),
])
def test_settings_that_need_a_validation_block_are_refused_at_load(tmp_path, cli, settings, key, message):
    path = with_data(seg_config(tmp_path, NAMED_2D, 1, **settings), split={"fraction": 0})
    with pytest.raises(ConfigError) as err:
        load_config(path)
    line = next(i for i, text in enumerate(path.read_text().splitlines(), 1) if text.strip().startswith(f"{key}:"))
    assert str(err.value) == f"{path}:{line}:{err.value.where.rsplit(':', 1)[1]}: {message}"
    # with a validation block they load; fraction 0 given with --set is refused before anything is written
    load_config(path, ["data.split.fraction=0.2"])
    result = cli("train", seg_config(tmp_path, NAMED_2D, 1, "given.yaml", **settings), "--out", tmp_path / "run",
                 "--set", "data.split.fraction=0")
    assert result.exit_code == 2 and result.stderr.count("\n") == 1 and message in result.stderr
    assert not (tmp_path / "run").exists()


def test_unused_val_patches_is_a_warning_and_stored_runs_still_load(tmp_path, caplog):
    path = with_data(seg_config(tmp_path, NAMED_2D, 1), split={"fraction": 0},
                     sampling={"patches_per_epoch": 16, "val_patches": 32})
    with caplog.at_level(logging.WARNING, logger="geocnn.config"):
        cfg = load_config(path)
    assert cfg.data.sampling.val_patches == 32
    assert "data.sampling.val_patches 32 is not used: data.split.fraction is 0 and leaves no validation block" \
        in caplog.text and str(path) in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="geocnn.config"):
        load_config(path, ["data.sampling.val_patches=256"])  # the default: nothing to say
    assert caplog.text == ""
    # a run trained before the check keeps resuming and predicting: its stored config is not refused
    stored = yaml.safe_load(seg_config(tmp_path, NAMED_2D, 1, "old.yaml", early_stop=2, best_metric="f1").read_text())
    stored["data"]["split"] = {"fraction": 0}
    assert parse_config(stored, Source("checkpoint.pt")).train.early_stop.patience == 2


def test_last_line_gives_the_best_metric_next_to_its_baseline(tmp_path, cli):
    path = seg_config(tmp_path, NAMED_2D, 1, epochs=2, best_metric="f1")
    result = cli("train", path, "--out", tmp_path / "run")
    assert result.exit_code == 0, result.stderr
    lines = lines_of(tmp_path / "run")
    best = max(lines, key=lambda r: r["val"]["f1"])  # the first of equal values wins, as in training
    best = next(r for r in lines if r["val"]["f1"] == best["val"]["f1"])
    ckpts = tmp_path / "run" / "checkpoints"
    assert result.stdout.splitlines()[-1] == (
        f"best epoch {best['epoch']} of 2: f1 {best['val']['f1']:.4g} (baseline 0); predict uses "
        f"{ckpts / 'best.pt'} (epoch {best['epoch']}, the best f1; last.pt is epoch 2)")


# ----------------------------------------------------------------------------- the starting weights as epoch 0

@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pre")
    return folder, train(load_config(seg_config(folder, NAMED_2D, 1, "pre.yaml", best_metric="f1")), folder / "pre")


@pytest.mark.slow
def test_starting_weights_that_training_cannot_beat_stay_in_best_pt(pretrained, cli):
    folder, pre = pretrained
    # lr 1e-6: the weights barely move, F1 (thresholded) stays where it started, never above it
    path = seg_config(folder, NAMED_2D, 1, "still.yaml", best_metric="f1", init_from="pre", epochs=2, lr=1e-6)
    run = folder / "still"
    assert cli("train", path, "--out", run, "--max-steps", "4").exit_code == 0
    assert load_checkpoint(run / "checkpoints" / "last.pt").best_epoch == 0  # carried across the resume
    result = cli("train", run, "--resume")
    assert result.exit_code == 0, result.stderr
    start = json.loads((run / "init.json").read_text())["before_training"]["val"]["f1"]
    assert [r["val"]["f1"] for r in lines_of(run)] == [start, start]
    assert [r["best"] for r in lines_of(run)] == [{"metric": "f1", "value": start, "epoch": 0, "headline": "f1"}] * 2
    best = load_checkpoint(run / "checkpoints" / "best.pt")
    assert (best.epoch, best.step, best.best_epoch) == (0, 0, 0)
    source = load_checkpoint(pre / "checkpoints" / "best.pt").model_state
    assert all(torch.equal(best.model_state[k], v) for k, v in source.items())  # the loaded weights, bit for bit
    ckpts = run / "checkpoints"
    assert result.stdout.splitlines()[-1] == (
        f"best epoch 0 (the starting weights from {pre / 'checkpoints' / 'best.pt'}), not beaten in 2 epochs of "
        f"training: f1 {start:.4g} (baseline 0); predict uses {ckpts / 'best.pt'} (epoch 0, the best f1; last.pt "
        "is epoch 2)")
    # and predict's log line says so, not "the best epoch's weights: epoch 0"
    assert load_trained(run).description == (
        f"{ckpts / 'best.pt'} (the starting weights: epoch 0, train.init_from {pre}, not beaten by training, "
        f"f1 {start:.4g})")
    assert load_trained(ckpts / "last.pt").description.startswith(f"{ckpts / 'last.pt'} (the last epoch's weights: "
                                                                  "epoch 2, f1 ")


def test_training_that_beats_the_starting_weights_replaces_them(pretrained):
    folder, pre = pretrained
    path = seg_config(folder, NAMED_2D, 1, "better.yaml", best_metric="f1", init_from="pre", epochs=2, lr=0.05)
    run = train(load_config(path), folder / "better")
    start = json.loads((run / "init.json").read_text())["before_training"]["val"]["f1"]
    f1 = [r["val"]["f1"] for r in lines_of(run)]
    assert f1[0] > start + 0.1  # 0.38 before, 0.56 after one epoch
    best = load_checkpoint(run / "checkpoints" / "best.pt")
    assert best.best_epoch == best.epoch == 1 + (f1[1] > f1[0]) and best.best_value == max(f1)
    assert not outcome_line(run).startswith("best epoch 0")
