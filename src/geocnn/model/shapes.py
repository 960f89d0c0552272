"""Analytic shape walk: every layer's output shape, parameters, multiply-adds and receptive field.

Computed from the spec alone, before any module exists, with the lecture's formulas; the summary
prints these records and the builder reads them, so the two cannot disagree. Tests check them
against a real forward pass.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

from geocnn.errors import ConfigError, ShapeError
from geocnn.fmt import fmt_shape
from geocnn.model.layers import KINDS, LayerCtx, Outcome, Unread, merged, projection_infer
from geocnn.model.spec import NETWORK_INPUT, ModelSpec, Node
from geocnn.model.tensor import MAX_AXIS_VALUES, MAX_HELD, Tensor, TooLarge, input_tensor


@dataclass
class LayerRecord:
    """What one row of the summary says about one layer."""

    index: int
    name: str
    kind: str
    depth: int
    role: str
    where: str
    output_shape: tuple[int, ...]
    params: int
    macs: int
    rf: tuple[int, ...]
    jump: tuple[Fraction, ...]
    formula: str = ""
    note: str = ""
    warnings: list[str] = field(default_factory=list)
    new_tensor: bool = True  # False for identity shortcuts (no memory of their own)
    projection_stride: tuple[int, ...] | None = None
    trainable: bool = True

    @property
    def receptive_field(self) -> list[int]:
        """Whole input samples seen by one output value, per axis."""
        return list(self.rf)

    @property
    def jumps(self) -> list[int | float]:
        return [int(j) if j.denominator == 1 else float(j) for j in self.jump]

    @property
    def numel(self) -> int:
        return math.prod(self.output_shape)


@dataclass
class Inference:
    """The records of a whole network for one input shape."""

    spec: ModelSpec
    input: Tensor
    records: list[LayerRecord]
    tensors: dict[str, Tensor]
    output: Tensor

    def record(self, index: int) -> LayerRecord:
        return self._by_index[index]

    def __post_init__(self) -> None:
        self._by_index = {r.index: r for r in self.records}

    @property
    def warnings(self) -> list[str]:
        return [f"layer {r.index} '{r.name}': {w}" for r in self.records for w in r.warnings]

    @property
    def output_record(self) -> LayerRecord:
        """The record of the layer whose output is the network's output."""
        last = self.spec.layers[-1].name
        return next(r for r in self.records if r.name == last)

    @property
    def dropped(self) -> bool:
        return any(r.warnings for r in self.records)


