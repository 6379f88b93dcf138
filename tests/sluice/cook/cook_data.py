"""Deterministic processed rows for the cook tests, and loading them through a warehouse.

Rows are plain dicts (so the tests can compute every summary independently in Python) with
the edge cases the summaries must survive: Namibia's 'NA' beside a NULL country, funded 0
and over-funded loans, missing or contradictory raised_time, every borrower gender mix, a
loan listed twice in the lenders files, empty lender lists, a 5xx burst, statuses outside
100-599, NULL latencies, rows one microsecond either side of midnight, rejected files.
``build_extremes`` is a second, tiny data set of values at the limits of their types.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from sluice.contracts import Contract
from sluice.schema import IngestionRecord, SourceRef, dead_letter_schema, processed_schema
from sluice.warehouse import Warehouse
from sluice.warehouse.loads import SUPERSEDED

SECTORS = ["Agriculture", "Food", "Retail", "Services", "Education", "Health"]
NEVER_RAISED_SECTOR = "Health"  # no loan of it has a raised_time: absent from time to fund
COUNTRIES = [
    ("PH", "Philippines"),
    ("KE", "Kenya"),
    ("PE", "Peru"),
    ("NA", "Namibia"),
    (None, None),
]
# borrower_genders values with the mix a person reading them would name (labelled by hand).
GENDER_MIX: dict[str | None, str] = {
    "female": "single female",
    "male": "single male",
    "female, female": "several women",
    "male, male": "several men",
    "female, male": "mixed",
    "male, female, female": "mixed",
    None: "unknown",
    "Female ,  FEMALE": "several women",
    "female, female, female, female": "several women",
    "male, male, male": "several men",
    " , ": "unknown",
}
GENDERS = list(GENDER_MIX)
LENDERS = [f"lender{i:03d}" for i in range(130)]
PATHS = ["/", "/api/loans", "/api/search", "/static/app.js", "/healthz"]
UNTIMED_PATH = "/healthz"  # load balancer probes carry no latency
STATUSES = [200] * 30 + [201, 204, 301, 304, 400, 404, 404, 500, 502, 99, 600]
DAYS = [datetime(2026, 11, 23, tzinfo=UTC) + timedelta(days=i) for i in range(3)]
TIE_DAY = datetime(2026, 11, 27, tzinfo=UTC)
T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)  # when the files were ingested
_HOUR = timedelta(hours=1)


@dataclass
class CookData:
    """The processed rows of every dataset and the ingestion-log records, by name."""

    files: dict[str, list[list[dict[str, Any]]]]
    """Dataset -> the rows of each of its files."""
    records: list[IngestionRecord] = field(default_factory=list)

    def rows(self, dataset: str) -> list[dict[str, Any]]:
        """Every row of ``dataset``, all files together."""
        return [row for rows in self.files[dataset] for row in rows]

    def latest(self, dataset: str, key: str) -> list[dict[str, Any]]:
        """One row per ``key``: the last file's (``write: merge``; files load in order)."""
        return list({row[key]: row for row in self.rows(dataset)}.values())


def kiva_loans(rng: random.Random) -> list[dict[str, Any]]:
    """240 loans from Nov 2016 to Mar 2017 plus hand-placed edge cases."""
    loans = []
    for i in range(240):
        code, name = COUNTRIES[i % len(COUNTRIES)]
        sector = SECTORS[rng.randrange(len(SECTORS))]
        posted = datetime(2016, 11, 1, tzinfo=UTC) + timedelta(
            minutes=rng.randrange(150 * 24 * 60), microseconds=rng.randrange(1_000_000)
        )
        raised = posted + timedelta(hours=rng.uniform(0.5, 900))
        if sector == NEVER_RAISED_SECTOR or i % 7 == 0:
            raised = None
        elif i % 31 == 0:
            raised = posted - timedelta(hours=5)  # contradictory: excluded from time to fund
        loan_amount = float(rng.choice([25, 150, 300, 500, 975, 1000, 4200]))
        funded = 0.0 if i % 11 == 0 else loan_amount * rng.choice([1.0, 1.0, 0.5, 0.8, 1.2])
        loans.append(_loan(1000 + i, funded, loan_amount, sector, code, name, posted, raised, i))
    # Month boundary one microsecond apart, zero time to fund, a country with one loan.
    edge = datetime(2017, 1, 31, 23, 59, 59, 999_999, tzinfo=UTC)
    loans.append(_loan(2000, 100.0, 100.0, "Food", "NA", "Namibia", edge, edge, 0))
    loans.append(
        _loan(2001, 50.0, 200.0, "Food", "SV", "El Salvador", edge + timedelta(0, 0, 1), None, 1)
    )
    return loans


