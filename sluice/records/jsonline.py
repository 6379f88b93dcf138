"""One JSON line read by Python, where Arrow's bulk reading cannot say enough
(``sluice.records.formats.jsonl``): strictly one object with each key once, a path walked
through it with the reason when it is missing, and a value as the text Arrow would give."""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa

Path = tuple[str, ...]
"""Keys from the object's top down to a value."""


class LineFault(ValueError):
    """A line that is not one JSON object; the message says what was found."""


def load_object(record: bytes) -> dict[str, Any]:
    """The line as a JSON object; LineFault saying what it is instead."""
    try:
        document = json.loads(record, object_pairs_hook=_object_once, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise LineFault(
            f"expected a JSON object, found invalid JSON ({exc.msg}, character {exc.pos + 1})"
        ) from None
    if not isinstance(document, dict):
        raise LineFault(f"expected a JSON object, found {kind_of(document)}")
    return document


def _object_once(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document = dict(pairs)
    if len(document) != len(pairs):
        twice = next(key for i, (key, _) in enumerate(pairs) if key in dict(pairs[:i]))
        raise LineFault(f"expected each key once in an object, found {twice!r} twice")
    return document


def _no_constant(name: str) -> None:
    raise LineFault(f"expected a JSON object, found invalid JSON ({name} is not JSON)")


def walk(document: dict[str, Any], path: Path) -> tuple[str | None, Any]:
    """(why the path is missing, or None; the value there, or None)."""
    value: Any = document
    for depth, key in enumerate(path):
        if not isinstance(value, dict):
            where = ".".join(path[:depth])
            return f"expected an object at {where!r} holding {key!r}, found {kind_of(value)}", None
        if key not in value:
            within = f" in {'.'.join(path[:depth])!r}" if depth else ""
            return f"expected key {'.'.join(path)!r}, found no {key!r}{within}", None
        value = value[key]
    return None, value


def kind_of(value: Any) -> str:
    """How a reason names a JSON value that is not what was expected."""
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, str):
        return f"a string {value[:40]!r}"
    if isinstance(value, int | float):
        return f"a number {value!r}"
    return "an array" if isinstance(value, list) else "an object"


def as_text(value: Any) -> str | None:
    """A JSON value as the text Arrow's reading gives it (objects and arrays: compact JSON)."""
    if value is None:
        return None
    if isinstance(value, str):
        value.encode("utf-8")  # a lone surrogate escape is not text Arrow can hold
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        text: str = pa.scalar(value, pa.float64()).cast(pa.string()).as_py()
        return text
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    text.encode("utf-8")
    return text
