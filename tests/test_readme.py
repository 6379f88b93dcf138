"""The README stays true: every setting is documented, the two commands are there."""

from __future__ import annotations

from dataclasses import fields

from sluice.settings import PREFIX, REPO_ROOT, Settings

README = (REPO_ROOT / "README.md").read_text(encoding="utf-8")


def test_readme_documents_every_setting() -> None:
    missing = [
        PREFIX + f.name.upper() for f in fields(Settings) if PREFIX + f.name.upper() not in README
    ]

    assert not missing, f"README lacks {missing}"


def test_readme_shows_the_two_commands() -> None:
    assert "make demo" in README
    assert "make test" in README
