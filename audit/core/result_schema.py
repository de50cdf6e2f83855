"""JSON Schema of the result model, derived from the dataclasses' type hints (the shipped
``results.schema.json`` is this, written by ``python tools/write_schema.py``; a test keeps the two equal).

Each finding's ``details`` is tied to its check's ``Details`` type by an if/then on the finding's ``check``.
"""
from __future__ import annotations

import dataclasses
import enum
import json
import types
import typing
from collections.abc import Mapping
from importlib import resources
from typing import Any

SCHEMA_FILE = "results.schema.json"


def _type(tp: Any, defs: dict) -> dict:
    origin = typing.get_origin(tp)
    if tp is Any:
        return {}
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        return {"anyOf": [{"type": "null"} if a is type(None) else _type(a, defs) for a in args]}
    if origin is typing.Literal:
        return {"enum": list(typing.get_args(tp))}
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):   # a type hint: a class, never an instance
        name = tp.__name__
        if name not in defs:
            defs[name] = {}  # placeholder against recursion
            defs[name] = _object(tp, defs)
        return {"$ref": f"#/$defs/{name}"}
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return {"enum": [m.value for m in tp]}
    if origin is tuple:
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return {"type": "array", "items": _type(args[0], defs)}
        return {"type": "array", "prefixItems": [_type(a, defs) for a in args], "minItems": len(args),
                "maxItems": len(args)}
    if origin in (list,):
        return {"type": "array", "items": _type(typing.get_args(tp)[0], defs)}
    if origin in (dict, Mapping):
        return {"type": "object", "additionalProperties": _type(typing.get_args(tp)[1], defs)}
    simple = {str: "string", int: "integer", float: "number", bool: "boolean"}
    if tp in simple:
        return {"type": simple[tp]}
    return {}


def _object(cls: type, defs: dict) -> dict:
    hints = typing.get_type_hints(cls)
    props, required = {}, []
    for f in dataclasses.fields(cls):
        props[f.name] = _type(hints[f.name], defs)
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            required.append(f.name)
    out = {"type": "object", "properties": props, "additionalProperties": False}
    if cls.__doc__ and not cls.__doc__.startswith(f"{cls.__name__}("):
        out["description"] = " ".join(cls.__doc__.split())
    if required:
        out["required"] = required
    return out


def results_schema(details_types: Mapping[str, type]) -> dict:
    """The JSON Schema of results.json, with each check's details typed."""
    from audit.core.result import SCHEMA_VERSION, AuditResult
    defs: dict = {}
    root = _object(AuditResult, defs)
    root["properties"]["schema_version"] = {"const": SCHEMA_VERSION}
    finding = defs["Finding"]
    finding["allOf"] = [
        {"if": {"properties": {"check": {"const": check}}, "required": ["check"]},
         "then": {"properties": {"details": {"anyOf": [{"type": "null"}, _type(tp, defs)]}}}}
        for check, tp in sorted(details_types.items())]
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": f"urn:advaudit:results:{SCHEMA_VERSION}",
            "title": f"advaudit results.json, schema version {SCHEMA_VERSION}", **root,
            "$defs": dict(sorted(defs.items()))}


def shipped_schema() -> dict:
    return json.loads(resources.files("audit.core").joinpath(SCHEMA_FILE).read_text(encoding="utf-8"))
