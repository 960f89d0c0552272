"""Which inputs a network never reads around an output: blind-by-construction denoisers.

A network whose first convolution has a ``blind`` centre and whose later layers never mix along
the axes that centre spans (e.g. kernels ``[1, 5]`` across ``crossline × sample``) cannot see the
samples around the one it predicts, so a self-supervised denoiser built that way needs no input
masking: every sample is a training target (dense), and prediction sees what training saw.

Whether a spec is blind is measured, not inferred from its layers: the gradient of the centre
output with respect to the input is exactly zero at every input sample no path reaches (a zeroed
tap multiplies to an exact 0.0), so the zero set of the gradient, over a few random inputs, is the
region the network is blind over (as tests/test_shapes.py checks receptive fields).

A ``posterior`` layer at the end (:class:`geocnn.model.modules.Posterior`) then reads the sample
and its neighbours again, through taps fitted from the noise (:mod:`geocnn.selfsup.posterior`): the
network is blind while it trains (:func:`posterior_applied` off) and the check measures it so.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch

from geocnn.model import ModelSpec
from geocnn.model.modules import Posterior
from geocnn.model.network import build
from geocnn.selfsup.blindspots import BlindShape, region_mask


def posteriors(model: torch.nn.Module) -> list[Posterior]:
    """The posterior layers of a built network (through DDP and torch.compile wrappers)."""
    return [m for m in model.modules() if isinstance(m, Posterior)]


def has_posterior(spec: ModelSpec) -> bool:
    """Does ``spec`` end in a Bayesian step on a blind prediction?"""
    return any(node.kind == "posterior" for node in spec.nodes())


def apply_posterior(model: torch.nn.Module, on: bool) -> None:
    """Switch ``model``'s posterior layers on, or off (they pass the blind prediction through)."""
    for m in posteriors(model):
        m.applied = on


@contextmanager
def posterior_applied(model: torch.nn.Module, on: bool = True) -> Iterator[None]:
    """Run ``model`` with its posterior layers applied (``on``) or passing the blind prediction through."""
    layers = posteriors(model)
    before = [m.applied for m in layers]
    apply_posterior(model, on)
    try:
        yield
    finally:
        for m, b in zip(layers, before):
            m.applied = b


def mean_response(model: torch.nn.Module, x: torch.Tensor) -> np.ndarray:
    """(*patch) float64: the mean over the batch ``x`` (B, 1, *patch) of ∂p(centre)/∂x — how the
    blind prediction at a patch's centre weighs each input sample (eval mode, posterior off)."""
    x = x.detach().clone().requires_grad_(True)
    centre = tuple(n // 2 for n in x.shape[2:])
    with posterior_applied(model, False), torch.enable_grad():
        out = model(x)
        (grad,) = torch.autograd.grad(out[(slice(None), 0, *centre)].sum(), x)
    return grad[:, 0].double().mean(dim=0).cpu().numpy()


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
    with posterior_applied(model, False):  # the network as it trains
        for _ in range(tries):
            x = torch.randn(1, spec.in_channels, *patch, requires_grad=True)
            out = model(x)
            out[(0, slice(None), *centre)].sum().backward()
            support += x.grad.abs().sum(dim=(0, 1)).double()
    return (support == 0).numpy()


def blind_region(spec: ModelSpec, patch: tuple[int, ...]) -> BlindShape | None:
    """The box around a ``patch``'s centre that ``spec`` never reads — per axis, the unread run
    through the centre, symmetric (``all`` where it spans the patch) — or None when it reads the
    centre itself: what to tell a user whose network is blind over less than the noise needs."""
    zero = unseen(spec, patch)
    centre = [n // 2 for n in patch]
    if not zero[tuple(centre)]:
        return None
    sizes: list[int | None] = []
    for a, n in enumerate(patch):
        line = zero[tuple(slice(None) if k == a else c for k, c in enumerate(centre))]
        reach = [next(k for k in range(1, n + 1) if not 0 <= centre[a] + step * k < n or not line[centre[a] + step * k])
                 for step in (-1, 1)]
        whole = centre[a] - reach[0] < 0 and centre[a] + reach[1] >= n
        sizes.append(None if whole else 2 * min(reach) - 1)
    return BlindShape(tuple(sizes))


def blind_over(spec: ModelSpec, patch: tuple[int, ...], shape: BlindShape) -> tuple[bool, tuple[int, ...] | None]:
    """(whether ``spec`` is blind over ``shape`` around the centre of a ``patch``, the offset from the
    centre nearest to it that it still reads inside that region)."""
    centre = np.array([n // 2 for n in patch])
    spot = centre[list(shape.spot_axes())][None]
    region = region_mask(shape, patch, spot)
    seen = region & ~unseen(spec, patch)
    if not seen.any():
        return True, None
    offsets = np.argwhere(seen) - centre
    nearest = offsets[np.argmin((offsets ** 2).sum(axis=1))]  # where its noise is most alike the sample's
    return False, tuple(int(v) for v in nearest)
