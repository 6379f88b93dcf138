"""Dataset contracts: one YAML file per dataset under ``contracts/``, read here and nowhere else.

A contract names the dataset, where its files land, its input format (``csv``, ``jsonl``, or
``access_log`` with a ``layout``), its columns (type, whether the header
must have it, whether a value may be empty, allowed values, timestamp format, the version
that added it), how the warehouse table is partitioned and clustered and which generation of
it (``table_version``) the rows go to, the freshness rule and the header policy. Both the
function and the pipeline read contracts through this module, which imports nothing from Beam
or Google Cloud.

Value rules shared by every consumer:
- an empty field is NULL (``NA`` and ``null`` are values, never nulls);
- ``integer`` accepts an optional sign and digits, and a float-looking integer (``12.0``);
- ``timestamp`` values are parsed with the column's ``format`` (strptime directives, ``%f``
  meaning fractional seconds, ``%z`` a ``+hhmm``/``+hh:mm``/``Z`` offset) or ``iso8601``;
  they are stored in UTC.
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from sluice.errors import ContractError
from sluice.records.log_layouts import (
    ACCESS_LOG_LAYOUTS,
    ServerLogFormat,
    compile_layout,
    read_layout,
)

TYPES = ("string", "integer", "float", "boolean", "date", "timestamp")
# Dataset and column names become table and column identifiers: letters, digits and '_',
# starting with a letter ('_' starts only the lineage columns Sluice adds itself).
NAME_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,127}$")
JSON_PATH_PATTERN = re.compile(r"^[A-Za-z_@$][A-Za-z0-9_@$-]*(\.[A-Za-z_@$][A-Za-z0-9_@$-]*)*$")
"""A ``jsonl`` column's ``path``: keys joined by dots (``httpRequest.status``, ``@timestamp``)."""
FRESHNESS_KEYS = ("max_hours_without_file", "min_rows_per_hour", "window_hours")
DEAD_LETTER_KEYS = ("max_rate", "window_hours")
FORMATS_DIR = Path(__file__).parent / "records" / "formats"
"""One module per input format (``sluice.records.formats``)."""
REQUEST_PARTS = ("method", "path", "query", "protocol")
"""The parts of an access log's request line, columns of every layout (NULL when the request
line is not ``METHOD TARGET PROTOCOL``)."""
HEADER_POLICIES = ("reject", "ignore")
WRITE_MODES = ("append", "merge", "replace_dataset")
"""How a file's rows meet the table (see ``Contract.write``)."""
KEY_TYPES = ("string", "integer", "date", "timestamp", "boolean")
"""Types a primary-key column may have: exact ones (a float key would match by accident)."""
MAX_HOURS = 24 * 366 * 10
"""The longest window or silence a rule may name: ten years, in hours. Longer ones would
reach before year 1 when subtracted from now."""
PARTITION_GRANULARITIES = ("DAY", "MONTH", "YEAR")
ENRICHMENTS = {"country": "string", "bot": "boolean", "browser": "string"}
"""What a column with ``enrich`` may be worked out as (``sluice.records.enrich``), with the
type it needs: ``country`` from an IP address, ``bot`` and ``browser`` from a user agent."""
CONTRACT_SUFFIXES = (".yaml", ".yml")
MAX_CLUSTER_BY = 3
"""Cluster columns a contract may name: BigQuery allows 4 and the processed table is
clustered by ``_source_uri`` first (``sluice.warehouse.bigquery.processed_clustering``)."""
YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""libyaml's safe loader when PyYAML has it: the same values, read 7x faster, which counts
because ``on_upload`` reads every contract for each event."""


@dataclass(frozen=True)
class Column:
    """One column of a dataset."""

    name: str
    type: str
    required: bool = True
    """The file's header must contain this column."""
    nullable: bool = True
    """An empty value is allowed (stored as NULL)."""
    allowed: tuple[str, ...] | None = None
    """When set, a non-empty value must be one of these (compared as text)."""
    format: str | None = None
    """Timestamp/date format: strptime directives or ``iso8601``."""
    since: int = 1
    """The contract version that added this column."""
    description: str = ""
    path: str | None = None
    """Where a ``jsonl`` record holds the value: dotted keys into the object
    (``httpRequest.status``); None means the column's name."""
    enrich: str | None = None
    """A kind in ``ENRICHMENTS``: the column is worked out from column ``enrich_from`` of
    the same row, never read from the file. None for a column the file holds."""
    enrich_from: str | None = None
    """The column an enriched column is worked out from (``from:`` in the contract)."""

    @property
    def json_path(self) -> tuple[str, ...]:
        """The keys leading to the value in a ``jsonl`` record, outermost first."""
        return tuple((self.path or self.name).split("."))


