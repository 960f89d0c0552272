"""Which inputs a network never reads around an output: blind-by-construction denoisers.

A network whose first convolution has a ``blind`` centre and whose later layers never mix along
the axes that centre spans (e.g. kernels ``[1, 5]`` across ``crossline × sample``) cannot see the
samples around the one it predicts, so a self-supervised denoiser built that way needs no input
masking: every sample is a training target (dense), and prediction sees what training saw.

Whether a spec is blind is measured, not inferred from its layers: the gradient of the centre
output with respect to the input is exactly zero at every input sample no path reaches (a zeroed
tap multiplies to an exact 0.0), so the zero set of the gradient, over a few random inputs, is the
region the network is blind over (as tests/test_shapes.py checks receptive fields).
"""

from __future__ import annotations

import numpy as np
import torch

from geocnn.model import ModelSpec
from geocnn.model.network import build
from geocnn.selfsup.blindspots import BlindShape, region_mask


def has_blind_layer(spec: ModelSpec) -> bool:
    """Does any layer of ``spec`` declare a blind centre?"""
    return any(node.args.get("blind") is not None for node in spec.nodes())


def unseen(spec: ModelSpec, patch: tuple[int, ...], tries: int = 3, seed: int = 0) -> np.ndarray:
    """Bool (*patch): True at the input samples the centre output of ``spec`` never reads, measured
    by the gradient over ``tries`` random inputs (eval mode, seeded weights)."""
    torch.manual_seed(seed)
    model, _ = build(spec, patch, receptive=False)
    model.eval()
    centre = tuple(n // 2 for n in patch)
    support = torch.zeros(patch, dtype=torch.float64)
    for _ in range(tries):
        x = torch.randn(1, spec.in_channels, *patch, requires_grad=True)
        out = model(x)
        out[(0, slice(None), *centre)].sum().backward()
        support += x.grad.abs().sum(dim=(0, 1)).double()
    return (support == 0).numpy()


def blind_over(spec: ModelSpec, patch: tuple[int, ...], shape: BlindShape) -> tuple[bool, tuple[int, ...] | None]:
    """(whether ``spec`` is blind over ``shape`` around the centre of a ``patch``, the first offset
    from the centre it still reads inside that region)."""
    centre = np.array([n // 2 for n in patch])
    spot = centre[list(shape.spot_axes())][None]
    region = region_mask(shape, patch, spot)
    seen = region & ~unseen(spec, patch)
    if not seen.any():
        return True, None
    first = np.argwhere(seen)[0] - centre
    return False, tuple(int(v) for v in first)
