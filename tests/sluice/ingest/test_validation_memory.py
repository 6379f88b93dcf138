"""validate_stream streams: its peak memory depends on chunk_bytes, not on the file's size.

Peak memory is read with tracemalloc, which sees Python objects and numpy's buffers (numpy
reports its allocations to it): every bytes chunk and index array validation holds.
"""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import pytest

from local.generate import generate
from sluice.contracts import Contract
from sluice.ingest.validation import ValidationReport, validate_stream
from sluice.settings import Settings

CHUNK_BYTES = 256 * 1024
PEAK_CHUNKS = 6
"""Peak bound in chunks: about 3 of bytes (the read, the chunk cut from it, the previous
chunk still held) plus the scanner's index arrays (positions of quotes, newlines, commas)."""


def repeated_file(base: Path, out: Path, size_bytes: int) -> Path:
    """``base``'s header, then its data records repeated until the file has ``size_bytes``."""
    content = base.read_bytes()
    header_end = content.index(b"\n") + 1  # the generator's header is one line
    with out.open("wb") as sink:
        written = sink.write(content[:header_end])
        while written < size_bytes:
            written += sink.write(content[header_end:])
    return out


@pytest.fixture(scope="module")
def loans_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """kiva_loans files of about 4 MB and 32 MB (quoted newlines, unicode, HTML)."""
    folder = tmp_path_factory.mktemp("memory")
    base = generate("kiva_loans", 5_000, folder / "base.csv", seed=7).path
    return {
        "small": repeated_file(base, folder / "small.csv", 4_000_000),
        "large": repeated_file(base, folder / "large.csv", 32_000_000),
    }


def traced_peak(path: Path, contract: Contract, settings: Settings) -> tuple[int, ValidationReport]:
    """Peak traced bytes while validating ``path``, and the report."""
    tracemalloc.start()
    try:
        with path.open("rb") as raw:
            report = validate_stream(raw, contract, settings)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak, report


@pytest.fixture(scope="module")
def peaks(loans_files: dict[str, Path], contracts: dict[str, Contract]) -> dict[str, int]:
    """Peak traced bytes validating each file in 256 KiB chunks, after one untraced warm-up
    run (lazy imports and caches are paid once per process, not per file)."""
    contract = contracts["kiva_loans"]
    # Built directly, not from the environment: validation writes nothing under home.
    small_chunks = Settings(chunk_bytes=CHUNK_BYTES)
    with loans_files["small"].open("rb") as raw:
        validate_stream(raw, contract, small_chunks)
    measured = {}
    for size, path in loans_files.items():
        peak, report = traced_peak(path, contract, small_chunks)
        assert report.accepted, report.reason
        assert report.bytes_read == path.stat().st_size
        measured[size] = peak
    return measured


def test_validate_stream_peak_memory_is_flat_in_file_size(peaks: dict[str, int]) -> None:
    # Arrange: the fixtures validated a 4 MB and a 32 MB file in 256 KiB chunks.
    small, large = peaks["small"], peaks["large"]

    # Act
    growth = large / small

    # Assert: eight times the bytes, (almost) the same peak.
    assert growth <= 1.5, f"expected a peak flat in file size, found {small:,} -> {large:,} B"


def test_validate_stream_peak_memory_is_bounded_by_chunk_bytes(peaks: dict[str, int]) -> None:
    # Arrange
    bound = PEAK_CHUNKS * CHUNK_BYTES

    # Act
    over = {size: peak for size, peak in peaks.items() if peak > bound}

    # Assert: far below the 32 MB file itself.
    assert not over, f"expected peaks under {bound:,} B ({PEAK_CHUNKS} chunks), found {over}"
