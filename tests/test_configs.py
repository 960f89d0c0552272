"""Every example config: analytic shapes equal PyTorch's, every parameter gets a gradient, it trains."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from geocnn.config import load_config
from geocnn.model.network import build
from geocnn.train import train
from tests.conftest import ROOT
from tests.trainkit import synth_overrides

CONFIGS = sorted((ROOT / "configs").glob("*.yaml"))
def test_there_is_an_example_per_task():
    tasks = {load_config(p).task.name for p in CONFIGS}
    assert tasks == {"regression", "segmentation", "classification", "scalar", "denoise_self", "reconstruct_traces"}
    assert len(CONFIGS) >= 9


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_analytic_shapes_equal_a_meta_forward(path):
    cfg = load_config(path)
    batch = 3
    with torch.device("meta"):
        net, inf = build(cfg.model, cfg.patch)
        y = net(torch.empty(batch, cfg.model.in_channels, *cfg.patch))
    assert tuple(y.shape) == (batch, *inf.output.shape)
    assert sum(p.numel() for p in net.parameters()) == sum(r.params for r in inf.records)


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_every_parameter_gets_a_gradient(path):
    cfg = load_config(path)
    torch.manual_seed(0)
    net, inf = build(cfg.model, cfg.patch)
    x = torch.randn(2, cfg.model.in_channels, *cfg.patch)
    net(x).square().mean().backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name


@pytest.mark.slow
@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_example_trains_a_few_steps(path, tmp_path):
    few = ["train.max_steps=2", "train.batch_size=2", "data.sampling.patches_per_epoch=4",
           "data.sampling.val_patches=2", "train.examples=1"]
    init_from = load_config(path).train.init_from
    if init_from:  # a fine-tuning example starts from the run of the example it names (runs/NAME)
        source = ROOT / "configs" / f"{Path(init_from).name}.yaml"
        train(load_config(source, few + synth_overrides(source, tmp_path)), tmp_path / "source")
        few.append(f"train.init_from={tmp_path / 'source'}")
    cfg = load_config(path, few + synth_overrides(path, tmp_path))
    run = train(cfg, tmp_path / "run")
    if init_from:
        counts = json.loads((run / "init.json").read_text())["counts"]
        assert counts["loaded"] > 0 and counts["skipped"] == counts["new"] == counts["unused"] == 0
    line = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    assert line["step"] == 2 and line["val_loss"] is not None
    assert (run / "checkpoints" / "last.pt").is_file() and (run / "examples.png").is_file()
