"""Declarative config types: one definition gives validation, defaults and the JSON Schema.

Every section of a geocnn config (``model``, each layer kind, ``data``, ``train``...) is a
:class:`Record` of :class:`Field` s. Checking is strict — ``"3"`` is not an int, ``true`` is not a
number, an unknown key is an error with a did-you-mean — and every error names the YAML position.
"""

from __future__ import annotations

import abc
import difflib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from geocnn.errors import ConfigError
from geocnn.yamlsource import KeyPath, Source

REQUIRED = object()
INT_LIMIT = 2**31 - 1  # no config count or size comes near; keeps the analytic pass in int64


@dataclass(frozen=True)
class Ctx:
    """Where a value sits: its source, key path, a human prefix and the model's ``dims``."""

    source: Source
    keypath: KeyPath = ()
    prefix: str = ""
    dims: int | None = None

    def at(self, key: Any) -> Ctx:
        return Ctx(self.source, (*self.keypath, key), self.prefix, self.dims)

    def where(self) -> str:
        return self.source.where(self.keypath)

    def label(self) -> str:
        """Dotted name of the value, e.g. ``train.lr`` or ``layers[3].kernel``."""
        parts: list[str] = []
        for k in self.keypath:
            if isinstance(k, int):
                parts.append(f"[{k}]")
            else:
                parts.append(("." if parts else "") + str(k))
        return "".join(parts) or "config"

    def error(self, problem: str, fix: str | None = None) -> ConfigError:
        text = f"{self.prefix}{problem}" if self.prefix else problem
        return ConfigError(text, where=self.where(), fix=fix)


def describe(value: Any) -> str:
    """A value as the user wrote it, with its YAML type when that is the problem."""
    kind = {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
            list: "a list", dict: "a mapping", type(None): "empty"}.get(type(value), type(value).__name__)
    text = repr(value) if not isinstance(value, (dict, list)) else kind
    return text if isinstance(value, (dict, list)) else f"{text} ({kind})"


def suggest(word: str, options: Sequence[str]) -> str:
    """``did you mean 'x'?`` plus the valid options."""
    close = difflib.get_close_matches(str(word), list(options), n=1, cutoff=0.6)
    listing = ", ".join(sorted(options))
    if close:
        return f"did you mean '{close[0]}'? (valid: {listing})"
    return f"valid: {listing}"


class Type(abc.ABC):
    """A config value type: ``check`` validates and normalises, ``json`` gives its JSON Schema."""

    expected = "a value"

    @abc.abstractmethod
    def check(self, value: Any, ctx: Ctx) -> Any:
        """The validated (normalised) value, or a ConfigError naming its YAML position."""

    @abc.abstractmethod
    def json(self) -> dict:
        """This type as JSON Schema."""

    def fail(self, value: Any, ctx: Ctx, fix: str | None = None) -> ConfigError:
        return ctx.error(f"{ctx.label().split('.')[-1]} must be {self.expected}, got {describe(value)}", fix)


@dataclass
class Int(Type):
    min: int | None = None
    max: int | None = None

    @property
    def expected(self) -> str:
        if self.min is not None and self.max is not None:
            return f"an integer from {self.min} to {self.max}"
        if self.min is not None:
            return f"an integer ≥ {self.min}"
        return "an integer"

    def check(self, value: Any, ctx: Ctx) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(value, ctx)
        if abs(value) > INT_LIMIT:
            raise ctx.error(f"{ctx.label().split('.')[-1]} is {value:,}, beyond what geocnn can use "
                            f"(at most {INT_LIMIT:,})", "give a realistic value")
        if (self.min is not None and value < self.min) or (self.max is not None and value > self.max):
            raise self.fail(value, ctx)
        return value

    def json(self) -> dict:
        out: dict = {"type": "integer"}
        if self.min is not None:
            out["minimum"] = self.min
        if self.max is not None:
            out["maximum"] = self.max
        return out


