"""Settings: environment variables with one prefix, typed, with working defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from sluice.errors import ConfigError
from sluice.settings import Settings, load_settings


def test_load_settings_defaults_work_locally() -> None:
    settings = load_settings(environ={})
    assert settings.warehouse == "duckdb"
    assert settings.duckdb_file == Path(".local/warehouse.duckdb")
    assert settings.staging_root == Path(".local/staging")


def test_load_settings_reads_prefixed_env_with_types() -> None:
    settings = load_settings(
        environ={"SLUICE_HOME": "/x", "SLUICE_CHUNK_BYTES": "1024", "SLUICE_WAREHOUSE": "bigquery"}
    )
    assert settings.home == Path("/x")
    assert settings.chunk_bytes == 1024
    assert settings.duckdb_file == Path("/x/warehouse.duckdb")


def test_load_settings_override_beats_env() -> None:
    settings = load_settings(environ={"SLUICE_WAREHOUSE_DATASET": "a"}, warehouse_dataset="b")
    assert settings.warehouse_dataset == "b"


def test_load_settings_bad_number_names_the_variable() -> None:
    with pytest.raises(ConfigError, match="SLUICE_CHUNK_BYTES: expected an integer, found 'lots'"):
        load_settings(environ={"SLUICE_CHUNK_BYTES": "lots"})


def test_load_settings_unknown_warehouse_rejected() -> None:
    with pytest.raises(ConfigError, match="expected 'duckdb' or 'bigquery', found 'oracle'"):
        load_settings(environ={"SLUICE_WAREHOUSE": "oracle"})


def test_every_setting_has_a_docstring() -> None:
    source = Path(__import__("sluice.settings").settings.__file__).read_text()
    for name in Settings.__dataclass_fields__:
        assert f"    {name}:" in source
        block = source.split(f"    {name}:", 1)[1].split("\n", 2)[1]
        assert block.strip().startswith('"""'), f"{name} has no docstring"


def test_load_settings_reads_a_renamed_variable_only_when_the_new_one_is_unset() -> None:
    old = load_settings(environ={"SLUICE_DATASET": "old"})
    both = load_settings(environ={"SLUICE_DATASET": "old", "SLUICE_WAREHOUSE_DATASET": "new"})

    assert old.warehouse_dataset == "old"
    assert both.warehouse_dataset == "new"