@dataclass(frozen=True)
class FreshnessRule:
    """When a dataset's data counts as missing (checked by ``sluice.cook.alerts``).

    Both limits are optional; a contract without a ``freshness`` block is never missing.
    """

    max_hours_without_file: float | None = None
    """Alert when no file was loaded for longer than this (or never)."""
    min_rows_per_hour: float | None = None
    """Alert when the files loaded in the last ``window_hours`` brought fewer rows than
    ``min_rows_per_hour * window_hours``."""
    window_hours: float = 1.0
    """The window ``min_rows_per_hour`` is averaged over."""

    @property
    def min_rows_in_window(self) -> float | None:
        """The fewest rows the window may hold, or None without a row rule."""
        if self.min_rows_per_hour is None:
            return None
        return self.min_rows_per_hour * self.window_hours


@dataclass(frozen=True)
class Contract:
    """Everything Sluice knows about one dataset."""

    name: str
    version: int
    landing_prefix: str
    columns: tuple[Column, ...]
    description: str = ""
    unknown_columns: str = "reject"
    """Header policy for columns the contract does not know: ``reject`` or ``ignore``."""
    partition_by: str | None = None
    partition_granularity: str = "DAY"
    cluster_by: tuple[str, ...] = ()
    table_version: int = 1
    """Generation of the processed table; a breaking change declares the next one."""
    freshness: FreshnessRule = field(default_factory=FreshnessRule)
    dead_letter_max_rate: float = 0.05
    """Alert when dead letters / rows in, over the window below, is above this share."""
    dead_letter_window_hours: float = 24.0
    """How far back the dead-letter rate looks (loaded files by ``finished_at``)."""
    source_path: Path | None = None
    format: str = "csv"
    """The input format: the module ``sluice/records/formats/<format>.py`` reads it."""
    layout: str | ServerLogFormat | None = None
    """How each line of an ``access_log`` lays out its fields: a name in
    ``sluice.records.log_layouts.ACCESS_LOG_LAYOUTS`` or the server's own format string
    (None for every other format)."""
    write: str = "append"
    """How a file's rows meet the table. ``append``: each file adds its rows (a reload of the
    same object replaces its own rows). ``merge``: one row per ``primary_key``; the version
    from the newest file (by generation) wins, with that file's lineage. ``replace_dataset``:
    each file is a full snapshot; the newest file's rows are the table."""
    primary_key: tuple[str, ...] = ()
    """The columns that identify a row under ``write: merge``; unique within a file (a
    repeated key is a dead letter naming the line that used it first)."""

    @property
    def column_names(self) -> list[str]:
        """Column names in contract order."""
        return [c.name for c in self.columns]

    @property
    def file_columns(self) -> tuple[Column, ...]:
        """The columns a file holds: every column but the enriched ones."""
        return tuple(c for c in self.columns if c.enrich is None)

    @property
    def enriched_columns(self) -> tuple[Column, ...]:
        """The columns worked out from other columns (``enrich``), in contract order."""
        return tuple(c for c in self.columns if c.enrich is not None)

    def column(self, name: str) -> Column:
        """The column called ``name``."""
        for col in self.columns:
            if col.name == name:
                return col
        raise ContractError(f"contract {self.name!r} has no column {name!r}")

    @property
    def table(self) -> str:
        """Warehouse table of processed rows: ``name``, then ``name_v2``, ``name_v3``..."""
        return self.name if self.table_version == 1 else f"{self.name}_v{self.table_version}"

    @property
    def dead_letter_table(self) -> str:
        """Warehouse table of rows that failed the contract, shared by every table version
        (its columns never depend on the contract; ``contract_version`` tells rows apart)."""
        return f"{self.name}_dead_letter"


@dataclass(frozen=True)
class HeaderMapping:
    """How a file's header lines up with a contract."""

    positions: dict[str, int]
    """Contract column name -> 0-based field position in the file (absent columns omitted)."""
    field_count: int
    """Number of fields in the header (every record must have this many)."""
    problems: tuple[str, ...]
    """Reasons to reject the file; empty when the header is acceptable."""
    ignored: tuple[str, ...] = ()
    """Unknown header names skipped under the ``ignore`` policy."""

    @property
    def ok(self) -> bool:
        """True when the header is acceptable."""
        return not self.problems


