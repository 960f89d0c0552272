"""Small synthetic grids and configs for training/prediction tests (fast on 2 CPU cores)."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import numpy as np
import yaml


def layered_volume(shape=(16, 12, 48), seed=0) -> np.ndarray:
    """A smooth layered 'seismic' cube (inline, crossline, sample), float32."""
    rng = np.random.default_rng(seed)
    il, xl, t = np.meshgrid(*[np.arange(n) for n in shape], indexing="ij")
    dip = 0.3 * il + 0.2 * xl
    vol = np.sin(2 * np.pi * (t + dip) / 9.0) + 0.3 * np.sin(2 * np.pi * (t - dip) / 5.0)
    return (vol + 0.05 * rng.standard_normal(shape)).astype(np.float32)


def write_regression(folder: Path, shape=(16, 12, 48)) -> dict:
    clean = layered_volume(shape)
    noisy = clean + 0.5 * np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    np.save(folder / "clean.npy", clean)
    np.save(folder / "noisy.npy", noisy)
    return {"inputs": ["noisy.npy"], "target": "clean.npy"}


def write_segmentation(folder: Path, shape=(16, 12, 48), classes=2) -> dict:
    vol = layered_volume(shape)
    np.save(folder / "seis.npy", vol)
    if classes == 2:
        labels = (vol > 0.9).astype(np.uint8)
    else:
        labels = np.digitize(vol, np.quantile(vol, np.linspace(0, 1, classes + 1)[1:-1])).astype(np.uint8)
    np.save(folder / "labels.npy", labels)
    return {"inputs": ["seis.npy"], "target": "labels.npy"}


def write_traces(folder: Path, n=64, samples=64) -> dict:
    """3-component records (trace, component, sample); label 1 where a burst is present."""
    rng = np.random.default_rng(2)
    x = 0.3 * rng.standard_normal((n, 3, samples)).astype(np.float32)
    labels = np.arange(n) % 2
    t = np.arange(samples)
    for i in np.flatnonzero(labels):
        t0 = rng.integers(10, samples - 20)
        x[i] += (np.exp(-0.5 * ((t - t0) / 3.0) ** 2) * np.sin(t / 1.5))[None] * np.array([[1.5], [1.0], [0.8]])
    np.save(folder / "traces.npy", x)
    with (folder / "labels.csv").open("w") as f:
        f.write("trace,label\n" + "".join(f"{i},{v}\n" for i, v in enumerate(labels)))
    return {"inputs": [{"path": "traces.npy", "axes": ["trace", "component", "sample"],
                        "channels_from": "component"}], "labels": "labels.csv"}


SMALL_2D = """
dims: 2
in_channels: 1
layers:
  - conv: {out: 4, kernel: 3, padding: same}
  - relu
  - conv: {out: %(out)d, kernel: 3, padding: same}
"""

SMALL_1D_CLASSIFIER = """
dims: 1
in_channels: 3
layers:
  - conv: {out: 4, kernel: 5, padding: same}
  - relu
  - pool: {size: 4}
  - global_pool: max
  - dense: 2