@dataclass
class Float(Type):
    min: float | None = None
    max: float | None = None
    exclusive_min: bool = False

    @property
    def expected(self) -> str:
        lo = "" if self.min is None else (f" > {self.min}" if self.exclusive_min else f" ≥ {self.min}")
        hi = "" if self.max is None else f" ≤ {self.max}"
        return f"a number{lo}{' and' if lo and hi else ''}{hi}"

    def check(self, value: Any, ctx: Ctx) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(value, ctx)
        v = float(value)
        if v != v or v in (float("inf"), float("-inf")):
            raise self.fail(value, ctx)
        if self.min is not None and (v < self.min or (self.exclusive_min and v == self.min)):
            raise self.fail(value, ctx)
        if self.max is not None and v > self.max:
            raise self.fail(value, ctx)
        return v

    def json(self) -> dict:
        out: dict = {"type": "number"}
        if self.min is not None:
            out["exclusiveMinimum" if self.exclusive_min else "minimum"] = self.min
        if self.max is not None:
            out["maximum"] = self.max
        return out


class Bool(Type):
    expected = "true or false"

    def check(self, value: Any, ctx: Ctx) -> bool:
        if not isinstance(value, bool):
            raise self.fail(value, ctx)
        return value

    def json(self) -> dict:
        return {"type": "boolean"}


@dataclass
class Str(Type):
    expected: str = "a string"

    def check(self, value: Any, ctx: Ctx) -> str:
        if not isinstance(value, str) or not value:
            raise self.fail(value, ctx)
        return value

    def json(self) -> dict:
        return {"type": "string", "minLength": 1}


class Choice(Type):
    """One of a closed set of strings (the enums of the config)."""

    def __init__(self, *values: str) -> None:
        self.values = tuple(values)

    @property
    def expected(self) -> str:
        return "one of " + ", ".join(self.values)

    def check(self, value: Any, ctx: Ctx) -> str:
        if not isinstance(value, str) or value not in self.values:
            hint = suggest(str(value), self.values)
            if isinstance(value, bool):
                hint += " (YAML reads on/off/yes/no as true/false: write one of these words)"
            raise ctx.error(f"{ctx.label().split('.')[-1]}: unknown value {describe(value)}", hint)
        return value

    def json(self) -> dict:
        return {"type": "string", "enum": list(self.values)}


@dataclass
class ListOf(Type):
    item: Type
    min_len: int = 0
    max_len: int | None = None

    @property
    def expected(self) -> str:
        n = f" of {self.min_len} or more" if self.min_len else ""
        return f"a list{n} ({self.item.expected} each)"

    def check(self, value: Any, ctx: Ctx) -> list:
        if not isinstance(value, list):
            raise self.fail(value, ctx)
        if len(value) < self.min_len or (self.max_len is not None and len(value) > self.max_len):
            raise self.fail(value, ctx)
        return [self.item.check(v, ctx.at(i)) for i, v in enumerate(value)]

    def json(self) -> dict:
        out: dict = {"type": "array", "items": self.item.json()}
        if self.min_len:
            out["minItems"] = self.min_len
        if self.max_len is not None:
            out["maxItems"] = self.max_len
        return out


@dataclass
class PerAxis(Type):
    """One value for every spatial axis, or a list with one per axis (length = ``dims``)."""

    item: Type

    @property
    def expected(self) -> str:
        return f"{self.item.expected}, or a list with one per axis"

    def check(self, value: Any, ctx: Ctx) -> tuple:
        dims = ctx.dims or 1
        if isinstance(value, list):
            if len(value) != dims:
                raise ctx.error(f"{ctx.label().split('.')[-1]} has {len(value)} values but the model has "
                                f"{dims} spatial axes", f"give one value or {dims}")
            return tuple(self.item.check(v, ctx.at(i)) for i, v in enumerate(value))
        try:
            return (self.item.check(value, ctx),) * dims
        except ConfigError:
            raise self.fail(value, ctx) from None

    def json(self) -> dict:
        return {"oneOf": [self.item.json(), {"type": "array", "items": self.item.json(), "minItems": 1,
                                             "maxItems": 3}]}