class _Walk:
    def __init__(self, spec: ModelSpec) -> None:
        self.spec = spec
        self.records: dict[int, LayerRecord] = {}
        self.tensors: dict[str, Tensor] = {}
        self.output: Tensor | None = None
        self.held = 0  # positions the walk's tensors hold, all axes
        self.alias: dict[str, str] = {}  # a residual block's ``name:input`` → the tensor it is
        self.readers: dict[str, list[tuple[int, list[Unread]]]] = {}  # tensor → (layer, samples it skips)

    def ctx(self, node: Node) -> LayerCtx:
        return LayerCtx(node.index, node.name, node.kind, node.where, self.spec.axes)

    def add(self, node: Node, o: Outcome, reads: tuple[str, ...] = (), **extra) -> Tensor:
        """Record one layer; ``reads`` names the tensors it reads (a residual block reads through its paths)."""
        self.records[node.index] = LayerRecord(
            node.index, node.name, node.kind, node.depth, node.role, node.where, o.out.shape, o.params,
            o.macs, o.out.rf, o.out.jump, o.formula, o.note, **extra)
        self.tensors[node.name] = o.out
        for i, name in enumerate(reads):
            name = self.alias.get(name, name)
            self.readers.setdefault(name, []).append((node.index, o.unread if i == 0 else []))
        return o.out

    def unread_by_network(self) -> None:
        """Warn about the samples of a tensor that no layer reading it reads (the union over paths).

        A layer that skips samples another path reads (a 1×1 stride-2 shortcut beside the body's
        3×3 stride-2 conv) gets a note instead: nothing is lost. Exact per axis, as every layer kind
        is separable.
        """
        for readers in self.readers.values():
            skipped: dict[int, set[int]] = {}
            for _, unread in readers:
                for u in unread:
                    skipped.setdefault(u.axis_index, set()).update(u.positions.tolist())
            dropped = {a: set(p) for a, p in skipped.items()}
            for _, unread in readers:
                axes = {u.axis_index: set(u.positions.tolist()) for u in unread}
                for a in dropped:
                    dropped[a] &= axes.get(a, set())
            for index, unread in readers:
                record, read_elsewhere = self.records[index], []
                for u in unread:
                    lost = np.array(sorted(dropped[u.axis_index] & set(u.positions.tolist())), dtype=np.int64)
                    if len(lost):
                        record.warnings.append(u.warning(lost))
                    else:
                        read_elsewhere.append(u)
                if read_elsewhere:
                    record.note = "; ".join(p for p in (record.note, _skip_note(record, read_elsewhere)) if p)

    def graph(self, nodes: list[Node]) -> Tensor:
        out = None
        for node in nodes:
            try:
                out = self.node(node)
                self.hold(node, out)
            except TooLarge as exc:
                raise _too_large(self.ctx(node), exc) from None
            except ShapeError as exc:
                if node.origin and "(in block" not in exc.problem:
                    exc.problem += f" (in {node.origin})"
                raise
        return out

    def hold(self, node: Node, out: Tensor) -> None:
        """Count what the walk keeps, so a network of huge layers stops before memory runs out."""
        self.held += sum(out.spatial)
        if self.held > MAX_HELD:
            raise self.ctx(node).fail(f"the shape walk would hold {self.held:,} positions up to here, more than "
                                      f"{MAX_HELD:,}", "use a smaller input shape")

    def node(self, node: Node) -> Tensor:
        xs = [self.tensors[n] for n in node.inputs]
        if node.kind == "residual":
            return self.residual(node, xs[0])
        if node.kind == "identity":
            return self.add(node, Outcome(xs[0], note="identity shortcut"), node.inputs, new_tensor=False)
        return self.add(node, KINDS[node.kind].infer(node.args, xs, self.ctx(node)), node.inputs)

    def residual(self, node: Node, x: Tensor) -> Tensor:
        ctx = self.ctx(node)
        self.tensors[f"{node.name}:input"] = x
        self.alias[f"{node.name}:input"] = self.alias.get(node.inputs[0], node.inputs[0])
        body = self.graph(node.body)
        sc_node = node.shortcut[0]
        if sc_node.kind == "projection":
            outcome, stride = projection_infer(body, x, self.ctx(sc_node), sc_node.args.get("norm", False))
            shortcut = self.add(sc_node, outcome, sc_node.inputs, new_tensor=stride is not None,
                                projection_stride=stride)
            how = "projection" if stride else "identity"
        else:
            shortcut = self.graph(node.shortcut)
            how = "identity" if sc_node.kind == "identity" else "explicit shortcut layers"
        if body.shape != shortcut.shape:
            fix = ("use shortcut: auto (learned 1×1 projection) or keep the shape in the body"
                   if sc_node.kind == "identity" else "make the shortcut layers produce the body's shape")
            raise ctx.fail(f"body gives {fmt_shape(body.shape)} but the {how} shortcut gives "
                           f"{fmt_shape(shortcut.shape)}", fix)
        out = merged([body, shortcut], body.channels)
        act = node.args["activation"]
        sigma = "" if act == "none" else act
        note = f"a = {sigma}(f_θ(a) + {how if how != 'identity' else 'a'})" if sigma else \
            f"a = f_θ(a) + {how if how != 'identity' else 'a'}"
        inner = sum(r.params for r in self.records.values() if r.name.startswith(node.name + "."))
        note += f"; {inner:,} parameters inside"
        return self.add(node, Outcome(out, note=note))


