"""Spec → ``torch.nn.Module``, reading the analytic records so shapes are never recomputed."""

from __future__ import annotations

from torch import nn

from geocnn.model import modules as M
from geocnn.model.budget import check_fits
from geocnn.model.builders import BUILDERS, activation_module, projection_build
from geocnn.model.shapes import Inference, infer
from geocnn.model.spec import NETWORK_INPUT, ModelSpec, Node


def _graph(nodes: list[Node], graph_input: str, inf: Inference) -> M.Graph:
    ids = {graph_input: -1}
    steps, inputs = [], []
    for node in nodes:
        inputs.append(tuple(ids[n] for n in node.inputs))
        ids[node.name] = len(steps)
        steps.append(_module(node, inf))
    return M.Graph(steps, inputs)


def _module(node: Node, inf: Inference) -> nn.Module:
    dims = inf.spec.dims
    xs = [inf.tensors[n] for n in node.inputs]
    if node.kind == "residual":
        graph_input = f"{node.name}:input"
        body = _graph(node.body, graph_input, inf)
        sc = node.shortcut[0]
        if len(node.shortcut) == 1 and sc.kind in ("identity", "projection"):
            shortcut = _module(sc, inf)
        else:
            shortcut = _graph(node.shortcut, graph_input, inf)
        return M.Residual(body, shortcut, activation_module(node.args["activation"]))
    if node.kind == "identity":
        return nn.Identity()
    if node.kind == "projection":
        stride = inf.record(node.index).projection_stride
        if stride is None:
            return nn.Identity()
        return projection_build(xs[0].channels, inf.tensors[node.name].channels, stride, dims,
                                node.args.get("norm", False))
    return BUILDERS[node.kind](node.args, xs, dims)


def build(spec: ModelSpec, input_shape: tuple[int, ...], receptive: bool = True) -> tuple[nn.Module, Inference]:
    """The network as a module, plus the records it was built from.

    ``input_shape`` is spatial; fully convolutional networks then run on any size
    :func:`geocnn.model.shapes.accepts`, networks with a dense head only on this one.
    ``receptive=False`` skips the unclipped receptive fields of the records (the module needs none).
    """
    inf = infer(spec, input_shape, receptive)
    check_fits(inf)
    return _graph(spec.layers, NETWORK_INPUT, inf), inf
