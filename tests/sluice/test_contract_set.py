"""One broken contract file puts only its own dataset out of service (``load_contract_set``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sluice.contracts import contract_files, load_contract_set, load_contracts
from sluice.errors import ContractError
from tests.sluice.broken_config import BROKEN_DATASET, broken_contracts_dir


def test_load_contract_set_keeps_the_other_datasets_of_a_broken_directory(
    tmp_path: Path,
) -> None:
    directory = broken_contracts_dir(tmp_path)

    loaded = load_contract_set(directory)

    assert sorted(loaded.contracts) == [
        "access_logs",
        "http_requests",
        "kiva_lenders",
        "kiva_loans",
    ]
    [broken] = loaded.broken
    assert broken.path == directory / f"{BROKEN_DATASET}.yaml"
    assert broken.dataset == BROKEN_DATASET
    assert broken.landing_prefix == f"incoming/{BROKEN_DATASET}/"
    assert "integr" in broken.reason and str(directory) not in broken.reason
    assert "\n" not in str(broken)


def test_contract_files_skip_editor_lock_and_macos_files(tmp_path: Path) -> None:
    directory = broken_contracts_dir(tmp_path)
    (directory / "extra.yml").write_text("name: extra\n", encoding="utf-8")

    names = [path.name for path in contract_files(directory)]

    assert names == [
        "access_logs.yaml",
        "extra.yml",
        "http_requests.yaml",
        "kiva_lenders.yaml",
        "kiva_loans.yaml",
        "server_logs.yaml",
    ]


def test_load_contracts_stays_all_or_nothing_and_names_the_broken_file(tmp_path: Path) -> None:
    directory = broken_contracts_dir(tmp_path)

    with pytest.raises(ContractError, match=r"server_logs\.yaml: .*integr"):
        load_contracts(directory)


def test_contract_set_names_the_broken_file_when_its_dataset_is_asked_for(
    tmp_path: Path,
) -> None:
    loaded = load_contract_set(broken_contracts_dir(tmp_path))

    assert loaded.contract("kiva_lenders").name == "kiva_lenders"
    with pytest.raises(ContractError, match=r"broken contract: .*server_logs\.yaml"):
        loaded.contract(BROKEN_DATASET)


def test_broken_contract_whose_yaml_does_not_parse_falls_back_to_its_file_stem(
    tmp_path: Path,
) -> None:
    (tmp_path / "orders.yaml").write_text("name: [orders\n", encoding="utf-8")
    (tmp_path / "odd.yaml").write_text(
        "name: shop\nlanding_prefix: drop/shop/\ncolumns: {a: 1}\nversion: 1\n",
        encoding="utf-8",
    )

    loaded = load_contract_set(tmp_path)

    prefixes = {b.path.name: (b.dataset, b.landing_prefix) for b in loaded.broken}
    assert prefixes == {
        "orders.yaml": ("orders", "incoming/orders/"),
        "odd.yaml": ("shop", "drop/shop/"),
    }
    assert loaded.contracts == {}
    assert loaded.broken_for_object("incoming/orders/a.csv").path.name == "orders.yaml"
    assert loaded.broken_for_object("elsewhere/a.csv") is None


def test_broken_for_object_prefers_a_usable_contract_with_a_longer_prefix(
    tmp_path: Path,
) -> None:
    (tmp_path / "all.yaml").write_text("name: all\nlanding_prefix: in/\n", encoding="utf-8")
    (tmp_path / "deep.yaml").write_text(
        "name: deep\nversion: 1\nlanding_prefix: in/deep/\ncolumns: [{name: a, type: string}]\n",
        encoding="utf-8",
    )

    loaded = load_contract_set(tmp_path)

    assert loaded.broken_for_object("in/deep/a.csv") is None
    assert loaded.broken_for_object("in/other/a.csv").dataset == "all"


def test_load_contract_set_marks_the_second_definition_of_a_dataset_broken(
    tmp_path: Path,
) -> None:
    for stem in ("a", "b"):
        (tmp_path / f"{stem}.yaml").write_text(
            "name: orders\nversion: 1\ncolumns: [{name: a, type: string}]\n", encoding="utf-8"
        )

    loaded = load_contract_set(tmp_path)

    assert list(loaded.contracts) == ["orders"]
    assert [b.path.name for b in loaded.broken] == ["b.yaml"]
    assert "defined twice" in loaded.broken[0].reason
