"""The pipeline loads access logs: a gzipped rotated log whole, a big plain one in ranges, and
one written in a layout of the server's own syntax."""

from __future__ import annotations

import gzip
from importlib.metadata import version
from pathlib import Path

import duckdb
import pytest

from tests.beam.line_loads import load_dataset
from tests.sluice.records.test_access_log import (
    DEAD,
    NGINX_CONTRACT,
    NGINX_DEAD,
    ROW_LINES,
    SAMPLE_COMBINED_LOG,
    SAMPLE_NGINX_LOG,
)


def load(
    path: Path, home: Path, monkeypatch: pytest.MonkeyPatch, *, split_bytes: int = 10**9
) -> tuple[list[tuple], list[tuple], tuple[int, int, int]]:
    return load_dataset(path, "access_logs", home, monkeypatch, split_bytes=split_bytes)


def test_pipeline_loads_a_gzipped_rotated_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "access.log.1.gz"
    path.write_bytes(gzip.compress(SAMPLE_COMBINED_LOG))

    rows, dead, counts = load(path, tmp_path / "home", monkeypatch)

    assert counts == (12, len(ROW_LINES), len(DEAD))
    assert [row[-2] for row in rows] == ROW_LINES  # _source_line, then _contract_version
    assert dict(dead) == DEAD


def test_pipeline_loads_a_log_in_ranges_as_it_does_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "access.log"
    path.write_bytes(b"\n".join(SAMPLE_COMBINED_LOG.split(b"\n")[:-1] * 300) + b"\n")

    whole = load(path, tmp_path / "whole", monkeypatch)
    split = load(path, tmp_path / "split", monkeypatch, split_bytes=8 * 1024)

    assert path.stat().st_size > 10 * 8 * 1024
    assert split == whole and whole[2] == (3300, 2700, 600)


def test_pipeline_records_the_enrichment_data_with_the_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "access.log"
    path.write_bytes(SAMPLE_COMBINED_LOG)

    load(path, tmp_path / "home", monkeypatch)

    with duckdb.connect(str(tmp_path / "home" / "warehouse.duckdb"), read_only=True) as con:
        logged = con.execute("SELECT status, enrichment FROM sluice.ingestion_log").fetchall()
    data = f"iptocc {version('iptocc')}; ua-parser-builtins {version('ua-parser-builtins')}"
    assert logged == [("loaded", data)]


def test_pipeline_loads_a_log_of_an_nginx_log_format(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    contracts = tmp_path / "contracts"
    contracts.mkdir()
    (contracts / "proxy_logs.yaml").write_text(NGINX_CONTRACT)
    monkeypatch.setenv("SLUICE_CONTRACTS_DIR", str(contracts))
    path = tmp_path / "proxy.access.log"
    path.write_bytes(SAMPLE_NGINX_LOG + b"\n")

    rows, dead, counts = load_dataset(
        path, "proxy_logs", tmp_path / "home", monkeypatch,
        columns="_source_line, status, request_time, upstream_response_time",
    )  # fmt: skip

    assert counts == (6, 3, 3)
    assert rows == [(1, 200, 0.042, "0.040"), (2, 502, 3.004, "3.001, 0.002"), (3, 200, 0.0, None)]
    assert dict(dead) == NGINX_DEAD