def _skip_note(record: LayerRecord, skipped: list[Unread]) -> str:
    """The note of a layer that skips samples other paths read: ``skips 28 of 56 … along height, width``."""
    counts = {(len(u.positions), u.n) for u in skipped}
    if len(counts) == 1:
        (count, n), = counts
        text = f"skips {count} of {n} samples along {', '.join(u.axis for u in skipped)}"
    else:
        text = "skips " + ", ".join(f"{len(u.positions)} of {u.n} samples along {u.axis}" for u in skipped)
    if record.role == "shortcut":  # the known ResNet-B shortcut, and ResNet-D's fix
        return text + ", which the body reads (ResNet-B; ResNet-D's average pool lets the shortcut read them)"
    return text + ", which other paths read"


def _too_large(ctx: LayerCtx, exc: TooLarge) -> ShapeError:
    """The analytic pass's size limit, as an error naming the layer that passed it."""
    return ctx.fail(f"{exc.positions:,} output positions × {exc.taps:,} window taps on one axis is more than "
                    f"geocnn's shape walk handles ({MAX_AXIS_VALUES:,})",
                    "use a smaller input shape, kernel or upsampling factor")


def _walk(spec: ModelSpec, spatial: tuple[int, ...]) -> _Walk:
    walk = _Walk(spec)
    try:
        walk.tensors[NETWORK_INPUT] = input_tensor(spec.in_channels, spatial)
    except TooLarge:
        raise ShapeError(f"input shape {fmt_shape(spatial)} has more than {MAX_AXIS_VALUES:,} samples on an axis",
                         where=spec.path, fix="use a smaller input shape (patches or windows of the grid)") from None
    try:
        walk.output = walk.graph(spec.layers)
    except ShapeError as exc:
        walk.unread_by_network()
        exc.records = sorted(walk.records.values(), key=lambda r: r.index)
        raise
    walk.unread_by_network()
    return walk


