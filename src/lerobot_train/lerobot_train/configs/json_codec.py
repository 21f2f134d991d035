"""Dataclass <-> JSON the way upstream LeRobot's draccus writes and reads `config.json`.

Encoding: enums become their value, `PolicyFeature` becomes `{"type", "shape"}`, tuples become lists, `Path` a
string, nested dataclasses nested objects. Decoding is driven by the dataclass field annotations and is strict:
an unknown key, or a value of the wrong kind, raises `ConfigError` naming the key path and the file, because a
checkpoint silently read with a code default instead of its own value drives a robot with the wrong model.
Keys absent from the file keep the field default (as draccus does), so older files with fewer fields load.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from enum import Enum
from pathlib import Path
from typing import Any

from lerobot_train.configs.types import PolicyFeature


class ConfigError(ValueError):
    """A config file (or dict) does not match its dataclass: the message names the key and the source."""


def encode(value: Any) -> Any:
    """A JSON-ready copy of `value` (dataclass fields in declaration order)."""
    if isinstance(value, PolicyFeature):
        return {"type": value.type.value, "shape": list(value.shape)}
    if isinstance(value, Enum):
        return value.value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out: dict[str, Any] = {}
        choice = getattr(value, "type", None)
        if isinstance(choice, str) and "type" not in {f.name for f in dataclasses.fields(value)}:
            out["type"] = choice  # registered subclasses carry their choice name first, as draccus writes it
        for f in dataclasses.fields(value):
            if f.init:
                out[f.name] = encode(getattr(value, f.name))
        return out
    if isinstance(value, dict):
        return {(k.value if isinstance(k, Enum) else str(k)): encode(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [encode(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def decode_fields(cls: type, data: dict[str, Any], source: str, path: str = "") -> dict[str, Any]:
    """Constructor kwargs for dataclass `cls` from a JSON object; strict about unknown keys and value kinds."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: {path or 'the config'} must be a JSON object, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        where = f" in {path}" if path else ""
        raise ConfigError(
            f"{source}: unknown key(s) {unknown}{where} for {cls.__name__} (known keys: {sorted(fields)})"
        )
    return {name: decode_value(hints[name], value, source, f"{path}.{name}" if path else name) for name, value in data.items()}


def decode_value(annotation: Any, value: Any, source: str, path: str) -> Any:
    """`value` from JSON converted to `annotation` (a field's type), or ConfigError naming `path` and `source`."""
    if annotation is Any:
        return value
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arm in (a for a in args if a is not type(None)):
            try:
                return decode_value(arm, value, source, path)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if len(errors) == 1 else f"{source}: {path}: {value!r} matches none of {annotation}")
    if value is None:
        raise ConfigError(f"{source}: {path} must not be null (expected {_name(annotation)})")
    if annotation is PolicyFeature:
        if not isinstance(value, dict) or set(value) != {"type", "shape"}:
            raise ConfigError(f"{source}: {path} must be {{\"type\": ..., \"shape\": [...]}}, got {value!r}")
        try:
            return PolicyFeature(type=value["type"], shape=tuple(value["shape"]))
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"{source}: {path}: {exc}") from exc
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        try:
            return annotation(value)
        except ValueError:
            choices = [m.value for m in annotation]
            raise ConfigError(f"{source}: {path} must be one of {choices}, got {value!r}") from None
    if isinstance(annotation, type) and dataclasses.is_dataclass(annotation):
        return annotation(**decode_fields(annotation, value, source, path))
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{source}: {path} must be a JSON object, got {value!r}")
        key_t, val_t = args or (str, Any)
        return {
            decode_value(key_t, k, source, f"{path}[{k!r}]"): decode_value(val_t, v, source, f"{path}[{k!r}]")
            for k, v in value.items()
        }
    if origin in (list, tuple, typing.Sequence) or annotation in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{source}: {path} must be a JSON list, got {value!r}")
        if origin is tuple and args and not (len(args) == 2 and args[1] is Ellipsis):
            if len(args) != len(value):
                raise ConfigError(f"{source}: {path} must have {len(args)} items, got {value!r}")
            return tuple(decode_value(a, v, source, f"{path}[{i}]") for i, (a, v) in enumerate(zip(args, value)))
        item_t = args[0] if args else Any
        items = [decode_value(item_t, v, source, f"{path}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple or annotation is tuple else items
    if annotation is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{source}: {path} must be true or false, got {value!r}")
        return value
    if annotation is int:
        # bool is accepted: upstream declares e.g. `replace_final_stride_with_dilation: int = False`.
        if not isinstance(value, int) and not (isinstance(value, float) and value.is_integer()):
            raise ConfigError(f"{source}: {path} must be an integer, got {value!r}")
        return value if isinstance(value, int) else int(value)
    if annotation is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{source}: {path} must be a number, got {value!r}")
        return float(value)
    if annotation is str:
        if not isinstance(value, str):
            raise ConfigError(f"{source}: {path} must be a string, got {value!r}")
        return value
    if annotation is Path:
        if not isinstance(value, str):
            raise ConfigError(f"{source}: {path} must be a path string, got {value!r}")
        return Path(value)
    raise ConfigError(f"{source}: {path}: cannot read a value of type {_name(annotation)} from JSON")


def _name(annotation: Any) -> str:
    return getattr(annotation, "__name__", str(annotation))