def resolve_header(names: list[str], contract: Contract) -> HeaderMapping:
    """Match header names to the contract by name (order may differ)."""
    cleaned = [n.strip() for n in names]
    if cleaned and cleaned[0].startswith("\ufeff"):
        cleaned[0] = cleaned[0][1:]
    problems: list[str] = []
    seen: dict[str, int] = {}
    for pos, name in enumerate(cleaned):
        if name in seen:
            problems.append(
                f"header: column {name!r} appears twice (fields {seen[name] + 1} and {pos + 1})"
            )
        else:
            seen[name] = pos
    known = {c.name for c in contract.file_columns}
    positions = {name: pos for name, pos in seen.items() if name in known}
    missing = [c.name for c in contract.file_columns if c.required and c.name not in positions]
    if missing:
        problems.append(
            f"header: expected required column(s) {', '.join(map(repr, missing))}, "
            f"found header {', '.join(map(repr, cleaned))}"
        )
    unknown = tuple(n for n in cleaned if n not in known)
    if unknown and contract.unknown_columns == "reject":
        problems.append(
            f"header: expected only columns of contract {contract.name!r}, "
            f"found unknown column(s) {', '.join(map(repr, unknown))}"
        )
    ignored = unknown if contract.unknown_columns == "ignore" else ()
    return HeaderMapping(positions, len(cleaned), tuple(problems), ignored)


def load_contract(path: Path) -> Contract:
    """Read and check one contract file."""
    try:
        raw = yaml.load(Path(path).read_text(encoding="utf-8"), Loader=YAML_LOADER)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ContractError(f"{path}: cannot read contract: {exc}") from None
    if not isinstance(raw, dict):
        raise ContractError(f"{path}: expected a mapping, found {type(raw).__name__}")
    return _build_contract(raw, Path(path))


def contract_files(directory: Path) -> list[Path]:
    """The contract files of ``directory``: ``*.yaml`` and ``*.yml``, by name.

    A name starting with ``.`` is never a contract: an editor's lock file (``.#x.yaml``) or
    macOS's metadata file (``._x.yaml``) beside one must not break the datasets.
    """
    return sorted(
        path
        for path in Path(directory).iterdir()
        if path.suffix in CONTRACT_SUFFIXES and not path.name.startswith(".") and path.is_file()
    )


