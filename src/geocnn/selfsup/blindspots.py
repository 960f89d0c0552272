"""Blind regions for self-supervised denoising when the noise is correlated (``data.mask.shape``).

Noise2Void hides one sample and predicts it from its neighbours; that only works when the
neighbours' noise says nothing about the hidden sample's noise. Field noise is correlated with
its neighbours across traces and, being band-limited, along the trace — and a band-limited
process can be predicted from samples further along the trace too. So each blind spot hides a
whole *region* (StructN2V, Broaddus et al. 2020; for seismic, Birnie & Ravasi 2021; a whole
trace, Liu, Birnie & Alkhalifah 2022): a box of ``shape[a]`` samples along each patch axis ``a``,
centred on the blind spot, where ``all`` spans the whole patch along that axis. Along an ``all``
axis a blind spot is then a whole line (e.g. a whole trace segment): every sample on it has its
region hidden, so every sample on it is scored.

Every hidden sample shows the value of a random *visible* sample of the patch (``replace:
neighbour``) or zero: the network sees values of the data's own distribution there and learns
that they carry nothing about the blind spot, and none of them comes from inside any blind region.

Shapes are per patch axis, in model order. NumPy only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from geocnn.classical.noisecorr import CORRELATED, NoiseCorrelation

ALL = "all"  # the region spans the whole patch along this axis
COVERAGE = 0.25  # share of a patch hidden when data.mask.ratio is not given


@dataclass(frozen=True)
class BlindShape:
    """A blind region: odd size per patch axis, or None where it spans the whole patch."""

    sizes: tuple[int | None, ...]

    @classmethod
    def parse(cls, shape: Sequence[int | str]) -> BlindShape:
        """From ``data.mask.shape`` (ints and ``all``); ValueError on an even size."""
        sizes = []
        for s in shape:
            if s == ALL:
                sizes.append(None)
            elif isinstance(s, int) and s >= 1 and s % 2 == 1:
                sizes.append(s)
            else:
                raise ValueError(f"blind region size {s!r} must be an odd number of samples or {ALL}")
        return cls(tuple(sizes))

    def to_config(self) -> list[int | str]:
        """The ``data.mask.shape`` that gives this region."""
        return [ALL if s is None else s for s in self.sizes]

    def describe(self, axes: Sequence[str]) -> str:
        """e.g. ``5 crosslines × the whole sample axis``."""
        return " × ".join(f"{s} {a}" if s is not None else f"all {a}" for s, a in zip(self.sizes, axes))

    def check(self, patch: Sequence[int], axes: Sequence[str]) -> None:
        """ValueError when the region does not fit the patch or leaves nothing visible."""
        if len(self.sizes) != len(patch):
            raise ValueError(f"mask shape has {len(self.sizes)} sizes but the patch spans {len(patch)} axes "
                             f"({', '.join(axes)})")
        for s, n, a in zip(self.sizes, patch, axes):
            if s is not None and s > n:
                raise ValueError(f"mask shape {s} along {a} is longer than the patch ({n})")
        if all(s is None or s >= n for s, n in zip(self.sizes, patch)):
            raise ValueError(f"mask shape {self.to_config()} hides the whole {'×'.join(map(str, patch))} patch: "
                             "nothing is left to predict from")

    def spot_axes(self) -> tuple[int, ...]:
        """The axes blind spots are drawn along (the others are spanned whole)."""
        return tuple(a for a, s in enumerate(self.sizes) if s is not None)

    def lines(self, patch: Sequence[int]) -> int:
        """How many blind-spot positions a patch has (samples, or whole lines along ``all`` axes)."""
        return int(np.prod([patch[a] for a in self.spot_axes()])) if self.spot_axes() else 1

    def volume(self, patch: Sequence[int]) -> int:
        """Samples one blind region hides in a patch (before clipping at its edges)."""
        return int(np.prod([n if s is None else s for s, n in zip(self.sizes, patch)]))


def spot_count(shape: BlindShape, patch: Sequence[int], ratio: float | None) -> int:
    """Blind spots per patch: ``ratio`` of the positions, or (None) enough regions to hide about
    COVERAGE of the patch; at least one."""
    lines = shape.lines(patch)
    if ratio is None:
        per_region = shape.volume(patch) / float(np.prod(patch))
        return max(1, min(lines, round(COVERAGE / per_region)))
    return max(1, min(lines, round(ratio * lines)))


def region_mask(shape: BlindShape, patch: tuple[int, ...], spots: np.ndarray) -> np.ndarray:
    """Bool (*patch): the union of the regions centred on ``spots`` (k, len(spot axes)), clipped."""
    hidden = np.zeros(patch, bool)
    axes = shape.spot_axes()
    for spot in spots:
        index = [slice(None)] * len(patch)
        for a, c in zip(axes, spot):
            half = shape.sizes[a] // 2
            index[a] = slice(max(0, c - half), min(patch[a], c + half + 1))
        hidden[tuple(index)] = True
    return hidden


def spot_mask(shape: BlindShape, patch: tuple[int, ...], spots: np.ndarray) -> np.ndarray:
    """Bool (*patch): the blind spots themselves — points, or whole lines along ``all`` axes."""
    spots_only = np.zeros(patch, bool)
    axes = shape.spot_axes()
    for spot in spots:
        index = [slice(None)] * len(patch)
        for a, c in zip(axes, spot):
            index[a] = c
        spots_only[tuple(index)] = True
    return spots_only


def draw_spots(shape: BlindShape, patch: tuple[int, ...], ratio: float | None, rng: np.random.Generator
               ) -> np.ndarray:
    """(k, len(spot axes)) distinct blind-spot positions along the spot axes."""
    sizes = [patch[a] for a in shape.spot_axes()]
    n = shape.lines(patch)
    k = spot_count(shape, patch, ratio)
    return np.stack(np.unravel_index(rng.choice(n, k, replace=False), sizes), axis=1) if sizes else \
        np.zeros((1, 0), np.int64)


def hide_regions(x: np.ndarray, shape: BlindShape, ratio: float | None, replace: str,
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(masked input, scored blind spots) for ``x`` (C, *patch): every region's samples replaced by
    a random visible sample's value (``neighbour``) or zero."""
    patch = x.shape[1:]
    spots = draw_spots(shape, patch, ratio, rng)
    hidden = region_mask(shape, patch, spots)
    masked = x.copy()
    if replace == "zero":
        masked[:, hidden] = 0
    else:
        visible = np.flatnonzero(~hidden.reshape(-1))
        source = visible[rng.integers(len(visible), size=int(hidden.sum()))]
        masked[:, hidden] = x.reshape(x.shape[0], -1)[:, source]
    return masked, spot_mask(shape, patch, spots)


