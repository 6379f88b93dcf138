"""Well-formed rows of the shipped contracts, for the corpus to break one thing at a time.

``kiva_row(n, loan_amount="abc")`` is a valid kiva_loans CSV line (no terminator) with one
value replaced; ``csv_file(HEADER, rows)`` joins a header and lines into file bytes. Values
are written by the ``csv`` module, so a field with a comma, quote or newline is quoted as
RFC 4180 says; a case that needs malformed CSV writes its line by hand instead.
"""

from __future__ import annotations

import csv
import io

KIVA_LOANS: dict[str, str] = {
    "loan_id": "0",
    "loan_name": "Valentina",
    "original_language": "English",
    "description": "Valentina sells rice, maize and beans.<br />She has 5 children.",
    "description_translated": "",
    "funded_amount": "725.0",
    "loan_amount": "725.0",
    "status": "funded",
    "activity_name": "Fruits & Vegetables",
    "sector_name": "Food",
    "loan_use": "to buy sacks of rice",
    "country_code": "AL",
    "country_name": "Albania",
    "town_name": "Shkodër",
    "currency_policy": "shared",
    "currency_exchange_coverage_rate": "0.1",
    "currency": "ALL",
    "partner_id": "231.0",
    "posted_time": "2014-01-15 04:48:22.000 +0000",
    "planned_expiration_time": "2014-02-14 04:48:22.000 +0000",
    "disburse_time": "2014-01-10 08:00:00.000 +0000",
    "raised_time": "2014-01-20 19:47:15.000 +0000",
    "lender_term": "6",
    "num_lenders_total": "8",
    "num_journal_entries": "5",
    "num_bulk_entries": "4",
    "tags": "#Woman-Owned Business, #Parent",
    "borrower_genders": "female",
    "borrower_pictured": "true",
    "repayment_interval": "irregular",
    "distribution_model": "field_partner",
}
KIVA_HEADER = tuple(KIVA_LOANS)

SERVER_LOGS: dict[str, str] = {
    "timestamp": "2026-11-08T01:08:53.937+01:00",
    "host": "shop.example.com",
    "method": "GET",
    "path": "/products/15",
    "status": "200",
    "bytes_sent": "49459",
    "latency_ms": "108.177",
    "client_ip": "2a0c:5a80:5b2f:7c6::bc",
    "country_code": "ES",
    "user_agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36",
    "referrer": "https://www.instagram.com/",
}
SERVER_HEADER = tuple(SERVER_LOGS)

LENDERS_HEADER = ("loan_id", "lenders")


def csv_line(values: list[str] | tuple[str, ...]) -> str:
    """One CSV record of ``values`` (quoted where needed), without its line terminator."""
    out = io.StringIO()
    # The writer quotes a field holding a character of its line terminator: "\r\n" makes
    # it quote every field with a CR or LF in it, as RFC 4180 requires.
    csv.writer(out, lineterminator="\r\n").writerow(values)
    return out.getvalue().removesuffix("\r\n")


def kiva_row(number: int, header: tuple[str, ...] = KIVA_HEADER, **values: str) -> str:
    """A kiva_loans record (loan id ``number``) in ``header``'s order, ``values`` replaced."""
    return _row(KIVA_LOANS, header, {"loan_id": str(number), **values})


def server_row(number: int, header: tuple[str, ...] = SERVER_HEADER, **values: str) -> str:
    """A server_logs record (path ``/products/<number>``) in ``header``'s order."""
    return _row(SERVER_LOGS, header, {"path": f"/products/{number}", **values})


def kiva_rows(first: int, count: int) -> list[str]:
    """``count`` valid kiva_loans records with loan ids from ``first``."""
    return [kiva_row(first + i) for i in range(count)]


def server_rows(first: int, count: int) -> list[str]:
    """``count`` valid server_logs records."""
    return [server_row(first + i) for i in range(count)]


def csv_file(header: tuple[str, ...], lines: list[str], newline: str = "\n") -> bytes:
    """UTF-8 file bytes: the header record, then ``lines``, each ended by ``newline``."""
    return "".join(text + newline for text in [csv_line(header), *lines]).encode("utf-8")


def kiva_file(lines: list[str], newline: str = "\n") -> bytes:
    """A kiva_loans file of the standard header and ``lines``."""
    return csv_file(KIVA_HEADER, lines, newline)


def server_file(lines: list[str]) -> bytes:
    """A server_logs file of the standard header and ``lines``."""
    return csv_file(SERVER_HEADER, lines)


def _row(defaults: dict[str, str], header: tuple[str, ...], values: dict[str, str]) -> str:
    unknown = set(values) - set(defaults)
    if unknown:
        raise KeyError(f"expected columns of the contract, found {sorted(unknown)}")
    merged = defaults | values
    return csv_line([merged.get(name, "") for name in header])
