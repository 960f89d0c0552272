"""The torch modules a model spec is built from.

Only what ``torch.nn`` lacks lives here: convolution and pooling with ``same`` padding that keeps
``ceil(N / stride)`` for any kernel (asymmetric when the kernel is even), a graph that feeds named
outputs to later layers (skips, merges), and the residual block of the lecture,
a^[l+2] = σ(f_θ(a^[l]) + z^[l+2]).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from geocnn.model.tensor import same_pads

_PAD_MODE = {"zeros": "constant", "reflect": "reflect", "replicate": "replicate", "circular": "circular"}


def _pad_arg(sizes: Sequence[int], k_eff: Sequence[int], stride: Sequence[int]) -> list[int]:
    """``F.pad`` argument (last axis first) for ``same`` padding of these spatial sizes."""
    out: list[int] = []
    for n, k, s in reversed(list(zip(sizes, k_eff, stride))):
        out.extend(same_pads(n, k, s))
    return out


def _static_same(k_eff: Sequence[int], stride: Sequence[int]) -> tuple[int, ...] | None:
    """Symmetric padding equivalent to ``same`` for every input size, or None if there is none."""
    if all(s == 1 and (k - 1) % 2 == 0 for k, s in zip(k_eff, stride)):
        return tuple((k - 1) // 2 for k in k_eff)
    return None


class Conv(nn.Module):
    """N-d convolution whose ``same`` padding may be asymmetric or depend on the input size.

    Symmetric cases use the convolution's own padding (fast path); the others pad explicitly
    before a valid convolution.
    """

    def __init__(self, dims: int, cin: int, cout: int, kernel: tuple[int, ...], stride: tuple[int, ...],
                 padding: str | tuple[int, ...], dilation: tuple[int, ...], groups: int, bias: bool,
                 padding_mode: str, blind: tuple[int, ...] | None = None) -> None:
        super().__init__()
        k_eff = tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation))
        static = padding if padding != "same" else _static_same(k_eff, stride)
        conv_cls = (nn.Conv1d, nn.Conv2d, nn.Conv3d)[dims - 1]
        self.conv = conv_cls(cin, cout, kernel, stride=stride, padding=static or 0, dilation=dilation,
                             groups=groups, bias=bias,
                             padding_mode=padding_mode if static is not None else "zeros")
        self.dynamic = static is None
        self.k_eff, self.stride, self.mode = k_eff, stride, _PAD_MODE[padding_mode]
        taps = None
        if blind is not None:
            # taps of the centred box held at zero: the output never reads the input there
            taps = torch.ones(kernel)
            taps[tuple(slice((k - b) // 2, (k + b) // 2) for k, b in zip(kernel, blind))] = 0
            taps = taps[None, None]
            with torch.no_grad():
                self.conv.weight.mul_(taps)
        self.register_buffer("taps", taps, persistent=False)  # derived from the spec: not in checkpoints

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.dynamic:
            x = F.pad(x, _pad_arg(x.shape[2:], self.k_eff, self.stride), mode=self.mode)
        if self.taps is None:
            return self.conv(x)
        return self.conv._conv_forward(x, self.conv.weight * self.taps, self.conv.bias)


class ConvTranspose(nn.Module):
    """Transposed convolution (learned upsampling)."""

    def __init__(self, dims: int, cin: int, cout: int, kernel: tuple[int, ...], stride: tuple[int, ...],
                 padding: tuple[int, ...], output_padding: tuple[int, ...], dilation: tuple[int, ...],
                 groups: int, bias: bool) -> None:
        super().__init__()
        cls = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)[dims - 1]
        self.conv = cls(cin, cout, kernel, stride=stride, padding=padding, output_padding=output_padding,
                        dilation=dilation, groups=groups, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


def _pool1d_as_2d(fn2d):
    """A 1D pooling function run as 2D on a height-1 image.

    Same numbers; but torch's own 1D pooling fixes the length when traced by ``torch.export``
    (it reads the size as a Python int), so an exported 1D network would accept one length only.
    """

    def pool(x, size, stride, padding=0, **kwargs):
        size, stride, padding = (_one(v) for v in (size, stride, padding))
        return fn2d(x.unsqueeze(2), (1, size), (1, stride), (0, padding), **kwargs).squeeze(2)

    return pool


def _one(v) -> int:
    return v[0] if isinstance(v, (tuple, list)) else v


_MAX_POOL = (_pool1d_as_2d(F.max_pool2d), F.max_pool2d, F.max_pool3d)
_AVG_POOL = (_pool1d_as_2d(F.avg_pool2d), F.avg_pool2d, F.avg_pool3d)


class Pool(nn.Module):
    """Max or mean pooling per channel; padded samples never count (max pads −inf, mean skips)."""

    def __init__(self, dims: int, kind: str, size: tuple[int, ...], stride: tuple[int, ...],
                 padding: str | tuple[int, ...]) -> None:
        super().__init__()
        self.dims, self.kind, self.size, self.stride, self.padding = dims, kind, size, stride, padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fn_max, fn_avg = _MAX_POOL[self.dims - 1], _AVG_POOL[self.dims - 1]
        if self.padding != "same":
            if self.kind == "max":
                return fn_max(x, self.size, self.stride, self.padding)
            return fn_avg(x, self.size, self.stride, self.padding, count_include_pad=False)
        pads = _pad_arg(x.shape[2:], self.size, self.stride)
        if not any(pads):
            fn = fn_max if self.kind == "max" else fn_avg
            return fn(x, self.size, self.stride)
        if self.kind == "max":
            return fn_max(F.pad(x, pads, value=float("-inf")), self.size, self.stride)
        total = fn_avg(F.pad(x, pads), self.size, self.stride)
        ones = torch.ones((1, 1, *x.shape[2:]), dtype=x.dtype, device=x.device)
        return total / fn_avg(F.pad(ones, pads), self.size, self.stride)


class GlobalPool(nn.Module):
    """Max or mean over all spatial axes: (B, C, ...) → (B, C)."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.flatten(2)
        return flat.amax(dim=2) if self.kind == "max" else flat.mean(dim=2)


