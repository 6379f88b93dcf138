"""JSON lines (``format: jsonl``): one JSON object a line, each column's value at its path.

A column's ``path`` (``httpRequest.status``; by default its name) leads through nested
objects to the value. Values become text for the shared typing (``sluice.records.coerce``):
a string as is, a number as its digits (``1.5``), ``true``/``false``, an object or array as
compact JSON text, and a null or a missing key as no value. So ``"status": "200"`` (nginx's
``escape=json``) and ``"status": 200`` (Google's exports) type alike.

Reading is vectorised per chunk: ``pyarrow.json`` reads every line at once, with a schema of
just the contract's paths. The kinds it declares (string, int, float, boolean) are learned
from the data: a chunk that holds a number where a string was declared is read again with a
number there, and the next chunks start from what was learned. Python's ``json`` reads line
by line only where Arrow cannot say which line is at fault or what text it held:

- lines that cannot be an object as written (not ``{`` ... ``}``), to say why;
- a chunk Arrow refuses (invalid JSON inside braces, a key twice, a column of mixed kinds);
- values stored as JSON text (an object in a ``string`` column);
- a required column with no value, to tell a missing key (a dead letter) from a ``null``.

A line that is not JSON, not an object, or holds a key twice, is a dead letter (``json``);
so is one without a ``required`` column's key (``missing_field``). An empty line is no
record, as in the other line formats.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pajson

from sluice.contracts import Column, Contract, HeaderMapping
from sluice.records.chunks import RecordChunk
from sluice.records.jsonline import LineFault, Path, as_text, load_object, walk
from sluice.records.linescan import LineChunk, LineFormat

NOT_AN_OBJECT = "json"
MISSING_FIELD = "missing_field"

_STRING, _INT, _FLOAT, _BOOL, _TEXT = "string", "int", "float", "bool", "json_text"
"""How Arrow reads a path: one of its types, or (``_TEXT``) not at all: Python writes it."""
_ARROW_TYPES = {_STRING: pa.string(), _INT: pa.int64(), _FLOAT: pa.float64(), _BOOL: pa.bool_()}
_FOUND_KINDS = {"string": _STRING, "number": _INT, "boolean": _BOOL}
_CHANGED = re.compile(r"Column\(([^)]*)\) changed from \w+ to (\w+)")
_NOT_INT64 = "Failed to convert JSON to int64"
_EXACT_FLOAT_LIMIT = 2.0**53
_OPEN, _CLOSE, _SPACE = ord("{"), ord("}"), ord(" ")


@dataclass
class _Parsed:
    """What one chunk's lines hold: text by column, and the lines that cannot be rows."""

    values: dict[str, pa.Array]
    """Column -> text (null: no value), one per row of ``rows``."""
    rows: np.ndarray
    """Record index -> its position in ``values`` (-1: none)."""
    faults: dict[int, tuple[str, str]]
    """Record index -> (fault code, reason)."""


