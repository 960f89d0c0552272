"""Declarative config types: one definition gives validation, defaults and the JSON Schema.

Every section of a geocnn config (``model``, each layer kind, ``data``, ``train``...) is a
:class:`Record` of :class:`Field` s. Checking is strict — ``"3"`` is not an int, ``true`` is not a
number, an unknown key is an error with a did-you-mean — and every error names the YAML position.
The sections code reads as typed objects (``data``, ``train``...) are :class:`Section` s: one
``name: type = setting(doc, default=...)`` line per field gives the Record, the frozen dataclass
and the docs table (:func:`markdown_table`).
"""

from __future__ import annotations

import abc
import dataclasses
import difflib
import sys
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import UnionType
from typing import Any, ClassVar, Literal, TypeVar, Union

from geocnn.errors import ConfigError
from geocnn.yamlsource import KeyPath, Source

if sys.version_info >= (3, 11):
    from typing import dataclass_transform
else:  # pragma: no cover - read by type checkers only
    def dataclass_transform(**kwargs: Any) -> Callable[[type], type]:
        return lambda cls: cls

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


ALIASES: dict[str, str] = {
    # layer kinds, as torch.nn and Keras name them
    "conv1d": "conv", "conv2d": "conv", "conv3d": "conv", "convolution": "conv",
    "convtranspose1d": "conv_transpose", "convtranspose2d": "conv_transpose", "convtranspose3d": "conv_transpose",
    "conv2dtranspose": "conv_transpose", "deconv": "conv_transpose",
    "batchnorm1d": "norm", "batchnorm2d": "norm", "batchnorm3d": "norm", "batchnormalization": "norm",
    "instancenorm2d": "norm", "groupnorm": "norm", "layernorm": "norm",
    "maxpool1d": "pool", "maxpool2d": "pool", "maxpool3d": "pool", "avgpool2d": "pool", "maxpooling2d": "pool",
    "averagepooling2d": "pool", "adaptiveavgpool2d": "adaptive_pool", "adaptivemaxpool2d": "adaptive_pool",
    "globalaveragepooling2d": "global_pool", "linear": "dense", "fc": "dense", "upsampling2d": "upsample",
    "leakyrelu": "leaky_relu", "dropout2d": "dropout", "cat": "concat", "concatenate": "concat",
    # layer arguments
    "out_channels": "out", "filters": "out", "out_features": "out", "units": "out", "kernel_size": "kernel",
    "pool_size": "size", "strides": "stride", "scale_factor": "scale", "negative_slope": "slope",
    # training settings
    "learning_rate": "lr", "num_epochs": "epochs", "max_epochs": "epochs", "batchsize": "batch_size",
}
"""Names people bring from PyTorch and Keras (lower case) → geocnn's, for did-you-mean. One table for
every suggestion; a name is suggested only where it is a valid choice."""


def suggest(word: str, options: Sequence[str]) -> str:
    """``did you mean 'x'?`` plus the valid options: same name in another case, a known alias
    (``ReLU`` → relu, ``out_channels`` → out, ``AdamW`` → adamw), else the closest spelling."""
    by_lower = {o.lower(): o for o in options}
    key = str(word).lower()
    close = [by_lower[k] for k in (key, ALIASES.get(key)) if k in by_lower][:1] or \
        difflib.get_close_matches(str(word), list(options), n=1, cutoff=0.6)
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

    @property
    def doc_type(self) -> str:
        """What the docs table calls this type: the wording of its errors, without the article."""
        return self.expected.removeprefix("an ").removeprefix("a ")

    @property
    def choices(self) -> tuple[str, ...]:
        """The words this type accepts (shown apart from its type in the docs table)."""
        return ()


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

    @property
    def doc_type(self) -> str:
        return "boolean"

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

    @property
    def doc_type(self) -> str:
        return "choice"

    @property
    def choices(self) -> tuple[str, ...]:
        return self.values

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

    @property
    def doc_type(self) -> str:
        if self.max_len is None:
            n = f", {self.min_len} or more" if self.min_len else ""
        else:
            n = f", exactly {self.max_len}" if self.min_len == self.max_len else f", {self.min_len} to {self.max_len}"
        return f"list of {self.item.doc_type}{n}"

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

    @property
    def doc_type(self) -> str:
        return " or ".join(t.doc_type for t in self.types if not t.choices) or "choice"

    @property
    def choices(self) -> tuple[str, ...]:
        return tuple(c for t in self.types for c in t.choices)

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
    """One key of a :class:`Record`. ``default`` may be :data:`REQUIRED`; ``tasks`` names the only
    tasks that read it (empty: every task that reads the record)."""

    name: str
    type: Type
    default: Any = None
    help: str = ""
    tasks: tuple[str, ...] = ()

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    @property
    def description(self) -> str:
        """The help as the JSON Schema and the docs table show it: which tasks read the field, first."""
        return f"{', '.join(self.tasks)}: {self.help}" if self.tasks and self.help else self.help


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

    @property
    def doc_type(self) -> str:
        return "section"

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
            if f.description:
                p["description"] = f.description
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


