"""The benchmark models, twice: as a geocnn YAML model section and as plain ``torch.nn``.

Both builds have the same layers, parameter counts and FLOPs, so a comparison measures the
machinery around the model (data, loop, blending, allocator), not the model.
"""

from __future__ import annotations

import textwrap

import numpy as np
import torch
from torch import nn

# 2D denoiser (DnCNN-style residual, as configs/denoise2d.yaml): 1→24, 4 × (24→24 + batch norm), 24→1.
DENOISER_WIDTH, DENOISER_DEPTH = 24, 4
DENOISER_YAML = textwrap.dedent(f"""\
    dims: 2
    in_channels: 1
    layers:
      - residual:
          activation: none
          shortcut: identity
          body:
            - conv: {{out: {DENOISER_WIDTH}, kernel: 3, padding: same}}
            - relu
            - repeat:
                times: {DENOISER_DEPTH}
                layers:
                  - conv: {{out: {DENOISER_WIDTH}, kernel: 3, padding: same, bias: false}}
                  - norm: batch
                  - relu
            - conv: {{out: 1, kernel: 3, padding: same}}
    """)

# 3D segmentation-style net of the predict benchmark: three 3×3×3 convs, 8 channels inside.
NET3D_WIDTH = 8
NET3D_YAML = textwrap.dedent(f"""\
    dims: 3
    in_channels: 1
    layers:
      - conv: {{out: {NET3D_WIDTH}, kernel: 3, padding: same}}
      - relu
      - conv: {{out: {NET3D_WIDTH}, kernel: 3, padding: same}}
      - relu
      - conv: {{out: 1, kernel: 3, padding: same}}
    """)


class Denoiser(nn.Module):
    """x + body(x): the residual learns the noise to remove."""

    def __init__(self, width: int = DENOISER_WIDTH, depth: int = DENOISER_DEPTH) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(1, width, 3, padding=1), nn.ReLU()]
        for _ in range(depth):
            layers += [nn.Conv2d(width, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU()]
        layers.append(nn.Conv2d(width, 1, 3, padding=1))
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def net3d(width: int = NET3D_WIDTH) -> nn.Sequential:
    return nn.Sequential(nn.Conv3d(1, width, 3, padding=1), nn.ReLU(), nn.Conv3d(width, width, 3, padding=1),
                         nn.ReLU(), nn.Conv3d(width, 1, 3, padding=1))


def conv_macs(model: nn.Module, spatial: tuple[int, ...]) -> int:
    """Multiply-adds of one forward pass per sample ('same' convs: every layer at full size)."""
    voxels = int(np.prod(spatial))
    total = 0
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Conv3d)):
            total += m.in_channels * m.out_channels * int(np.prod(m.kernel_size)) * voxels // m.groups
    return total


def copy_weights(state: dict[str, torch.Tensor], model: nn.Module) -> None:
    """Load a geocnn state dict into the plain build, tensor by tensor in order (same shapes)."""
    mine = model.state_dict()
    theirs = [v for k, v in state.items() if not k.endswith("num_batches_tracked")]
    ours = [k for k in mine if not k.endswith("num_batches_tracked")]
    if len(theirs) != len(ours):
        raise ValueError(f"{len(theirs)} tensors in the checkpoint, {len(ours)} in the plain model")
    for k, v in zip(ours, theirs):
        if mine[k].shape != v.shape:
            raise ValueError(f"{k}: {tuple(mine[k].shape)} here, {tuple(v.shape)} in the checkpoint")
        mine[k] = v
    model.load_state_dict(mine)


def layered_volume(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    """A smooth dipping-layer cube (inline, crossline, sample), float32, the same for every seed run.

    Built one inline at a time so a large cube never needs more than one float64 slab.
    """
    rng = np.random.default_rng(seed)
    out = np.empty(shape, np.float32)
    xl, t = np.meshgrid(np.arange(shape[1]), np.arange(shape[2]), indexing="ij")
    for il in range(shape[0]):
        dip = 0.3 * il + 0.2 * xl
        out[il] = np.sin(2 * np.pi * (t + dip) / 9.0) + 0.3 * np.sin(2 * np.pi * (t - dip) / 5.0)
        out[il] += 0.05 * rng.standard_normal(shape[1:], dtype=np.float32)
    return out