def _loan(
    loan_id: int,
    funded: float,
    amount: float,
    sector: str,
    code: str | None,
    name: str | None,
    posted: datetime,
    raised: datetime | None,
    i: int,
) -> dict[str, Any]:
    return {
        "loan_id": loan_id,
        "loan_name": f"Borrower {loan_id}",
        "funded_amount": funded,
        "loan_amount": amount,
        "status": "funded" if raised else "expired",
        "sector_name": sector,
        "country_code": code,
        "country_name": name,
        "posted_time": posted,
        "raised_time": raised,
        "num_lenders_total": i % 40,
        "borrower_genders": GENDERS[i % len(GENDERS)],
    }


def kiva_lenders(rng: random.Random, loan_ids: list[int]) -> list[list[dict[str, Any]]]:
    """Two lenders files: most loans listed once, some missing, some empty, one listed twice."""
    weights = [1 / (rank + 1) for rank in range(len(LENDERS))]  # a few very active lenders
    first: list[dict[str, Any]] = []
    for n, loan_id in enumerate(loan_ids):
        if n % 9 == 4:
            continue  # no lenders row at all
        if n % 13 == 5:
            first.append({"loan_id": loan_id, "lenders": None if n % 2 else " , "})
            continue
        names = rng.choices(LENDERS, weights, k=rng.randrange(1, 9))
        first.append({"loan_id": loan_id, "lenders": ", ".join(names)})
    second = [
        {"loan_id": loan_ids[0], "lenders": "lender129,lender000, lender128"},  # listed again
        {"loan_id": 99999, "lenders": "lender127, lender127"},  # not a known loan; a repeat
    ]
    return [first, second]


def server_logs(rng: random.Random) -> list[list[dict[str, Any]]]:
    """One file per UTC day: a daily cycle peaking mid-afternoon, a 5xx burst on day two."""
    ips = [f"10.0.{i}.{i * 7 % 250}" for i in range(30)] + [f"2001:db8::{i:x}" for i in range(8)]
    files = []
    for d, day in enumerate(DAYS):
        rows = []
        for _ in range(130 + 40 * d):
            hour = min(23, max(0, round(rng.gauss(14, 4))))
            at = day + timedelta(hours=hour, seconds=rng.uniform(0, 3599.999))
            rows.append(_request(rng, at, rng.choice(STATUSES), rng.choice(ips)))
        if d == 1:
            burst = day + timedelta(hours=3, minutes=10)
            rows += [_request(rng, burst + timedelta(seconds=s), 503, ips[0]) for s in range(45)]
        files.append(rows)
    # One microsecond either side of midnight between days one and two.
    files[0].append(_request(rng, DAYS[1] - timedelta(microseconds=1), 200, None))
    files[1].append(_request(rng, DAYS[1], 200, None))
    # A quiet day whose two busiest hours tie (09:00 and 17:00): the earlier one is the peak.
    for hour, count in ((17, 3), (12, 1), (9, 3)):
        files[2] += [
            _request(rng, TIE_DAY + timedelta(hours=hour, minutes=m), 200, ips[1])
            for m in range(count)
        ]
    return files


def _request(rng: random.Random, at: datetime, status: int, ip: str | None) -> dict[str, Any]:
    path = rng.choice(PATHS)
    latency = None if path == UNTIMED_PATH or rng.random() < 0.05 else rng.lognormvariate(4, 1)
    return {
        "timestamp": at,
        "host": rng.choice(["web-1", "web-2"]),
        "method": rng.choice(["GET", "GET", "POST"]),
        "path": path,
        "status": status,
        "bytes_sent": None if rng.random() < 0.1 else rng.randrange(0, 50_000),
        "latency_ms": latency,
        "client_ip": ip,
        "country_code": rng.choice(["US", "US", "DE", "NA", "BR", None]),
    }


def build() -> CookData:
    """Every dataset's rows, split into the files they will be loaded from."""
    rng = random.Random(20261124)
    loans = kiva_loans(rng)
    half = len(loans) // 2
    return CookData(
        files={
            "kiva_loans": [loans[:half], loans[half:]],
            "kiva_lenders": kiva_lenders(rng, [loan["loan_id"] for loan in loans]),
            "server_logs": server_logs(rng),
        }
    )


INT64_MAX = 2**63 - 1
FLOAT64_MAX = 1.7976931348623157e308
FLOAT64_TINY = 5e-324  # the smallest positive FLOAT64 (subnormal)
EXTREME_HOUR = DAYS[0] + timedelta(hours=5)


