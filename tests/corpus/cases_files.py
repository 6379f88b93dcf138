"""Corpus cases about the file as a whole: bytes, encodings, gzip, size, header, CSV shape."""

from __future__ import annotations

import gzip
import random
import zlib

from tests.corpus.expect import Case, Loaded, Rejected, dead
from tests.corpus.rows import KIVA_HEADER, csv_file, csv_line, kiva_file, kiva_row, kiva_rows

MIB = 1024 * 1024
GOOD = kiva_file(kiva_rows(1, 4))  # lines 2-5
BOM = b"\xef\xbb\xbf"


def _header(
    *, drop: str = "", add: str = "", rename: tuple[str, str] = ("", "")
) -> tuple[str, ...]:
    names = [rename[1] if n == rename[0] else n for n in KIVA_HEADER if n != drop]
    return (*names, add) if add else tuple(names)


def _stray_quotes(number: int, loan_name: str) -> str:
    """A loan whose unquoted name holds raw quotes (its description stays quoted)."""
    return kiva_row(number).replace("Valentina", loan_name, 1)


def _mixed_newlines() -> bytes:
    lines = [csv_line(KIVA_HEADER), *kiva_rows(1, 4)]
    return "".join(t + ("\r\n" if i % 2 else "\n") for i, t in enumerate(lines)).encode()


def _huge_field(size: int) -> bytes:
    """One record whose description is ``size`` bytes, between two ordinary records."""
    return kiva_file([kiva_row(1), kiva_row(2, description="d" * size), kiva_row(3)])


def _long_line() -> bytes:
    """A record of about 900 KB spread over three text columns (under a 1 MiB limit)."""
    wide = {c: (c[0] + ", ") * 100_000 for c in ("description", "loan_use", "tags")}
    return kiva_file([kiva_row(1), kiva_row(2, **wide), kiva_row(3)])


def _png() -> bytes:
    return b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + random.Random(7).randbytes(4096)


def _gzip_bomb() -> bytes:
    """About 60 KB of gzip that inflates to 64 MiB of plausible CSV (no NUL, valid UTF-8)."""
    block = (csv_line(KIVA_HEADER) + "\n").encode() + kiva_row(1).encode() * (MIB // 600)
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)  # wbits 31: a gzip container
    body = b"".join(packer.compress(block) for _ in range(64))
    return body + packer.flush()


