"""YAML loading that remembers where every value came from.

Values are loaded with ``yaml.safe_load`` (plain dicts, lists and scalars: nothing is
constructed from tags). Positions come from a second, node-level pass (``yaml.compose``) and are
kept in a :class:`Source`, keyed by the path of each value (``("model", "layers", 3, "conv")``),
so errors can say ``model.yaml:14:7`` without the data carrying any special types.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from geocnn.errors import ConfigError

KeyPath = tuple[Any, ...]


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
    return yaml.safe_load(yaml.serialize(node))


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


def loads(text: str, label: str = "<string>") -> tuple[Any, Source]:
    """Parse YAML text; returns the plain data and its :class:`Source`."""
    try:
        data = yaml.safe_load(text)
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{label}:{mark.line + 1}:{mark.column + 1}" if mark else label
        raise ConfigError(f"not valid YAML: {exc.problem or exc.context}", where=where,
                          fix="check indentation, colons and brackets on that line") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"not valid YAML: {exc}", where=label) from None
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
