"""Settings: environment variables with one prefix, typed, with working defaults."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

import pytest

from sluice.errors import ConfigError
from sluice.settings import BOUNDS, Settings, load_settings


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


@pytest.mark.parametrize(
    ("variable", "raw", "message"),
    [
        ("SLUICE_SPLIT_BYTES", "0", "SLUICE_SPLIT_BYTES: expected an integer >= 1, found 0"),
        ("SLUICE_CHUNK_BYTES", "-5", "SLUICE_CHUNK_BYTES: expected an integer >= 1, found -5"),
        (
            "SLUICE_MAX_BAD_SAMPLE_FRACTION",
            "nan",
            "SLUICE_MAX_BAD_SAMPLE_FRACTION: expected a number from 0 to 1, found nan",
        ),
        ("SLUICE_GCS_PORT", "70000", "SLUICE_GCS_PORT: expected an integer from 0 to 65535"),
    ],
)
def test_load_settings_number_out_of_bounds_names_the_variable(
    variable: str, raw: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_settings(environ={variable: raw})


def test_every_numeric_setting_has_bounds() -> None:
    numeric = {f.name for f in fields(Settings) if f.type in ("int", "float")}

    assert numeric == set(BOUNDS)


def test_every_default_is_within_its_bounds() -> None:
    defaults = Settings()

    for name, (low, high) in BOUNDS.items():
        assert low <= getattr(defaults, name) <= high, name


def test_load_settings_home_that_is_a_file_is_rejected(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.write_text("not a directory")

    message = f"SLUICE_HOME: expected a directory at {home}, found a file at {home}"
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_settings(environ={"SLUICE_HOME": str(home)})


def test_load_settings_home_under_a_file_is_rejected(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")

    with pytest.raises(ConfigError, match=f"found a file at {re.escape(str(blocker))}$"):
        load_settings(environ={"SLUICE_HOME": str(blocker / "home")})


def test_load_settings_duckdb_path_that_is_a_directory_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="SLUICE_DUCKDB_PATH: expected a DuckDB file at"):
        load_settings(environ={"SLUICE_DUCKDB_PATH": str(tmp_path)})


def test_load_settings_home_that_does_not_exist_yet_is_fine(tmp_path: Path) -> None:
    settings = load_settings(environ={"SLUICE_HOME": str(tmp_path / "new" / "home")})

    assert settings.staging_root == tmp_path / "new" / "home" / "staging"