# ----------------------------------------------------------------------------- sections declared once
# A config section is one frozen dataclass whose fields are declared with setting(): the annotation
# is the type (Literal[...] for choices), setting() adds the default, the doc and the limits. The
# Record that validates it (positions, did-you-mean, no coercion), its JSON Schema, the typed
# object code reads and the docs table all come from that one declaration.

_SETTING = "geocnn.setting"


@dataclass(frozen=True)
class Setting:
    """All of a section field but its name and type (which its annotation gives)."""

    default: Any
    doc: str
    min: float | None = None
    max: float | None = None
    exclusive_min: bool = False
    min_len: int = 0
    max_len: int | None = None
    tasks: tuple[str, ...] = ()


def setting(doc: str, *, default: Any = REQUIRED, min: float | None = None, max: float | None = None,
            exclusive_min: bool = False, min_len: int = 0, max_len: int | None = None,
            tasks: tuple[str, ...] = ()) -> Any:
    """Declare one field of a :class:`Section`, after its annotation: ``name: type = setting(doc, ...)``.

    ``default`` is the value code reads when the YAML leaves the key out (left out: the key is
    required; ``{}`` for a nested section: every field at its default). ``min``/``max``/
    ``exclusive_min`` bound a number (the items of a list), ``min_len``/``max_len`` a list's
    length; ``tasks`` names the only tasks that read the field (empty: all that read the section).
    Keywords, not positions, so type checkers see which fields have a default (PEP 681).
    """
    spec = Setting(default, doc, min, max, exclusive_min, min_len, max_len, tuple(tasks))
    return dataclasses.field(metadata={_SETTING: spec})


_SCALARS: dict[Any, Callable[[Setting], Type]] = {
    bool: lambda s: Bool(),
    int: lambda s: Int(s.min, s.max),  # type: ignore[arg-type]
    float: lambda s: Float(s.min, s.max, s.exclusive_min),
    str: lambda s: Str(),
    Any: lambda s: AnyValue(),
}


def field_type(hint: Any, s: Setting) -> Type:
    """The schema type an annotation stands for, with the setting's limits.

    ``Literal[...]`` → :class:`Choice`; ``X | None`` → X (None means the default); ``A | B`` →
    :class:`OneOf` in that order; ``tuple[X, ...]`` / ``tuple[X, X]`` → :class:`ListOf`; a
    :class:`Section` → its record; ``bool``, ``int``, ``float``, ``str``, ``Any`` → the scalars.
    """
    if isinstance(hint, type) and issubclass(hint, Section):
        return hint.record
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Literal and all(isinstance(a, str) for a in args):
        return Choice(*args)
    if origin in (Union, UnionType):
        kinds = [field_type(a, s) for a in args if a is not type(None)]
        return kinds[0] if len(kinds) == 1 else OneOf(*kinds)
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        return ListOf(field_type(args[0], s), s.min_len, s.max_len)
    if origin is tuple and args and len(set(args)) == 1:
        return ListOf(field_type(args[0], s), len(args), len(args))
    if hint in _SCALARS:
        return _SCALARS[hint](s)
    raise TypeError(f"a config field cannot be of type {hint!r}")


def _section_in(hint: Any) -> type[Section] | None:
    """The section a field holds (``Loss``, or ``EarlyStop`` of ``EarlyStop | None``), if any."""
    for h in (hint, *typing.get_args(hint)):
        if isinstance(h, type) and issubclass(h, Section):
            return h
    return None


def _setting_of(cls: type, name: str) -> Setting:
    spec = cls.__dict__.get(name)
    if not (isinstance(spec, dataclasses.Field) and _SETTING in spec.metadata):
        raise TypeError(f"{cls.__name__}.{name}: declare a config field as `name: type = setting(doc, default=...)`")
    return spec.metadata[_SETTING]


def _give_default(cls: type, name: str, hint: Any) -> None:
    """The dataclass default of a field: its setting's default as code reads it (lists as tuples)."""
    spec, s = cls.__dict__[name], _setting_of(cls, name)
    sub = _section_in(hint)
    if s.default is REQUIRED:
        return
    if sub is not None and s.default == {}:
        spec.default_factory = sub.defaults
    else:
        spec.default = tuple(s.default) if isinstance(s.default, list) else s.default


