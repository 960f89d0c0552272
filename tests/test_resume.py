"""Resume is exact in every case, or refuses; run folders are locked, numbered and replaced safely."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import textwrap

import pytest
import torch
import yaml

from geocnn import summary
from geocnn.config import load_config
from geocnn.errors import ConfigError
from geocnn.runs import folder as runfolder
from geocnn.runs.checkpoint import load_checkpoint
from geocnn.train import TrainingDiverged, TrainingInterrupted, train
from tests import trainkit

train_mod = sys.modules["geocnn.train"]  # the module (geocnn.train is the public function)

# conv → BatchNorm → relu → conv: a forward pass changes running_mean/var and num_batches_tracked
BN_MODEL = """
dims: 2
in_channels: 1
layers:
  - conv: {out: 4, kernel: 3, padding: same}
  - norm: batch
  - relu
  - conv: {out: 1, kernel: 3, padding: same}
"""


def bn_config(folder, **train):
    data = trainkit.write_regression(folder)
    return trainkit.write_config(folder, "regression", data, BN_MODEL, train, patch=[8, 16], section="inline")


def state(run):
    return load_checkpoint(run / "checkpoints" / "last.pt").model_state


def metrics(run):
    return [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]


def loss_that(monkeypatch, act):
    """make_loss whose training calls run ``act(n)`` after the model's forward pass (n counts from 1)."""
    real = train_mod.make_loss
    calls = {"n": 0}

    def make(*args, **kwargs):
        loss = real(*args, **kwargs)

        class Hook(torch.nn.Module):
            def forward(self, out, y):
                if torch.is_grad_enabled():  # training steps only, not validation
                    calls["n"] += 1
                    act(calls["n"])
                return loss(out, y)

        return Hook()

    monkeypatch.setattr(train_mod, "make_loss", make)
    return real


@pytest.fixture(scope="module")
def straight_bn(tmp_path_factory):
    """3 epochs straight (the config file says 2; --epochs 3 is the run's own setting)."""
    folder = tmp_path_factory.mktemp("straight")
    path = bn_config(folder)
    return path, train(load_config(path, ["train.epochs=3"]), folder / "straight")


@pytest.mark.slow
@pytest.mark.parametrize("how", ["signal", "second_ctrl_c"])
def test_ctrl_c_mid_epoch_with_batchnorm_is_exact(tmp_path, monkeypatch, cli, straight_bn, how):
    path, straight = straight_bn
    cfg_path = tmp_path / "cfg.yaml"
    cfg_path.write_text(path.read_text().replace(str(path.parent), str(tmp_path)))
    for name in ("noisy.npy", "clean.npy"):
        (tmp_path / name).write_bytes((path.parent / name).read_bytes())

    def interrupt(n):
        if n == 6:  # epoch 2 (4 steps per epoch), 2nd step, after BatchNorm updated its statistics
            if how == "signal":
                os.kill(os.getpid(), signal.SIGINT)  # a real Ctrl-C: this step finishes, then it stops
            else:
                raise KeyboardInterrupt  # lands inside the step: the forward pass is undone

    real = loss_that(monkeypatch, interrupt)
    run = tmp_path / "cut"
    with pytest.raises(TrainingInterrupted) as err:
        train(load_config(cfg_path, ["train.epochs=3"]), run)
    assert err.value.message.endswith(f"resume with: geocnn train {run} --resume")  # complete: no --epochs needed
    ckpt = load_checkpoint(run / "checkpoints" / "last.pt")
    done = 2 if how == "signal" else 1  # steps of epoch 2 in the checkpoint
    assert (ckpt.epoch, ckpt.step, ckpt.batch_in_epoch, ckpt.epoch_patches) == (1, 4 + done, done, 4 * done)
    monkeypatch.setattr(train_mod, "make_loss", real)

    result = cli("train", run, "--resume")
    assert result.exit_code == 0, result.stderr
    want, got = state(straight), state(run)
    assert "steps.1.num_batches_tracked" in got and int(got["steps.1.num_batches_tracked"]) == 12
    for k, v in want.items():  # parameters AND BatchNorm buffers, bit for bit
        assert torch.equal(v, got[k]), k
    # epoch 2's train_loss covers the whole epoch (sums carried in the checkpoint), as in the straight run
    assert [r["train_loss"] for r in metrics(run)] == [r["train_loss"] for r in metrics(straight)]
    assert metrics(run)[1]["resumed"] == {"step": 4 + done}
    assert yaml.safe_load((run / "config.yaml").read_text())["train"]["epochs"] == 3


