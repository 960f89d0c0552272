"""Transfer learning: start a run from another run's weights, and freeze layers.

Weights are matched by *layer name* — the names of the model YAML and ``geocnn summarize``
(``enc1.conv1``) — not by module position, so a fine-tuning model may add, drop or resize
layers: a layer is loaded when the checkpoint has a layer of that name whose tensors all have
the same shapes, skipped when a shape differs (a head with another class count keeps its fresh
weights), and new when the checkpoint has no such layer.

Frozen layers get ``requires_grad=False`` before the optimizer and DistributedDataParallel
see the parameters, so they are neither updated nor all-reduced; their normalisation layers
keep their stored statistics (they run as in evaluation), so a frozen layer is bit-identical
after training.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from geocnn.errors import ConfigError
from geocnn.fmt import fmt_shape
from geocnn.model import ModelSpec, Node, parse_model
from geocnn.model.spec import frozen_layers
from geocnn.runs import checkpoint as runs
from geocnn.yamlsource import Source

log = logging.getLogger(__name__)


# ----------------------------------------------------------------------------- names

def _prefixes(nodes: Sequence[Node], base: str = "") -> Iterator[tuple[str, Node]]:
    """(module path, node) of every leaf layer, mirroring how :func:`geocnn.model.build` nests them."""
    for i, node in enumerate(nodes):
        path = f"{base}steps.{i}"
        if node.kind != "residual":
            yield path, node
            continue
        yield from _prefixes(node.body, f"{path}.body.")
        sc = node.shortcut
        if len(sc) == 1 and sc[0].kind in ("identity", "projection"):
            yield f"{path}.shortcut", sc[0]
        else:
            yield from _prefixes(sc, f"{path}.shortcut.")


def tensor_names(spec: ModelSpec, keys: Sequence[str]) -> dict[str, tuple[str, str]]:
    """State-dict key → (layer name, tensor name within it), e.g. ``steps.0.conv.weight`` →
    (``enc1.conv1``, ``conv.weight``)."""
    paths = dict(_prefixes(spec.layers))
    out = {}
    for key in keys:
        parts = key.split(".")
        # the longest module path that is a layer's (``steps.3.body.steps.1`` before ``steps.3``)
        for k in range(len(parts) - 1, 0, -1):
            node = paths.get(".".join(parts[:k]))
            if node is not None:
                out[key] = (node.name, ".".join(parts[k:]))
                break
        else:
            out[key] = (key, "")
    return out


def _by_layer(spec: ModelSpec, state: dict) -> dict[str, dict[str, tuple[str, torch.Tensor]]]:
    """layer name → {tensor name: (state-dict key, tensor)}."""
    out: dict[str, dict[str, tuple[str, torch.Tensor]]] = {}
    for key, (layer, tensor) in tensor_names(spec, list(state)).items():
        out.setdefault(layer, {})[tensor] = (key, state[key])
    return out


# ----------------------------------------------------------------------------- init_from

@dataclass(frozen=True)
class LayerInit:
    """What happened to one layer: loaded, skipped (shape mismatch), new, or unused (only in the checkpoint)."""

    layer: str
    status: str
    shapes: str  # the model's tensor shapes, e.g. "conv.weight 8×1×3×3×3, conv.bias 8"
    source_shapes: str  # the checkpoint's, where it has the layer


@dataclass(frozen=True)
class InitReport:
    """The layer-by-layer result of ``train.init_from`` (written to the run folder as init.json)."""

    source: str
    layers: tuple[LayerInit, ...]

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.layers)

    def to_json(self) -> dict:
        return {"source": self.source,
                "counts": {s: self.count(s) for s in ("loaded", "skipped", "new", "unused")},
                "layers": [vars(r) for r in self.layers]}

    def lines(self) -> list[str]:
        """The report as a plain-text table (one line per layer), for the log."""
        rows = [("layer", "status", "shapes", "checkpoint")] + [
            (r.layer, r.status, r.shapes, r.source_shapes) for r in self.layers]
        widths = [max(len(row[i]) for row in rows) for i in range(3)]
        return [f"{a:<{widths[0]}}  {b:<{widths[1]}}  {c:<{widths[2]}}  {d}".rstrip() for a, b, c, d in rows]


def _shapes(tensors: dict[str, tuple[str, torch.Tensor]]) -> str:
    return ", ".join(f"{name} {fmt_shape(tuple(t.shape)) or 'scalar'}" for name, (_, t) in tensors.items())


def load_source(path: str) -> tuple[runs.Checkpoint, Path]:
    """The checkpoint ``train.init_from`` names: a run folder (its best.pt, else last.pt) or a .pt file."""
    p = Path(path)
    if not p.exists():
        raise ConfigError("train.init_from: no such run folder or checkpoint", where=path,
                          fix="give a run folder written by geocnn train, or one of its checkpoints/*.pt")
    file = runs.resolve_checkpoint(p, "best")
    return runs.load_checkpoint(file), file


def init_weights(model: nn.Module, spec: ModelSpec, ckpt: runs.Checkpoint, source: str) -> InitReport:
    """Copy the checkpoint's layers into ``model`` where names and all shapes match; report each layer."""
    src_spec = parse_model(ckpt.config.get("model"), Source(source), ("model",))
    state = model.state_dict()
    mine, theirs = _by_layer(spec, state), _by_layer(src_spec, ckpt.model_state)
    rows = []
    for layer, tensors in mine.items():
        other = theirs.get(layer)
        if other is None:
            rows.append(LayerInit(layer, "new", _shapes(tensors), ""))
            continue
        same = set(other) == set(tensors) and all(other[n][1].shape == t.shape for n, (_, t) in tensors.items())
        if same:
            for name, (key, _) in tensors.items():
                state[key] = other[name][1].to(state[key].dtype)
        rows.append(LayerInit(layer, "loaded" if same else "skipped", _shapes(tensors), _shapes(other)))
    rows += [LayerInit(layer, "unused", "", _shapes(t)) for layer, t in theirs.items() if layer not in mine]
    model.load_state_dict(state)
    return InitReport(source, tuple(rows))


