"""What the analytic shape walk knows about one tensor: shape, and which input samples each value sees.

The receptive field is tracked exactly, as the interval of network-input samples [lo, hi] that can
influence each value along each axis (NumPy arrays, one entry per position). Each layer maps
intervals through its own index arithmetic (window, stride, dilation, padding, upsampling), and
merges take the union over paths — so the receptive field is exact through residual blocks, skips
and uneven upsampling, where the usual closed-form recursion is not.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np

_EMPTY_LO = np.iinfo(np.int64).max // 4
_EMPTY_HI = -_EMPTY_LO
MAX_AXIS_VALUES = 1 << 20  # positions × taps of one step on one axis: ~5 int64 arrays of it, 40 MiB
MAX_HELD = 1 << 22  # positions of all tensors of a walk, all axes: lo and hi in int64, 64 MiB


class TooLarge(ValueError):
    """One step of the analytic pass would hold more than :data:`MAX_AXIS_VALUES` values on an axis."""

    def __init__(self, positions: int, taps: int) -> None:
        self.positions, self.taps = positions, taps
        super().__init__(f"{positions:,} positions × {taps:,} taps")


def check_room(positions: int, taps: int = 1) -> None:
    """Refuse a step before numpy tries to allocate it (an input of 10¹¹ samples, a kernel of 10⁹)."""
    if positions * taps > MAX_AXIS_VALUES:
        raise TooLarge(positions, taps)


def same_pads(n: int, k_eff: int, stride: int) -> tuple[int, int]:
    """Padding (before, after) that makes a window op output ``ceil(n / stride)`` samples."""
    # Integer ceil division, and max() only where the sum can be negative (k_eff < stride): a
    # size traced by torch.export then stays an expression it can simplify and serialise.
    total = (-(-n // stride) - 1) * stride + k_eff - n
    total = total if k_eff >= stride else max(total, 0)
    return total // 2, total - total // 2


@dataclass(frozen=True, eq=False)
class Tensor:
    """A tensor of the network, for one sample of the batch.

    ``spatial`` is empty once the tensor has been flattened (dense part of the network).
    ``jump`` is the distance between neighbouring values in input samples (a Fraction: upsampling
    makes it smaller than one); ``lo``/``hi`` hold, per axis, the first and last input sample each
    position sees (a single position once flattened).
    """

    channels: int
    spatial: tuple[int, ...]
    jump: tuple[Fraction, ...]
    lo: tuple[np.ndarray, ...]
    hi: tuple[np.ndarray, ...]

    @property
    def shape(self) -> tuple[int, ...]:
        return (self.channels, *self.spatial)

    @property
    def flat(self) -> bool:
        return not self.spatial

    @property
    def numel(self) -> int:
        n = self.channels
        for s in self.spatial:
            n *= s
        return n

    @property
    def rf(self) -> tuple[int, ...]:
        """Receptive field per axis: the most input samples any one value sees."""
        return tuple(max(int((h - lo).max()) + 1, 0) for lo, h in zip(self.lo, self.hi))


def input_tensor(channels: int, spatial: tuple[int, ...]) -> Tensor:
    """The network input: every value sees one sample, neighbours one sample apart."""
    for n in spatial:
        check_room(n)
    pos = tuple(np.arange(n, dtype=np.int64) for n in spatial)
    return Tensor(channels, tuple(spatial), (Fraction(1),) * len(spatial), pos, pos)


def _gather(lo: np.ndarray, hi: np.ndarray, idx: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Union of the intervals at ``idx`` (rows: output positions), ignoring invalid entries."""
    safe = np.where(valid, idx, 0)
    return (np.where(valid, lo[safe], _EMPTY_LO).min(axis=1),
            np.where(valid, hi[safe], _EMPTY_HI).max(axis=1))


def padded_index(idx: np.ndarray, n: int, mode: str = "zeros") -> tuple[np.ndarray, np.ndarray]:
    """(sample each position reads, whether it reads one) for positions of a padded axis of ``n``.

    Zero padding reads nothing; the other modes read a sample of the axis, as ``torch.nn.functional.pad``.
    """
    if mode == "zeros":
        return idx, (idx >= 0) & (idx < n)
    if mode == "replicate":
        mapped = np.clip(idx, 0, n - 1)
    elif mode == "circular":
        mapped = idx % n
    else:  # reflect, without repeating the edge sample
        period = max(2 * (n - 1), 1)
        mapped = np.abs(idx) % period
        mapped = np.where(mapped > n - 1, period - mapped, mapped)
    return mapped, np.ones(idx.shape, dtype=bool)