def _corrupt_gzip() -> bytes:
    packed = bytearray(gzip.compress(GOOD))
    packed[len(packed) // 2 : len(packed) // 2 + 8] = b"\xff" * 8
    return bytes(packed)


CASES: list[Case] = [
    Case("empty_0_bytes", b"", Rejected("empty_file", "found 0 bytes")),
    Case("whitespace_only", b"  \n\t\r\n \n", Rejected("empty_file", "only whitespace")),
    Case("bom_only", BOM, Rejected("empty_file")),
    Case("header_only", kiva_file([]), Loaded(rows=0)),
    Case(
        "header_missing_required_column",
        csv_file(_header(drop="loan_amount"), []),
        Rejected("header", "expected required column(s) 'loan_amount'"),
    ),
    Case(
        "header_extra_column",
        csv_file(_header(add="notes"), [kiva_row(1, _header(add="notes"))]),
        Rejected("header", "unknown column(s) 'notes'"),
    ),
    Case(
        "header_duplicated_column",
        csv_file((*KIVA_HEADER, "loan_name"), [kiva_row(1, (*KIVA_HEADER, "loan_name"))]),
        Rejected("header", "'loan_name' appears twice"),
    ),
    Case(
        "header_renamed_column",
        csv_file(_header(rename=("loan_amount", "amount")), kiva_rows(1, 2)),
        Rejected("header", "'loan_amount'"),
    ),
    Case(
        "header_case_changed",
        csv_file(_header(rename=("loan_id", "Loan_ID")), kiva_rows(1, 2)),
        Rejected("header", "'loan_id'"),
    ),
    Case(
        "header_reordered_loads_by_name",
        csv_file(KIVA_HEADER[::-1], [kiva_row(i, KIVA_HEADER[::-1]) for i in (1, 2, 3)]),
        Loaded(rows=3, values=((3, "loan_id", 2), (4, "distribution_model", "field_partner"))),
    ),
    Case(
        "header_after_empty_line_loads",  # empty lines are not records, anywhere
        b"\n" + GOOD,
        Loaded(rows=4, values=((3, "loan_id", 1), (6, "loan_id", 4))),
    ),
    Case(
        "header_after_whitespace_line",
        b"  \n" + GOOD,
        Rejected("header", "found a blank line"),
    ),
    Case(
        "utf8_bom_loads",
        BOM + GOOD,
        Loaded(rows=4, values=((2, "loan_id", 1), (5, "loan_id", 4))),
    ),
    Case(
        "crlf_line_ends",
        kiva_file(kiva_rows(1, 4), newline="\r\n"),
        Loaded(rows=4, values=((5, "distribution_model", "field_partner"),)),
    ),
    Case("mixed_lf_crlf", _mixed_newlines(), Loaded(rows=4, values=((4, "loan_id", 3),))),
    Case("no_final_newline", GOOD.rstrip(b"\n"), Loaded(rows=4, values=((5, "loan_id", 4),))),
    Case(
        "blank_lines_keep_line_numbers",
        GOOD.replace(b"\n", b"\n\n", 2) + kiva_row(9, loan_amount="abc").encode() + b"\n",
        Loaded(
            rows=4,
            dead=dead((8, "column 'loan_amount'")),
            values=((3, "loan_id", 1), (7, "loan_id", 4)),
        ),
    ),
    Case(
        "quoted_newlines_keep_line_numbers",
        kiva_file(
            [kiva_row(1, description="one\ntwo\r\nthree"), kiva_row(2, loan_id="x"), kiva_row(3)]
        ),
        Loaded(
            rows=2,
            dead=dead((5, "column 'loan_id'")),
            values=((2, "description", "one\ntwo\r\nthree"), (6, "loan_id", 3)),
        ),
    ),
    Case(
        "unterminated_quote_at_end",
        GOOD + b'5,"Valentina never closed her quote\n',
        Rejected("unterminated_quote", "line 6"),
    ),
    Case(
        "quotes_inside_unquoted_field",
        kiva_file([kiva_row(1), _stray_quotes(2, 'Va"lent"ina'), kiva_row(3)]),
        Loaded(rows=2, dead=dead((3, "malformed quoting"))),
    ),
    Case(
        "one_quote_inside_unquoted_field",
        kiva_file([kiva_row(1), _stray_quotes(2, 'Va"lentina'), kiva_row(3), kiva_row(4)]),
        Loaded(rows=3, dead=dead((3, "malformed quoting")), values=((4, "loan_id", 3),)),
    ),
    Case(
        "one_quote_inside_unquoted_field_in_two_rows",
        kiva_file(
            [_stray_quotes(i, 'Va"lentina') if i in (2, 4) else kiva_row(i) for i in range(1, 6)]
        ),
        Loaded(rows=3, dead=dead((3, "malformed quoting"), (5, "malformed quoting"))),
    ),
    Case(
        "wrong_field_count_rows",
        kiva_file([kiva_row(1), kiva_row(2) + ",extra", *kiva_rows(3, 2), kiva_row(5)[:-14]]),
        Loaded(rows=3, dead=dead((3, "expected 31 fields, found 32"), (6, "found 30"))),
    ),
    Case(
        "field_10mb_under_default_record_limit",
        lambda: _huge_field(10 * MIB),
        Loaded(rows=3, values=((3, "length(description)", 10 * MIB),)),
    ),
    Case(
        "field_10mb_over_record_limit",
        lambda: _huge_field(10 * MIB),
        Rejected("record_too_long", "line 3"),
        env=(("SLUICE_MAX_RECORD_BYTES", str(4 * MIB)),),
    ),
    Case(
        "long_line_under_record_limit",
        _long_line,
        Loaded(rows=3, values=((3, "length(tags)", 300_000), (4, "loan_id", 3))),
        env=(("SLUICE_MAX_RECORD_BYTES", str(MIB)), ("SLUICE_CHUNK_BYTES", str(64 * 1024))),
    ),
    Case(
        "nul_byte",
        kiva_file([kiva_row(1), kiva_row(2, loan_name="Val\x00entina")]),
        Rejected("nul_byte", "line 3"),
    ),
    Case(
        "latin1_bytes",
        kiva_file([kiva_row(1), kiva_row(2, town_name="Doña")]).decode().encode("latin-1"),
        Rejected("encoding", "line 2"),
    ),
    Case(
        "utf16_with_bom",
        GOOD.decode().encode("utf-16"),
        Rejected("encoding", "UTF-16 byte-order mark"),
    ),
    Case("utf16_without_bom", GOOD.decode().encode("utf-16-le"), Rejected("nul_byte", "UTF-16")),
    Case("binary_png_named_csv", _png(), Rejected("nul_byte")),
    Case("truncated_gzip", gzip.compress(GOOD)[:-40], Rejected("gzip", "truncated")),
    Case("corrupt_gzip", _corrupt_gzip(), Rejected("gzip", "corrupt")),
    Case(
        "gzip_bomb",
        _gzip_bomb,
        Rejected("too_large", max_bytes_read=MIB + 1),
        name="incoming/kiva_loans/gzip_bomb.csv.gz",
        env=(("SLUICE_MAX_FILE_BYTES", str(MIB)),),
    ),
    Case(
        "plain_file_over_max_file_bytes",
        kiva_file(kiva_rows(1, 200)),
        Rejected("too_large", max_bytes_read=64 * 1024 + 1),
        env=(("SLUICE_MAX_FILE_BYTES", str(64 * 1024)),),
    ),
    Case("gzip_named_csv_loads", gzip.compress(GOOD), Loaded(rows=4)),
    Case("plain_named_gz_loads", GOOD, Loaded(rows=4), name="incoming/kiva_loans/plain.csv.gz"),
    Case(
        "mostly_wrong_types",
        kiva_file([kiva_row(i, loan_amount="abc") for i in (1, 2, 3)] + [kiva_row(4)]),
        Rejected("types", "column 'loan_amount'"),
    ),
    Case(
        "mostly_wrong_field_counts",
        kiva_file([kiva_row(i) + ",x" for i in (1, 2, 3)] + [kiva_row(4)]),
        Rejected("field_count", "expected 31 fields, found 32"),
    ),
]
