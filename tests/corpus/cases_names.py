"""Corpus cases about object names: spaces, unicode, ``..`` segments, ``%2F``, long names,
and names just outside a dataset's prefix.

Cloud Storage names are flat strings: ``..`` and ``%2F`` mean nothing to it, so a name that
starts with a contract's prefix belongs to that dataset whatever follows. What must never
happen is a name *we derive* from it (claim, quarantine copy, staging) escaping its prefix
or exceeding Cloud Storage's 1024-byte limit; the test checks that for every case.
"""

from __future__ import annotations

from tests.corpus.expect import Case, Ignored, Loaded, Rejected
from tests.corpus.rows import csv_file, kiva_file, kiva_rows

PREFIX = "incoming/kiva_loans/"
GOOD = kiva_file(kiva_rows(1, 3))
BAD_HEADER = csv_file(("id", "who"), ["1,x"])
NOT_OURS = "expected an object under a dataset prefix"


def _long_name(budget: int = 1000) -> str:
    """A name of non-ASCII words just under Cloud Storage's 1024-byte limit."""
    words, name = "préstamos año ", PREFIX
    while len((name + words + ".csv").encode()) <= budget:
        name += words
    return name + ".csv"


def _loads(case_id: str, name: str) -> Case:
    return Case(case_id, GOOD, Loaded(rows=3), name=name)


def _rejected(case_id: str, name: str) -> Case:
    return Case(case_id, BAD_HEADER, Rejected("header", "'loan_id'"), name=name)


CASES: list[Case] = [
    _loads("name_with_spaces", PREFIX + "my loans 2024 (final).csv"),
    _loads("name_unicode", PREFIX + "préstamos año.csv"),
    _rejected("name_unicode_rejected", PREFIX + "préstamos año.csv"),
    _loads("name_dotdot_escape", PREFIX + "../../etc/x.csv"),
    _rejected("name_dotdot_escape_rejected", PREFIX + "../../etc/x.csv"),
    _loads("name_dotdot_inner", PREFIX + "a/../b.csv"),
    _loads("name_percent_2f", PREFIX + "a%2Fb.csv"),
    _rejected("name_percent_2f_rejected", PREFIX + "a%2Fb.csv"),
    _loads("name_long_unicode", _long_name()),
    _rejected("name_long_unicode_rejected", _long_name()),
    Case(
        "name_prefix_lookalike_ignored",
        GOOD,
        Ignored(NOT_OURS),
        name="incoming/kiva_loans_old/a.csv",
    ),
    Case("name_other_case_ignored", GOOD, Ignored(NOT_OURS), name="Incoming/Kiva_Loans/a.csv"),
    Case(
        "name_dotdot_into_prefix_ignored",
        GOOD,
        Ignored(NOT_OURS),
        name="incoming/other/../kiva_loans/a.csv",
    ),
    Case(
        "name_folder_placeholder_ignored",
        b"",
        Ignored("folder placeholder"),
        name=PREFIX + "2024/",
    ),
]
