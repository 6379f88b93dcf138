"""How an existing processed table follows a newer contract: add columns, refuse the rest.

An additive change (a column the table lacks) is applied in place: every warehouse column is
nullable, so rows loaded before read the new column as NULL, and files of the old layout keep
loading. A breaking change (a column whose type differs, or a column the table has and the
contract no longer lists) would corrupt old rows or lose data, so it is refused with a
``ContractError`` until the contract declares the next ``table_version``, which starts a new
table. Lineage columns belong to Sluice, not to the contract, and are never compared.
"""

from __future__ import annotations

from sluice.contracts import Contract
from sluice.errors import ContractError
from sluice.schema import BIGQUERY_TYPES, DUCKDB_TYPES, LINEAGE_COLUMNS, table_columns

LINEAGE_NAMES = frozenset(name for name, _ in LINEAGE_COLUMNS)

# Warehouse type names as the catalogs report them -> contract types. DuckDB spells
# TIMESTAMPTZ out in information_schema; BigQuery's API answers the legacy names.
DUCKDB_CATALOG_TYPES = {
    **{warehouse: kind for kind, warehouse in DUCKDB_TYPES.items()},
    "TIMESTAMP WITH TIME ZONE": "timestamp",
}
BIGQUERY_API_TYPES = {
    **{warehouse: kind for kind, warehouse in BIGQUERY_TYPES.items()},
    "INTEGER": "integer",
    "FLOAT": "float",
    "BOOLEAN": "boolean",
}


def contract_type(warehouse_type: str, catalog_types: dict[str, str]) -> str:
    """The contract type of a warehouse type name, or the name itself when none matches."""
    return catalog_types.get(warehouse_type.upper(), warehouse_type)


def columns_to_add(
    contract: Contract, location: str, existing: dict[str, str]
) -> list[tuple[str, str]]:
    """(name, type) of the processed columns the table lacks; refuses a breaking change.

    ``existing`` maps the table's columns to contract types (see ``contract_type``);
    ``location`` names the table in the message (``dataset.table``).
    """
    wanted = table_columns(contract)
    wanted_types = dict(wanted)
    problems: list[str] = []
    for name, kind in existing.items():
        if name in LINEAGE_NAMES:
            continue
        if name not in wanted_types:
            problems.append(f"column {name!r} ({kind}) is in the table but not in the contract")
        elif wanted_types[name] != kind:
            problems.append(
                f"column {name!r} is {kind} in the table, {wanted_types[name]} in the contract"
            )
    if problems:
        raise ContractError(
            f"table {location}: contract {contract.name!r} version {contract.version} makes a "
            f"breaking change: {'; '.join(problems)}; declare table_version: "
            f"{contract.table_version + 1} in the contract to start a new table"
        )
    return [(name, kind) for name, kind in wanted if name not in existing]
