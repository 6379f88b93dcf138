"""The servers' format strings read into text and variables: pasted directives, column names."""

from __future__ import annotations

import pytest

from sluice.records.log_format_syntax import ServerLogFormat, Variable, format_tokens

NGINX_MAIN = (
    '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent '
    '"$http_referer" "$http_user_agent" "$http_x_forwarded_for"'
)
NGINX_CONF = """\
    log_format  main  '$remote_addr - $remote_user [$time_local] "$request" '
                      '$status $body_bytes_sent "$http_referer" '
                      '"$http_user_agent" "$http_x_forwarded_for"';
"""


def names(layout: ServerLogFormat) -> list[str]:
    return [token.name for token in format_tokens(layout) if isinstance(token, Variable)]


def test_nginx_log_format_pasted_from_the_config_reads_as_its_strings() -> None:
    pasted = format_tokens(ServerLogFormat("nginx", NGINX_CONF))

    assert pasted == format_tokens(ServerLogFormat("nginx", NGINX_MAIN))
    assert pasted[-2] == Variable("x_forwarded_for", "$http_x_forwarded_for")


def test_apache_log_format_pasted_from_the_config_reads_as_its_string() -> None:
    pasted = ServerLogFormat("apache", r'LogFormat "%h %l %u %t \"%r\" %>s %b" common')

    assert format_tokens(pasted) == format_tokens(
        ServerLogFormat("apache", '%h %l %u %t "%r" %>s %b')
    )


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
    assert names(ServerLogFormat("nginx", f"{nginx} .")) == [column]
    assert names(ServerLogFormat("apache", f"{apache} .")) == [column]


def test_other_variables_are_columns_named_after_them() -> None:
    layout = ServerLogFormat("nginx", "$request_id ${upstream_cache_status}: $ssl_protocol")

    assert names(layout) == ["request_id", "upstream_cache_status", "ssl_protocol"]
    assert names(ServerLogFormat("apache", "%D %{ms}T %{UNIQUE_ID}e")) == [
        "request_time_us",
        "request_time_ms",
        "unique_id",
    ]
