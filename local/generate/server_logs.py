"""server_logs rows: one request per row, in time order, as the load balancers export them.

The requests are the shared traffic model's (``local.generate.traffic``): daily and weekly
cycles, error bursts, returning clients, crawlers. Timestamps are written in the time zone
of the load balancer that served the client (so the offsets vary, ``Z`` included) and are
sorted by the instant they denote.
"""

from __future__ import annotations

from collections.abc import Iterator

from local.generate.dirty import DirtyTargets
from local.generate.timefmt import iso_timestamps
from local.generate.traffic import iter_request_blocks

DATASET = "server_logs"
HEADER = ("timestamp", "host", "method", "path", "status", "bytes_sent", "latency_ms",
          "client_ip", "country_code", "user_agent", "referrer")  # fmt: skip
DIRTY_TARGETS = DirtyTargets(
    numeric=("status", "bytes_sent", "latency_ms"),
    timestamps=("timestamp",),
    allowed=("method",),
    not_nullable=("timestamp", "host", "method", "path", "status"),
    iso_timestamps=True,
)


def iter_row_blocks(rows: int, seed: int) -> Iterator[tuple[int, list[tuple[str, ...]]]]:
    """(rows done so far, rows) per block of the traffic model's requests."""
    for done, requests in iter_request_blocks(rows, seed):
        latency_text = [
            f"{ms:.3f}" if timed else ""  # "": the balancer lost the upstream timing
            for ms, timed in zip(requests.latency_ms.tolist(), requests.timed.tolist(), strict=True)
        ]
        columns = (
            iso_timestamps(requests.utc_ms, requests.offsets, requests.suffixes),
            requests.hosts.tolist(),
            requests.methods.tolist(),
            requests.paths.tolist(),
            [str(s) for s in requests.statuses.tolist()],
            [str(b) for b in requests.bytes_sent.tolist()],
            latency_text,
            requests.client_ips.tolist(),
            requests.countries.tolist(),
            requests.user_agents.tolist(),
            requests.referrers.tolist(),
        )
        yield done, list(zip(*columns, strict=True))