def _unclipped_rf(spec: ModelSpec, spatial: tuple[int, ...], records: list[LayerRecord]) -> None:
    """Replace edge-clipped receptive fields by those of an input large enough to have an interior.

    The receptive field of a layer is that of a value far from the edges; on a small input every
    value is clipped by the edges. The walk is repeated on a larger input with the same size
    modulo the total stride (so the same padding and merges), and the records take its values.
    Values after flatten/global pooling see the whole input, and the windows of adaptive pooling
    grow with the input: from the first adaptive pooling on, records keep the input size's values.
    """
    adaptive = min((r.index for r in records if r.kind == "adaptive_pool"), default=None)
    spatial_records = [r for r in records if len(r.output_shape) > 1 and (adaptive is None or r.index < adaptive)]
    if not spatial_records:
        return
    period = _downsampling(spec)
    margin = max(max(r.rf) for r in spatial_records)
    for _ in range(8):
        virtual = tuple(n + p * -(-(4 * margin + 8 * p) // p) for n, p in zip(spatial, period))
        try:
            walk = _walk(spec, virtual)
        except ShapeError:
            return
        widest = max(max(walk.records[r.index].rf) for r in spatial_records)
        if 2 * widest + 4 * max(period) <= min(virtual):
            for r in spatial_records:
                r.rf = walk.records[r.index].rf
            return
        margin = widest


def infer(spec: ModelSpec, input_shape: tuple[int, ...], receptive: bool = True) -> Inference:
    """Walk the network for one spatial ``input_shape``.

    Raises :class:`ShapeError` naming the layer, its YAML position and the shapes; the error
    carries the records computed before the failure so a summary can still be printed.
    ``receptive=False`` skips the (unclipped) receptive-field pass when only shapes matter.
    """
    if len(input_shape) != spec.dims:
        raise ConfigError(f"input shape {fmt_shape(input_shape)} has {len(input_shape)} spatial axes but "
                          f"the model has dims {spec.dims}", where=spec.path,
                          fix=f"give {spec.dims} sizes after the channel count")
    walk = _walk(spec, tuple(input_shape))
    records = sorted(walk.records.values(), key=lambda r: r.index)
    if receptive:
        _unclipped_rf(spec, tuple(input_shape), records)
    return Inference(spec, walk.tensors[NETWORK_INPUT], records, walk.tensors, walk.output)


def _dense_inputs(inf: Inference) -> dict[int, tuple[int, ...]]:
    """Outputs of flatten layers: a dense head after them fixes these sizes."""
    return {r.index: r.output_shape for r in inf.records if r.kind == "flatten"}


def accepts(spec: ModelSpec, shape: tuple[int, ...], reference: tuple[int, ...] | None = None) -> bool:
    """True when the network runs on this spatial size and every layer reads every sample it is given.

    With ``reference`` (the size the network was built for), flattened sizes must also equal
    the reference ones, since the dense layers after them have fixed weights.
    """
    try:
        inf = infer(spec, shape, receptive=False)
        if inf.dropped:
            return False
        if reference is not None:
            return _dense_inputs(inf) == _dense_inputs(infer(spec, reference, receptive=False))
        return True
    except ShapeError:
        return False


def _downsampling(spec: ModelSpec) -> list[int]:
    """Product of all strides per axis: the period candidate of the valid sizes."""
    total = [1] * spec.dims
    for node in spec.nodes():
        stride = node.args.get("stride") if node.kind in ("conv", "pool") else None
        if node.kind == "pool" and stride is None:
            stride = node.args["size"]
        for i, s in enumerate(stride or ()):
            total[i] *= s
    return total


def _rule(valid: list[int], limit: int) -> str:
    if not valid:
        return f"no size up to {limit} works"
    first, ok = valid[0], set(valid)
    if valid[-1] < limit and valid[-1] - first + 1 == len(valid) and len(valid) > 2:
        return f"{first} to {valid[-1]}"  # a dense head after flatten: one flattened size
    for p in range(1, limit + 1):
        if all((n in ok) == ((n - first) % p == 0) for n in range(first, limit + 1)):
            if p > limit - first:
                return f"exactly {first}"
            if p == 1:
                return f"any size ≥ {first}"
            if first % p == 0:
                return f"multiples of {p}" + (f" (≥ {first})" if first > p else "")
            return f"{first} + {p}·k (k ≥ 0)"
    shown = ", ".join(map(str, valid[:8]))
    return f"only {shown}{', …' if len(valid) > 8 else ''}"


def size_rules(spec: ModelSpec, reference: tuple[int, ...] | None = None, limit: int | None = None) -> list[str]:
    """Which sizes each spatial axis accepts (no errors, no dropped samples), as text.

    Other axes are held at the reference size, or at the smallest size that works for all of
    them. Brute force over sizes up to ``limit`` (enough to see the period of the strides).
    """
    period = _downsampling(spec)
    limit = limit or max(96, 4 * max(period) + 64, *(n + 2 * max(period) for n in reference or ()))
    if reference is not None and not accepts(spec, reference):
        reference = None  # a size the network refuses fixes no dense input sizes
    if reference is not None:
        base = list(reference)
    else:
        cube = next((n for n in range(1, limit + 1) if accepts(spec, (n,) * spec.dims, reference)), None)
        if cube is None:
            return [f"{axis}: no size up to {limit} works" for axis in spec.axes]
        base = [cube] * spec.dims
    rules = []
    for i, axis in enumerate(spec.axes):
        valid = [n for n in range(1, limit + 1)
                 if accepts(spec, tuple(n if j == i else base[j] for j in range(spec.dims)), reference)]
        rules.append(f"{axis}: {_rule(valid, limit)}")
    return rules


def nearest_accepted(spec: ModelSpec, shape: tuple[int, ...], reference: tuple[int, ...] | None = None,
                     limit: int = 4096) -> tuple[int, ...] | None:
    """The smallest shape ≥ ``shape`` (per axis) the network accepts, or None."""
    if reference is not None and not accepts(spec, reference):
        reference = None  # a size the network refuses fixes no dense input sizes
    if accepts(spec, tuple(shape), reference):
        return tuple(shape)
    base = reference if reference is not None else next(
        ((n,) * spec.dims for n in range(1, 257) if accepts(spec, (n,) * spec.dims, reference)), None)
    if base is None:
        return None
    sizes = []
    for i in range(spec.dims):
        n = next((n for n in range(shape[i], limit + 1)
                  if accepts(spec, tuple(n if j == i else base[j] for j in range(spec.dims)), reference)), None)
        if n is None:
            return None
        sizes.append(n)
    return tuple(sizes) if accepts(spec, tuple(sizes), reference) else None