@pytest.mark.slow
def test_resume_with_the_config_file_keeps_the_runs_settings(tmp_path, cli):
    path = trainkit.regression_config(tmp_path, epochs=2)
    run = tmp_path / "run"
    assert cli("train", path, "--out", run, "--epochs", "3", "--max-steps", "2").exit_code == 0
    result = cli("train", path, "--out", run, "--resume", "--max-steps", "6")
    assert result.exit_code == 0, result.stderr
    effective = yaml.safe_load((run / "config.yaml").read_text())["train"]
    # the run's epochs (3), not the file's (2); max_steps is this invocation's
    assert (effective["epochs"], effective["max_steps"]) == (3, 6)
    assert load_checkpoint(run / "checkpoints" / "last.pt").step == 6
    assert "resuming with the run's own config" in result.stderr and "train.epochs" in result.stderr
    # cosine over 3 × 4 steps: the rate after step 6 is 0.01·(0.02 + 0.98·½(1 + cos(π·6/12))) = 0.0051
    assert metrics(run)[-1]["lr"] == pytest.approx(0.01 * (0.02 + 0.98 * 0.5), rel=1e-12)


def test_overrides_on_resume_apply_and_are_recorded_or_are_refused(tmp_path, cli):
    path = trainkit.regression_config(tmp_path, epochs=1, scheduler="none")
    run = train(load_config(path), tmp_path / "run")
    refused = cli("train", run, "--resume", "--batch-size", "8")
    assert refused.exit_code == 2
    assert refused.stderr.startswith(f"error: {run}: --resume cannot change train.batch_size (4 in the run, 8 now)")
    model = cli("train", run, "--resume", "--set", "model.layers=[relu]")
    assert model.exit_code == 2 and "the config's model differs from the run being resumed" in model.stderr
    shorter = cli("train", run, "--resume", "--set", "train.epochs=2", "--set", "train.lr=0.004")
    assert shorter.exit_code == 0, shorter.stderr
    effective = yaml.safe_load((run / "config.yaml").read_text())["train"]
    assert (effective["epochs"], effective["lr"]) == (2, 0.004)
    second = metrics(run)[1]
    assert second["resumed"] == {"step": 4, "changed": {"train.epochs": [1, 2], "train.lr": [0.01, 0.004]}}
    assert second["lr"] == 0.004  # no schedule: the new rate itself
    opt = load_checkpoint(run / "checkpoints" / "last.pt").optimizer_state
    assert opt["param_groups"][0]["lr"] == 0.004 and opt["param_groups"][0]["initial_lr"] == 0.004
    dry = cli("train", run, "--resume", "--epochs", "5", "--dry-run")
    assert dry.exit_code == 0 and "resume changes train.epochs: 2 → 5" in dry.stdout
    assert yaml.safe_load((run / "config.yaml").read_text())["train"]["epochs"] == 2  # a dry run writes nothing
    back = cli("train", run, "--resume", "--epochs", "1")
    assert back.exit_code == 2 and "train.epochs 1 on resume, but the run has already done 2 epochs" in back.stderr


def test_changing_the_optimizer_on_resume_needs_reset(tmp_path, cli):
    path = trainkit.regression_config(tmp_path, epochs=1)
    run = train(load_config(path), tmp_path / "run")
    refused = cli("train", run, "--resume", "--epochs", "2", "--set", "train.optimizer=sgd")
    assert refused.exit_code == 2 and "cannot change train.optimizer ('adam' in the run, 'sgd' now)" in refused.stderr
    assert "--reset-optimizer" in refused.stderr
    reset = cli("train", run, "--resume", "--epochs", "2", "--set", "train.optimizer=sgd", "--reset-optimizer")
    assert reset.exit_code == 0, reset.stderr
    groups = load_checkpoint(run / "checkpoints" / "last.pt").optimizer_state["param_groups"]
    assert groups[0]["momentum"] == 0.9 and "betas" not in groups[0]  # SGD's state, restarted
    assert cli("train", run, "--reset-optimizer").exit_code == 2