class JsonLinesFormat(LineFormat):
    """JSON objects, one a line, read by the contract's column paths (``format: jsonl``)."""

    name = "jsonl"
    fault_nouns: Mapping[str, str] = MappingProxyType(
        {NOT_AN_OBJECT: "a line that is not a JSON object", MISSING_FIELD: "a required key missing"}
    )

    def __init__(self, columns: tuple[Column, ...]) -> None:
        self.paths: dict[str, Path] = {column.name: column.json_path for column in columns}
        self.required = [column.name for column in columns if column.required]
        inner = {path[:i] for path in self.paths.values() for i in range(1, len(path))}
        # A path another one goes through holds an object: only Python can write its text.
        self.kinds: dict[Path, str] = {
            path: _TEXT if path in inner else _STRING for path in self.paths.values()
        }

    def faults(self, chunk: RecordChunk, header: HeaderMapping) -> dict[str, np.ndarray]:
        """Lines that are not JSON objects; objects without a required column's key."""
        faults = self._parsed(chunk).faults
        return {
            code: np.array(sorted(i for i, (c, _) in faults.items() if c == code), np.int64)
            for code in self.fault_nouns
        }

    def describe_fault(
        self, chunk: RecordChunk, index: int, code: str, header: HeaderMapping
    ) -> str:
        """What was expected of the line, and what it holds instead."""
        return self._parsed(chunk).faults[index][1]

    def fields(
        self, chunk: RecordChunk, records: np.ndarray, header: HeaderMapping
    ) -> dict[str, pa.Array]:
        """Each column's value of ``records`` (JSON objects) as text; null for no value."""
        parsed = self._parsed(chunk)
        rows = pa.array(parsed.rows[records], pa.int64())
        return {name: parsed.values[name].take(rows) for name in header.positions}

    def _parsed(self, chunk: RecordChunk) -> _Parsed:
        """The chunk read once: ``faults`` asks first, ``fields`` next."""
        if not isinstance(chunk, LineChunk):
            raise TypeError(f"expected a chunk of lines, found {type(chunk).__name__}")
        if not isinstance(chunk.parsed, _Parsed):
            chunk.parsed = self._read_in_bulk(chunk) or self._read_line_by_line(chunk)
        return chunk.parsed

    def _read_in_bulk(self, chunk: LineChunk) -> _Parsed | None:
        """Every object line read by Arrow at once; None when Arrow refuses the chunk."""
        data = np.frombuffer(chunk.data, dtype=np.uint8)
        braced = (data[chunk.starts] == _OPEN) & (data[chunk.ends - 1] == _CLOSE)
        faults: dict[int, tuple[str, str]] = {}
        for index in np.flatnonzero(~braced).tolist():  # few lines: say why each is odd
            try:
                load_object(chunk.record_bytes(index))
                braced[index] = True  # an object after all (spaces around it)
            except LineFault as exc:
                faults[index] = (NOT_AN_OBJECT, str(exc))
            except UnicodeDecodeError:
                pass  # parse.py's UTF-8 check names the byte
        read = self._read_objects(_blank_all_but(data, chunk, braced), int(braced.sum()))
        if read is None:
            return None
        table, kinds = read
        rows = np.where(braced, np.cumsum(braced) - 1, -1)
        texts: dict[str, pa.Array | None] = {}
        redo: dict[str, np.ndarray] = {}  # column -> the rows whose text Python writes
        for name, path in self.paths.items():
            texts[name], redo[name] = _column_text(table, path, kinds[path])
            if name in self.required and texts[name] is not None:
                # A null in a required column: a missing key, or a null? Python tells.
                redo[name] = redo[name] | texts[name].is_null().to_numpy(zero_copy_only=False)
        patches: dict[str, dict[int, str | None]] = {name: {} for name in self.paths}
        again = np.logical_or.reduce([*redo.values(), np.zeros(table.num_rows, np.bool_)])
        for row, index in zip(
            np.flatnonzero(again).tolist(), np.flatnonzero(braced)[again].tolist(), strict=True
        ):
            line, fault = self._line_texts(chunk.record_bytes(index))
            if fault is not None:
                faults[index] = fault
            for name, text in line.items():
                if redo[name][row]:
                    patches[name][row] = text
        arrays = {name: _patched(texts[name], patches[name], table.num_rows) for name in texts}
        return _Parsed(arrays, rows, faults)

    def _read_objects(
        self, payload: pa.Buffer, count: int
    ) -> tuple[pa.Table, dict[Path, str]] | None:
        """``count`` objects read by Arrow, and the paths' kinds it was read with (learning
        from the kinds it finds); None when Arrow refuses them."""
        if not count:
            return pa.table({}), dict(self.kinds)
        kinds, tried = dict(self.kinds), {path: {kind} for path, kind in self.kinds.items()}
        for _ in range(2 * len(kinds) + 2):
            try:
                table = pajson.read_json(
                    pa.BufferReader(payload),
                    read_options=pajson.ReadOptions(
                        use_threads=False, block_size=min(payload.size + 1, 2**31 - 1)
                    ),
                    parse_options=pajson.ParseOptions(
                        explicit_schema=_schema(kinds), unexpected_field_behavior="ignore"
                    ),
                )
            except pa.ArrowInvalid as exc:
                if not _learn(str(exc), kinds, tried):
                    return None
                continue
            if table.num_rows != count:  # two objects on one line: read it line by line
                return None
            self.kinds.update(kinds)  # the next chunks start from what this one showed
            return table, kinds
        return None

    def _read_line_by_line(self, chunk: LineChunk) -> _Parsed:
        """Every line read by Python's ``json``: a chunk Arrow refused says which line."""
        faults: dict[int, tuple[str, str]] = {}
        texts: dict[str, list[str | None]] = {name: [] for name in self.paths}
        for index in range(len(chunk)):
            line, fault = self._line_texts(chunk.record_bytes(index))
            if fault is not None:
                faults[index] = fault
            for name, column in texts.items():
                column.append(line.get(name))
        values = {name: pa.array(column, pa.string()) for name, column in texts.items()}
        return _Parsed(values, np.arange(len(chunk), dtype=np.int64), faults)

    def _line_texts(self, record: bytes) -> tuple[dict[str, str | None], tuple[str, str] | None]:
        """One line's text by column, and its fault (None when it is a sound row)."""
        try:
            document = load_object(record)
        except LineFault as exc:
            return {}, (NOT_AN_OBJECT, str(exc))
        except UnicodeDecodeError:
            return {}, None  # parse.py's UTF-8 check names the byte
        texts, fault = {}, None
        for name, path in self.paths.items():
            missing, value = walk(document, path)
            if missing is not None and name in self.required and fault is None:
                fault = (MISSING_FIELD, missing)
            try:
                texts[name] = as_text(value)
            except UnicodeEncodeError:  # "\ud800": an escape of half a character
                return {}, (
                    NOT_AN_OBJECT,
                    f"expected text at {'.'.join(path)!r}, found a lone "
                    "surrogate escape (half a UTF-16 pair)",
                )
        return texts, fault


