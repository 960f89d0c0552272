"""The torch side of the layer registry: one builder per layer kind, keyed by its YAML name.

:data:`geocnn.model.layers.KINDS` holds the analytic part of each kind (arguments, shapes,
parameters, receptive field) and imports no torch; :data:`BUILDERS` holds, under the same names,
the function that makes its ``torch.nn`` module from the checked arguments and the input records
the shape walk computed. Only building a network (:mod:`geocnn.model.network`) reads this module,
so validating a config or summarising a model never imports torch. The two registries cover
exactly the same kinds (tests/test_spec.py checks it).
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from geocnn.model import modules as M
from geocnn.model.layers import ACTIVATIONS, blind_taps, conv_t_pads, norm_padding, pool_stride
from geocnn.model.tensor import Tensor

Builder = Callable[[dict, list[Tensor], int], nn.Module]
"""(checked arguments, input records, spatial dims) → the layer's module."""


def _conv(a: dict, xs: list[Tensor], dims: int) -> nn.Module:
    return M.Conv(dims, xs[0].channels, a["out"], a["kernel"], a["stride"], norm_padding(a, dims),
                  a["dilation"], a["groups"], a["bias"], a["padding_mode"], blind_taps(a, None))


def _conv_transpose(a: dict, xs: list[Tensor], dims: int) -> nn.Module:
    pad, opad = conv_t_pads(a, None, dims)
    return M.ConvTranspose(dims, xs[0].channels, a["out"], a["kernel"], a["stride"], pad, opad,
                           a["dilation"], a["groups"], a["bias"])


def _upsample(a: dict, xs: list[Tensor], dims: int) -> nn.Module:
    mode = a["mode"] if a["mode"] == "nearest" else ("linear", "bilinear", "trilinear")[dims - 1]
    kw = {} if mode == "nearest" else {"align_corners": False}
    return nn.Upsample(scale_factor=tuple(float(s) for s in a["scale"]), mode=mode, **kw)


def _pool(a: dict, xs: list[Tensor], dims: int) -> nn.Module:
    return M.Pool(dims, a["kind"], a["size"], pool_stride(a), norm_padding(a, dims))


def _adaptive_pool(a: dict, xs: list[Tensor], dims: int) -> nn.Module:
    if a["kind"] == "max":
        return (nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d)[dims - 1](tuple(a["size"]))
    return (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d)[dims - 1](tuple(a["size"]))


def _global_pool(a: dict, xs: list[Tensor], dims: int) -> nn.Module:
    return M.GlobalPool(a["kind"])


def _norm(a: dict, xs: list[Tensor], dims: int) -> nn.Module:
    c = xs[0].channels
    if a["kind"] == "group":
        return nn.GroupNorm(a["groups"], c, eps=a["eps"], affine=a["affine"])
    if a["kind"] == "batch":
        # after dense/flatten the tensor is (B, C): BatchNorm1d, whatever the model's dims
        cls = nn.BatchNorm1d if xs[0].flat else (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)[dims - 1]
        return cls(c, eps=a["eps"], momentum=a["momentum"], affine=a["affine"])
    cls = (nn.InstanceNorm1d, nn.InstanceNorm2d, nn.InstanceNorm3d)[dims - 1]
    return cls(c, eps=a["eps"], affine=a["affine"])


def activation_module(name: str, a: dict | None = None) -> nn.Module:
    """The torch module of an activation kind (also used for residual blocks, where ``none`` is one)."""
    a = a or {}
    if name == "leaky_relu":
        return nn.LeakyReLU(a.get("slope", 0.01))
    if name == "elu":
        return nn.ELU(a.get("alpha", 1.0))
    if name == "softmax":
        return M.Softmax()
    return {"relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid,
            "none": nn.Identity}[name]()


def _activation(name: str) -> Builder:
    return lambda a, xs, dims: activation_module(name, a)


def _dropout(a: dict, xs: list[Tensor], dims: int) -> nn.Module:
    if a["spatial"] and not xs[0].flat:
        return (nn.Dropout1d, nn.Dropout2d, nn.Dropout3d)[dims - 1](a["p"])
    return nn.Dropout(a["p"])


def _dense(a: dict, xs: list[Tensor], dims: int) -> nn.Module:
    return nn.Linear(xs[0].channels, a["out"], bias=a["bias"])


def _posterior(a: dict, xs: list[Tensor], dims: int) -> nn.Module:
    return M.Posterior(dims, xs[0].channels, a["kernel"])


def _module(cls: type[nn.Module]) -> Builder:
    return lambda a, xs, dims: cls()


def projection_build(cin: int, cout: int, stride: tuple[int, ...], dims: int, norm: bool = False) -> nn.Module:
    """The learned 1×1 projection of ``shortcut: auto`` / ``auto_norm`` (:func:`geocnn.model.layers.projection_infer`)."""
    conv = M.Conv(dims, cin, cout, (1,) * dims, stride, (0,) * dims, (1,) * dims, 1, not norm, "zeros")
    if not norm:
        return conv
    return nn.Sequential(conv, (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)[dims - 1](cout))


BUILDERS: dict[str, Builder] = {
    "conv": _conv,
    "conv_transpose": _conv_transpose,
    "upsample": _upsample,
    "pool": _pool,
    "adaptive_pool": _adaptive_pool,
    "global_pool": _global_pool,
    "norm": _norm,
    "dropout": _dropout,
    "flatten": _module(M.Flatten),
    "dense": _dense,
    "concat": _module(M.Concat),
    "add": _module(M.Add),
    "posterior": _posterior,
    **{name: _activation(name) for name in ACTIVATIONS},
}
"""The torch builder of every kind of :data:`geocnn.model.layers.KINDS`, by the same name."""