def test_divergence_in_the_first_epoch_says_no_checkpoint_exists(tmp_path, monkeypatch):
    path = trainkit.regression_config(tmp_path, epochs=2)

    real = train_mod.make_loss

    def make(*args, **kwargs):
        loss = real(*args, **kwargs)
        calls = {"n": 0}

        class Nan(torch.nn.Module):
            def forward(self, out, y):
                calls["n"] += 1
                return loss(out, y) * (float("nan") if calls["n"] >= 2 else 1.0)

        return Nan()

    monkeypatch.setattr(train_mod, "make_loss", make)
    with pytest.raises(TrainingDiverged) as err:
        train(load_config(path), tmp_path / "run")
    assert "loss became nan at epoch 1, step 2" in err.value.message
    assert "no checkpoint was saved yet" in err.value.message and "holds" not in err.value.message
    assert not (tmp_path / "run" / "checkpoints" / "last.pt").exists()


HOLD = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from geocnn import summary
    from geocnn.runs import folder as runfolder
    lock = runfolder.lock(Path(sys.argv[1]))
    print("locked", flush=True)
    time.sleep(120)
""")


def test_a_locked_run_folder_refuses_a_second_process_and_a_dead_holder_is_taken_over(tmp_path, cli, caplog):
    path = trainkit.regression_config(tmp_path, epochs=1, max_steps=1)
    run = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(run)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        busy = cli("train", path, "--out", run)
        assert busy.exit_code == 2
        assert busy.stderr.startswith(f"error: {run}: run folder is in use by geocnn process pid {holder.pid} on ")
        assert not run.exists()  # nothing written
    finally:
        holder.kill()  # like kill -9: the lock file stays behind, the lock itself goes with the process
        holder.wait()
    assert json.loads(runfolder.lock_path(run).read_text())["pid"] == holder.pid
    logging.getLogger("geocnn").propagate = True  # the CLI above routed geocnn's log to rich
    with caplog.at_level(logging.WARNING, logger="geocnn"):
        train(load_config(path), run)
    assert f"took over a lock left by geocnn process pid {holder.pid}" in caplog.text
    assert not runfolder.lock_path(run).exists()  # released


def test_force_replaces_the_old_run_only_after_the_new_one_has_a_checkpoint(tmp_path, monkeypatch):
    path = trainkit.regression_config(tmp_path, epochs=1)
    run = train(load_config(path), tmp_path / "run")
    (run / "notes.txt").write_text("mine")
    old = {p.relative_to(run): p.read_bytes() for p in run.rglob("*") if p.is_file()}

    def unchanged():
        now = {p.relative_to(run): p.read_bytes() for p in run.rglob("*") if p.is_file()}
        return now == old

    # Ctrl-C while the new run writes its first files (after the checks, before any step)
    real = summary.summarize

    def ctrl_c(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(summary, "summarize", ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        train(load_config(path, ["train.lr=0.002"]), run, force=True)
    assert unchanged()
    monkeypatch.setattr(summary, "summarize", real)

    # a failure in the first epoch, before the first checkpoint
    def fail(n):
        if n == 2:
            raise RuntimeError("boom")

    real_loss = loss_that(monkeypatch, fail)
    with pytest.raises(RuntimeError, match="boom"):
        train(load_config(path, ["train.lr=0.002"]), run, force=True)
    assert unchanged()
    monkeypatch.setattr(train_mod, "make_loss", real_loss)

    # a new run that reaches its first checkpoint replaces the old one; the user's file stays
    train(load_config(path, ["train.lr=0.002"]), run, force=True)
    assert yaml.safe_load((run / "config.yaml").read_text())["train"]["lr"] == 0.002
    assert (run / "notes.txt").read_text() == "mine" and not (run / runfolder.ASIDE).exists()
    assert len(metrics(run)) == 1


def test_check_fits_runs_before_force_touches_the_old_run(tmp_path, monkeypatch):
    path = trainkit.regression_config(tmp_path, epochs=1, max_steps=1)
    run = train(load_config(path), tmp_path / "run")
    before = (run / "checkpoints" / "last.pt").read_bytes()

    def too_big(*a, **k):
        raise ConfigError("training needs ≈ 9 GiB")

    monkeypatch.setattr(train_mod, "check_fits", too_big)
    with pytest.raises(ConfigError, match="9 GiB"):
        train(load_config(path), run, force=True)
    assert (run / "checkpoints" / "last.pt").read_bytes() == before and not (run / runfolder.ASIDE).exists()


def test_a_new_try_gets_a_numbered_run_folder(tmp_path, monkeypatch, cli):
    path = trainkit.regression_config(tmp_path, epochs=1, max_steps=1)
    monkeypatch.chdir(tmp_path)
    first = cli("train", path)
    assert first.exit_code == 0 and "done: runs/cfg " in first.stdout
    second = cli("train", path)
    assert second.exit_code == 0, second.stderr
    assert "runs/cfg holds a previous run: this run is runs/cfg-2" in second.stderr
    assert "done: runs/cfg-2 " in second.stdout
    assert (tmp_path / "runs" / "cfg" / "checkpoints" / "last.pt").exists()
    assert (tmp_path / "runs" / "cfg-2" / "checkpoints" / "last.pt").exists()
    explicit = cli("train", path, "--out", "runs/cfg")  # a folder named on purpose is never renumbered
    assert explicit.exit_code == 2 and "run folder already exists" in explicit.stderr


def test_dry_run_shows_everything_and_writes_nothing(tmp_path, monkeypatch, cli):
    path = trainkit.regression_config(tmp_path, epochs=2)
    monkeypatch.chdir(tmp_path)
    result = cli("train", path, "--dry-run", "--epochs", "3", "--set", "train.lr=0.004", "--out", "try")
    assert result.exit_code == 0, result.stderr
    text = result.stdout
    resolved = yaml.safe_load(text.split("# resolved config (the run's config.yaml)\n", 1)[1].split("# data")[0])
    assert resolved["train"]["epochs"] == 3 and resolved["train"]["lr"] == 0.004
    assert resolved["train"]["optimizer"] == "adam" and resolved["data"]["sampling"]["min_live"] == 0.8  # defaults
    assert "noisy → patches 8×16 along (crossline, sample)" in text
    assert '"axis": "inline", "train": [0, 12], "validation": [13, 16], "gap": 1' in text
    assert "conv1" in text and "3·3·1·4 + 4 = 40" in text  # the summarize table
    assert "memory: ≈ " in text and "activations for batch 4" in text
    assert "3 epochs × 4 steps; run folder: try" in text
    assert not (tmp_path / "try").exists() and not (tmp_path / "runs").exists()
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())  # no lock file either


CTRL_C_IN_A_TERMINAL = textwrap.dedent("""
    import os, signal, sys
    from pathlib import Path
    import torch
    from geocnn.config import load_config
    from geocnn.train import TrainingInterrupted, train
    train_mod = sys.modules["geocnn.train"]  # the module (geocnn.train is the public function)

    real, calls = train_mod.make_loss, {"n": 0}

    def make(*args, **kwargs):
        loss = real(*args, **kwargs)

        class Hook(torch.nn.Module):
            def forward(self, out, y):
                if torch.is_grad_enabled():
                    calls["n"] += 1
                    if calls["n"] == 6:
                        os.killpg(0, signal.SIGINT)  # what a terminal does: the process and its workers
                return loss(out, y)

        return Hook()

    train_mod.make_loss = make
    try:
        train(load_config(sys.argv[1]), Path(sys.argv[2]))
    except TrainingInterrupted as exc:
        print(exc.message)
        sys.exit(exc.exit_code)
""")


@pytest.mark.slow
def test_ctrl_c_from_a_terminal_with_dataloader_workers(tmp_path):
    path = bn_config(tmp_path, epochs=2, workers=2)
    run = tmp_path / "run"
    # its own session, so the SIGINT reaches that process group only (not pytest's)
    cut = subprocess.run([sys.executable, "-c", CTRL_C_IN_A_TERMINAL, str(path), str(run)], capture_output=True,
                         text=True, timeout=300, start_new_session=True)
    assert cut.returncode == 130, cut.stderr[-2000:]
    assert cut.stdout.strip().endswith(f"resume with: geocnn train {run} --resume")
    ckpt = load_checkpoint(run / "checkpoints" / "last.pt")
    assert (ckpt.epoch, ckpt.step, ckpt.batch_in_epoch) == (1, 6, 2)  # the step under way finished
    straight = train(load_config(path), tmp_path / "straight")
    resumed = train(load_config(path), run, resume=True)
    for k, v in state(straight).items():
        assert torch.equal(v, state(resumed)[k]), k