@dataclass(frozen=True)
class BrokenContract:
    """A contract file that could not be used, and why; its dataset alone is out of service."""

    path: Path
    reason: str
    """What was expected and what was found (without the file name)."""
    dataset: str
    """The ``name`` key if the YAML parses to one, else the file stem."""
    landing_prefix: str
    """Where the dataset's files land, as far as the file tells (``incoming/<dataset>/``)."""

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"

    def as_dict(self) -> dict[str, str]:
        """The JSON form that ``sluice status``, ``sluice cook`` and the cook function print."""
        return {
            "file": str(self.path),
            "dataset": self.dataset,
            "landing_prefix": self.landing_prefix,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class ContractSet:
    """The usable contracts of a directory, by dataset name, and the broken contract files."""

    contracts: dict[str, Contract]
    broken: tuple[BrokenContract, ...] = ()

    def contract(self, name: str) -> Contract:
        """The contract called ``name``; a broken one's error names its file and reason."""
        for broken in self.broken:
            if broken.dataset == name and name not in self.contracts:
                raise ContractError(f"dataset {name!r} has a broken contract: {broken}")
        return get_contract(self.contracts, name)

    def datasets_by_prefix(self) -> dict[str, str]:
        """Landing prefix -> dataset, for every contract file, usable or broken: the
        prefixes whose objects are ours (a broken contract's are quarantined)."""
        datasets = {b.landing_prefix: b.dataset for b in self.broken}
        return datasets | {c.landing_prefix: c.name for c in self.contracts.values()}

    def broken_for_object(self, object_name: str) -> BrokenContract | None:
        """The broken contract whose landing prefix holds ``object_name``, unless a usable
        contract's prefix holds it more closely (the longest prefix wins, as for contracts)."""
        good = contract_for_object(object_name, self.contracts)
        longest = len(good.landing_prefix) if good else -1
        matches = [
            b
            for b in self.broken
            if object_name.startswith(b.landing_prefix) and len(b.landing_prefix) > longest
        ]
        return max(matches, key=lambda b: len(b.landing_prefix), default=None)


def load_contract_set(directory: Path) -> ContractSet:
    """Every contract file of ``directory``, each on its own: a broken file (bad YAML, a
    failed check, a dataset defined twice, a table name another dataset has) is kept with
    its reason and every other dataset still loads. Only an empty directory is an error."""
    paths = contract_files(directory)
    if not paths:
        raise ContractError(f"{directory}: expected contract files (*.yaml), found none")
    contracts: dict[str, Contract] = {}
    broken: list[BrokenContract] = []
    for path in paths:
        try:
            contract = load_contract(path)
            _check_distinct(contract, contracts)
        except ContractError as exc:
            broken.append(_broken_contract(path, str(exc)))
            continue
        except (TypeError, ValueError, AttributeError) as exc:
            # A shape the checks did not foresee (a list where a mapping goes): still one file.
            broken.append(_broken_contract(path, f"expected a valid contract, found {exc}"))
            continue
        contracts[contract.name] = contract
    return ContractSet(contracts, tuple(broken))


def load_contracts(directory: Path) -> dict[str, Contract]:
    """Every contract in ``directory``, by dataset name; all or nothing: the first broken
    contract file is raised (``load_contract_set`` keeps the others usable instead)."""
    contract_set = load_contract_set(directory)
    if contract_set.broken:
        raise ContractError(str(contract_set.broken[0]))
    return contract_set.contracts


def _check_distinct(contract: Contract, contracts: dict[str, Contract]) -> None:
    """Refuse ``contract`` when its dataset or a table name is already taken."""
    if contract.name in contracts:
        other = contracts[contract.name].source_path
        raise ContractError(
            f"{contract.source_path}: dataset {contract.name!r} is defined twice (also in {other})"
        )
    taken = {c.table for c in contracts.values()} | {
        c.dead_letter_table for c in contracts.values()
    }
    clash = sorted({contract.table, contract.dead_letter_table} & taken)
    if clash:
        raise ContractError(
            f"{contract.source_path}: table name(s) {', '.join(clash)} clash with another "
            "dataset's table or dead-letter table; expected distinct table names"
        )


def _broken_contract(path: Path, message: str) -> BrokenContract:
    """A broken file's record: its dataset and landing prefix from just its ``name`` and
    ``landing_prefix`` keys when the YAML parses to them, else from the file stem."""
    reason = message.removeprefix(f"{path}: ")
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=YAML_LOADER)
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        raw = None
    raw = raw if isinstance(raw, dict) else {}
    name = raw.get("name")
    dataset = name if isinstance(name, str) and NAME_PATTERN.fullmatch(name) else path.stem
    prefix = raw.get("landing_prefix")
    if not isinstance(prefix, str) or not prefix:
        prefix = f"incoming/{dataset}/"
    return BrokenContract(path, reason, dataset, prefix)


def get_contract(contracts: dict[str, Contract], name: str) -> Contract:
    """The contract called ``name``, or a clear error listing the known ones."""
    try:
        return contracts[name]
    except KeyError:
        raise ContractError(
            f"expected a dataset among {', '.join(sorted(contracts))}, found {name!r}"
        ) from None


def contract_for_object(object_name: str, contracts: dict[str, Contract]) -> Contract | None:
    """The contract whose landing prefix holds ``object_name`` (longest prefix wins)."""
    matches = [c for c in contracts.values() if object_name.startswith(c.landing_prefix)]
    return max(matches, key=lambda c: len(c.landing_prefix), default=None)