def build_extremes() -> CookData:
    """A few contract-valid rows at the limits of their types: two int64-max byte counts
    and two 1e308 latencies in one hour, day, country and path; the int64 minimum and the
    largest FLOAT64s of both signs; loan amounts whose sum or ratio FLOAT64 cannot hold;
    a loan raised 10,000 years after it was posted."""
    hour = EXTREME_HOUR
    rng = random.Random(15)
    huge = {"bytes_sent": INT64_MAX, "latency_ms": 1e308, "path": "/", "country_code": "US"}
    limits = {"path": "/api/loans", "country_code": "DE"}
    next_day = hour + timedelta(days=1)
    requests = [
        _request(rng, hour, 200, "10.0.0.1") | huge,
        _request(rng, hour, 200, "10.0.0.2") | huge,
        _request(rng, next_day, 503, None)
        | limits
        | {"bytes_sent": -(2**63), "latency_ms": FLOAT64_MAX},
        _request(rng, next_day, 200, None) | limits | {"bytes_sent": 0, "latency_ms": -FLOAT64_MAX},
        _request(rng, next_day + _HOUR, 200, None)
        | limits
        | {"bytes_sent": None, "latency_ms": FLOAT64_TINY, "path": "/static/app.js"},
    ]
    posted = datetime(2017, 1, 5, tzinfo=UTC)
    first_moment = datetime(1, 1, 1, tzinfo=UTC)
    last_moment = datetime(9999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC)
    loans = [
        _loan(1, FLOAT64_MAX, FLOAT64_MAX, "Food", "KE", "Kenya", posted, posted, 0),
        _loan(2, FLOAT64_MAX, FLOAT64_MAX, "Food", "KE", "Kenya", posted, posted, 1),
        # A ratio beyond FLOAT64: funded 1e308 of a 5e-324 loan.
        _loan(3, 1e308, FLOAT64_TINY, "Retail", "PE", "Peru", posted, None, 2),
        _loan(4, 0.0, 0.0, "Health", None, None, posted, None, 3),
        _loan(5, 25.0, 25.0, "Retail", "NA", "Namibia", first_moment, last_moment, 4),
    ]
    lenders = [{"loan_id": loan["loan_id"], "lenders": "lender000, lender001"} for loan in loans]
    return CookData(
        files={"kiva_loans": [loans], "kiva_lenders": [lenders], "server_logs": [requests]}
    )


def load(warehouse: Warehouse, contracts: dict[str, Contract], data: CookData, out: Path) -> None:
    """Stage each file as Parquet and load it; add rejected files; fill ``data.records``."""
    out.mkdir(parents=True, exist_ok=True)
    for d, (dataset, files) in enumerate(sorted(data.files.items())):
        contract = contracts[dataset]
        warehouse.ensure_tables(contract)
        for n, rows in enumerate(files):
            source = SourceRef(f"gs://landing/{contract.landing_prefix}part-{n}.csv", 1_000 + n)
            # Loads finish at midday on successive days and start the evening before.
            finished = T0 + timedelta(days=n, hours=d)
            lineage = {
                "_source_uri": source.uri,
                "_source_generation": source.generation,
                "_contract_version": contract.version,
                "_ingested_at": finished,
            }
            table = pa.Table.from_pylist(
                [row | lineage | {"_source_line": i + 2} for i, row in enumerate(rows)],
                schema=processed_schema(contract),
            )
            dead = _dead_letters(source, finished, count=(n + d) % 3)
            rows_path = out / f"{dataset}-{n}.parquet"
            dead_path = out / f"{dataset}-{n}-dead.parquet"
            pq.write_table(table, rows_path)
            pq.write_table(dead, dead_path)
            record = IngestionRecord(
                dataset=dataset,
                source_uri=source.uri,
                source_generation=source.generation,
                status="loaded",
                rows_in=len(rows) + dead.num_rows,
                rows_loaded=len(rows),
                rows_dead=dead.num_rows,
                reason=None,
                job_id=f"job-{dataset}-{n}",
                started_at=finished - timedelta(hours=13),
                finished_at=finished,
            )
            paths = [str(rows_path)], [str(dead_path)]
            warehouse.load_replacing_source(contract, source, *paths, record)
            data.records.append(record)
    # Rejected files: one on a day that also has loads, one on a day with rejects only; and
    # a load a newer generation overtook (superseded: neither loaded nor rejected).
    ended = (
        ("server_logs", 2, "rejected", "header: expected required column(s) 'loan_id'"),
        ("kiva_lenders", 3, "rejected", "header: expected required column(s) 'loan_id'"),
        ("kiva_loans", 1, "superseded", SUPERSEDED),
    )
    for dataset, day, status, reason in ended:
        finished = T0 + timedelta(days=day, hours=5)
        record = IngestionRecord(
            dataset=dataset,
            source_uri=f"gs://landing/incoming/{dataset}/{status}.csv",
            source_generation=7,
            status=status,
            rows_in=0,
            rows_loaded=0,
            rows_dead=0,
            reason=reason,
            job_id="",
            started_at=finished,
            finished_at=finished,
        )
        warehouse.record_ingestion(record)
        data.records.append(record)


def _dead_letters(source: SourceRef, at: datetime, count: int) -> pa.Table:
    rows = [
        {
            "source_uri": source.uri,
            "source_generation": source.generation,
            "line": 900 + i,
            "raw_text": "x,y",
            "reason": "expected 2 fields, found 1",
            "contract_version": 1,
            "ingested_at": at,
        }
        for i in range(count)
    ]
    return pa.Table.from_pylist(rows, schema=dead_letter_schema())
