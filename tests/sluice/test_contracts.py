"""Contracts: the shipped files load, bad files fail clearly, headers resolve by name."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from sluice.contracts import (
    Contract,
    FreshnessRule,
    contract_for_object,
    get_contract,
    load_contract,
    load_contracts,
    resolve_header,
)
from sluice.errors import ContractError
from sluice.records.log_layouts import ServerLogFormat

KIVA_LOANS_COLUMNS = [
    "loan_id",
    "loan_name",
    "original_language",
    "description",
    "description_translated",
    "funded_amount",
    "loan_amount",
    "status",
    "activity_name",
    "sector_name",
    "loan_use",
    "country_code",
    "country_name",
    "town_name",
    "currency_policy",
    "currency_exchange_coverage_rate",
    "currency",
    "partner_id",
    "posted_time",
    "planned_expiration_time",
    "disburse_time",
    "raised_time",
    "lender_term",
    "num_lenders_total",
    "num_journal_entries",
    "num_bulk_entries",
    "tags",
    "borrower_genders",
    "borrower_pictured",
    "repayment_interval",
    "distribution_model",
]


def write_contract(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_shipped_contracts_load_all_five(contracts: dict[str, Contract]) -> None:
    assert sorted(contracts) == [
        "access_logs", "http_requests", "kiva_lenders", "kiva_loans", "server_logs",
    ]  # fmt: skip


def test_kiva_loans_has_data_md_columns_in_order(contracts: dict[str, Contract]) -> None:
    assert contracts["kiva_loans"].column_names == KIVA_LOANS_COLUMNS


def test_kiva_loans_types_follow_data_md(contracts: dict[str, Contract]) -> None:
    loans = contracts["kiva_loans"]
    assert loans.column("loan_id").type == "integer"
    assert loans.column("funded_amount").type == "float"
    assert loans.column("partner_id").type == "integer"
    assert loans.column("posted_time").format == "%Y-%m-%d %H:%M:%S.%f %z"
    assert loans.column("tags").type == "string"
    assert loans.column("status").allowed == ("funded", "expired", "refunded", "fundRaising")


def test_contract_for_object_matches_landing_prefix(contracts: dict[str, Contract]) -> None:
    found = contract_for_object("incoming/server_logs/2026/11/24/lb-1.csv.gz", contracts)
    assert found is not None and found.name == "server_logs"
    assert contract_for_object("elsewhere/server_logs/x.csv", contracts) is None


def test_get_contract_unknown_names_the_known_ones(contracts: dict[str, Contract]) -> None:
    with pytest.raises(
        ContractError, match="expected a dataset among access_logs, http_requests, kiva"
    ):
        get_contract(contracts, "kiva")


def test_load_contract_rejects_unknown_type(tmp_path: Path) -> None:
    path = write_contract(tmp_path, "name: x\nversion: 1\ncolumns:\n  - {name: a, type: money}\n")
    with pytest.raises(ContractError, match=r"expected one of string, integer.*found 'money'"):
        load_contract(path)


def test_load_contract_rejects_duplicate_columns(tmp_path: Path) -> None:
    path = write_contract(
        tmp_path,
        "name: x\nversion: 1\ncolumns:\n  - {name: a, type: string}\n  - {name: a, type: float}\n",
    )
    with pytest.raises(ContractError, match="defined twice: a"):
        load_contract(path)


def test_load_contract_rejects_missing_key(tmp_path: Path) -> None:
    path = write_contract(tmp_path, "name: x\ncolumns: []\n")
    with pytest.raises(ContractError, match="expected key 'version'"):
        load_contract(path)


def test_load_contract_rejects_timestamp_without_format(tmp_path: Path) -> None:
    path = write_contract(
        tmp_path, "name: x\nversion: 1\ncolumns:\n  - {name: t, type: timestamp}\n"
    )
    with pytest.raises(ContractError, match="needs a format"):
        load_contract(path)


def test_load_contract_rejects_column_newer_than_contract(tmp_path: Path) -> None:
    path = write_contract(
        tmp_path, "name: x\nversion: 1\ncolumns:\n  - {name: a, type: string, since: 2}\n"
    )
    with pytest.raises(ContractError, match="added in version 2"):
        load_contract(path)


def test_load_contract_rejects_partition_on_non_time_column(tmp_path: Path) -> None:
    path = write_contract(
        tmp_path,
        "name: x\nversion: 1\ntable: {partition_by: a}\ncolumns:\n  - {name: a, type: string}\n",
    )
    with pytest.raises(ContractError, match="must be a date or timestamp"):
        load_contract(path)


def test_load_contract_rejects_a_fourth_cluster_column(tmp_path: Path) -> None:
    columns = "".join(f"  - {{name: {c}, type: string}}\n" for c in "abcd")
    path = write_contract(
        tmp_path,
        f"name: x\nversion: 1\ntable: {{cluster_by: [a, b, c, d]}}\ncolumns:\n{columns}",
    )
    with pytest.raises(ContractError, match=r"at most 3 columns .* _source_uri"):
        load_contract(path)


MINIMAL = "name: x\nversion: 1\ncolumns:\n  - {name: a, type: string}\n"


def test_shipped_contracts_have_typed_freshness_rules(contracts: dict[str, Contract]) -> None:
    logs = contracts["server_logs"]

    assert contracts["kiva_loans"].freshness == FreshnessRule(max_hours_without_file=24)
    assert logs.freshness == FreshnessRule(
        max_hours_without_file=1, min_rows_per_hour=1, window_hours=1
    )
    assert logs.freshness.min_rows_in_window == 1
    assert (logs.dead_letter_max_rate, logs.dead_letter_window_hours) == (0.01, 24)


def test_load_contract_without_freshness_has_no_rules(tmp_path: Path) -> None:
    contract = load_contract(write_contract(tmp_path, MINIMAL))

    assert contract.freshness == FreshnessRule()
    assert contract.freshness.min_rows_in_window is None
    assert contract.dead_letter_max_rate == 0.05


def test_load_contract_reads_rows_window(tmp_path: Path) -> None:
    text = MINIMAL + "freshness: {min_rows_per_hour: 50, window_hours: 6}\n"

    rule = load_contract(write_contract(tmp_path, text)).freshness

    assert (rule.min_rows_per_hour, rule.window_hours, rule.min_rows_in_window) == (50, 6, 300)
    assert rule.max_hours_without_file is None


@pytest.mark.parametrize(
    ("block", "message"),
    [
        (
            "freshness: {max_hours: 24}",
            "freshness: expected keys among max_hours_without_file, min_rows_per_hour, "
            "window_hours, found unknown 'max_hours'",
        ),
        ("freshness: [24]", "freshness: expected a mapping, found [24]"),
        (
            "freshness: {max_hours_without_file: 0}",
            "freshness.max_hours_without_file: expected a number more than 0, found 0",
        ),
        (
            "freshness: {max_hours_without_file: '24'}",
            "freshness.max_hours_without_file: expected a number more than 0, found '24'",
        ),
        (
            "freshness: {min_rows_per_hour: -1}",
            "freshness.min_rows_per_hour: expected a number more than 0, found -1",
        ),
        (
            "freshness: {min_rows_per_hour: true}",
            "freshness.min_rows_per_hour: expected a number more than 0, found True",
        ),
        (
            "freshness: {max_hours_without_file: 24, window_hours: 2}",
            "window_hours applies to min_rows_per_hour, found no min_rows_per_hour",
        ),
        (
            "dead_letter: {max_rate: 5}",
            "dead_letter.max_rate: expected a share between 0 and 1, found 5.0",
        ),
        (
            "dead_letter: {max_rate: .nan}",
            "dead_letter.max_rate: expected a number 0 or more, found nan",
        ),
        (
            "dead_letter: {rate: 0.1}",
            "dead_letter: expected keys among max_rate, window_hours, found unknown 'rate'",
        ),
    ],
)
def test_load_contract_rejects_bad_alert_rules(tmp_path: Path, block: str, message: str) -> None:
    path = write_contract(tmp_path, MINIMAL + block + "\n")

    with pytest.raises(ContractError) as error:
        load_contract(path)

    assert message in str(error.value)
    assert str(path) in str(error.value)


def test_load_contract_accepts_zero_dead_letter_rate(tmp_path: Path) -> None:
    text = MINIMAL + "dead_letter: {max_rate: 0, window_hours: 6}\n"

    contract = load_contract(write_contract(tmp_path, text))

    assert (contract.dead_letter_max_rate, contract.dead_letter_window_hours) == (0.0, 6.0)


def test_load_contracts_empty_directory_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ContractError, match="found none"):
        load_contracts(tmp_path)


def test_resolve_header_accepts_any_order(contracts: dict[str, Contract]) -> None:
    names = list(reversed(KIVA_LOANS_COLUMNS))
    mapping = resolve_header(names, contracts["kiva_loans"])
    assert mapping.ok
    assert mapping.positions["loan_id"] == 30
    assert mapping.field_count == 31


def test_resolve_header_strips_bom_and_spaces(contracts: dict[str, Contract]) -> None:
    mapping = resolve_header(["\ufeffloan_id", " lenders "], contracts["kiva_lenders"])
    assert mapping.ok
    assert mapping.positions == {"loan_id": 0, "lenders": 1}


def test_resolve_header_missing_required_column(contracts: dict[str, Contract]) -> None:
    mapping = resolve_header(["loan_id"], contracts["kiva_lenders"])
    assert not mapping.ok
    assert "expected required column(s) 'lenders'" in mapping.problems[0]
    assert "found header 'loan_id'" in mapping.problems[0]


def test_resolve_header_optional_column_may_be_absent(contracts: dict[str, Contract]) -> None:
    lenders = contracts["kiva_lenders"]
    optional = dataclasses.replace(lenders.column("lenders"), required=False)
    contract = dataclasses.replace(lenders, columns=(lenders.column("loan_id"), optional))
    assert resolve_header(["loan_id"], contract).ok


def test_resolve_header_unknown_column_rejected_or_ignored(
    contracts: dict[str, Contract],
) -> None:
    lenders = contracts["kiva_lenders"]
    names = ["loan_id", "lenders", "extra"]
    rejected = resolve_header(names, lenders)
    ignored = resolve_header(names, dataclasses.replace(lenders, unknown_columns="ignore"))
    assert "unknown column(s) 'extra'" in rejected.problems[0]
    assert ignored.ok and ignored.ignored == ("extra",)


def test_resolve_header_duplicate_column(contracts: dict[str, Contract]) -> None:
    mapping = resolve_header(["loan_id", "lenders", "loan_id"], contracts["kiva_lenders"])
    assert mapping.problems == ("header: column 'loan_id' appears twice (fields 1 and 3)",)


@pytest.mark.parametrize(
    "name", ["evil`; DROP TABLE `p.sluice.ingestion_log`; --", "_source_uri", "1st", "a b", ""]
)
def test_load_contract_refuses_names_that_are_not_identifiers(tmp_path: Path, name: str) -> None:
    dataset = write_contract(
        tmp_path, f"name: {name!r}\nversion: 1\ncolumns:\n  - {{name: a, type: string}}\n"
    )
    column = tmp_path / "column.yaml"
    column.write_text(
        f"name: x\nversion: 1\ncolumns:\n  - {{name: {name!r}, type: string}}\n", encoding="utf-8"
    )

    with pytest.raises(ContractError, match="expected letters, digits and '_'"):
        load_contract(dataset)
    with pytest.raises(ContractError, match="expected letters, digits and '_'"):
        load_contract(column)


def test_load_contracts_refuses_a_dataset_named_like_a_dead_letter_table(tmp_path: Path) -> None:
    for name in ("orders", "orders_dead_letter"):
        (tmp_path / f"{name}.yaml").write_text(
            f"name: {name}\nversion: 1\ncolumns:\n  - {{name: a, type: string}}\n",
            encoding="utf-8",
        )

    with pytest.raises(ContractError, match="orders_dead_letter clash"):
        load_contracts(tmp_path)


def test_load_contract_table_version_names_the_processed_table(tmp_path: Path) -> None:
    first = load_contract(
        write_contract(tmp_path, "name: x\nversion: 1\ncolumns: [{name: a, type: string}]\n")
    )
    third = load_contract(
        write_contract(
            tmp_path,
            "name: x\nversion: 4\ntable: {table_version: 3}\ncolumns: [{name: a, type: string}]\n",
        )
    )

    assert (first.table_version, first.table) == (1, "x")
    assert (third.table_version, third.table, third.dead_letter_table) == (
        3,
        "x_v3",
        "x_dead_letter",
    )


@pytest.mark.parametrize("value", ["0", "-1", "'2'", "1.5", "true"])
def test_load_contract_rejects_a_table_version_that_is_not_a_positive_whole_number(
    tmp_path: Path, value: str
) -> None:
    text = (
        f"name: x\nversion: 1\ntable: {{table_version: {value}}}\n"
        "columns: [{name: a, type: string}]\n"
    )

    with pytest.raises(
        ContractError, match=r"table\.table_version: expected a whole number 1 or more"
    ):
        load_contract(write_contract(tmp_path, text))


def test_load_contracts_refuses_a_versioned_table_named_like_another_dataset(
    tmp_path: Path,
) -> None:
    (tmp_path / "a.yaml").write_text(
        "name: orders\nversion: 2\ntable: {table_version: 2}\ncolumns: [{name: a, type: string}]\n",
        encoding="utf-8",
    )
    (tmp_path / "b.yaml").write_text(
        "name: orders_v2\nversion: 1\ncolumns: [{name: a, type: string}]\n", encoding="utf-8"
    )

    with pytest.raises(ContractError, match="orders_v2 clash"):
        load_contracts(tmp_path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            MINIMAL + "dead_letter: {window_hours: 1.0e+9}\n",
            "dead_letter.window_hours: expected at most 87840 hours (ten years), found 1e+09",
        ),
        (
            MINIMAL + "freshness: {min_rows_per_hour: 1, window_hours: 1.0e+9}\n",
            "freshness.window_hours: expected at most 87840 hours (ten years), found 1e+09",
        ),
        (
            MINIMAL + "freshness: {max_hours_without_file: 1.0e+12}\n",
            "freshness.max_hours_without_file: expected at most 87840 hours",
        ),
        (
            "name: x\nversion: 2\ncolumns:\n  - {name: a, type: string, since: two}\n",
            "since: expected a whole number 1 or more, found 'two'",
        ),
        (
            "name: x\nversion: 0\ncolumns:\n  - {name: a, type: string}\n",
            "version: expected a whole number 1 or more, found 0",
        ),
        (
            "name: x\nversion: 1\ncolumns:\n  - {name: a, type: string, nullable: 'no'}\n",
            "nullable: expected true or false, found 'no'",
        ),
        (
            "name: x\nversion: 1\ncolumns:\n  - {name: a, type: string, allowed: abc}\n",
            "allowed: expected a list of values, found 'abc'",
        ),
    ],
)
def test_load_contract_refuses_values_out_of_bounds(
    tmp_path: Path, text: str, message: str
) -> None:
    """Each passed the checks once and then crashed a later step with a traceback."""
    path = write_contract(tmp_path, text)

    with pytest.raises(ContractError) as error:
        load_contract(path)

    assert message in str(error.value)


KEYED = "name: x\nversion: 1\ncolumns:\n  - {name: id, type: integer, nullable: false}\n"


@pytest.mark.parametrize(
    ("text", "write", "key"),
    [
        (KEYED, "append", ()),
        (KEYED + "write: merge\nprimary_key: [id]\n", "merge", ("id",)),
        (KEYED + "write: merge\nprimary_key: id\n", "merge", ("id",)),
        (KEYED + "write: replace_dataset\n", "replace_dataset", ()),
    ],
)
def test_load_contract_reads_the_write_mode(
    tmp_path: Path, text: str, write: str, key: tuple[str, ...]
) -> None:
    contract = load_contract(write_contract(tmp_path, text))

    assert (contract.write, contract.primary_key) == (write, key)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (KEYED + "write: upsert\n", "write: expected one of append, merge, replace_dataset"),
        (KEYED + "write: merge\n", "write: merge needs a primary_key, found none"),
        (KEYED + "primary_key: [id]\n", "primary_key applies to write: merge, found write: append"),
        (
            KEYED + "write: merge\nprimary_key: [nope]\n",
            "primary_key refers to column 'nope', expected one of the columns",
        ),
        (
            MINIMAL + "write: merge\nprimary_key: [a]\n",
            "primary_key column 'a': expected a required, non-nullable",
        ),
        (
            "name: x\nversion: 1\ncolumns:\n  - {name: f, type: float, nullable: false}\n"
            "write: merge\nprimary_key: [f]\n",
            "found float",
        ),
        (KEYED + "write: merge\nprimary_key: [id, id]\n", "primary_key names a column twice"),
    ],
)
def test_load_contract_refuses_a_bad_write_mode(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ContractError) as error:
        load_contract(write_contract(tmp_path, text))

    assert message in str(error.value)


def test_kiva_contracts_merge_on_loan_id(contracts: dict[str, Contract]) -> None:
    """Kiva's exports are full snapshots: a second day's file repeats most loans."""
    assert {name: (c.write, c.primary_key) for name, c in contracts.items()} == {
        "kiva_loans": ("merge", ("loan_id",)),
        "kiva_lenders": ("merge", ("loan_id",)),
        "server_logs": ("append", ()),
        "access_logs": ("append", ()),
        "http_requests": ("append", ()),
    }


ACCESS_LOG = (
    "name: x\nversion: 1\nformat: access_log\n{layout}"
    "columns:\n  - {{name: client_ip, type: string}}\n  - {{name: {column}, type: string}}\n"
)


def test_access_logs_contract_reads_the_combined_layout(contracts: dict[str, Contract]) -> None:
    logs = contracts["access_logs"]

    assert (logs.format, logs.layout, logs.landing_prefix) == (
        "access_log",
        "combined",
        "incoming/access_logs/",
    )
    assert [column.name for column in logs.file_columns] == [
        "client_ip", "user_name", "timestamp", "method", "path", "query", "protocol", "status",
        "bytes_sent", "referrer", "user_agent", "request",
    ]  # fmt: skip
    assert [(c.name, c.enrich, c.enrich_from) for c in logs.enriched_columns] == [
        ("country_code", "country", "client_ip"),
        ("is_bot", "bot", "user_agent"),
        ("browser", "browser", "user_agent"),
    ]


ENRICHED = (
    "name: x\nversion: 1\ncolumns:\n  - {{name: ip, type: string}}\n"
    "  - {{name: n, type: integer}}\n  - {{name: c, {column}}}\n"
)


def test_an_enriched_column_is_not_expected_in_the_file(tmp_path: Path) -> None:
    contract = load_contract(
        write_contract(tmp_path, ENRICHED.format(column="type: string, enrich: country, from: ip"))
    )

    header = resolve_header(["ip", "n"], contract)
    with_it = resolve_header(["ip", "n", "c"], contract)

    assert (header.ok, header.positions) == (True, {"ip": 0, "n": 1})
    assert with_it.problems == (
        "header: expected only columns of contract 'x', found unknown column(s) 'c'",
    )


@pytest.mark.parametrize(
    ("column", "message"),
    [
        ("type: string, enrich: city, from: ip", "enrich: expected one of country, bot, browser"),
        ("type: string, enrich: bot, from: ip", "gives a boolean column, found type string"),
        ("type: string, enrich: country", "needs from: <the column it is worked out from>"),
        ("type: string, from: ip", "from applies to enrich, found no enrich"),
        ("type: string, enrich: country, from: n", "found a column of type integer ('n')"),
        ("type: string, enrich: country, from: nope", "found no such column ('nope')"),
        ("type: string, enrich: country, from: c", "found an enriched column ('c')"),
        (
            "type: string, enrich: country, from: ip, nullable: false",
            "expected no required, nullable: false or path, found nullable",
        ),
    ],
)  # fmt: skip
def test_load_contract_rejects_a_bad_enrichment(tmp_path: Path, column: str, message: str) -> None:
    with pytest.raises(ContractError, match=re.escape(message)):
        load_contract(write_contract(tmp_path, ENRICHED.format(column=column)))


@pytest.mark.parametrize(
    "layout", ["common", "combined", "vhost_combined", "combined_request_time"]
)
def test_load_contract_accepts_each_access_log_layout(tmp_path: Path, layout: str) -> None:
    text = ACCESS_LOG.format(layout=f"layout: {layout}\n", column="status")

    assert load_contract(write_contract(tmp_path, text)).layout == layout


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            ACCESS_LOG.format(layout="", column="status"),
            "layout: expected one of common, combined, vhost_combined, combined_request_time "
            "for format: access_log, found none",
        ),
        (
            ACCESS_LOG.format(layout="layout: combinedio\n", column="status"),
            "layout: expected one of common, combined, vhost_combined, combined_request_time, "
            "found 'combinedio'",
        ),
        (
            MINIMAL + "layout: combined\n",
            "layout applies to format: access_log, found format: csv",
        ),
        (
            ACCESS_LOG.format(layout="layout: common\n", column="referrer"),
            "column(s) 'referrer': expected fields of layout common (client_ip, ident, ",
        ),
    ],
)
def test_load_contract_refuses_a_bad_layout(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ContractError) as error:
        load_contract(write_contract(tmp_path, text))

    assert message in str(error.value)


def test_load_contract_accepts_a_layout_in_the_servers_own_syntax(tmp_path: Path) -> None:
    layout = "{nginx: '$remote_addr [$time_local] \"$request\" $status $upstream_addr'}"
    text = ACCESS_LOG.format(layout=f"layout: {layout}\n", column="upstream_addr")

    contract = load_contract(write_contract(tmp_path, text))

    assert contract.layout == ServerLogFormat(
        "nginx", '$remote_addr [$time_local] "$request" $status $upstream_addr'
    )


@pytest.mark.parametrize(
    ("layout", "column", "message"),
    [
        (
            "{nginx: '$remote_addr $status'}",
            "path",
            "column(s) 'path': expected fields of layout custom nginx (client_ip, status), "
            "found names it does not have",
        ),
        (
            "{apache: '%h %Z %>s'}",
            "status",
            "layout: expected Apache LogFormat directives (%% %a %A ",
        ),
        ("{apache: '%h %Z %>s'}", "status", "found '%Z'"),
        (
            "{apache: '%h %{%d/%b/%Y %c}t'}",
            "status",
            "layout: %{%d/%b/%Y %c}t: expected strftime directives of one shape (%a %A ",
        ),
        ("{apache: '%h %{%d/%b/%Y %c}t'}", "status", "found '%c'"),
        (
            "{nginx: '$remote_addr [$time_local] $time_iso8601'}",
            "status",
            "layout: expected each field once, found 'timestamp' from $time_local and "
            "$time_iso8601",
        ),
        (
            "{nginx: '$remote_addr$remote_user'}",
            "status",
            "layout: expected text between $remote_addr and $remote_user, found none",
        ),
        (
            "{nginx: \"log_format j escape=json '$remote_addr';\"}",
            "status",
            "layout: log_format: expected escape=default or escape=none, found escape=json "
            "(a log of JSON objects is format: jsonl)",
        ),
        (
            "{iis: '%h'}",
            "status",
            "layout: expected a layout name or one of {nginx: '<log_format>'}, "
            "{apache: '<LogFormat>'} with the format as text, found {'iis': '%h'}",
        ),
        (
            "{nginx: 'no variables here'}",
            "status",
            "layout: expected at least one variable in the format, found none",
        ),
    ],
)
def test_load_contract_refuses_a_server_format_it_cannot_read(
    tmp_path: Path, layout: str, column: str, message: str
) -> None:
    text = ACCESS_LOG.format(layout=f"layout: {layout}\n", column=column)

    with pytest.raises(ContractError) as error:
        load_contract(write_contract(tmp_path, text))

    assert message in str(error.value)


JSONL = (
    "name: x\nversion: 1\nformat: {format}\ncolumns:\n  - {{name: status, type: integer{path}}}\n"
)


def test_http_requests_contract_reads_google_request_logs(contracts: dict[str, Contract]) -> None:
    requests = contracts["http_requests"]

    assert (requests.format, requests.landing_prefix) == ("jsonl", "incoming/http_requests/")
    assert requests.column("status").json_path == ("httpRequest", "status")
    assert requests.column("timestamp").json_path == ("timestamp",)
    assert requests.freshness.max_hours_without_file is not None


def test_load_contract_reads_a_jsonl_column_path(tmp_path: Path) -> None:
    text = JSONL.format(format="jsonl", path=", path: httpRequest.status")

    column = load_contract(write_contract(tmp_path, text)).column("status")

    assert (column.path, column.json_path) == ("httpRequest.status", ("httpRequest", "status"))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            JSONL.format(format="csv", path=", path: httpRequest.status"),
            "column 'status': path applies to format: jsonl, found format: csv",
        ),
        (
            JSONL.format(format="jsonl", path=", path: 'httpRequest..status'"),
            "path: expected keys (letters, digits, '_', '-', '@', '$') joined by '.', like "
            "'httpRequest.status', found 'httpRequest..status'",
        ),
        (
            JSONL.format(format="jsonl", path=", path: 7"),
            "like 'httpRequest.status', found 7",
        ),
    ],
)
def test_load_contract_refuses_a_bad_path(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ContractError) as error:
        load_contract(write_contract(tmp_path, text))

    assert message in str(error.value)