def _column_text(table: pa.Table, path: Path, kind: str) -> tuple[pa.Array | None, np.ndarray]:
    """A path's values as text (None: none) and the rows whose text Python must write: all
    of them for JSON text, and integers a float cannot hold exactly (``1e20`` or
    ``100000000000000000000``: only the line tells)."""
    if kind == _TEXT:
        return None, np.ones(table.num_rows, dtype=np.bool_)
    if table.num_rows == 0:
        return pa.array([], pa.string()), np.zeros(0, dtype=np.bool_)
    values = table.column(path[0]).combine_chunks()
    for key in path[1:]:
        values = pc.struct_field(values, [values.type.get_field_index(key)])
    inexact = np.zeros(table.num_rows, dtype=np.bool_)
    if kind == _FLOAT:
        large = pc.greater_equal(pc.abs(values), _EXACT_FLOAT_LIMIT)
        inexact = pc.fill_null(large, False).to_numpy(zero_copy_only=False)
    return values.cast(pa.string()), inexact


def _patched(texts: pa.Array | None, patches: dict[int, str | None], count: int) -> pa.Array:
    """``texts`` with the rows Python wrote replaced (few, unless a column is JSON text)."""
    if not patches:
        return texts if texts is not None else pa.nulls(count, pa.string())
    values = texts.to_pylist() if texts is not None else [None] * count
    for row, text in patches.items():
        values[row] = text
    return pa.array(values, pa.string())


def _blank_all_but(data: np.ndarray, chunk: LineChunk, keep: np.ndarray) -> pa.Buffer:
    """The chunk's records but ``keep``'s blanked to spaces: Arrow then reads exactly the
    kept lines, in order (the line ends stay where they were)."""
    if not len(chunk):
        return pa.py_buffer(b"")
    span = pa.py_buffer(chunk.data)[int(chunk.starts[0]) : int(chunk.ends[-1])]
    if keep.all():
        return span
    payload = np.frombuffer(span, dtype=np.uint8).copy()
    offset = int(chunk.starts[0])
    # The records left out are the lines already found odd, one by one: few of them.
    for start, end in zip(chunk.starts[~keep].tolist(), chunk.ends[~keep].tolist(), strict=True):
        payload[start - offset : end - offset] = _SPACE
    return pa.py_buffer(payload)


def _schema(kinds: dict[Path, str]) -> pa.Schema:
    """Arrow's schema for the paths it reads: nested structs down to each path's type."""
    tree: dict[str, Any] = {}
    for path, kind in kinds.items():
        if kind == _TEXT:
            continue
        node = tree
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = _ARROW_TYPES[kind]

    def arrow_type(node: dict[str, Any] | pa.DataType) -> pa.DataType:
        return node if isinstance(node, pa.DataType) else pa.struct(_fields(node))

    def _fields(node: dict[str, Any]) -> list[pa.Field]:
        return [pa.field(key, arrow_type(child)) for key, child in node.items()]

    return pa.schema(_fields(tree))


def _learn(error: str, kinds: dict[Path, str], tried: dict[Path, set[str]]) -> bool:
    """Change the kind Arrow's error shows was wrong; False when no change can help."""
    changed = _CHANGED.search(error)
    if changed is not None:
        path = tuple(changed[1].strip("/").split("/"))
        kind = _FOUND_KINDS.get(changed[2], _TEXT)  # an object or array: JSON text
        if path not in kinds or kind in tried[path]:
            return False  # a path inside a non-object, or a column of mixed kinds
        kinds[path] = kind
        tried[path].add(kind)
        return True
    # A fraction where integers were seen reads as a float; an integer past int64 does not
    # (a float would round it), so Python reads that chunk.
    if _NOT_INT64 in error and re.search(r"parse:\S*[.eE]", error):
        ints = [path for path, kind in kinds.items() if kind == _INT and _FLOAT not in tried[path]]
        for path in ints:
            kinds[path] = _FLOAT
            tried[path].add(_FLOAT)
        return bool(ints)
    return False


@functools.cache
def format_for_contract(contract: Contract) -> JsonLinesFormat:
    """The format reading the contract's paths (one per contract and process: the kinds
    it learns carry over from chunk to chunk)."""
    return JsonLinesFormat(contract.file_columns)


FORMAT = JsonLinesFormat(())
"""The format by name alone (``format_named``): enough to find records, which never depends
on the paths."""
