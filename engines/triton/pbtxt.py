"""A small writer of protobuf text format for Triton's ``config.pbtxt`` (no protobuf needed to write;
``validate.py`` parses the result with Triton's own schema).

Messages are dicts, repeated fields lists, enum values ``Enum("TYPE_FP32")``; map fields (parameters,
input_map) are lists of ``{"key": ..., "value": ...}`` entries, as the text format spells them.
"""
from __future__ import annotations


class Enum(str):
    """An enum value: written bare (TYPE_FP32), not quoted."""


def _scalar(value) -> str:
    if isinstance(value, Enum):
        return str(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'"{escaped}"'
    raise TypeError(f"cannot write {type(value).__name__} {value!r} in a config.pbtxt")


def to_pbtxt(message: dict, indent: int = 0) -> str:
    """The text format of ``message`` (fields in insertion order)."""
    pad = "  " * indent
    lines = []
    for key, value in message.items():
        if value is None:
            continue
        if isinstance(value, dict):
            lines.append(f"{pad}{key} {{\n{to_pbtxt(value, indent + 1)}{pad}}}")
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            lines += [f"{pad}{key} {{\n{to_pbtxt(v, indent + 1)}{pad}}}" for v in value]
        elif isinstance(value, list):
            lines.append(f"{pad}{key}: [{', '.join(_scalar(v) for v in value)}]")
        else:
            lines.append(f"{pad}{key}: {_scalar(value)}")
    return "".join(line + "\n" for line in lines)