def window(x: Tensor, sizes, kernel, stride, dilation, before, mode: str = "zeros") -> tuple:
    """Extents after a window operation (conv, pool): output o reads o·s − pad + j·d."""
    lo, hi = [], []
    for a, n_out in enumerate(sizes):
        check_room(n_out, kernel[a])
        o = np.arange(n_out, dtype=np.int64)[:, None]
        idx = o * stride[a] - before[a] + np.arange(kernel[a], dtype=np.int64)[None, :] * dilation[a]
        idx, valid = padded_index(idx, x.spatial[a], mode)
        lo_a, hi_a = _gather(x.lo[a], x.hi[a], idx, valid)
        lo.append(lo_a)
        hi.append(hi_a)
    return tuple(lo), tuple(hi)


def transposed(x: Tensor, sizes, kernel, stride, dilation, padding) -> tuple:
    """Extents after a transposed conv: output o receives input i when i·s − p + j·d = o."""
    lo, hi = [], []
    for a, n_out in enumerate(sizes):
        check_room(n_out, kernel[a])
        o = np.arange(n_out, dtype=np.int64)[:, None]
        num = o + padding[a] - np.arange(kernel[a], dtype=np.int64)[None, :] * dilation[a]
        idx = np.floor_divide(num, stride[a])
        valid = (num % stride[a] == 0) & (idx >= 0) & (idx < x.spatial[a])
        lo_a, hi_a = _gather(x.lo[a], x.hi[a], idx, valid)
        lo.append(lo_a)
        hi.append(hi_a)
    return tuple(lo), tuple(hi)


def upsample(x: Tensor, scale, linear: bool) -> tuple:
    """Extents after nearest (o // s) or linear (two neighbours, align_corners=False) upsampling."""
    lo, hi = [], []
    for a, s in enumerate(scale):
        n_in = x.spatial[a]
        check_room(n_in * s, 2)
        o = np.arange(n_in * s, dtype=np.int64)
        if linear:
            # source position (o + ½)/s − ½ = (2o + 1 − s) / 2s, clamped at 0, in integers: when it lands
            # exactly on an input sample the neighbour's weight is 0, so only that sample is read
            num = np.maximum(2 * o + 1 - s, 0)
            i0 = np.minimum(num // (2 * s), n_in - 1)
            i1 = np.where(num % (2 * s) == 0, i0, np.minimum(i0 + 1, n_in - 1))
            idx = np.stack([i0, i1], axis=1)
        else:
            idx = (o // s)[:, None]
        lo_a, hi_a = _gather(x.lo[a], x.hi[a], idx, np.ones(idx.shape, bool))
        lo.append(lo_a)
        hi.append(hi_a)
    return tuple(lo), tuple(hi)


def adaptive(x: Tensor, sizes) -> tuple:
    """Extents after adaptive pooling to ``sizes``: output i reads [⌊i·n/m⌋, ⌈(i + 1)·n/m⌉) (as torch)."""
    lo, hi = [], []
    for a, m in enumerate(sizes):
        n = x.spatial[a]
        check_room(m, -(-n // m) + 1)  # m outputs × the widest window (⌈n/m⌉ + 1 taps)
        i = np.arange(m, dtype=np.int64)
        start, end = (i * n) // m, -((-(i + 1) * n) // m)
        idx = start[:, None] + np.arange(int((end - start).max()), dtype=np.int64)[None, :]
        lo_a, hi_a = _gather(x.lo[a], x.hi[a], idx, idx < end[:, None])
        lo.append(lo_a)
        hi.append(hi_a)
    return tuple(lo), tuple(hi)


def whole(x: Tensor) -> tuple:
    """Extents of a value that sees every position of ``x`` (global pool, flatten)."""
    return (tuple(np.array([v.min()]) for v in x.lo), tuple(np.array([v.max()]) for v in x.hi))


def merge(xs: list[Tensor]) -> tuple:
    """Union over paths, position by position (add, concat, residual sum)."""
    lo = tuple(np.minimum.reduce([x.lo[a] for x in xs]) for a in range(len(xs[0].lo)))
    hi = tuple(np.maximum.reduce([x.hi[a] for x in xs]) for a in range(len(xs[0].hi)))
    return lo, hi
