"""Mergers: weighted windows accumulated in a ring over first-axis rows, finished rows released.

One interface (:class:`Merger`: ``aggregate``, ``release``, ``finalize``), as MONAI's mergers, with
one implementation per kind of array: :class:`NumpyMerger` on the CPU, :class:`TorchMerger` on any
other device, so on a GPU windows are blended where they were computed and only finished rows
come back. The float32 arithmetic is the same, operation for operation, in both (the same bits).
The CPU keeps NumPy: torch's elementwise ops there run on its thread pool, and on a busy machine
each one waits for both threads to be scheduled (measured 28 ms against NumPy's 0.12 ms for one
window's product under load).

Windows arrive in order of their first-axis start. The ring holds only the rows still open (as many
as the tallest window), so memory is one slab of window height whatever the survey size. Rows go
in and out of the ring as slices — views, no gather or scatter — unless they wrap around its end.
Because the tiling is a product of per-axis tilings and the weights are separable, the weight sum
at a sample is a product of 1D sums (:class:`~geocnn.patches.WindowPlan`) and needs no buffer.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from geocnn import device as devices
from geocnn.patches import PatchGeometry, WindowPlan

Released = tuple[int, Any]  # (first row, (C, rows, *grid shape[1:]) blended values)
CPU_CHUNK_VALUES = 1 << 17  # values released per step on the CPU: 512 KiB of float32, cache-sized


class Merger(abc.ABC):
    """Ring buffer over first-axis rows: accumulate weighted windows of several plans, release the
    blended rows (mean over plans, each normalised by its own weight sums).

    ``rows`` is this process's first-axis range (torchrun ranks each take one): rows outside it are
    skipped when windows are aggregated and never released. ``ring_rows`` (default: the tallest
    window) and ``chunk_rows`` (rows blended per step on release) tune it; neither changes a bit.
    """

    def __init__(self, shape: tuple[int, ...], channels: int, plans: Sequence[WindowPlan],
                 rows: tuple[int, int] | None = None, ring_rows: int | None = None,
                 chunk_rows: int | None = None) -> None:
        self.shape, self.plans = tuple(shape), list(plans)
        self.rows = rows if rows is not None else (0, self.shape[0])
        self.base = self.rows[0]  # first row not yet released
        self.cap = ring_rows or max(p.geom.extent[0] for p in self.plans)
        self.buf = self._zeros((len(self.plans), channels, self.cap, *self.shape[1:]))
        self.weights = [self._array(p.weight) for p in self.plans]
        self.sums = [[self._array(a.astype(np.float32)) for a in p.sums] for p in self.plans]
        self.chunk_rows = chunk_rows or self._default_chunk_rows()

    # --- the interface
    def aggregate(self, plan_index: int, origin: Sequence[int], values: Any) -> None:
        """Accumulate one window's (C, *extent) values × weight (clipped to the grid and to :attr:`rows`)."""
        valid, first, rest = window_part(origin, self.plans[plan_index].geom.extent, self.shape, self.base)
        weighted = (self._array(values) * self.weights[plan_index])[(slice(None), *valid)]
        rows = ring_index(first, weighted.shape[1], self.cap, self._arange)
        self.buf[plan_index][(slice(None), rows, *rest)] += weighted

    def release(self, upto: int) -> Released | None:
        """Rows [base, upto) (within :attr:`rows`), blended, as (first row, (C, rows, ...)); their ring
        rows cleared. Done :attr:`chunk_rows` at a time and without a gather where the rows wrap
        around the ring; the arithmetic is the same either way."""
        upto = min(upto, self.rows[1], self.shape[0])
        if upto <= self.base:
            return None
        first = self.base
        out = self._empty((self.buf.shape[1], upto - first, *self.shape[1:]))
        a = first
        while a < upto:
            start = a % self.cap
            b = min(upto, a + self.cap - start, a + self.chunk_rows)
            self._blend(slice(start, start + b - a), self._arange(a, b), out[:, a - first:b - first])
            a = b
        self.base = upto
        return first, out

    def finalize(self) -> Released | None:
        """Every row of :attr:`rows` not released yet (call after the last window)."""
        return self.release(self.rows[1])

    def _blend(self, ring: slice, rows: Any, dst: Any) -> None:
        """dst = mean over plans of ring rows / weight sums; the ring rows are zeroed for their next turn."""
        for p in range(len(self.plans)):
            part = self.buf[p][:, ring]
            if p == 0:
                self._divide(part, _outer(self.sums[p], rows)[None], dst)
            else:
                dst += part / _outer(self.sums[p], rows)[None]
            part[...] = 0
        if len(self.plans) > 1:
            dst /= len(self.plans)

    # --- what each kind of array does its own way
    @property
    @abc.abstractmethod
    def nbytes(self) -> int:
        """Bytes of the ring buffer."""

    @abc.abstractmethod
    def batch(self, scores: torch.Tensor) -> Any:
        """A batch of the model's scores (on the device) as this merger's arrays."""

    @abc.abstractmethod
    def grid_layout(self, geom: PatchGeometry, scores: Any) -> Any:
        """``geom.to_grid``: (C, *patch) in model order → (C, *extent) in grid order."""

    @abc.abstractmethod
    def host(self, values: Any) -> np.ndarray:
        """Released (and converted) values as a NumPy array."""

    @abc.abstractmethod
    def zero_dead(self, values: Any, live: np.ndarray) -> Any:
        """``values`` (C, rows, ...) with the traces ``live`` marks False (rows, ...) set to zero."""

    @abc.abstractmethod
    def _default_chunk_rows(self) -> int: ...

    @abc.abstractmethod
    def _zeros(self, shape: tuple[int, ...]) -> Any: ...

    @abc.abstractmethod
    def _empty(self, shape: tuple[int, ...]) -> Any: ...

    @abc.abstractmethod
    def _array(self, values: np.ndarray) -> Any: ...

    @abc.abstractmethod
    def _arange(self, start: int, stop: int) -> Any: ...

    @abc.abstractmethod
    def _divide(self, a: Any, b: Any, out: Any) -> None: ...