class OneOf(Type):
    """The first alternative that accepts the value wins; the error lists all of them."""

    def __init__(self, *types: Type) -> None:
        self.types = types

    @property
    def expected(self) -> str:
        return " or ".join(t.expected for t in self.types)

    def check(self, value: Any, ctx: Ctx) -> Any:
        for t in self.types:
            try:
                return t.check(value, ctx)
            except ConfigError:
                continue
        raise self.fail(value, ctx)

    def json(self) -> dict:
        return {"anyOf": [t.json() for t in self.types]}


class AnyValue(Type):
    expected = "a value"

    def check(self, value: Any, ctx: Ctx) -> Any:
        return value

    def json(self) -> dict:
        return {}


@dataclass
class MapOf(Type):
    """A mapping with free keys (e.g. named blocks), each value of one type."""

    value: Type
    expected: str = "a mapping"

    def check(self, value: Any, ctx: Ctx) -> dict:
        if not isinstance(value, dict):
            raise self.fail(value, ctx)
        return {k: self.value.check(v, ctx.at(k)) for k, v in value.items()}

    def json(self) -> dict:
        return {"type": "object", "additionalProperties": self.value.json()}


@dataclass
class Field:
    """One key of a :class:`Record`. ``default`` may be :data:`REQUIRED`."""

    name: str
    type: Type
    default: Any = None
    help: str = ""

    @property
    def required(self) -> bool:
        return self.default is REQUIRED


@dataclass
class Record(Type):
    """A mapping with a closed set of keys; missing keys take their defaults."""

    fields: list[Field]
    title: str = ""
    shorthand: str | None = None  # field that a bare scalar value sets, e.g. ``dropout: 0.1``
    validate: Callable[[dict, Ctx], None] | None = None
    by_name: dict[str, Field] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.by_name = {f.name: f for f in self.fields}

    @property
    def expected(self) -> str:
        return f"a mapping with keys {', '.join(self.by_name)}"

    def check(self, value: Any, ctx: Ctx) -> dict:
        if value is None:
            value = {}
        if not isinstance(value, dict):
            if self.shorthand is not None:
                value = {self.shorthand: value}
                ctx = Ctx(ctx.source, ctx.keypath, ctx.prefix, ctx.dims)
                return self._check_dict(value, ctx, shorthand=True)
            raise self.fail(value, ctx)
        return self._check_dict(value, ctx)

    def _check_dict(self, value: dict, ctx: Ctx, shorthand: bool = False) -> dict:
        out: dict[str, Any] = {}
        for key in value:
            if key not in self.by_name:
                raise ctx.at(key).error(f"unknown key '{key}'", suggest(str(key), list(self.by_name)))
        for f in self.fields:
            sub = ctx if shorthand else ctx.at(f.name)
            if f.name in value and value[f.name] is not None:
                out[f.name] = f.type.check(value[f.name], sub)
            elif f.required:
                raise ctx.error(f"missing required key '{f.name}'", f.help or None)
            else:
                # Defaults go through the type too, so per-axis defaults become tuples.
                out[f.name] = f.default if f.default is None else f.type.check(f.default, sub)
        if self.validate is not None:
            self.validate(out, ctx)
        return out

    def json(self) -> dict:
        props = {}
        for f in self.fields:
            p = f.type.json()
            if f.help:
                p["description"] = f.help
            if f.default is not REQUIRED and f.default is not None and isinstance(
                    f.default, (int, float, str, bool, list)):
                p["default"] = f.default
            props[f.name] = p
        out: dict = {"type": "object", "properties": props, "additionalProperties": False}
        if self.title:
            out["title"] = self.title
        req = [f.name for f in self.fields if f.required]
        if req:
            out["required"] = req
        if self.shorthand is not None:
            return {"anyOf": [out, props[self.shorthand]]}
        return out