# ----------------------------------------------------------------------------- freeze

def freeze(model: nn.Module, spec: ModelSpec, names: Sequence[str]) -> list[str]:
    """Freeze the layers ``names`` select (see :func:`geocnn.config.frozen_layers`); returns them.

    Their parameters stop requiring gradients; their normalisation layers use the stored
    statistics in training too, so nothing in them changes.
    """
    if not names:
        return []
    with_params = {}
    for prefix, node in _prefixes(spec.layers):
        module = model.get_submodule(prefix)
        if any(True for _ in module.parameters()):
            with_params[node.name] = module
    selected = frozen_layers(names, [n.name for n in spec.nodes()])
    for name, layers in selected.items():
        if not any(layer in with_params for layer in layers):
            raise ConfigError(f"train.freeze: {name!r} selects {', '.join(layers)}, which hold no parameters",
                              fix="name layers with weights (conv, norm, dense, ...) or remove the entry")
    frozen = sorted({layer for layers in selected.values() for layer in layers if layer in with_params})
    for layer in frozen:
        module = with_params[layer]
        module.requires_grad_(False)
        for m in module.modules():
            if isinstance(m, nn.modules.batchnorm._NormBase):
                m.register_forward_pre_hook(_stored_statistics)
    if not any(p.requires_grad for p in model.parameters()):
        raise ConfigError("train.freeze freezes every layer: nothing is left to train",
                          fix="freeze fewer layers (e.g. the encoder only)")
    return frozen


def _stored_statistics(module: nn.Module, args) -> None:
    """A frozen normalisation layer normalises with its running statistics and never updates them."""
    module.training = False


def trainable(model: nn.Module) -> list[nn.Parameter]:
    """The parameters the optimizer gets."""
    return [p for p in model.parameters() if p.requires_grad]


def parameter_counts(model: nn.Module) -> tuple[int, int]:
    """(trainable, total) parameters."""
    params = list(model.parameters())
    return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)