def window_part(origin: Sequence[int], extent: Sequence[int], shape: Sequence[int],
                base: int) -> tuple[tuple[slice, ...], int, tuple[slice, ...]]:
    """What of a window at ``origin`` falls inside the grid at rows ≥ ``base``: its slices of the
    window, the first grid row they land on, and their grid slices along the other axes."""
    skip = max(base - origin[0], 0)  # rows before ``base``: another process's, or released
    valid = (slice(skip, min(extent[0], shape[0] - origin[0])),) + tuple(
        slice(0, min(e, n - o)) for o, e, n in zip(origin[1:], extent[1:], shape[1:]))
    rest = tuple(slice(o, o + v.stop) for o, v in zip(origin[1:], valid[1:]))
    return valid, origin[0] + skip, rest


def ring_index(start: int, n: int, cap: int, arange: Any = np.arange) -> Any:
    """Ring positions of rows ``start .. start + n`` in a ring of ``cap`` rows: a slice (a view: no
    gather, no scatter) unless they wrap around its end, then an index array (``arange``'s kind)."""
    first = start % cap
    if first + n <= cap:
        return slice(first, first + n)
    return arange(start, start + n) % cap


def _outer(sums: list, rows: Any) -> Any:
    """Weight sum over the rows × full other axes: product of the per-axis sums (float32)."""
    out = sums[0][rows]
    for s in sums[1:]:
        out = out[..., None] * s
    return out


def _dead_mask(live: np.ndarray, ndim: int) -> tuple:
    """Index that broadcasts a (rows, ...) trace mask over (C, rows, ..., samples)."""
    return (None, ...) + (None,) * (ndim - 1 - live.ndim)