# ----------------------------------------------------------------------------- mask: auto

def auto_shape(noise: NoiseCorrelation | None, axes: Sequence[str]) -> tuple[BlindShape, list[str]]:
    """The blind region the measured noise needs, per patch axis, and why (one reason per axis).

    Along a lateral axis: 2k + 1 traces, k the largest lag whose noise correlation is at least
    CORRELATED (1/3): the nearest traces the network reads then share under 1/3 of their noise with
    the hidden one, so the two of them explain at most 2c²/(1 + c²) ≈ 20 % of it, while hiding one
    more trace on each side costs the signal prediction more (docs/field-data.md). Along the
    samples: the whole patch when the noise is correlated there at all — noise that shares the
    signal's band can be predicted from samples further along the same trace, not only from the
    next ones — else one sample. An axis the measurement did not reach keeps one sample.
    """
    sizes: list[int | None] = []
    why = []
    for axis in axes:
        if noise is None or (axis != noise.sample_axis and axis not in noise.lateral):
            sizes.append(1)
            why.append(f"{axis}: not measured (too few traces along it), nothing hidden beyond the blind spot")
            continue
        k = noise.extent(axis)
        if axis == noise.sample_axis:
            sizes.append(None if k else 1)
            why.append(f"{axis}: noise correlated over {k} samples, so the whole trace segment is hidden "
                       "(band-limited noise is predictable from further along the trace)" if k else
                       f"{axis}: noise uncorrelated along the trace, one sample hidden")
        else:
            sizes.append(2 * k + 1)
            corr = noise.lateral[axis]
            seen = f"; the nearest trace read shares {corr[k + 1]:.2f}" if k + 1 < len(corr) else ""
            why.append(f"{axis}: noise correlated over {k} trace{'s' if k != 1 else ''} "
                       f"(≥ {CORRELATED:.2f}){seen}, so {2 * k + 1} hidden")
    return BlindShape(tuple(sizes)), why


@dataclass(frozen=True)
class Blinding:
    """How a denoise_self run hides noise: the blind region, and whether the network is blind over it
    by construction (``dense``: nothing is hidden in the input, every sample is scored)."""

    mask: Any  # data.mask with the shape resolved (auto → the measured region)
    shape: BlindShape
    dense: bool
    noise: NoiseCorrelation | None


def nearest_seen(x: np.ndarray, shape: BlindShape) -> np.ndarray:
    """``x`` (C, *patch) shifted along the first axis the region is finite on by half its size + 1:
    every sample gets the value of the nearest sample a network blind over ``shape`` reads (the
    trivial prediction of a blind network; reflected at the patch edge)."""
    axis = shape.spot_axes()[0]
    step = shape.sizes[axis] // 2 + 1
    n = x.shape[axis + 1]
    index = np.arange(n) + step
    index = np.where(index >= n, np.abs(2 * (n - 1) - index), index)
    return np.take(x, np.clip(index, 0, n - 1), axis=axis + 1)
