"""The closed registry of layer kinds.

Each :class:`Kind` says, for one YAML layer kind, which arguments it takes (a
:class:`geocnn.schema.Record`), what it does to shapes, parameters, multiply-adds and receptive
field (``infer`` — pure arithmetic, the lecture's formulas). The torch module that implements a
kind is built by :mod:`geocnn.model.builders`, keyed by the same name; the summary and the builder
both read ``infer``, so they cannot disagree. Torch-free: validating a config, the JSON Schema and
``geocnn summarize`` read this registry without importing torch.

Output size of a window operation (conv, pool) along one axis, from the lecture:
N_y = floor((N_x + 2·pad − N_h) / stride + 1), with N_h = dilation·(kernel − 1) + 1.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

from geocnn.errors import ShapeError
from geocnn.fmt import fmt_shape
from geocnn.model import tensor as T
from geocnn.model.tensor import Tensor
from geocnn.schema import REQUIRED, Bool, Choice, Field, Float, Int, ListOf, OneOf, PerAxis, Record, Str

ACTIVATIONS = ("relu", "leaky_relu", "elu", "gelu", "silu", "tanh", "sigmoid", "softmax")


@dataclass
class LayerCtx:
    """The layer being inferred: for error messages and axis names."""

    index: int
    name: str
    kind: str
    where: str
    axes: tuple[str, ...]

    def fail(self, problem: str, fix: str | None = None) -> ShapeError:
        return ShapeError(f"layer {self.index} '{self.name}' {self.kind}: {problem}", where=self.where,
                          fix=fix, failed_index=self.index, failed_layer=(self.name, self.kind))


@dataclass
class Outcome:
    """What one layer does: output tensor, parameters (with formula), multiply-adds, notes."""

    out: Tensor
    params: int = 0
    macs: int = 0
    formula: str = ""
    note: str = ""
    unread: list[Unread] = field(default_factory=list)  # input samples this layer's outputs never read


@dataclass(frozen=True, eq=False)
class Unread:
    """Samples of a layer's input, along one axis, that none of its outputs reads.

    Only a candidate: the shape walk (:mod:`geocnn.model.shapes`) warns about a sample only when
    no other layer reading the same tensor reads it either (a 1×1 stride-2 shortcut skips the
    odd samples that the body's 3×3 stride-2 conv reads: ResNet-B, nothing is lost).
    """

    axis: str
    axis_index: int
    positions: np.ndarray
    n: int
    n_out: int
    what: str
    k: int
    s: int
    d: int

    def warning(self, positions: np.ndarray) -> str:
        """The warning for ``positions`` (those of :attr:`positions` no path reads)."""
        dil = f", dilation {self.d}" if self.d > 1 else ""
        return (f"{self.what} {self.k} with stride {self.s}{dil} never reads {len(positions)} of {self.n} samples "
                f"along {self.axis} ({_positions(positions)}; {self.n} → {self.n_out}): those samples are never seen")


@dataclass(frozen=True)
class Kind:
    """One layer kind of the YAML grammar."""

    name: str
    help: str
    args: Record
    infer: Callable[[dict, list[Tensor], LayerCtx], Outcome]
    merge: bool = False  # reads the previous output plus the outputs named in `with`


# ----------------------------------------------------------------------------- shared arithmetic

def _prod(xs) -> int:
    return math.prod(int(x) for x in xs)


def _spatial_input(x: Tensor, ctx: LayerCtx) -> None:
    if x.flat:
        raise ctx.fail(f"needs a (channels × {' × '.join(ctx.axes)}) input but gets the flat vector "
                       f"({x.channels},)", "move this layer before flatten/global_pool/dense")


def _unread(n: int, n_out: int, k: int, s: int, d: int, before: int, mode: str) -> np.ndarray:
    """Input positions along one axis that no output of a window operation reads.

    Output o reads o·s − before + j·d (j < k); positions outside [0, n) are padding, which
    is not a sample, so it needs no reading; it reads nothing (zeros) or the sample it copies.
    """
    T.check_room(n_out, k)  # every output × tap is held below: refuse before numpy allocates
    idx = (np.arange(n_out, dtype=np.int64)[:, None] * s - before + np.arange(k, dtype=np.int64)[None, :] * d)
    idx, valid = T.padded_index(idx, n, mode)
    read = np.zeros(n, dtype=bool)
    read[idx[valid]] = True
    return np.flatnonzero(~read)


def _positions(idx: np.ndarray) -> str:
    """``position 14``, ``positions 2, 5, 8`` or ``positions 0, 2, 4, 6, …``."""
    shown = ", ".join(str(int(i)) for i in idx[:4])
    return ("position " if len(idx) == 1 else "positions ") + shown + (", …" if len(idx) > 4 else "")


def _window(x: Tensor, ctx: LayerCtx, kernel, stride, dilation, padding, what: str = "kernel",
            mode: str = "zeros") -> tuple[tuple[int, ...], tuple[tuple[int, int], ...], list[Unread]]:
    """Output sizes, (before, after) padding and the input samples a window operation never reads."""
    sizes, pads, warns = [], [], []
    for i, (axis, n, k, s, d) in enumerate(zip(ctx.axes, x.spatial, kernel, stride, dilation)):
        k_eff = d * (k - 1) + 1
        if padding == "same":
            before, after = T.same_pads(n, k_eff, s)
        else:
            before = after = padding[len(sizes)]
        span = n + before + after - k_eff
        if span < 0:
            padded = f" + padding {before + after}" if before + after else ""
            dil = f" (kernel {k} dilated {d})" if d > 1 else ""
            raise ctx.fail(f"{axis} {n}{padded} < {what} {k_eff}{dil}",
                           "use padding: same, a smaller kernel, or a larger input")
        out = span // s + 1
        unread = _unread(n, out, k, s, d, before, mode)  # a dilation wider than the output leaves gaps too
        if len(unread):
            warns.append(Unread(axis, i, unread, n, out, what, k, s, d))
        sizes.append(out)
        pads.append((before, after))
    return tuple(sizes), tuple(pads), warns


def _after_window(x: Tensor, channels: int, sizes, kernel, stride, dilation, pads, mode: str = "zeros") -> Tensor:
    """The output of a window operation: sizes, jump × stride, exact receptive extents."""
    lo, hi = T.window(x, sizes, kernel, stride, dilation, [b for b, _ in pads], mode)
    return Tensor(channels, tuple(sizes), tuple(j * s for j, s in zip(x.jump, stride)), lo, hi)


def _check_groups(ctx: LayerCtx, cin: int, cout: int, groups: int) -> None:
    if cin % groups or cout % groups:
        raise ctx.fail(f"groups {groups} must divide both input channels {cin} and output channels {cout}",
                       "choose groups that divides both")


def _pad_note(padding, pads) -> str:
    if padding != "same":
        return ""
    asym = [f"{b}|{a}" for b, a in pads if b != a]
    return "same padding" + (f" (asymmetric {', '.join(asym)})" if asym else "")


def _join(*parts: str) -> str:
    return "; ".join(p for p in parts if p)


# ----------------------------------------------------------------------------- argument types

_POS = Int(min=1)
_PADDING = OneOf(Choice("same", "valid"), PerAxis(Int(min=0)))


def norm_padding(a: dict, dims: int) -> str | tuple[int, ...]:
    """``padding`` as ``same`` or samples per side (``valid`` = 0)."""
    p = a["padding"]
    return (0,) * dims if p == "valid" else p


# ----------------------------------------------------------------------------- conv

CONV_ARGS = Record([
    Field("out", _POS, default=REQUIRED, help="output channels N_ch,y (number of filters)"),
    Field("kernel", PerAxis(_POS), default=3, help="kernel size N_h per axis (1 = 1×1 convolution)"),
    Field("stride", PerAxis(_POS), default=1, help="stride per axis"),
    Field("padding", _PADDING, default="valid",
          help="'valid' (0), 'same' (keeps ceil(N/stride), asymmetric for even kernels), or samples per side"),
    Field("dilation", PerAxis(_POS), default=1, help="dilation per axis"),
    Field("groups", _POS, default=1, help="grouped convolution (channels split into groups)"),
    Field("bias", Bool(), default=True, help="learn one bias per output channel"),
    Field("padding_mode", Choice("zeros", "reflect", "replicate", "circular"), default="zeros",
          help="what the padded samples hold"),
    Field("blind", ListOf(OneOf(_POS, Choice("all"))), default=None,
          help="a blind centre: taps of this odd size per axis (all = the whole kernel) held at zero, so the "
               "output never reads the input there (self-supervised denoising, geocnn.selfsup.blindspots)"),
], title="conv", shorthand="out")


def _conv_infer(a: dict, xs: list[Tensor], ctx: LayerCtx) -> Outcome:
    x = xs[0]
    _spatial_input(x, ctx)
    dims = len(x.spatial)
    padding = norm_padding(a, dims)
    cin, cout, g = x.channels, a["out"], a["groups"]
    _check_groups(ctx, cin, cout, g)
    sizes, pads, warns = _window(x, ctx, a["kernel"], a["stride"], a["dilation"], padding, mode=a["padding_mode"])
    if a["padding_mode"] == "reflect" and any(max(p) >= n for p, n in zip(pads, x.spatial)):
        raise ctx.fail(f"reflect padding {max(max(p) for p in pads)} needs more than that many samples "
                       f"(input {fmt_shape(x.shape)})", "use padding_mode: replicate or zeros")
    out = _after_window(x, cout, sizes, a["kernel"], a["stride"], a["dilation"], pads, a["padding_mode"])
    blind = blind_taps(a, ctx)
    per_filter = [*a["kernel"], cin // g, cout]
    weights = _prod(per_filter)
    params = weights + (cout if a["bias"] else 0)
    formula = "·".join(str(f) for f in per_filter) + (f" + {cout}" if a["bias"] else "") + f" = {params:,}"
    macs = _prod(sizes) * cout * (cin // g) * _prod(a["kernel"])
    one = "1×1 conv (mixes channels only)" if all(k == 1 for k in a["kernel"]) else ""
    notes = _join(one, f"blind centre {'×'.join(map(str, blind))} (taps held at zero)" if blind else "",
                  _pad_note(padding, pads), f"groups {g}" if g > 1 else "",
                  f"dilation {'×'.join(map(str, a['dilation']))}" if any(d > 1 for d in a["dilation"]) else "",
                  f"stride {'×'.join(map(str, a['stride']))}" if any(s > 1 for s in a["stride"]) else "")
    return Outcome(out, params, macs, formula, notes, warns)


def blind_taps(a: dict, ctx: LayerCtx | None) -> tuple[int, ...] | None:
    """``blind`` as tap counts per axis (``all`` = the kernel), checked against the kernel."""
    if a.get("blind") is None:
        return None
    kernel = a["kernel"]
    if len(a["blind"]) != len(kernel):
        raise ctx.fail(f"blind has {len(a['blind'])} sizes for a {len(kernel)}-D kernel", "give one per axis")
    taps = tuple(k if b == "all" else b for b, k in zip(a["blind"], kernel))
    for b, k, axis in zip(taps, kernel, ctx.axes if ctx else kernel):
        if b > k or (b - k) % 2:
            raise ctx.fail(f"blind {b} along {axis} is not a centred part of kernel {k}",
                           "use an odd blind size and an odd kernel, blind ≤ kernel (or all)")
    if all(b == k for b, k in zip(taps, kernel)):
        raise ctx.fail("blind covers the whole kernel: the layer would read nothing",
                       "leave taps outside the blind centre along at least one axis")
    return taps


# ----------------------------------------------------------------------------- transposed conv

CONV_T_ARGS = Record([
    Field("out", _POS, default=REQUIRED, help="output channels"),
    Field("kernel", PerAxis(_POS), default=2, help="kernel size per axis"),
    Field("stride", PerAxis(_POS), default=2, help="upsampling factor per axis"),
    Field("padding", OneOf(Choice("same"), PerAxis(Int(min=0))), default=0,
          help="'same' gives exactly N·stride, or samples cropped per side"),
    Field("output_padding", PerAxis(Int(min=0)), default=0, help="extra samples added on one side"),
    Field("dilation", PerAxis(_POS), default=1, help="dilation per axis"),
    Field("groups", _POS, default=1, help="grouped transposed convolution"),
    Field("bias", Bool(), default=True, help="learn one bias per output channel"),
], title="conv_transpose", shorthand="out")


def conv_t_pads(a: dict, ctx: LayerCtx | None, dims: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(padding, output_padding) per axis; ``same`` solves them for an output of N·stride."""
    if a["padding"] != "same":
        return a["padding"], a["output_padding"]
    pads, extra = [], []
    for k, s, d in zip(a["kernel"], a["stride"], a["dilation"]):
        total = d * (k - 1) + 1 - s
        if total < 0:
            raise ctx.fail(f"padding 'same' needs kernel ≥ stride (kernel {k}, stride {s})",
                           "use kernel equal to stride")
        p = (total + 1) // 2
        op = 2 * p - total
        if op >= max(s, d):
            raise ctx.fail(f"padding 'same' cannot be reached with kernel {k} and stride {s}",
                           "use an odd kernel with stride 1, or kernel = stride")
        pads.append(p)
        extra.append(op)
    return tuple(pads), tuple(extra)


def _conv_t_infer(a: dict, xs: list[Tensor], ctx: LayerCtx) -> Outcome:
    x = xs[0]
    _spatial_input(x, ctx)
    cin, cout, g = x.channels, a["out"], a["groups"]
    _check_groups(ctx, cin, cout, g)
    pad, opad = conv_t_pads(a, ctx, len(x.spatial))
    sizes = []
    for axis, n, k, s, d, p, op in zip(ctx.axes, x.spatial, a["kernel"], a["stride"], a["dilation"], pad, opad):
        if op >= max(s, d):
            raise ctx.fail(f"output_padding {op} must be smaller than stride {s} or dilation {d}")
        size = (n - 1) * s - 2 * p + d * (k - 1) + op + 1
        if size < 1:
            raise ctx.fail(f"{axis} would be {size} after cropping padding {p}", "use less padding")
        sizes.append(size)
    lo, hi = T.transposed(x, sizes, a["kernel"], a["stride"], a["dilation"], pad)
    jump = tuple(j / s for j, s in zip(x.jump, a["stride"]))
    per_filter = [*a["kernel"], cin, cout // g]
    params = _prod(per_filter) + (cout if a["bias"] else 0)
    formula = "·".join(map(str, per_filter)) + (f" + {cout}" if a["bias"] else "") + f" = {params:,}"
    macs = _prod(x.spatial) * cin * (cout // g) * _prod(a["kernel"])
    note = f"upsamples ×{'×'.join(map(str, a['stride']))}"
    return Outcome(Tensor(cout, tuple(sizes), jump, lo, hi), params, macs, formula, note)


# ----------------------------------------------------------------------------- upsample

UPSAMPLE_ARGS = Record([
    Field("scale", PerAxis(_POS), default=2, help="integer factor per axis"),
    Field("mode", Choice("nearest", "linear"), default="nearest",
          help="nearest repeats samples; linear interpolates (bi/trilinear in 2D/3D)"),
], title="upsample", shorthand="scale")


def _upsample_infer(a: dict, xs: list[Tensor], ctx: LayerCtx) -> Outcome:
    x = xs[0]
    _spatial_input(x, ctx)
    sizes = tuple(n * s for n, s in zip(x.spatial, a["scale"]))
    lo, hi = T.upsample(x, a["scale"], a["mode"] == "linear")
    jump = tuple(j / s for j, s in zip(x.jump, a["scale"]))
    return Outcome(Tensor(x.channels, sizes, jump, lo, hi), note=f"{a['mode']} ×{'×'.join(map(str, a['scale']))}")


# ----------------------------------------------------------------------------- pooling

POOL_ARGS = Record([
    Field("kind", Choice("max", "mean"), default="max", help="max or mean of each window, per channel"),
    Field("size", PerAxis(_POS), default=2, help="window size per axis"),
    Field("stride", PerAxis(_POS), default=None, help="stride per axis (default: the window size)"),
    Field("padding", _PADDING, default="valid", help="'valid', 'same' (ceil(N/stride)) or samples per side"),
], title="pool", shorthand="kind")


def pool_stride(a: dict) -> tuple[int, ...]:
    """A pool's stride per axis: the window size unless given."""
    return a["stride"] if a["stride"] is not None else a["size"]


def _pool_infer(a: dict, xs: list[Tensor], ctx: LayerCtx) -> Outcome:
    x = xs[0]
    _spatial_input(x, ctx)
    dims = len(x.spatial)
    padding, stride = norm_padding(a, dims), pool_stride(a)
    if padding != "same" and any(p > k // 2 for p, k in zip(padding, a["size"])):
        raise ctx.fail(f"padding {padding} is more than half the window {a['size']}",
                       "use at most size // 2, or padding: same")
    ones = (1,) * dims
    sizes, pads, warns = _window(x, ctx, a["size"], stride, ones, padding, what="window")
    out = _after_window(x, x.channels, sizes, a["size"], stride, ones, pads)
    note = _join(f"{a['kind']} pool, per channel, no parameters", _pad_note(padding, pads))
    return Outcome(out, note=note, unread=warns)


ADAPTIVE_POOL_ARGS = Record([
    Field("kind", Choice("max", "mean"), default="mean", help="max or mean of each window, per channel"),
    Field("size", PerAxis(_POS), default=REQUIRED, help="output size per axis, whatever the input size"),
], title="adaptive_pool", shorthand="size")


def _adaptive_pool_infer(a: dict, xs: list[Tensor], ctx: LayerCtx) -> Outcome:
    x = xs[0]
    _spatial_input(x, ctx)
    sizes = tuple(a["size"])
    lo, hi = T.adaptive(x, sizes)
    jump = tuple(j * Fraction(n, m) for j, n, m in zip(x.jump, x.spatial, sizes))
    note = f"adaptive {a['kind']} pool {fmt_shape(x.spatial)} → {fmt_shape(sizes)}, per channel, no parameters"
    return Outcome(Tensor(x.channels, sizes, jump, lo, hi), note=note)


GLOBAL_POOL_ARGS = Record([
    Field("kind", Choice("max", "mean"), default="mean", help="max or mean over all positions, per channel"),
], title="global_pool", shorthand="kind")


def _whole(x: Tensor, channels: int) -> Tensor:
    """A flat vector whose values see every position of ``x``."""
    return Tensor(channels, (), x.jump, *T.whole(x))


def _global_pool_infer(a: dict, xs: list[Tensor], ctx: LayerCtx) -> Outcome:
    x = xs[0]
    _spatial_input(x, ctx)
    return Outcome(_whole(x, x.channels),
                   note=f"global {a['kind']} over {fmt_shape(x.spatial)} → flat vector")


# ----------------------------------------------------------------------------- norm

NORM_ARGS = Record([
    Field("kind", Choice("batch", "instance", "group"), default=REQUIRED, help="normalisation kind"),
    Field("groups", _POS, default=8, help="channel groups (group norm)"),
    Field("eps", Float(min=0, exclusive_min=True), default=1e-5, help="added to the variance"),
    Field("momentum", Float(min=0, max=1), default=0.1, help="running statistics update (batch norm)"),
    Field("affine", Bool(), default=True, help="learn a scale γ and shift β per channel"),
], title="norm", shorthand="kind")


def _norm_infer(a: dict, xs: list[Tensor], ctx: LayerCtx) -> Outcome:
    x = xs[0]
    if x.flat and a["kind"] != "batch":
        raise ctx.fail(f"{a['kind']} norm needs spatial axes but gets a flat vector ({x.channels},)",
                       "use norm: batch after dense layers")
    if a["kind"] == "group" and x.channels % a["groups"]:
        raise ctx.fail(f"groups {a['groups']} does not divide {x.channels} channels",
                       f"set groups to a divisor of {x.channels}")
    params = 2 * x.channels if a["affine"] else 0
    formula = f"2·{x.channels} = {params:,}" if params else ""
    note = f"{a['kind']} norm" + (f", {a['groups']} groups" if a["kind"] == "group" else "")
    note += " over features (flat input)" if x.flat else ""
    return Outcome(x, params, 0, formula, note + (" (γ, β per channel)" if params else ""))


# ----------------------------------------------------------------------------- activations

def _same_infer(note: str) -> Callable[[dict, list[Tensor], LayerCtx], Outcome]:
    def infer(a: dict, xs: list[Tensor], ctx: LayerCtx) -> Outcome:
        return Outcome(xs[0], note=note)
    return infer


_NO_ARGS = Record([], title="no arguments")
_ACT_ARGS = {
    "leaky_relu": Record([Field("slope", Float(min=0), default=0.01, help="slope for negative inputs")],
                         title="leaky_relu", shorthand="slope"),
    "elu": Record([Field("alpha", Float(min=0), default=1.0, help="saturation value for negative inputs")],
                  title="elu", shorthand="alpha"),
}
_ACT_HELP = {
    "relu": "max(0, x)", "leaky_relu": "x, or slope·x below 0", "elu": "x, or α(eˣ − 1) below 0",
    "gelu": "x·Φ(x)", "silu": "x·sigmoid(x)", "tanh": "tanh(x)", "sigmoid": "1 / (1 + e⁻ˣ)",
    "softmax": "softmax over channels (class probabilities)",
}

# ----------------------------------------------------------------------------- dropout, flatten, dense

DROPOUT_ARGS = Record([
    Field("p", Float(min=0, max=1), default=0.5, help="probability of zeroing a value during training"),
    Field("spatial", Bool(), default=False, help="drop whole channels instead of single values"),
], title="dropout", shorthand="p")


def _flatten_infer(a: dict, xs: list[Tensor], ctx: LayerCtx) -> Outcome:
    x = xs[0]
    _spatial_input(x, ctx)
    return Outcome(_whole(x, x.numel), note=f"{fmt_shape(x.shape)} → {x.numel:,}")


DENSE_ARGS = Record([
    Field("out", _POS, default=REQUIRED, help="output features"),
    Field("bias", Bool(), default=True, help="learn one bias per output"),
], title="dense", shorthand="out")


def _dense_infer(a: dict, xs: list[Tensor], ctx: LayerCtx) -> Outcome:
    x = xs[0]
    if not x.flat:
        raise ctx.fail(f"needs a flat input but gets {fmt_shape(x.shape)}",
                       "add flatten or global_pool before it")
    params = x.channels * a["out"] + (a["out"] if a["bias"] else 0)
    formula = f"{x.channels}·{a['out']}" + (f" + {a['out']}" if a["bias"] else "") + f" = {params:,}"
    return Outcome(Tensor(a["out"], (), x.jump, x.lo, x.hi), params, x.channels * a["out"], formula)


# ----------------------------------------------------------------------------- merges

MERGE_ARGS = Record([
    Field("with", OneOf(Str(), ListOf(Str(), min_len=1)), default=REQUIRED,
          help="name(s) of earlier layer outputs merged with the previous output"),
], title="merge", shorthand="with")


def merged(xs: list[Tensor], channels: int) -> Tensor:
    """Exact through branches: each value sees the union of what the merged paths see."""
    jump = tuple(min(j) for j in zip(*(x.jump for x in xs)))
    return Tensor(channels, xs[0].spatial, jump, *T.merge(xs))


def _concat_infer(a: dict, xs: list[Tensor], ctx: LayerCtx) -> Outcome:
    first = xs[0]
    for x in xs[1:]:
        if x.spatial != first.spatial:
            raise ctx.fail(f"cannot concatenate {fmt_shape(first.shape)} with {fmt_shape(x.shape)}: "
                           "spatial sizes differ", "make both branches reach the same size "
                           "(padding: same; input sizes the network accepts, see summarize)")
    channels = sum(x.channels for x in xs)
    note = " + ".join(str(x.channels) for x in xs) + f" = {channels} channels"
    return Outcome(merged(xs, channels), note=note)


def _add_infer(a: dict, xs: list[Tensor], ctx: LayerCtx) -> Outcome:
    first = xs[0]
    for x in xs[1:]:
        if x.shape != first.shape:
            raise ctx.fail(f"cannot add {fmt_shape(first.shape)} and {fmt_shape(x.shape)}: shapes differ",
                           "add needs equal channels and sizes (use a 1×1 conv or concat)")
    return Outcome(merged(xs, first.channels), note=f"sum of {len(xs)} tensors")


# ----------------------------------------------------------------------------- posterior

POSTERIOR_ARGS = Record([
    Field("kernel", PerAxis(_POS), default=REQUIRED,
          help="odd taps per axis of the residual filter h, e.g. [5, 1]: 5 traces × 1 sample"),
    Field("with", Choice("input"), default="input", help="the noisy samples it weighs: the network input"),
], title="posterior", shorthand="kernel")


def _posterior_infer(a: dict, xs: list[Tensor], ctx: LayerCtx) -> Outcome:
    p, x = xs
    _spatial_input(p, ctx)
    kernel = a["kernel"]
    if p.shape != x.shape:
        raise ctx.fail(f"weighs the residual input − prediction sample by sample, but the prediction is "
                       f"{fmt_shape(p.shape)} and the input {fmt_shape(x.shape)}",
                       f"give the layer before it {x.channels} channel(s) at the input's size (padding: same)")
    if any(k % 2 == 0 for k in kernel):
        raise ctx.fail(f"kernel {list(kernel)} must be odd along every axis (centred on the sample)",
                       "use odd sizes, e.g. [5, 1]")
    both = merged([p, x], p.channels)
    ones = (1,) * len(kernel)
    sizes, pads, _ = _window(both, ctx, kernel, ones, ones, "same")
    out = _after_window(both, p.channels, sizes, kernel, ones, ones, pads)
    note = (f"p + h∗(x − p), {'×'.join(map(str, kernel))} taps fitted after each epoch from the noise measured "
            "on the input (geocnn.selfsup.posterior), not trained")
    return Outcome(out, 0, _prod(sizes) * p.channels * _prod(kernel), note=note)


# ----------------------------------------------------------------------------- projection shortcut

def _body_stride(body_out: Tensor, x: Tensor, ctx: LayerCtx) -> tuple[int, ...]:
    """The body's own stride per axis: the ratio of sample spacings (jumps) after and before it.

    This is the product of the strides along the body, so a 1×1 projection with it samples the
    positions the body's windows start on, whatever the input size.
    """
    stride = []
    for axis, jb, jx in zip(ctx.axes, body_out.jump, x.jump):
        ratio = jb / jx
        if ratio.denominator != 1:
            raise ctx.fail(f"the body changes the sample spacing along {axis} by ×{ratio} (it upsamples), "
                           "which no 1×1 projection can follow", "give shortcut layers explicitly")
        stride.append(int(ratio))
    return tuple(stride)


def projection_infer(body_out: Tensor, x: Tensor, ctx: LayerCtx, norm: bool = False
                     ) -> tuple[Outcome, tuple[int, ...] | None]:
    """``shortcut: auto`` / ``auto_norm``: identity when shapes agree, else a learned 1×1 projection
    with the body's stride (``auto_norm``: without bias, followed by batch norm, as in ResNet).

    Returns the outcome and the projection's stride (None for identity).
    """
    if body_out.shape == x.shape:
        return Outcome(x, note="identity shortcut: body keeps the shape"), None
    if x.flat or body_out.flat:
        raise ctx.fail(f"cannot project {fmt_shape(x.shape)} onto {fmt_shape(body_out.shape)}",
                       "residual blocks need spatial tensors on both paths")
    stride = _body_stride(body_out, x, ctx)
    for axis, n, m, s in zip(ctx.axes, x.spatial, body_out.spatial, stride):
        if (n - 1) // s + 1 != m:
            raise ctx.fail(f"a 1×1 projection with the body's stride {s} maps {axis} {n} onto {(n - 1) // s + 1}, "
                           f"but the body gives {m} (body output {fmt_shape(body_out.shape)})",
                           "use padding: same in the body, or give shortcut layers explicitly")
    dims = len(stride)
    a = {"out": body_out.channels, "kernel": (1,) * dims, "stride": stride, "padding": "valid",
         "dilation": (1,) * dims, "groups": 1, "bias": not norm, "padding_mode": "zeros"}
    res = _conv_infer(a, [x], ctx)  # its skipped samples are a note where the body reads them (shapes.py)
    if norm:
        res.params += 2 * body_out.channels
        res.formula = f"1·{x.channels}·{body_out.channels} + 2·{body_out.channels} = {res.params:,}"
    why = []
    if x.channels != body_out.channels:
        why.append(f"channels {x.channels}→{body_out.channels}")
    if any(s > 1 for s in stride):
        why.append(f"stride {'×'.join(map(str, stride))}")
    how = "1×1 conv without bias + batch norm" if norm else "learned 1×1 conv"
    res.note = f"projection shortcut, {how}: " + ", ".join(why)
    return res, stride


# ----------------------------------------------------------------------------- the registry

_KINDS: list[Kind] = [
    Kind("conv", "convolution: N_y = floor((N_x + 2·pad − N_h)/stride + 1)", CONV_ARGS, _conv_infer),
    Kind("conv_transpose", "transposed convolution (learned upsampling)", CONV_T_ARGS, _conv_t_infer),
    Kind("upsample", "parameter-free upsampling", UPSAMPLE_ARGS, _upsample_infer),
    Kind("pool", "max or mean pooling, per channel, no parameters", POOL_ARGS, _pool_infer),
    Kind("adaptive_pool", "max or mean pooling to a fixed output size, for any input size", ADAPTIVE_POOL_ARGS,
         _adaptive_pool_infer),
    Kind("global_pool", "max or mean over all positions → flat vector", GLOBAL_POOL_ARGS, _global_pool_infer),
    Kind("norm", "batch, instance or group normalisation", NORM_ARGS, _norm_infer),
    Kind("dropout", "randomly zero values while training", DROPOUT_ARGS, _same_infer("dropout")),
    Kind("flatten", "(C, ...) → flat vector", _NO_ARGS, _flatten_infer),
    Kind("dense", "fully connected layer: N_in·N_out + N_out parameters", DENSE_ARGS, _dense_infer),
    Kind("concat", "concatenate channels with earlier outputs (U-Net skip)", MERGE_ARGS, _concat_infer, merge=True),
    Kind("add", "sum with earlier outputs of the same shape", MERGE_ARGS, _add_infer, merge=True),
    Kind("posterior", "a blind denoiser's Bayesian step: its prediction p plus fitted taps h on the residual "
         "x − p around each sample (denoise_self)", POSTERIOR_ARGS, _posterior_infer, merge=True),
]
_KINDS += [Kind(name, _ACT_HELP[name], _ACT_ARGS.get(name, _NO_ARGS), _same_infer(name)) for name in ACTIVATIONS]

KINDS: dict[str, Kind] = {k.name: k for k in _KINDS}
"""Every built-in layer kind, by its YAML name. Closed: YAML cannot add to it; each has its torch
builder under the same name in :data:`geocnn.model.builders.BUILDERS`."""

COMPOSITE = ("residual", "repeat")
"""Kinds that hold other layers; expanded by :mod:`geocnn.model.spec`."""