def _build_contract(raw: dict[str, Any], path: Path) -> Contract:
    where = f"{path}"
    name = _check_name(_require(raw, "name", str, where), f"{where}: name")
    version = _whole_number(_require(raw, "version", int, where), f"{where}: version")
    raw_columns = _require(raw, "columns", list, where)
    columns = tuple(_build_column(c, f"{where}: column {i + 1}") for i, c in enumerate(raw_columns))
    names = [c.name for c in columns]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ContractError(f"{where}: column(s) defined twice: {', '.join(duplicates)}")
    for col in columns:
        if col.since > version:
            raise ContractError(
                f"{where}: column {col.name!r} added in version {col.since}, "
                f"expected at most the contract version {version}"
            )
    header = raw.get("header") or {}
    policy = header.get("unknown_columns", "reject")
    _check_choice(policy, HEADER_POLICIES, f"{where}: header.unknown_columns")
    table = raw.get("table") or {}
    partition = table.get("partition_by")
    granularity = str(table.get("partition_granularity", "DAY")).upper()
    _check_choice(granularity, PARTITION_GRANULARITIES, f"{where}: table.partition_granularity")
    cluster = tuple(table.get("cluster_by") or ())
    if len(cluster) > MAX_CLUSTER_BY:
        raise ContractError(
            f"{where}: table.cluster_by: expected at most {MAX_CLUSTER_BY} columns (BigQuery"
            f" clusters by 4, and the first is always _source_uri), found {len(cluster)}"
        )
    table_version = _whole_number(table.get("table_version", 1), f"{where}: table.table_version")
    for col_name in ([partition] if partition else []) + list(cluster):
        if col_name not in names:
            raise ContractError(
                f"{where}: table refers to column {col_name!r}, expected one of the columns"
            )
    if partition and next(c for c in columns if c.name == partition).type not in (
        "date",
        "timestamp",
    ):
        raise ContractError(f"{where}: partition_by {partition!r} must be a date or timestamp")
    freshness = _build_freshness(raw.get("freshness"), f"{where}: freshness")
    write, primary_key = _build_write(raw, columns, where)
    dead = _mapping(raw.get("dead_letter"), DEAD_LETTER_KEYS, f"{where}: dead_letter")
    max_rate = _number(dead, "max_rate", f"{where}: dead_letter", 0.05, allow_zero=True)
    if max_rate > 1:
        raise ContractError(
            f"{where}: dead_letter.max_rate: expected a share between 0 and 1, found {max_rate!r}"
        )
    record_format = _check_format(raw.get("format", "csv"), f"{where}: format")
    _check_paths(columns, record_format, where)
    _check_enrichments(columns, where)
    return Contract(
        name=name,
        version=version,
        landing_prefix=raw.get("landing_prefix", f"incoming/{name}/"),
        format=record_format,
        layout=_check_layout(
            raw.get("layout"), record_format, [c.name for c in columns if c.enrich is None], where
        ),
        columns=columns,
        description=str(raw.get("description", "")).strip(),
        unknown_columns=policy,
        partition_by=partition,
        partition_granularity=granularity,
        cluster_by=cluster,
        table_version=table_version,
        freshness=freshness,
        dead_letter_max_rate=max_rate,
        dead_letter_window_hours=_hours(dead, "window_hours", f"{where}: dead_letter", 24.0),
        source_path=path,
        write=write,
        primary_key=primary_key,
    )


def _build_write(
    raw: dict[str, Any], columns: tuple[Column, ...], where: str
) -> tuple[str, tuple[str, ...]]:
    """The ``write`` mode and ``primary_key`` columns, checked against each other and the
    columns: a key is required by ``merge`` and means nothing to the other modes."""
    write = raw.get("write", "append")
    _check_choice(write, WRITE_MODES, f"{where}: write")
    key = raw.get("primary_key", [])
    key = [key] if isinstance(key, str) else key
    if not isinstance(key, list) or not all(isinstance(name, str) for name in key):
        raise ContractError(f"{where}: primary_key: expected a list of column names, found {key!r}")
    if write == "merge" and not key:
        raise ContractError(f"{where}: write: merge needs a primary_key, found none")
    if key and write != "merge":
        raise ContractError(f"{where}: primary_key applies to write: merge, found write: {write}")
    by_name = {column.name: column for column in columns}
    for name in key:
        column = by_name.get(name)
        if column is None:
            raise ContractError(
                f"{where}: primary_key refers to column {name!r}, expected one of the columns"
            )
        if column.nullable or not column.required or column.type not in KEY_TYPES:
            raise ContractError(
                f"{where}: primary_key column {name!r}: expected a required, non-nullable "
                f"{'/'.join(KEY_TYPES)} column, found {'nullable ' if column.nullable else ''}"
                f"{'optional ' if not column.required else ''}{column.type}"
            )
    if len(set(key)) != len(key):
        raise ContractError(f"{where}: primary_key names a column twice: {key!r}")
    return write, tuple(key)


