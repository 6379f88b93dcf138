"""Layouts compiled from the servers' own format strings: fields, pasted directives, names."""

from __future__ import annotations

import pytest

from sluice.records.log_layouts import ServerLogFormat, compile_layout

NGINX_MAIN = (
    '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent '
    '"$http_referer" "$http_user_agent" "$http_x_forwarded_for"'
)
NGINX_CONF = """\
    log_format  main  '$remote_addr - $remote_user [$time_local] "$request" '
                      '$status $body_bytes_sent "$http_referer" '
                      '"$http_user_agent" "$http_x_forwarded_for"';
"""


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


def test_nginx_log_format_pasted_from_the_config_reads_as_its_strings() -> None:
    pasted = compile_layout(ServerLogFormat("nginx", NGINX_CONF))

    assert pasted.parts == compile_layout(ServerLogFormat("nginx", NGINX_MAIN)).parts
    assert pasted.fields[-1] == "x_forwarded_for"


def test_apache_log_format_pasted_from_the_config_reads_as_its_string() -> None:
    pasted = ServerLogFormat("apache", r'LogFormat "%h %l %u %t \"%r\" %>s %b" common')

    assert compile_layout(pasted).parts == compile_layout("common").parts


@pytest.mark.parametrize(
    ("nginx", "apache", "column"),
    [
        ("$remote_addr", "%a", "client_ip"),
        ("$http_x_forwarded_for", "%{X-Forwarded-For}i", "x_forwarded_for"),
        ("$http_user_agent", "%400,501{User-agent}i", "user_agent"),
        ("$sent_http_content_type", "%{Content-Type}o", "sent_http_content_type"),
        ("$cookie_session", "%{session}C", "cookie_session"),
        ("$bytes_sent", "%O", "total_bytes_sent"),
        ("$server_name", "%v", "virtual_host"),
        ("$request_method", "%m", "request_method"),
    ],
)
def test_both_syntaxes_name_the_same_value_alike(nginx: str, apache: str, column: str) -> None:
    assert compile_layout(ServerLogFormat("nginx", f"{nginx} .")).fields == (column,)
    assert compile_layout(ServerLogFormat("apache", f"{apache} .")).fields == (column,)


def test_other_variables_are_columns_named_after_them() -> None:
    layout = ServerLogFormat("nginx", "$request_id ${upstream_cache_status}: $ssl_protocol")

    assert compile_layout(layout).fields == ("request_id", "upstream_cache_status", "ssl_protocol")
    assert compile_layout(ServerLogFormat("apache", "%D %{ms}T %{UNIQUE_ID}e")).fields == (
        "request_time_us",
        "request_time_ms",
        "unique_id",
    )


def test_custom_layout_parts_are_named_for_reasons() -> None:
    layout = ServerLogFormat("nginx", '$host "$request" upstream=$upstream_addr')

    whats = [part.what for part in compile_layout(layout).parts]

    assert whats == [
        "$host", "a space", "'\"' opening the request line", "the request line",
        "'\"' closing the request line", "a space", "'upstream=' before $upstream_addr",
        "$upstream_addr", "the end of the line",
    ]  # fmt: skip