class NumpyMerger(Merger):
    """The CPU's merger: NumPy arrays, released a cache-sized chunk of rows at a time (each chunk's
    weights, values and result stay in the cache; whole slabs made four trips through memory)."""

    @property
    def nbytes(self) -> int:
        return int(self.buf.nbytes)

    def batch(self, scores: torch.Tensor) -> np.ndarray:
        return scores.cpu().numpy()  # the CPU tensor's own memory

    def grid_layout(self, geom: PatchGeometry, scores: np.ndarray) -> np.ndarray:
        return geom.to_grid(scores)

    def host(self, values: np.ndarray) -> np.ndarray:
        return values

    def zero_dead(self, values: np.ndarray, live: np.ndarray) -> np.ndarray:
        return values * live[_dead_mask(live, values.ndim)]

    def _default_chunk_rows(self) -> int:
        per_row = int(np.prod(self.buf.shape[1:2] + self.buf.shape[3:]))
        return max(1, CPU_CHUNK_VALUES // max(1, per_row))

    def _zeros(self, shape: tuple[int, ...]) -> np.ndarray:
        return np.zeros(shape, np.float32)

    def _empty(self, shape: tuple[int, ...]) -> np.ndarray:
        return np.empty(shape, np.float32)

    def _array(self, values: np.ndarray) -> np.ndarray:
        return np.asarray(values)

    def _arange(self, start: int, stop: int) -> np.ndarray:
        return np.arange(start, stop)

    def _divide(self, a: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:
        np.divide(a, b, out=out)


class TorchMerger(Merger):
    """A device's merger: tensors on ``device``; the whole ring span released in one step."""

    def __init__(self, shape: tuple[int, ...], channels: int, plans: Sequence[WindowPlan],
                 rows: tuple[int, int] | None = None, ring_rows: int | None = None,
                 chunk_rows: int | None = None, *, device: torch.device) -> None:
        self.device = device
        super().__init__(shape, channels, plans, rows, ring_rows, chunk_rows)

    @property
    def nbytes(self) -> int:
        return self.buf.numel() * self.buf.element_size()

    def batch(self, scores: torch.Tensor) -> torch.Tensor:
        return scores

    def grid_layout(self, geom: PatchGeometry, scores: torch.Tensor) -> torch.Tensor:
        order = np.argsort(geom.patch_axes)
        return scores.permute(0, *(1 + int(i) for i in order)).reshape((scores.shape[0], *geom.extent))

    def host(self, values: torch.Tensor) -> np.ndarray:
        return devices.to_host(values)

    def zero_dead(self, values: torch.Tensor, live: np.ndarray) -> torch.Tensor:
        return values * torch.from_numpy(live).to(values.device)[_dead_mask(live, values.ndim)]

    def _default_chunk_rows(self) -> int:
        return self.cap

    def _zeros(self, shape: tuple[int, ...]) -> torch.Tensor:
        return torch.zeros(shape, device=self.device)

    def _empty(self, shape: tuple[int, ...]) -> torch.Tensor:
        return torch.empty(shape, device=self.device)

    def _array(self, values: np.ndarray | torch.Tensor) -> torch.Tensor:
        return torch.as_tensor(values, device=self.device)

    def _arange(self, start: int, stop: int) -> torch.Tensor:
        return torch.arange(start, stop, device=self.device)

    def _divide(self, a: torch.Tensor, b: torch.Tensor, out: torch.Tensor) -> None:
        torch.div(a, b, out=out)


def merger_for(rt_device: torch.device, shape: tuple[int, ...], channels: int, plans: Sequence[WindowPlan],
               rows: tuple[int, int] | None = None) -> Merger:
    """NumPy on the CPU, tensors on any other device (where the windows were computed)."""
    if rt_device.type == "cpu":
        return NumpyMerger(shape, channels, plans, rows)
    return TorchMerger(shape, channels, plans, rows, device=rt_device)
