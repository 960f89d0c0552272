"""Config files: a model YAML or a full config (``data``, ``model``, ``train``), validated up front.

Everything a run needs is checked here, in one step, before any data is read or any module is
built; errors name the YAML ``file:line:col``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from geocnn.errors import ConfigError
from geocnn.model import ModelSpec, parse_model
from geocnn.model.layers import KINDS
from geocnn.model.spec import BLOCK, MODEL, REPEAT_ARGS, RESIDUAL_ARGS
from geocnn.yamlsource import KeyPath, Source, load


def model_section(data: Any, source: Source) -> tuple[Any, KeyPath]:
    """The model mapping of a document and its key path: ``model:`` of a config, or the document."""
    if isinstance(data, dict) and "model" in data:
        return data["model"], ("model",)
    if isinstance(data, dict) and "layers" in data:
        return data, ()
    raise ConfigError("no model found: expected a 'model:' section (or a model file with "
                      "dims, in_channels and layers)", where=source.where(()),
                      fix="see configs/ for examples")


def read_model(path: str | Path) -> ModelSpec:
    """Load and validate the model of a YAML file (model-only or full config)."""
    data, source = load(path)
    section, base = model_section(data, source)
    return parse_model(section, source, base)


def resolve_model_source(path: str | Path) -> tuple[ModelSpec, tuple[int, ...] | None]:
    """The model of ``path`` and its default input shape (C, ...spatial) if the config gives one."""
    spec = read_model(path)
    shape = (spec.in_channels, *spec.input_shape) if spec.input_shape else None
    return spec, shape


# ----------------------------------------------------------------------------- JSON Schema

def _layer_schema() -> dict:
    """``$defs`` for one layer item and a layer list (recursive through residual and repeat)."""
    ref = {"$ref": "#/$defs/layers"}
    naming = {"name": {"type": "string", "description": "unique name, for skips and merges"},
              "from": {"type": "string", "description": "read this named output instead of the previous one"}}
    bare = sorted(k for k, kind in KINDS.items() if not any(f.required for f in kind.args.fields))
    options: list[dict] = [{"type": "string", "enum": bare, "description": "a layer without arguments"}]
    for name, kind in sorted(KINDS.items()):
        options.append({"type": "object", "title": name, "description": kind.help,
                        "properties": {name: kind.args.json(), **naming}, "required": [name],
                        "additionalProperties": False})
    residual = RESIDUAL_ARGS.json()
    residual["properties"]["body"] = ref
    residual["properties"]["shortcut"] = {"anyOf": [{"type": "string", "enum": ["identity", "auto"]}, ref]}
    repeat = REPEAT_ARGS.json()
    repeat["properties"]["layers"] = ref
    for name, args in (("residual", residual), ("repeat", repeat)):
        options.append({"type": "object", "title": name, "properties": {name: args, **naming},
                        "required": [name], "additionalProperties": False})
    options.append({"type": "object", "title": "block", "minProperties": 1, "maxProperties": 3,
                    "description": "a block declared under model.blocks, with its parameters"})
    return {"layer": {"anyOf": options}, "layers": {"type": "array", "items": {"$ref": "#/$defs/layer"}}}


def model_json_schema() -> dict:
    """JSON Schema of the ``model:`` section."""
    schema = MODEL.json()
    schema["properties"]["layers"] = {"$ref": "#/$defs/layers", "description": "the network, in order"}
    block = BLOCK.json()
    block["properties"]["layers"] = {"$ref": "#/$defs/layers"}
    schema["properties"]["blocks"] = {"type": "object", "additionalProperties": block,
                                      "description": "reusable named blocks with parameters"}
    return schema


def json_schema() -> dict:
    """JSON Schema of a geocnn config file, for editors (validation and completion)."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://geocnn.dev/schema/config.json",
        "title": "geocnn config",
        "type": "object",
        "properties": {"model": model_json_schema()},
        "required": ["model"],
        "$defs": _layer_schema(),
    }
