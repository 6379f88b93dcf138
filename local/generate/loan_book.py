"""The loan skeleton shared by kiva_loans and kiva_lenders: ids, amounts, status, lenders.

Both files draw it from the same seeded stream, block by block, so for one seed and row
count the lenders file lists exactly the loans of the loans file that have lenders, and a
loan's lender count there is its ``num_lenders_total`` here.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

BLOCK_ROWS = 10_000
"""Loans per block; fixed, because the skeleton's random stream is keyed by block index."""
FIRST_LOAN_ID = 653_000
STREAM_SKELETON = 1

STATUSES = ("funded", "expired", "refunded", "fundRaising")
FUNDED, EXPIRED, REFUNDED, FUND_RAISING = range(4)
_STATUS_SHARES = (0.954, 0.041, 0.0025, 0.0025)  # 4.6% not funded, as in the real file
# Share of loans of each status that ended with no lender at all (funded: promotional funds).
_NO_LENDER_SHARE = np.array([0.0015, 0.45, 0.0, 0.6])

# Quantiles of loan_amount (probability, USD), interpolated in log space between knots.
_AMOUNT_KNOTS = (
    (0.0, 25),
    (0.02, 100),
    (0.25, 300),
    (0.5, 500),
    (0.75, 1000),
    (0.9, 1800),
    (0.97, 3500),
    (0.995, 7500),
    (0.9999, 30000),
    (1.0, 100000),
)
_AMOUNT_P = np.array([p for p, _ in _AMOUNT_KNOTS])
_AMOUNT_LOG = np.log([a for _, a in _AMOUNT_KNOTS])
MAX_LENDERS = 3045


@dataclass(frozen=True)
class LoanBlock:
    """One block of loans: the columns every Kiva file agrees on."""

    index: int
    first_row: int
    """0-based position of the block's first loan among all loans of the file."""
    loan_ids: np.ndarray
    loan_amount: np.ndarray
    """USD, multiples of 25."""
    funded_amount: np.ndarray
    status: np.ndarray
    """Index into ``STATUSES``."""
    num_lenders: np.ndarray


def iter_loan_blocks(rows: int, seed: int) -> Iterator[LoanBlock]:
    """The skeleton of ``rows`` loans, in blocks of ``BLOCK_ROWS``."""
    last_id = FIRST_LOAN_ID
    for index, first in enumerate(range(0, rows, BLOCK_ROWS)):
        size = min(BLOCK_ROWS, rows - first)
        rng = np.random.default_rng([seed, STREAM_SKELETON, index])
        ids = last_id + np.cumsum(rng.choice([1, 2, 3, 5], size=size, p=[0.6, 0.25, 0.1, 0.05]))
        last_id = int(ids[-1])
        _swap_some_neighbours(ids, rng)
        loan_amount = draw_loan_amounts(rng.random(size))
        status = rng.choice(len(STATUSES), size=size, p=_STATUS_SHARES)
        funded_amount = _funded_amounts(loan_amount, status, rng)
        no_lender = rng.random(size) < _NO_LENDER_SHARE[status]
        funded_amount[no_lender & (status != FUNDED)] = 0.0
        # About $33 per lender at the median loan of $500 (~15 lenders); bigger loans draw
        # bigger shares, which keeps the mean near the real 20 lenders per loan.
        typical = 33.0 * (np.maximum(funded_amount, 25.0) / 500.0) ** 0.3
        per_lender = typical * np.exp(rng.normal(0.0, 0.45, size))
        lenders = np.clip(np.rint(funded_amount / per_lender), 1, MAX_LENDERS).astype(np.int64)
        lenders[no_lender | (funded_amount == 0)] = 0
        yield LoanBlock(index, first, ids, loan_amount, funded_amount, status, lenders)


def draw_loan_amounts(uniform: np.ndarray) -> np.ndarray:
    """Loan amounts with the real quantiles (25 / 300 / 500 / 1,000 / 100,000), step 25."""
    raw = np.exp(np.interp(uniform, _AMOUNT_P, _AMOUNT_LOG))
    return np.maximum(25.0, np.rint(raw / 25.0) * 25.0)


def _funded_amounts(
    loan_amount: np.ndarray, status: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    size = len(loan_amount)
    funded = loan_amount.copy()
    partial = (status == EXPIRED) | (status == FUND_RAISING)
    share = rng.uniform(0.0, 0.95, size)
    funded[partial] = np.floor(loan_amount[partial] * share[partial] / 25.0) * 25.0
    # A few loans end up raising more than asked (the real file has them too).
    over = (status == FUNDED) & (rng.random(size) < 0.001)
    funded[over] += 25.0 * rng.integers(1, 5, size)[over]
    return funded


def _swap_some_neighbours(ids: np.ndarray, rng: np.random.Generator) -> None:
    """Swap ~3% of adjacent ids in place: unique but only increasing-ish, as in the export."""
    if len(ids) < 2:
        return
    swap = rng.random(len(ids) - 1) < 0.03
    swap[1:] &= ~swap[:-1]  # never swap overlapping pairs
    left = np.flatnonzero(swap)
    ids[left], ids[left + 1] = ids[left + 1].copy(), ids[left].copy()
