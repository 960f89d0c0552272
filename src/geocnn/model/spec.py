"""The model section of a config, parsed into a flat list of layer nodes.

Grammar (see ``configs/`` for complete examples)::

    model:
      dims: 2                      # 1, 2 or 3 spatial axes
      in_channels: 3               # e.g. three angle stacks
      input_shape: [64, 64]        # optional, for summaries
      axes: [crossline, sample]    # optional axis names (default depth/height/width)
      spacing: ["25 m", "4 ms"]    # optional, receptive field in physical units
      blocks:                      # optional reusable blocks with parameters
        double_conv:
          args: {ch: null}         # null = required
          layers:
            - conv: {out: $ch, kernel: 3, padding: same}
            - relu
      layers:
        - double_conv: {ch: 16, name: enc1}
        - pool: max
        - residual: {body: [...], shortcut: auto}
        - concat: enc1             # merge with a named earlier output
        - conv: {out: 1, kernel: 1}

A layer is a kind name (``relu``) or a one-key mapping ``{kind: args}``; ``name`` and ``from``
may sit beside the kind or inside its arguments. Blocks and ``repeat`` are expanded here, so
every node knows its YAML position, its unique dotted name and the names of its inputs.
Skips refer to names, never to positions, so inserting a layer cannot rewire the network.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from geocnn.errors import ConfigError
from geocnn.model.layers import ACTIVATIONS, COMPOSITE, KINDS
from geocnn.schema import (
    REQUIRED,
    AnyValue,
    Choice,
    Ctx,
    Field,
    Float,
    Int,
    ListOf,
    MapOf,
    OneOf,
    Record,
    Str,
    describe,
    suggest,
)
from geocnn.yamlsource import KeyPath, Source

DEFAULT_AXES = {1: ("length",), 2: ("height", "width"), 3: ("depth", "height", "width")}
NETWORK_INPUT = "input"
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
_MAX_BLOCK_DEPTH = 16
MAX_LAYERS = 1024  # after expanding blocks and repeats (ResNet-152 has ~520); the table takes ~2 ms a row

BLOCK = Record([
    Field("args", MapOf(AnyValue()), default=None,
          help="parameters with default values (null = required), used as $name in the layers"),
    Field("layers", ListOf(AnyValue(), min_len=1), default=REQUIRED, help="the block's layers"),
], title="block")

RESIDUAL_ARGS = Record([
    Field("body", ListOf(AnyValue(), min_len=1), default=REQUIRED, help="main path f_θ: any layers"),
    Field("shortcut", OneOf(Choice("identity", "auto", "auto_norm"), ListOf(AnyValue(), min_len=1)),
          default="auto",
          help="identity, auto (learned 1×1 projection with the body's stride, only where shapes differ), "
               "auto_norm (the same as 1×1 conv without bias + batch norm, as in ResNet) or a list of layers"),
    Field("activation", Choice(*ACTIVATIONS, "none"), default="relu",
          help="σ applied after the sum: a = σ(f_θ(a) + shortcut(a))"),
], title="residual")

REPEAT_ARGS = Record([
    Field("times", Int(min=1), default=REQUIRED, help="how many copies"),
    Field("layers", ListOf(AnyValue(), min_len=1), default=REQUIRED, help="the layers to repeat"),
], title="repeat")

MODEL = Record([
    Field("name", Str(), default=None, help="model name, for summaries and run folders"),
    Field("dims", Int(min=1, max=3), default=REQUIRED, help="number of spatial axes: 1, 2 or 3"),
    Field("in_channels", Int(min=1), default=REQUIRED,
          help="input channels (components, offsets/angles, attributes...)"),
    Field("input_shape", ListOf(Int(min=1), min_len=1, max_len=3), default=None,
          help="spatial input size for summaries, one per axis"),
    Field("axes", ListOf(Str(), min_len=1, max_len=3), default=None, help="names of the spatial axes"),
    Field("spacing", ListOf(OneOf(Float(min=0, exclusive_min=True), Str()), min_len=1, max_len=3),
          default=None, help="physical sample spacing per axis, e.g. ['25 m', '4 ms']"),
    Field("blocks", MapOf(BLOCK), default=None, help="reusable named blocks with parameters"),
    Field("layers", ListOf(AnyValue(), min_len=1), default=REQUIRED, help="the network, in order"),
], title="model")


@dataclass
class Node:
    """One layer of the expanded network (residual blocks keep their paths as children)."""

    index: int
    kind: str
    name: str
    args: dict
    where: str
    inputs: tuple[str, ...]
    depth: int = 0
    role: str = ""
    body: list[Node] = field(default_factory=list)
    shortcut: list[Node] = field(default_factory=list)
    origin: str = ""

    def walk(self):
        """This node and every node inside it, in display order."""
        yield self
        for child in (*self.body, *self.shortcut):
            yield from child.walk()


@dataclass
class ModelSpec:
    """A validated, expanded model: what the shape walk and the builder read."""

    dims: int
    in_channels: int
    layers: list[Node]
    axes: tuple[str, ...]
    input_shape: tuple[int, ...] | None = None
    spacing: tuple[tuple[float, str], ...] | None = None
    name: str | None = None
    path: str = ""
    raw: dict = field(default_factory=dict)

    def nodes(self):
        """Every node in display order (index order)."""
        for n in self.layers:
            yield from n.walk()


@dataclass
class _Scope:
    prefix: str
    graph: int
    graph_input: str
    depth: int
    params: dict[str, tuple[Any, KeyPath]]
    parent: _Scope | None = None
    role: str = ""
    origin: str = ""
    block_depth: int = 0
    locals: dict[str, str] = field(default_factory=dict)
    counters: dict[str, int] = field(default_factory=dict)


def _parse_spacing(values: list, ctx: Ctx) -> tuple[tuple[float, str], ...]:
    out = []
    for i, v in enumerate(values):
        if isinstance(v, str):
            m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*([A-Za-zµ]+)?\s*", v)
            if not m or float(m.group(1)) <= 0:
                raise ctx.at(i).error(f"spacing must be a positive number with an optional unit "
                                      f"such as '4 ms' or '25 m', got {describe(v)}")
            out.append((float(m.group(1)), m.group(2) or ""))
        else:
            out.append((float(v), ""))
    return tuple(out)


class _Expander:
    """Expands blocks, repeats and residuals into nodes with unique names and resolved inputs."""

    def __init__(self, source: Source, base: KeyPath, blocks: dict, dims: int) -> None:
        self.src = source
        self.base = base
        self.blocks = blocks
        self.dims = dims
        self.index = 0
        self.graphs = 0
        self.defined: dict[str, tuple[int, str]] = {}  # qualified name → (graph, where)
        self.alias: dict[str, str] = {}  # block/repeat name → its last layer

    # --- naming and references

    def _ctx(self, kp: KeyPath, prefix: str = "") -> Ctx:
        return Ctx(self.src, kp, prefix, self.dims)

    def _name(self, scope: _Scope, kind: str, given: Any, kp: KeyPath) -> str:
        if given is not None:
            if not isinstance(given, str) or not _NAME.match(given) or given == NETWORK_INPUT:
                raise self._ctx(kp).error(
                    f"layer name must be letters, digits, '_' or '-' (not starting with a digit, "
                    f"not 'input'), got {describe(given)}")
            qualified = scope.prefix + given
            if qualified in self.defined:
                first = self.defined[qualified][1]
                raise self._ctx(kp).error(f"name '{given}' is used twice (first at {first})",
                                          "give every named layer its own name")
            scope.locals[given] = qualified
            return qualified
        n = scope.counters.get(kind, 0)
        while True:
            n += 1
            local = f"{kind}{n}"
            if scope.prefix + local not in self.defined and local not in scope.locals:
                break
        scope.counters[kind] = n
        scope.locals[local] = scope.prefix + local
        return scope.prefix + local

    def _register(self, qualified: str, scope: _Scope, where: str) -> None:
        self.defined[qualified] = (scope.graph, where)

    def _resolve(self, ref: Any, scope: _Scope, kp: KeyPath) -> str:
        if not isinstance(ref, str):
            raise self._ctx(kp).error(f"a reference must be a layer name, got {describe(ref)}")
        if ref == NETWORK_INPUT:
            return scope.graph_input
        s: _Scope | None = scope
        target = None
        while s is not None and target is None:
            found = s.locals.get(ref)
            # a name still being expanded (this layer, an enclosing block) is not an earlier output
            target = found if found in self.defined else None
            s = s.parent
        if target is None and ref in self.defined:
            target = ref
        if target is None:
            visible = sorted({*(k for k, v in scope.locals.items() if v in self.defined),
                              *(k for k, (g, _) in self.defined.items() if g == scope.graph)})
            raise self._ctx(kp).error(f"no earlier layer is named '{ref}'",
                                      suggest(ref, visible + [NETWORK_INPUT]))
        while target in self.alias:
            target = self.alias[target]
        graph = self.defined[target][0]
        if graph != scope.graph:
            raise self._ctx(kp).error(
                f"'{ref}' is outside this residual block: a block's body and shortcut can only use "
                "their own layers and 'input'", "move the merge outside the residual block")
        return target

    # --- parameters of blocks

    def _substitute(self, raw: Any, scope: _Scope, kp: KeyPath) -> Any:
        if isinstance(raw, str) and raw.startswith("$"):
            key = raw[2:-1] if raw.startswith("${") and raw.endswith("}") else raw[1:]
            if key not in scope.params:
                raise self._ctx(kp).error(f"unknown block parameter '{raw}'",
                                          suggest(key, list(scope.params)) if scope.params
                                          else "parameters ($name) only exist inside blocks")
            return scope.params[key][0]
        if isinstance(raw, dict):
            return {k: self._substitute(v, scope, (*kp, k)) for k, v in raw.items()}
        if isinstance(raw, list):
            return [self._substitute(v, scope, (*kp, i)) for i, v in enumerate(raw)]
        return raw

    # --- expansion

    def expand(self, items: list[tuple[Any, KeyPath]], scope: _Scope, prev: str) -> tuple[list[Node], str]:
        nodes: list[Node] = []
        for raw, kp in items:
            if isinstance(raw, str) and raw.startswith("$") and scope.params:
                key = raw[2:-1] if raw.startswith("${") else raw[1:]
                if key in scope.params and isinstance(scope.params[key][0], list):
                    value, pkp = scope.params[key]
                    spliced, prev = self.expand([(v, (*pkp, i)) for i, v in enumerate(value)], scope, prev)
                    nodes += spliced
                    continue
            raw = self._substitute(raw, scope, kp)
            new, prev = self._item(raw, kp, scope, prev)
            nodes += new
        return nodes, prev

    def _split(self, raw: Any, kp: KeyPath) -> tuple[str, Any, KeyPath, dict[str, tuple[Any, KeyPath]]]:
        """(kind, args, args keypath, {name/from: (value, keypath)}) of one layer item."""
        if isinstance(raw, str):
            return raw, None, kp, {}
        if not isinstance(raw, dict) or not raw:
            raise self._ctx(kp).error(
                f"a layer must be a kind (e.g. relu) or a mapping such as {{conv: {{out: 16}}}}, "
                f"got {describe(raw)}")
        extra = {k: (raw[k], (*kp, k)) for k in ("name", "from") if k in raw}
        kinds = [k for k in raw if k not in ("name", "from")]
        if not kinds:
            raise self._ctx(kp).error("this layer has a name/from but no kind",
                                      "write e.g. {conv: {out: 16}, name: enc1}")
        if len(kinds) > 1:
            raise self._ctx(kp).error(f"one layer per list item, but this item has {', '.join(map(str, kinds))}",
                                      "start each layer on its own line with '- '")
        kind = kinds[0]
        args, akp = raw[kind], (*kp, kind)
        if isinstance(args, dict):
            args = dict(args)
            for k in ("name", "from"):
                if k in args:
                    if k in extra:
                        raise self._ctx((*akp, k)).error(f"'{k}' is given twice for this layer")
                    extra[k] = (args.pop(k), (*akp, k))
        return str(kind), args, akp, extra

    def _item(self, raw: Any, kp: KeyPath, scope: _Scope, prev: str) -> tuple[list[Node], str]:
        kind, args, akp, extra = self._split(raw, kp)
        given_name, name_kp = extra.get("name", (None, kp))
        source = self._resolve(extra["from"][0], scope, extra["from"][1]) if "from" in extra else prev
        where = self.src.where(kp)
        if kind in KINDS:
            return self._builtin(kind, args, akp, kp, scope, source, given_name, name_kp, where)
        if kind == "residual":
            return self._residual(args, akp, scope, source, given_name, name_kp, where)
        if kind == "repeat":
            return self._repeat(args, akp, scope, source, given_name, name_kp, where)
        if kind in self.blocks:
            return self._block(kind, args, akp, scope, source, given_name, name_kp, where)
        options = [*KINDS, *COMPOSITE, *self.blocks]
        raise self._ctx(kp).error(f"unknown layer kind '{kind}'", suggest(kind, options))

    def _count(self, kp: KeyPath) -> None:
        """Number the next node, refusing networks that repeats and blocks blow up past MAX_LAYERS."""
        self.index += 1
        if self.index > MAX_LAYERS:
            raise self._ctx(kp).error(f"the network expands to more than {MAX_LAYERS:,} layers",
                                      "use fewer repeat times or blocks (this layer is where the count passed)")

    def _builtin(self, kind, args, akp, kp, scope, source, given_name, name_kp, where):
        spec = KINDS[kind]
        self._count(kp)
        index = self.index
        name = self._name(scope, kind, given_name, name_kp)
        checked = spec.args.check(args, self._ctx(akp, f"layer {index} '{name}' {kind}: "))
        inputs: tuple[str, ...] = (source,)
        if spec.merge:
            refs = checked["with"] if isinstance(checked["with"], list) else [checked["with"]]
            inputs += tuple(self._resolve(r, scope, (*akp, "with") if isinstance(args, dict) else akp)
                            for r in refs)
        self._register(name, scope, where)
        node = Node(index, kind, name, checked, where, inputs, scope.depth, scope.role, origin=scope.origin)
        return [node], name

    def _residual(self, args, akp, scope, source, given_name, name_kp, where):
        self._count(akp)
        index = self.index
        name = self._name(scope, "residual", given_name, name_kp)
        a = RESIDUAL_ARGS.check(args, self._ctx(akp, f"layer {index} '{name}' residual: "))
        graph_input = f"{name}:input"
        node = Node(index, "residual", name, {"shortcut": a["shortcut"] if isinstance(a["shortcut"], str)
                                               else "layers", "activation": a["activation"]},
                    where, (source,), scope.depth, scope.role, origin=scope.origin)

        def sub(prefix: str, role: str) -> _Scope:
            self.graphs += 1
            return _Scope(prefix, self.graphs, graph_input, scope.depth + 1, scope.params, scope, role,
                          scope.origin, scope.block_depth)

        body_scope = sub(name + ".", "body")
        node.body, _ = self.expand([(v, (*akp, "body", i)) for i, v in enumerate(args["body"])],
                                   body_scope, graph_input)
        if isinstance(a["shortcut"], list):
            sc_scope = sub(name + ".shortcut.", "shortcut")
            node.shortcut, _ = self.expand(
                [(v, (*akp, "shortcut", i)) for i, v in enumerate(args["shortcut"])], sc_scope, graph_input)
        else:
            self._count(akp)
            kind = "identity" if a["shortcut"] == "identity" else "projection"
            sc_args = {"norm": a["shortcut"] == "auto_norm"} if kind == "projection" else {}
            sc_where = self.src.where((*akp, "shortcut"))
            node.shortcut = [Node(self.index, kind, f"{name}.shortcut", sc_args, sc_where, (graph_input,),
                                  scope.depth + 1, "shortcut", origin=scope.origin)]
        self._register(name, scope, where)
        return [node], name

    def _repeat(self, args, akp, scope, source, given_name, name_kp, where):
        name = self._name(scope, "repeat", given_name, name_kp)
        a = REPEAT_ARGS.check(args, self._ctx(akp, f"repeat '{name}': "))
        if a["times"] > MAX_LAYERS:
            raise self._ctx((*akp, "times")).error(f"repeat '{name}': times {a['times']:,} would make more than "
                                                   f"{MAX_LAYERS:,} layers", "repeat fewer times")
        nodes: list[Node] = []
        prev = source
        for i in range(1, a["times"] + 1):
            inner = _Scope(f"{name}.{i}.", scope.graph, scope.graph_input, scope.depth, scope.params, scope,
                           scope.role, scope.origin, scope.block_depth)
            new, prev = self.expand([(v, (*akp, "layers", j)) for j, v in enumerate(args["layers"])],
                                    inner, prev)
            nodes += new
        self._register(name, scope, where)
        self.alias[name] = prev
        return nodes, prev

    def _block(self, kind, args, akp, scope, source, given_name, name_kp, where):
        if scope.block_depth >= _MAX_BLOCK_DEPTH:
            raise self._ctx(akp).error(f"block '{kind}' is nested more than {_MAX_BLOCK_DEPTH} deep",
                                       "a block probably uses itself without end")
        name = self._name(scope, kind, given_name, name_kp)
        block = self.blocks[kind]
        declared = block["args"] or {}
        given = args if isinstance(args, dict) else ({} if args is None else None)
        if given is None:
            raise self._ctx(akp).error(f"block '{kind}' takes a mapping of parameters "
                                       f"({', '.join(declared) or 'none'}), got {describe(args)}")
        params: dict[str, tuple[Any, KeyPath]] = {}
        for key in given:
            if key not in declared:
                raise self._ctx((*akp, key)).error(f"block '{kind}' has no parameter '{key}'",
                                                   suggest(str(key), list(declared)))
        base = (*self.base, "blocks", kind)
        for key, default in declared.items():
            if key in given:
                params[key] = (given[key], (*akp, key))
            elif default is None:
                raise self._ctx(akp).error(f"block '{kind}' needs parameter '{key}'",
                                           f"write {kind}: {{{key}: ...}}")
            else:
                params[key] = (default, (*base, "args", key))
        inner = _Scope(name + ".", scope.graph, scope.graph_input, scope.depth, params, scope, scope.role,
                       f"block '{kind}' used at {where}", scope.block_depth + 1)
        items = [(v, (*base, "layers", i)) for i, v in enumerate(block["layers"])]
        nodes, last = self.expand(items, inner, source)
        self._register(name, scope, where)
        self.alias[name] = last
        return nodes, last


def parse_model(section: Any, source: Source, base: KeyPath = ("model",)) -> ModelSpec:
    """Validate and expand a ``model:`` section.

    Parameters
    ----------
    section
        The plain data of the section (from ``yaml.safe_load``).
    source
        Positions of the whole YAML document, for ``file:line:col`` in errors.
    base
        Key path of the section inside the document.

    Examples
    --------
    >>> from geocnn.yamlsource import loads
    >>> data, src = loads("model: {dims: 2, in_channels: 3, layers: [{conv: {out: 10}}]}")
    >>> spec = parse_model(data["model"], src)
    >>> [(n.name, n.kind) for n in spec.layers]
    [('conv1', 'conv')]
    """
    if section is None:
        raise ConfigError("the model section is empty", where=source.where(base),
                          fix="give dims, in_channels and layers")
    m = MODEL.check(section, Ctx(source, base, "model: "))
    dims = m["dims"]
    ctx = Ctx(source, base, "model: ", dims)
    for key in ("input_shape", "axes", "spacing"):
        if m[key] is not None and len(m[key]) != dims:
            raise ctx.at(key).error(f"{key} has {len(m[key])} values but dims is {dims}",
                                    f"give one per spatial axis ({dims})")
    if m["axes"] is not None and len(set(m["axes"])) != dims:
        raise ctx.at("axes").error("axis names must differ")
    blocks = m["blocks"] or {}
    for bname in blocks:
        if bname in KINDS or bname in COMPOSITE or not _NAME.match(str(bname)):
            raise ctx.at("blocks").at(bname).error(
                f"block name '{bname}' is a built-in layer kind or not a plain name", "rename the block")
    expander = _Expander(source, base, blocks, dims)
    top = _Scope("", 0, NETWORK_INPUT, 0, {})
    items = [(v, (*base, "layers", i)) for i, v in enumerate(section["layers"])]
    layers, _ = expander.expand(items, top, NETWORK_INPUT)
    return ModelSpec(
        dims=dims, in_channels=m["in_channels"], layers=layers,
        axes=tuple(m["axes"]) if m["axes"] else DEFAULT_AXES[dims],
        input_shape=tuple(m["input_shape"]) if m["input_shape"] else None,
        spacing=_parse_spacing(m["spacing"], ctx.at("spacing")) if m["spacing"] else None,
        name=m["name"], path=source.path, raw=section,
    )


def frozen_layers(names: Sequence[str], layer_names: Sequence[str]) -> dict[str, list[str]]:
    """The layers each ``train.freeze`` entry names: itself, the layers under it (``enc1`` →
    ``enc1.conv1``), or with a trailing ``*`` every layer whose name starts with the rest."""
    out = {}
    for name in names:
        if name.endswith("*"):
            out[name] = [n for n in layer_names if n.startswith(name[:-1])]
        else:
            out[name] = [n for n in layer_names if n == name or n.startswith(name + ".")]
    return out
