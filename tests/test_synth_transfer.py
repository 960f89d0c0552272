"""Pretraining on `geocnn synth faults` cubes transfers to a survey made by another generator.

The walk-through of docs/finetune.md at a small size, with fixed seeds: pretrain ``configs/faults3d.yaml`` on
synthetic cubes, then fine-tune ``configs/faults3d_finetune.yaml`` on the sample survey's 16
labelled inlines, against the same config from scratch; all scored by the runs themselves on the
survey's held-out inlines (the fine-tune config's validation windows, ``metrics.jsonl``).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from geocnn.config import load_config
from geocnn.synth.write import write_fault_cubes
from geocnn.train import train
from tests.conftest import ROOT

pytestmark = pytest.mark.slow  # long end-to-end runs: python -m pytest -m slow


def best_f1(run: Path) -> float:
    return max(json.loads(line)["val"]["f1"] for line in (run / "metrics.jsonl").read_text().splitlines())


def test_synthetic_pretraining_beats_training_from_scratch_on_another_survey(tmp_path):
    cubes = write_fault_cubes(tmp_path / "synth", cubes=8, size=64, seed=0)
    pre = train(load_config(ROOT / "configs/faults3d.yaml", [
        f"data.inputs=[{cubes.out / 'seismic.npy'}]", f"data.target={cubes.out / 'faults.npy'}",
        "train.epochs=6", "data.sampling.patches_per_epoch=128", "train.threads=1", "train.examples=0"]),
        tmp_path / "pretrain")
    field = ["train.threads=1", "train.examples=0"]
    fine = train(load_config(ROOT / "configs/faults3d_finetune.yaml", field + [f"train.init_from={pre}"]),
                 tmp_path / "finetune")
    scratch = train(load_config(ROOT / "configs/faults3d_finetune.yaml",
                                field + ["train.init_from=null", "train.freeze=[]"]), tmp_path / "scratch")
    as_is = json.loads((fine / "init.json").read_text())["before_training"]["val"]["f1"]
    assert as_is > 0.1  # the pretrained network as it is finds faults (all background: F1 0)
    assert best_f1(fine) >= best_f1(scratch) + 0.05
