"""kiva_lenders rows: ``loan_id,"lender, lender, ..."`` for every loan that has lenders.

The loans are the kiva_loans skeleton for the same seed and row count, so every loan id here
is a loan of that file and its lender count is that loan's ``num_lenders_total`` (unless the
loan has more lenders than a tiny file's pool). Lenders come from a pool that grows with
the file, drawn with a long-tailed popularity: a few lenders back a few percent of all loans,
most back a handful, so "most active lenders" means something at any size.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np

from local.generate import loan_book
from local.generate.dirty import DirtyTargets

DATASET = "kiva_lenders"
HEADER = ("loan_id", "lenders")
DIRTY_TARGETS = DirtyTargets(numeric=("loan_id",), not_nullable=("loan_id",))

STREAM_POOL, STREAM_LENDERS = 4, 5
LENDERS_PER_LOAN_IN_POOL = 1.2  # the real file: 1.64 M lenders for 1.39 M loans
MAX_POOL = 2_000_000
_TOP_UP_ROUNDS = 10
_POPULARITY_OFFSET, _POPULARITY_EXPONENT = 30.0, 0.95
# fmt: off
_SYLLABLES = ("muc", "sam", "cam", "aran", "john", "mar", "ia", "kiva", "lend", "er", "good",
              "dogg", "troll", "tech", "ann", "el", "ben", "rob", "ert", "sue", "lin", "chen",
              "kat", "ie", "max", "well", "jo", "dan", "ny", "team", "hope", "fund", "ole",
              "nor", "pete", "lu", "ka", "mike", "ro", "sa")
# fmt: on


def iter_row_blocks(rows: int, seed: int) -> Iterator[tuple[int, list[tuple[str, ...]]]]:
    """(loans done so far, rows) per block of the first ``rows`` loans of the loan book."""
    names, cdf = _lender_pool(rows, seed)
    for block in loan_book.iter_loan_blocks(rows, seed):
        rng = np.random.default_rng([seed, STREAM_LENDERS, block.index])
        yield block.first_row + len(block.loan_ids), _block_rows(block, rng, names, cdf)


def _lender_pool(rows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Lender names ordered by popularity, and the cumulative popularity."""
    size = int(min(MAX_POOL, max(50, math.ceil(rows * LENDERS_PER_LOAN_IN_POOL))))
    rank = np.arange(size, dtype=np.float64)
    weights = (rank + _POPULARITY_OFFSET) ** -_POPULARITY_EXPONENT
    cdf = np.cumsum(weights)
    cdf /= cdf[-1]
    # Spread popularity over the name space so the busiest lender is not always the first stem.
    rng = np.random.default_rng([seed, STREAM_POOL])
    order = rng.permutation(size)
    return _lender_names(order), cdf


def _lender_names(indices: np.ndarray) -> np.ndarray:
    """A unique name per index, shaped like Kiva's: ``muc888``, ``camaran3922``, ``goodlend``."""
    stems = np.array([a + b for a in _SYLLABLES for b in _SYLLABLES], dtype=object)
    stem = indices % len(stems)
    serial = indices // len(stems)
    # Distinct serials give distinct numbers for the same stem; serial 0 has no digits.
    number = serial * 37 + (stem * 11) % 37
    digits = np.where(serial == 0, "", number.astype(str).astype(object))
    return stems[stem] + digits


def _block_rows(
    block: loan_book.LoanBlock, rng: np.random.Generator, names: np.ndarray, cdf: np.ndarray
) -> list[tuple[str, ...]]:
    has_lenders = block.num_lenders > 0
    counts = block.num_lenders[has_lenders]
    loan_ids = block.loan_ids[has_lenders]
    loan, lender = _distinct_lenders(counts, cdf, rng)
    listed = names[lender].tolist()
    ends = np.cumsum(np.bincount(loan, minlength=len(counts))).tolist()
    starts = [0, *ends[:-1]]
    return [
        (str(loan_id), ", ".join(listed[start:end]))
        for loan_id, start, end in zip(loan_ids.tolist(), starts, ends, strict=True)
    ]


def _distinct_lenders(
    counts: np.ndarray, cdf: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """(loan, lender) pairs grouped by loan: ``counts[i]`` distinct lenders for loan i."""
    loans = np.arange(len(counts))
    loan = np.repeat(loans, counts + counts // 4 + 3)  # a few spares for repeats
    lender = _popular_lenders(len(loan), cdf, rng)
    for _ in range(_TOP_UP_ROUNDS):
        loan, lender = _first_of_each_pair(loan, lender, len(cdf))
        short = np.maximum(counts - np.bincount(loan, minlength=len(counts)), 0)
        # Loans hit by many repeats of popular lenders draw again; a loan bigger than the
        # whole pool (only in tiny files) keeps what it has.
        short[counts > len(cdf)] = 0
        if not short.any():
            break
        extra = np.repeat(loans, np.where(short > 0, 2 * short + 3, 0))
        loan = np.concatenate([loan, extra])
        lender = np.concatenate([lender, _popular_lenders(len(extra), cdf, rng)])
    loan, lender = _first_of_each_pair(loan, lender, len(cdf))
    rank = np.arange(len(loan)) - np.searchsorted(loan, loan, "left")
    keep = rank < counts[loan]
    return loan[keep], lender[keep]


def _popular_lenders(size: int, cdf: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return np.minimum(np.searchsorted(cdf, rng.random(size), "right"), len(cdf) - 1)


def _first_of_each_pair(
    loan: np.ndarray, lender: np.ndarray, pool: int
) -> tuple[np.ndarray, np.ndarray]:
    """Drop repeated (loan, lender) pairs, keep draw order within each loan, group by loan."""
    _, first = np.unique(loan * np.int64(pool) + lender, return_index=True)
    first.sort()
    loan, lender = loan[first], lender[first]
    by_loan = np.argsort(loan, kind="stable")
    return loan[by_loan], lender[by_loan]