"""


def write_config(folder: Path, task: str, data: dict, model: str, train: dict | None = None,
                 name: str = "cfg.yaml", **data_extra) -> Path:
    """A full config in ``folder``. ``examples.png`` is off unless ``train`` asks for it (drawing it takes
    most of a tiny run's time); tests of the pictures set ``examples``."""
    cfg = {
        "task": task,
        "data": {**data, **data_extra},
        "model": yaml.safe_load(textwrap.dedent(model)),
        "train": {"epochs": 2, "batch_size": 4, "lr": 0.01, "workers": 0, "examples": 0, **(train or {})},
    }
    cfg["data"].setdefault("sampling", {"patches_per_epoch": 16, "val_patches": 8})
    path = folder / name
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def regression_config(folder: Path, **train) -> Path:
    data = write_regression(folder)
    return write_config(folder, "regression", data, SMALL_2D % {"out": 1}, train, patch=[8, 16], section="inline")


# A small 3-class U-Net on 8 × 16 sections: one pooling, upsampling, a skip by concat.
UNET_2D = """
dims: 2
in_channels: 1
layers:
  - conv: {out: 4, kernel: 3, padding: same}
  - relu
  - {name: enc, conv: {out: 4, kernel: 3, padding: same}}
  - pool: {size: 2}
  - conv: {out: 8, kernel: 3, padding: same}
  - upsample: {scale: 2}
  - concat: enc
  - conv: {out: 3, kernel: 1}
"""


def values_and_classes(folder: Path, max_steps: int) -> dict[str, Path]:
    """A denoiser (``values``) and a 3-class :data:`UNET_2D` (``seg``: probabilities, labels), ``max_steps``
    optimizer steps each, trained in ``folder`` (``tmp``) beside their data (noisy.npy, seis.npy)."""
    from geocnn.config import load_config
    from geocnn.train import train

    reg = regression_config(folder, max_steps=max_steps)
    seg_data = write_segmentation(folder, classes=3)
    seg = write_config(folder, "segmentation", seg_data, UNET_2D, {"max_steps": max_steps}, name="seg.yaml",
                       patch=[8, 16], section="inline", classes=3)
    return {"values": train(load_config(reg), folder / "reg"), "seg": train(load_config(seg), folder / "seg"),
            "tmp": folder}


IDENTITY_2D = """
dims: 2
in_channels: 1
layers: [{conv: {out: 1, kernel: 1}}]
"""

IDENTITY_3D = """
dims: 3
in_channels: 1
layers: [{conv: {out: 1, kernel: 1}}]
"""


def train_identity(folder: Path, model=IDENTITY_2D, patch=(8, 16), section="inline", inputs=None,
                   name="id") -> Path:
    """A trained run in ``folder`` whose model is a 1×1 conv with weight 1 and bias 0 (output = input);
    without ``inputs`` it trains on :func:`write_regression`'s files, written beside it."""
    import torch

    from geocnn.config import load_config
    from geocnn.runs.checkpoint import load_checkpoint, save_checkpoint
    from geocnn.train import train

    data = write_regression(folder)
    if inputs is not None:
        data = {"inputs": inputs, "target": inputs[0]}
    extra = {"section": section} if section else {}
    path = write_config(folder, "regression", data, model, {"max_steps": 1}, name=f"{name}.yaml",
                        patch=list(patch), **extra)
    run = train(load_config(path), folder / name)
    for which in ("best", "last"):
        ckpt = load_checkpoint(run / "checkpoints" / f"{which}.pt")
        for key, value in ckpt.model_state.items():
            ckpt.model_state[key] = torch.ones_like(value) if key.endswith("weight") else torch.zeros_like(value)
        save_checkpoint(run / "checkpoints" / f"{which}.pt", ckpt)
    return run


def copy_into(source: Path, folder: Path) -> None:
    """Every file and folder of ``source`` copied into ``folder`` (a shared run, given to one test)."""
    for item in source.iterdir():
        target = folder / item.name
        if item.is_dir():
            shutil.copytree(item, target)
        else:
            shutil.copy2(item, target)


SYNTH = Path(__file__).resolve().parents[1] / "data_synth"  # what `geocnn synth` writes (not committed)


def synth_overrides(path: Path, tmp_path: Path) -> list[str]:
    """A config reading `geocnn synth faults` output is pointed at a tiny version of it, made here."""
    from geocnn.config import load_config
    from geocnn.synth.write import write_fault_cubes

    cfg = load_config(path)
    if not any(Path(spec.path).resolve().is_relative_to(SYNTH) for spec in cfg.inputs):
        return []
    write_fault_cubes(tmp_path / "synth", cubes=2, size=32, seed=0)
    return [f"data.inputs=[{tmp_path / 'synth' / 'seismic.npy'}]", f"data.target={tmp_path / 'synth' / 'faults.npy'}"]
