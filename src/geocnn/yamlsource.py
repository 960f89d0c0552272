"""YAML loading that remembers where every value came from.

Values are loaded with PyYAML's safe loader (plain dicts, lists and scalars: nothing is
constructed from tags), except that dates stay the text the user wrote, so every config value is
a plain JSON type that a checkpoint can carry, and that numbers follow YAML 1.2's core schema
(``1e-3`` is a float, ``1_000`` is text), as people write learning rates. Positions come from the composed nodes and are kept
in a :class:`Source`, keyed by the path of each value (``("model", "layers", 3, "conv")``), so
errors can say ``model.yaml:14:7`` without the data carrying any special types.

A config is small: before anything is built, a streaming pass over the parser's events bounds the
document's size, its nesting depth and what its aliases expand to (a "billion laughs" document
of nine levels of nine aliases stands for 9⁹ values; ``a: &a [*a]`` for infinitely many).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from geocnn.errors import ConfigError

KeyPath = tuple[Any, ...]

MAX_CHARS = 128 * 1024  # the configs in configs/ are 1-2 KB; parsing is ~10 µs a character
MAX_DEPTH = 64  # nested lists/mappings; the composer recurses per level
MAX_VALUES = 100_000  # scalars and collections once every alias is expanded


class _Loader(yaml.SafeLoader):
    """``yaml.safe_load``'s loader, with dates kept as the text written (``2024-05-01``).

    A ``datetime.date`` in a config would make the checkpoint that stores the config unreadable
    with ``torch.load(weights_only=True)``; binary and set values have no JSON form: refused.
    """


def _refuse(loader: yaml.SafeLoader, node: yaml.Node) -> None:
    raise yaml.constructor.ConstructorError(
        None, None, f"a {node.tag.rsplit(':', 1)[-1]} value cannot be stored in a run", node.start_mark)


_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
# YAML 1.2 core schema (https://yaml.org/spec/1.2.2/#1032-tag-resolution). PyYAML resolves by
# YAML 1.1, whose floats need a dot and a signed exponent (`1e-3` and `5e+2` are text there) and
# whose ints take `1_000`, `0b101`, `1:30` (90) and read `017` as octal.
INT_12 = re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$")
FLOAT_12 = re.compile(r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
                      r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$")
_FIRST = {_INT: "-+0123456789", _FLOAT: "-+0123456789."}


def _construct_int(loader: yaml.SafeLoader, node: yaml.Node) -> int:
    """An int by YAML 1.2: decimal (leading zeros included, ``017`` is 17), ``0o`` octal, ``0x`` hex."""
    text = loader.construct_scalar(node)
    base = {"0o": 8, "0x": 16}.get(text[:2], 10)
    return int(text[2:] if base != 10 else text, base)


def _without_numbers(resolvers: dict) -> dict:
    return {first: [(tag, rx) for tag, rx in pairs if tag not in (_INT, _FLOAT)]
            for first, pairs in resolvers.items()}


# The implicit resolvers are class data (a dict of lists keyed by first character); the copy
# below is the loader's own, so PyYAML's SafeLoader and yaml.safe_load keep YAML 1.1.
_Loader.yaml_implicit_resolvers = _without_numbers(yaml.SafeLoader.yaml_implicit_resolvers)
for _tag, _rx in ((_INT, INT_12), (_FLOAT, FLOAT_12)):  # int first: `10` is an int, not 10.0
    _Loader.add_implicit_resolver(_tag, _rx, list(_FIRST[_tag]))
_Loader.add_constructor(_INT, _construct_int)
_Loader.add_constructor("tag:yaml.org,2002:timestamp", yaml.SafeLoader.construct_yaml_str)
_Loader.add_constructor("tag:yaml.org,2002:binary", _refuse)
_Loader.add_constructor("tag:yaml.org,2002:set", _refuse)


class _Dumper(yaml.SafeDumper):
    """``yaml.safe_dump``'s dumper that also quotes text a YAML 1.2 reader takes for a number.

    It keeps YAML 1.1's resolvers too, so ``'1e-3'`` and ``'1_000'`` are quoted and a run's
    config.yaml reads back the same with this module and with any other YAML reader.
    """


for _tag, _rx in ((_INT, INT_12), (_FLOAT, FLOAT_12)):
    _Dumper.add_implicit_resolver(_tag, _rx, list(_FIRST[_tag]))


@dataclass
class Source:
    """Where the values of one YAML document are: ``path`` plus 1-based line/column per key path."""

    path: str
    positions: dict[KeyPath, tuple[int, int]] = field(default_factory=dict)
    labels: dict[KeyPath, str] = field(default_factory=dict)  # values set on the command line

    def where(self, keypath: KeyPath = ()) -> str:
        """``file:line:col`` of ``keypath``, or of its nearest ancestor that has a position."""
        kp = tuple(keypath)
        while kp:
            if kp in self.labels:
                return self.labels[kp]
            if kp in self.positions:
                line, col = self.positions[kp]
                return f"{self.path}:{line}:{col}"
            kp = kp[:-1]
        if () in self.positions:
            line, col = self.positions[()]
            return f"{self.path}:{line}:{col}"
        return self.path

    def sub(self, prefix: KeyPath) -> Source:
        """A view whose key paths are relative to ``prefix`` (for a section of a config)."""
        n = len(prefix)
        pos = {kp[n:]: v for kp, v in self.positions.items() if kp[:n] == tuple(prefix)}
        labels = {kp[n:]: v for kp, v in self.labels.items() if kp[:n] == tuple(prefix)}
        return Source(self.path, pos, labels)

    def set(self, keypath: KeyPath, line: int, col: int) -> None:
        self.positions[tuple(keypath)] = (line, col)


def _mark(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def _key(node: yaml.Node) -> Any:
    """The key as safe_load builds it (``1`` stays an int, ``on`` a bool, plain text a str)."""
    if isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:str":
        return node.value
    loader = _Loader(yaml.serialize(node))  # a SafeLoader: what safe_load would build for this key
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def _record(node: yaml.Node, keypath: KeyPath, src: Source, label: str) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, tuple[int, int]] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                # `<<: *base` — merged keys take the merged node's positions unless set here.
                merged = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
                for m in merged:
                    _record(m, keypath, src, label)
                continue
            key = _key(key_node)
            if key in seen:
                line, col = _mark(key_node)
                raise ConfigError(
                    f"key '{key}' appears twice in the same mapping (first at line {seen[key][0]})",
                    where=f"{label}:{line}:{col}",
                    fix="keep one of them; YAML would silently use the last",
                )
            seen[key] = _mark(key_node)
            src.set((*keypath, key), *_mark(key_node))
            _record(value_node, (*keypath, key), src, label)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            src.set((*keypath, i), *_mark(item))
            _record(item, (*keypath, i), src, label)


def _at(label: str, event: yaml.Event) -> str:
    return f"{label}:{event.start_mark.line + 1}:{event.start_mark.column + 1}"


def _bound(text: str, label: str) -> None:
    """Refuse documents too large, too deep or whose aliases expand too far, before composing.

    The parser is a state machine (no recursion, no alias expansion), so this pass costs
    one scan of the text whatever the document holds. Each collection counts its values, an
    alias counts as many as its anchored node holds, and an alias inside its own anchored node
    (``a: &a [*a]``) would expand without end.
    """
    if len(text) > MAX_CHARS:
        raise ConfigError(f"the document has {len(text):,} characters; a config holds at most {MAX_CHARS:,}",
                          where=label, fix="give the YAML config itself (data belongs in .sgy/.npy files)")
    sizes: dict[str, int] = {}
    stack: list[list] = []  # per open collection: [anchor, values so far]
    for event in yaml.parse(text, Loader=_Loader):
        if isinstance(event, yaml.CollectionStartEvent):
            if len(stack) >= MAX_DEPTH:
                raise ConfigError(f"lists/mappings are nested more than {MAX_DEPTH} deep", where=_at(label, event),
                                  fix="flatten the structure (a config needs a few levels)")
            stack.append([event.anchor, 1])
            continue
        if isinstance(event, yaml.CollectionEndEvent):
            anchor, n = stack.pop()
        elif isinstance(event, yaml.ScalarEvent):
            anchor, n = event.anchor, 1
        elif isinstance(event, yaml.AliasEvent):
            if any(a == event.anchor for a, _ in stack):
                raise ConfigError(f"alias *{event.anchor} is inside the value it names, so it never ends",
                                  where=_at(label, event), fix="refer only to a value defined before the alias")
            anchor, n = None, sizes.get(event.anchor, 1)  # an undefined alias is reported by the composer
        else:
            continue
        if anchor:
            sizes[anchor] = n
        if stack:
            stack[-1][1] += n
        if n > MAX_VALUES or (stack and stack[-1][1] > MAX_VALUES):
            raise ConfigError(f"the document stands for more than {MAX_VALUES:,} values once its aliases are "
                              "expanded", where=_at(label, event), fix="use fewer, smaller aliases (*name)")


def loads(text: str, label: str = "<string>") -> tuple[Any, Source]:
    """Parse YAML text; returns the plain data and its :class:`Source`."""
    try:
        _bound(text, label)
        loader = _Loader(text)
        try:
            node = loader.get_single_node()
            data = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{label}:{mark.line + 1}:{mark.column + 1}" if mark else label
        fix = ("write plain text, numbers, lists and mappings" if isinstance(exc, yaml.constructor.ConstructorError)
               else "check indentation, colons and brackets on that line")
        raise ConfigError(f"not valid YAML: {exc.problem or exc.context}", where=where, fix=fix) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"not valid YAML: {exc}", where=label) from None
    except ValueError as exc:  # e.g. an integer of more than 4300 digits
        raise ConfigError(f"not a usable YAML value: {exc}", where=label,
                          fix="write numbers with at most a few dozen digits") from None
    src = Source(label)
    if node is not None:
        src.set((), *_mark(node))
        _record(node, (), src, label)
    return data, src


def load(path: str | Path) -> tuple[Any, Source]:
    """Read and parse a YAML file, with errors naming the file."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("file not found", where=str(path), fix="check the path") from None
    except IsADirectoryError:
        raise ConfigError("is a folder, not a YAML file", where=str(path)) from None
    except UnicodeDecodeError:
        raise ConfigError("not a text file (cannot decode as UTF-8)", where=str(path),
                          fix="give a YAML config") from None
    return loads(text, str(path))


def value(text: str, label: str = "<string>") -> Any:
    """One YAML value, e.g. of ``--set key=value``, loaded like a config (dates stay text)."""
    return loads(text, label)[0]


def dumps(data: Any) -> str:
    """YAML text of plain data that :func:`loads` reads back as the same data (block style, keys in order)."""
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True)
