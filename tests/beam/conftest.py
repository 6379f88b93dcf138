"""Fixtures for the pipeline tests: a small contract, sample files and a local TestPipeline."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from pathlib import Path

import pytest
from apache_beam.runners.portability.fn_api_runner import FnApiRunner
from apache_beam.testing.test_pipeline import TestPipeline

from sluice.contracts import Contract, load_contract

TINY_LOANS_CONTRACT = """\
name: tiny_loans
version: 2
landing_prefix: incoming/tiny_loans/
columns:
  - {name: loan_id, type: integer, nullable: false}
  - {name: loan_name, type: string}
  - {name: description, type: string}
  - {name: loan_amount, type: float, nullable: false}
  - {name: status, type: string, allowed: [funded, expired]}
  - {name: posted_time, type: timestamp, format: "%Y-%m-%d %H:%M:%S.%f %z"}
"""

# Header = line 1. Loan 1 spans lines 2-3, loan 3 has a bad amount (line 5), loan 4 has an
# extra field (line 6), loan 5 spans lines 7-8 and loan 6 is Namibia's "NA" name as a value.
SAMPLE_LOANS = """\
loan_id,loan_name,description,loan_amount,status,posted_time
1,Ana,"Ana sells fruit.
She has three children, and a ""big"" dream.",500.0,funded,2014-01-15 04:48:22.000 +0000
2,Гулмире,,1200,expired,2015-03-01 10:00:00.000 +0000
3,Bad amount,x,abc,funded,2014-01-15 04:48:22.000 +0000
4,Too many,a,1,funded,2014-01-15 04:48:22.000 +0000,extra
5,Doña,"Line one
Line two",25,funded,2016-07-04 08:00:00.000 +0000
6,NA,<br />&amp;,30,expired,2017-02-01 00:00:00.000 +0000
"""
SAMPLE_GOOD_IDS = [1, 2, 5, 6]
SAMPLE_DEAD_LINES = [5, 6]

SAMPLE_BAD_HEADER = """\
loan_id,loan_title,description,loan_amount,status,posted_time
1,Ana,x,500,funded,2014-01-15 04:48:22.000 +0000
"""


@pytest.fixture(scope="session")
def tiny_contracts_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A contracts directory holding only the ``tiny_loans`` contract."""
    directory = tmp_path_factory.mktemp("contracts")
    (directory / "tiny_loans.yaml").write_text(TINY_LOANS_CONTRACT, encoding="utf-8")
    return directory


@pytest.fixture(scope="session")
def tiny_contract(tiny_contracts_dir: Path) -> Contract:
    """The ``tiny_loans`` contract."""
    return load_contract(tiny_contracts_dir / "tiny_loans.yaml")


@pytest.fixture
def write_sample(tmp_path: Path) -> Callable[..., Path]:
    """Write CSV text to a file under tmp_path, gzipped on request (the name stays .csv)."""

    def write(text: str, name: str = "loans.csv", *, compress: bool = False) -> Path:
        path = tmp_path / "landing" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        data = text.encode("utf-8")
        path.write_bytes(gzip.compress(data) if compress else data)
        return path

    return write


@pytest.fixture
def local_pipeline() -> TestPipeline:
    """A TestPipeline on Beam's in-process runner (the DirectRunner would fetch Prism)."""
    return TestPipeline(runner=FnApiRunner())