class Flatten(nn.Module):
    """(B, C, ...) → (B, C·...)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1)


class Softmax(nn.Module):
    """Softmax over the channel axis (class probabilities per sample)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(x, dim=1)


class Concat(nn.Module):
    """Concatenate along channels (U-Net skips)."""

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        return torch.cat(xs, dim=1)


class Add(nn.Module):
    """Element-wise sum of equal-shaped tensors."""

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        out = xs[0]
        for x in xs[1:]:
            out = out + x
        return out


_CONV = (F.conv1d, F.conv2d, F.conv3d)


class Posterior(nn.Module):
    """ŝ = p + h∗(x − p): a blind prediction ``p`` plus taps ``h`` on the residual around each sample
    (:mod:`geocnn.selfsup.posterior`). The taps are a buffer, not a parameter: zero until training fits them
    after an epoch, saved in checkpoints. ``applied`` is False while training (the loss must see the
    blind prediction alone) and True otherwise; with zero taps the output is exactly ``p``."""

    def __init__(self, dims: int, channels: int, kernel: tuple[int, ...]) -> None:
        super().__init__()
        self.channels, self.kernel = channels, tuple(kernel)
        self.register_buffer("taps", torch.zeros(self.kernel))
        self.applied = True
        self._conv = _CONV[dims - 1]

    def forward(self, p: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        if not self.applied:
            return p
        r = x - p
        weight = self.taps.to(r.dtype).expand(self.channels, 1, *self.kernel)  # the same taps on every channel
        return p + self._conv(r, weight, padding=[k // 2 for k in self.kernel], groups=self.channels)


class Graph(nn.Module):
    """Layers run in order; each reads the outputs it names (index -1 is the graph input).

    Outputs are dropped as soon as no later layer needs them, so a long skip keeps only what
    it must.
    """

    def __init__(self, steps: Sequence[nn.Module], inputs: Sequence[Sequence[int]]) -> None:
        super().__init__()
        self.steps = nn.ModuleList(steps)
        self.inputs = [tuple(i) for i in inputs]
        last_use: dict[int, int] = {}
        for i, ins in enumerate(self.inputs):
            for j in ins:
                last_use[j] = i
        self.free = [tuple(j for j, last in last_use.items() if last == i) for i in range(len(self.inputs))]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        values: dict[int, torch.Tensor] = {-1: x}
        out = x
        for i, step in enumerate(self.steps):
            out = step(*[values[j] for j in self.inputs[i]])
            for j in self.free[i]:
                del values[j]
            values[i] = out
        return out


class Residual(nn.Module):
    """a^[l+2] = σ(f_θ(a^[l]) + z^[l+2]): body, shortcut (identity or projection), activation."""

    def __init__(self, body: nn.Module, shortcut: nn.Module, activation: nn.Module) -> None:
        super().__init__()
        self.body = body
        self.shortcut = shortcut
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activation(self.body(x) + self.shortcut(x))