def _record_field(f: dataclasses.Field, hint: Any) -> Field:
    """The :class:`Field` a dataclass field declares (its default as YAML gives it: lists, not tuples)."""
    s: Setting = f.metadata[_SETTING]
    default = list(s.default) if isinstance(s.default, tuple) else s.default
    return Field(f.name, field_type(hint, s), default, s.doc, s.tasks)


S = TypeVar("S", bound="Section")


@dataclass_transform(kw_only_default=True, frozen_default=True, field_specifiers=(setting,))
class Section:
    """Base of the config sections: each field declared once, as ``name: type = setting(doc, ...)``.

    A subclass is a frozen, keyword-only dataclass (what code reads: ``cfg.train.lr``) and gets
    ``record``, the :class:`Record` that validates the YAML and gives the JSON Schema and the
    docs table (:func:`markdown_table`). ``title`` names the section in the schema; ``shorthand``
    is the field a bare scalar sets (``loss: huber``).

    Example
    -------
    >>> class Clip(Section, title="clip"):
    ...     norm: float | None = setting("clip the gradient norm to this", default=None, min=0, exclusive_min=True)
    ...     mode: Literal["norm", "value"] = setting("what is clipped", default="norm")
    >>> Clip.parse({"norm": 2}), Clip.record.json()["properties"]["mode"]["enum"]
    (Clip(norm=2.0, mode='norm'), ['norm', 'value'])
    """

    record: ClassVar[Record]
    nested: ClassVar[dict[str, type[Section]]]

    def __init_subclass__(cls, *, title: str | None = None, shorthand: str | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        hints = typing.get_type_hints(cls)
        for name in cls.__dict__.get("__annotations__", {}):
            if typing.get_origin(hints[name]) is not ClassVar:
                _give_default(cls, name, hints[name])
        dataclasses.dataclass(frozen=True, kw_only=True)(cls)
        fields = [_record_field(f, hints[f.name]) for f in dataclasses.fields(cls)]
        inherited = getattr(cls, "record", None)
        cls.record = Record(fields, title=title or (inherited.title if inherited else cls.__name__.lower()),
                            shorthand=shorthand or (inherited.shorthand if inherited else None))
        cls.nested = {f.name: sub for f in dataclasses.fields(cls) if (sub := _section_in(hints[f.name]))}
        ctx = Ctx(Source(f"{cls.__name__} (its declaration)"))
        for f in cls.record.fields:  # a default its own type refuses is a bug: fail at import
            if not f.required and f.default is not None:
                f.type.check(f.default, ctx.at(f.name))

    @classmethod
    def from_checked(cls: type[S], checked: dict) -> S:
        """A dict that ``record`` checked, as the frozen section (nested sections too; lists → tuples)."""
        values = {}
        for f in cls.record.fields:
            v, sub = checked[f.name], cls.nested.get(f.name)
            if sub is not None and v is not None:
                v = sub.from_checked(v)
            elif isinstance(v, list):
                v = tuple(v)
            values[f.name] = v
        return cls(**values)

    @classmethod
    def parse(cls: type[S], value: Any, ctx: Ctx | None = None) -> S:
        """Validate ``value`` (a YAML mapping) and return the section."""
        return cls.from_checked(cls.record.check(value, ctx or Ctx(Source(cls.record.title))))

    @classmethod
    def defaults(cls: type[S]) -> S:
        """The section with every field at its default."""
        return cls.parse({})


def _default_text(value: Any) -> str:
    """A default as YAML writes it, for the docs table."""
    if value is REQUIRED:
        return "required"
    if value is None:
        return "—"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, (list, tuple)):
        return "`[" + ", ".join(map(str, value)) + "]`"
    return f"`{value}`"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def markdown_table(record: Record) -> str:
    """The fields of ``record`` as a Markdown table: name, type, default, choices, doc.

    The docs of a config section come from the declaration its checks come from, so they cannot
    disagree with what geocnn accepts.
    """
    rows = ["| name | type | default | choices | doc |", "|---|---|---|---|---|"]
    for f in record.fields:
        choices = ", ".join(f"`{c}`" for c in f.type.choices)
        rows.append(f"| `{f.name}` | {_cell(f.type.doc_type)} | {_default_text(f.default)} | {choices} "
                    f"| {_cell(f.description)} |")
    return "\n".join(rows) + "\n"
