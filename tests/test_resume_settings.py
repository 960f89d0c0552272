"""What ``--resume`` may change (issue 18: ``--resume --threads 1`` was refused).

The rule (geocnn.runs.resume): a resumed run continues the same experiment, so a setting may
change only when it does not decide what the run is — the machine it computes on, how long and how
hard it trains from here, what it reports. The table below decides every key of the train section
(a new key fails :func:`test_the_table_decides_every_train_key` until it is placed), plus samples
of the other sections.
"""

from __future__ import annotations

import copy
import dataclasses
import json

import pytest
import torch
import yaml

from geocnn.config import Train, load_config
from geocnn.errors import ConfigError
from geocnn.runs import resume
from geocnn.train import train
from tests import trainkit

ALLOWED, RESET, REFUSED = "applied", "with --reset-optimizer", "refused"

# key → (a new value, what resume does with it); the run's values are trainkit's regression config's
TABLE = {
    # the machine: where and how fast the same steps run
    "train.device": ("cpu", ALLOWED),
    "train.amp": ("fp32", ALLOWED),
    "train.compile": (True, ALLOWED),
    "train.channels_last": (False, ALLOWED),
    "train.workers": (2, ALLOWED),
    "train.threads": (1, ALLOWED),
    "data.on_device": (False, ALLOWED),
    # the plan from here
    "train.epochs": (5, ALLOWED),
    "train.lr": (0.004, ALLOWED),
    "train.grad_clip": (1.0, ALLOWED),
    "train.weight_decay": (0.01, ALLOWED),
    # reports
    "train.examples": (2, ALLOWED),
    "train.tensorboard": (True, ALLOWED),
    # the optimizer's state layout
    "train.optimizer": ("sgd", RESET),
    "train.momentum": (0.5, RESET),
    # another experiment
    "train.batch_size": (8, REFUSED),
    "train.scheduler": ("step", REFUSED),
    "train.step_epochs": (3, REFUSED),
    "train.step_gamma": (0.1, REFUSED),
    "train.loss.kind": ("huber", REFUSED),
    "train.best_metric": ("snr_db", REFUSED),
    "train.seed": (7, REFUSED),
    "train.init_from": ("other/run", REFUSED),
    "train.freeze": (["conv1"], REFUSED),
    "train.early_stop.patience": (3, REFUSED),
    "data.patch": ([16, 16], REFUSED),
    "data.augment.noise": (0.1, REFUSED),
    "model.in_channels": (2, REFUSED),
    "task": ("segmentation", REFUSED),
    "name": ("other", REFUSED),
}


@pytest.fixture(scope="module")
def run_config(tmp_path_factory) -> dict:
    return load_config(trainkit.regression_config(tmp_path_factory.mktemp("cfg"), epochs=2)).raw


def set_key(raw: dict, key: str, value) -> dict:
    """``raw`` with the dotted ``key`` set (sections made where the run has none, e.g. early_stop)."""
    new = copy.deepcopy(raw)
    *path, last = key.split(".")
    node = new
    for part in path:
        if not isinstance(node.get(part), dict):
            node[part] = {}
        node = node[part]
    node[last] = value
    return new


def test_the_table_decides_every_train_key():
    sections = {"loss": "train.loss.kind", "early_stop": "train.early_stop.patience"}
    keys = {sections.get(f.name, f"train.{f.name}") for f in dataclasses.fields(Train)}
    keys -= set(resume.SESSION_KEYS)  # max_steps: never carried over, so never a change
    assert keys - TABLE.keys() == set()
    assert {k for k, (_, what) in TABLE.items() if what == ALLOWED} == resume.CHANGEABLE.keys() - {"train.max_steps"}
    assert {k for k, (_, what) in TABLE.items() if what == RESET} == set(resume.OPTIMIZER_KEYS)


@pytest.mark.parametrize("key", TABLE)
def test_what_resume_does_with_each_setting(run_config, tmp_path, key):
    value, what = TABLE[key]
    new = set_key(run_config, key, value)
    for reset in (False, True):
        if what == ALLOWED or (what == RESET and reset):
            found = resume.changes(run_config, new, tmp_path, epochs_done=1, reset_optimizer=reset)
            assert [(c.key, c.new) for c in found] == [(key, value)]
        else:
            with pytest.raises(ConfigError, match=f"--reset-optimizer|differs from the run|cannot change {key}"):
                resume.changes(run_config, new, tmp_path, epochs_done=1, reset_optimizer=reset)


def test_the_machine_settings_are_the_machine_table():
    assert set(resume.MACHINE) == {"train.device", "train.amp", "train.compile", "train.channels_last",
                                   "train.workers", "train.threads", "data.on_device"}
    assert not set(resume.MACHINE) & set(resume.PLAN) and not set(resume.PLAN) & set(resume.REPORTS)


def test_resume_with_fewer_threads(tmp_path, cli, monkeypatch):
    """The issue's example: ``geocnn train RUN --resume --threads 1`` said "cannot change train.threads"."""
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):  # set by --threads; put back after the test
        monkeypatch.setenv(name, "1")
    threads = torch.get_num_threads()
    path = trainkit.regression_config(tmp_path, epochs=1)
    run = train(load_config(path, ["train.max_steps=2"]), tmp_path / "run")  # 2 of 4 steps done
    try:
        result = cli("train", run, "--resume", "--threads", "1")
    finally:
        torch.set_num_threads(threads)
    assert result.exit_code == 0, result.stderr
    assert yaml.safe_load((run / "config.yaml").read_text())["train"]["threads"] == 1
    last = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()][-1]
    assert last["resumed"] == {"step": 2, "changed": {"train.threads": [None, 1]}}
    refused = cli("train", run, "--resume", "--epochs", "2", "--batch-size", "8")
    assert refused.exit_code == 2 and "cannot change train.batch_size (4 in the run, 8 now)" in refused.stderr
    assert "resume may change device, amp, compile, channels_last, workers, threads, data.on_device" in refused.stderr

