"""Layouts compiled into the parts of a line: the named ones, and the names reasons use."""

from __future__ import annotations

import pytest

from sluice.records.log_layouts import ServerLogFormat, compile_layout


@pytest.mark.parametrize(
    ("layout", "fields"),
    [
        ("common", "client_ip ident user_name timestamp request status bytes_sent"),
        (
            "combined",
            "client_ip ident user_name timestamp request status bytes_sent referrer user_agent",
        ),
        (
            "vhost_combined",
            "virtual_host server_port client_ip ident user_name timestamp request status "
            "bytes_sent referrer user_agent",
        ),
        (
            "combined_request_time",
            "client_ip ident user_name timestamp request status bytes_sent referrer user_agent "
            "request_time",
        ),
    ],
)
def test_named_layout_fields_are_those_of_its_format_string(layout: str, fields: str) -> None:
    assert compile_layout(layout).fields == tuple(fields.split())


def test_custom_layout_parts_are_named_for_reasons() -> None:
    layout = ServerLogFormat("nginx", '$host "$request" upstream=$upstream_addr')

    whats = [part.what for part in compile_layout(layout).parts]

    assert whats == [
        "$host", "a space", "'\"' opening the request line", "the request line",
        "'\"' closing the request line", "a space", "'upstream=' before $upstream_addr",
        "$upstream_addr", "the end of the line",
    ]  # fmt: skip