def _build_freshness(raw: Any, where: str) -> FreshnessRule:
    values = _mapping(raw, FRESHNESS_KEYS, where)
    rows_per_hour = _number(values, "min_rows_per_hour", where, None)
    if "window_hours" in values and rows_per_hour is None:
        raise ContractError(
            f"{where}: window_hours applies to min_rows_per_hour, found no min_rows_per_hour"
        )
    return FreshnessRule(
        max_hours_without_file=_hours(values, "max_hours_without_file", where, None),
        min_rows_per_hour=rows_per_hour,
        window_hours=_hours(values, "window_hours", where, 1.0),
    )


def _mapping(raw: Any, keys: tuple[str, ...], where: str) -> dict[str, Any]:
    """``raw`` as a mapping with only ``keys`` (a missing or empty block is ``{}``)."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ContractError(f"{where}: expected a mapping, found {raw!r}")
    unknown = sorted(set(raw) - set(keys))
    if unknown:
        raise ContractError(
            f"{where}: expected keys among {', '.join(keys)}, found unknown "
            f"{', '.join(map(repr, unknown))}"
        )
    return raw


def _number(
    values: dict[str, Any], key: str, where: str, default: Any, *, allow_zero: bool = False
) -> Any:
    """``values[key]`` as a float (positive, or non-negative with ``allow_zero``)."""
    if key not in values:
        return default
    value = values[key]
    low = "0 or more" if allow_zero else "more than 0"
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value < 0
        or (value == 0 and not allow_zero)
    ):
        raise ContractError(f"{where}.{key}: expected a number {low}, found {value!r}")
    return float(value)


def _hours(values: dict[str, Any], key: str, where: str, default: Any) -> Any:
    """``values[key]``: a number of hours more than 0 and at most ``MAX_HOURS``."""
    hours = _number(values, key, where, default)
    if hours is not None and hours > MAX_HOURS:
        raise ContractError(
            f"{where}.{key}: expected at most {MAX_HOURS} hours (ten years), found {hours:g}"
        )
    return hours


def _whole_number(value: Any, where: str) -> int:
    """``value`` as a whole number 1 or more (YAML's ``2``, never ``2.0``, ``'2'`` or ``true``)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ContractError(f"{where}: expected a whole number 1 or more, found {value!r}")
    return value


def _flag(raw: dict[str, Any], key: str, where: str) -> bool:
    """``raw[key]`` (default true) as YAML's true or false; ``'no'`` in quotes is not false."""
    value = raw.get(key, True)
    if not isinstance(value, bool):
        raise ContractError(f"{where}: {key}: expected true or false, found {value!r}")
    return value


def _build_column(raw: Any, where: str) -> Column:
    if not isinstance(raw, dict):
        raise ContractError(f"{where}: expected a mapping, found {raw!r}")
    name = _check_name(_require(raw, "name", str, where), f"{where}: name")
    where = f"{where} ({name!r})"
    col_type = _require(raw, "type", str, where)
    _check_choice(col_type, TYPES, f"{where}: type")
    fmt = raw.get("format")
    if col_type == "timestamp" and not fmt:
        raise ContractError(f"{where}: a timestamp column needs a format (strptime or iso8601)")
    allowed = raw.get("allowed")
    if allowed is not None and not isinstance(allowed, list):
        raise ContractError(f"{where}: allowed: expected a list of values, found {allowed!r}")
    if fmt is not None and not isinstance(fmt, str):
        raise ContractError(f"{where}: format: expected text, found {fmt!r}")
    enrich, source = raw.get("enrich"), raw.get("from")
    if enrich is not None:
        _check_choice(enrich, tuple(ENRICHMENTS), f"{where}: enrich")
        if ENRICHMENTS[enrich] != col_type:
            raise ContractError(
                f"{where}: enrich: {enrich} gives a {ENRICHMENTS[enrich]} column, "
                f"found type {col_type}"
            )
        if not isinstance(source, str):
            raise ContractError(
                f"{where}: enrich: {enrich} needs from: <the column it is worked out from>, "
                f"found {source!r}"
            )
        if "required" in raw or raw.get("nullable", True) is not True or "path" in raw:
            raise ContractError(
                f"{where}: an enriched column is never in the file and is NULL when the lookup "
                "finds nothing: expected no required, nullable: false or path, found "
                f"{', '.join(k for k in ('required', 'nullable', 'path') if k in raw)}"
            )
    elif source is not None:
        raise ContractError(f"{where}: from applies to enrich, found no enrich")
    return Column(
        name=name,
        type=col_type,
        required=_flag(raw, "required", where),
        nullable=_flag(raw, "nullable", where),
        allowed=tuple(str(v) for v in allowed) if allowed else None,
        format=fmt,
        since=_whole_number(raw.get("since", 1), f"{where}: since"),
        description=str(raw.get("description", "")).strip(),
        path=raw.get("path"),
        enrich=enrich,
        enrich_from=source,
    )


def _require(raw: dict[str, Any], key: str, kind: type, where: str) -> Any:
    if key not in raw:
        raise ContractError(f"{where}: expected key {key!r}, found keys {sorted(raw)}")
    value = raw[key]
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise ContractError(f"{where}: {key} must be a {kind.__name__}, found {value!r}")
    return value


@functools.cache
def known_formats() -> tuple[str, ...]:
    """The input formats there is a module for. Looked up as files, not imported: the
    formats read contracts, so importing them here would make the two import each other.
    Listed once per process: every contract and every parsed range asks."""
    return tuple(sorted(p.stem for p in FORMATS_DIR.glob("*.py") if not p.stem.startswith("_")))


def _check_format(name: Any, where: str) -> str:
    known = known_formats()
    if not isinstance(name, str) or name not in known:
        raise ContractError(f"{where}: expected one of {', '.join(known)}, found {name!r}")
    return name


def _check_layout(
    layout: Any, record_format: str, columns: list[str], where: str
) -> str | ServerLogFormat | None:
    """The ``layout`` of an access_log contract, whose fields name every column; else None.

    A named layout is its name; a server's own format is ``{nginx: '<log_format>'}`` or
    ``{apache: '<LogFormat>'}``, compiled here so a variable it cannot read fails the
    contract, not the first file."""
    if record_format != "access_log":
        if layout is not None:
            raise ContractError(
                f"{where}: layout applies to format: access_log, found format: {record_format}"
            )
        return None
    if layout is None:
        raise ContractError(
            f"{where}: layout: expected one of {', '.join(ACCESS_LOG_LAYOUTS)} "
            "for format: access_log, found none"
        )
    try:
        layout = read_layout(layout)
        compiled = compile_layout(layout)
    except ContractError as error:
        raise ContractError(f"{where}: layout: {error}") from error
    fields = compiled.fields
    if "request" in fields:
        fields += REQUEST_PARTS
    unknown = [name for name in columns if name not in fields]
    if unknown:
        raise ContractError(
            f"{where}: column(s) {', '.join(map(repr, unknown))}: expected fields of layout "
            f"{compiled.title} ({', '.join(fields)}), found names it does not have"
        )
    return layout


def _check_paths(columns: tuple[Column, ...], record_format: str, where: str) -> None:
    """Each column's ``path``: only in a ``jsonl`` contract, and dotted keys."""
    for column in columns:
        if column.path is None:
            continue
        at = f"{where}: column {column.name!r}: path"
        if record_format != "jsonl":
            raise ContractError(f"{at} applies to format: jsonl, found format: {record_format}")
        if not isinstance(column.path, str) or not JSON_PATH_PATTERN.fullmatch(column.path):
            raise ContractError(
                f"{at}: expected keys (letters, digits, '_', '-', '@', '$') joined by '.', "
                f"like 'httpRequest.status', found {column.path!r}"
            )


def _check_enrichments(columns: tuple[Column, ...], where: str) -> None:
    """Each enriched column is worked out from a string column the file holds."""
    by_name = {column.name: column for column in columns}
    for column in columns:
        if column.enrich is None:
            continue
        source = by_name.get(str(column.enrich_from))
        if source is None or source.enrich is not None or source.type != "string":
            found = "no such column" if source is None else f"a column of type {source.type}"
            if source is not None and source.enrich is not None:
                found = "an enriched column"
            raise ContractError(
                f"{where}: column {column.name!r}: from: expected a string column the file "
                f"holds, found {found} ({column.enrich_from!r})"
            )


def _check_name(name: str, where: str) -> str:
    if not NAME_PATTERN.fullmatch(name):  # match() lets "$" accept a trailing newline
        raise ContractError(
            f"{where}: expected letters, digits and '_' starting with a letter, found {name!r}"
        )
    return name


def _check_choice(value: Any, choices: tuple[str, ...], where: str) -> None:
    if value not in choices:
        raise ContractError(f"{where}: expected one of {', '.join(choices)}, found {value!r}")
