"""The alert log contract: a line our JSON formatter writes for an alert matches the
log-based metric's filter and yields its labels; other lines do not.

Cloud Logging turns each JSON line on a function's stdout into an entry: ``severity`` is the
entry's severity, ``logging.googleapis.com/labels`` its ``labels``, the other fields its
``jsonPayload``. The filter is evaluated here with the subset of the Logging query language
it uses (comparisons, AND, OR, parentheses, severity order).
"""

from __future__ import annotations

import io
import json
import logging
import re
from typing import Any

import pytest

from sluice.cook.alerts import RULE_ALERTS
from sluice.logs import LABELS_FIELD, SOURCE_FIELD, JsonFormatter, event_labels, log_event
from tests.infra.terraform_model import Infra

SEVERITIES = ["DEFAULT", "DEBUG", "INFO", "NOTICE", "WARNING", "ERROR", "CRITICAL", "ALERT"]
_TOKENS = re.compile(r'\s*(\(|\)|"(?:[^"\\]|\\.)*"|>=|<=|!=|=|>|<|:|[^\s()"=<>!:]+)')


def log_entry(level: int, message: str, labels: dict[str, str], **fields: Any) -> dict[str, Any]:
    """The Cloud Logging entry for one line our formatter writes."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("functions.alert_contract")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        with event_labels(**labels):
            log_event(logger, level, message, **fields)
    finally:
        logger.removeHandler(handler)
    line = json.loads(stream.getvalue())
    line.pop(SOURCE_FIELD, None)
    return {
        "severity": line.pop("severity"),
        "labels": line.pop(LABELS_FIELD, {}),
        "jsonPayload": line,
    }


def matches(query: str, entry: dict[str, Any]) -> bool:
    """Whether ``entry`` satisfies ``query`` (Logging query language, the subset used)."""
    tokens = [t for t in _TOKENS.findall(query) if t]
    position = 0

    def expression() -> bool:
        nonlocal position
        result = conjunction()
        while position < len(tokens) and tokens[position] == "OR":
            position += 1
            result = conjunction() or result
        return result

    def conjunction() -> bool:
        nonlocal position
        result = factor()
        while position < len(tokens) and tokens[position] not in ("OR", ")"):
            if tokens[position] == "AND":
                position += 1
            result = factor() and result
        return result

    def factor() -> bool:
        nonlocal position
        if tokens[position] == "(":
            position += 1
            result = expression()
            assert tokens[position] == ")", f"expected ')' at token {position} of {query!r}"
            position += 1
            return result
        field, operator, raw = tokens[position : position + 3]
        position += 3
        return compare(lookup(entry, field), operator, json.loads(raw) if raw[0] == '"' else raw)

    result = expression()
    assert position == len(tokens), f"unparsed tail {tokens[position:]} of {query!r}"
    return result


def compare(found: Any, operator: str, wanted: str) -> bool:
    """One comparison of the query language (= on values, >= on severities)."""
    if operator == "=":
        return found == wanted
    if operator == ">=" and found in SEVERITIES:
        return SEVERITIES.index(found) >= SEVERITIES.index(wanted)
    raise AssertionError(f"comparison {operator!r} is not in the subset this test evaluates")


def lookup(entry: dict[str, Any], path: str) -> Any:
    """The entry's value at a dotted path (``jsonPayload.alert``), None when absent."""
    value: Any = entry
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def extract(entry: dict[str, Any], extractor: str) -> Any:
    """What a log-based metric's ``EXTRACT(field)`` label extractor yields for ``entry``."""
    field = re.fullmatch(r"EXTRACT\(([\w.]+)\)", extractor)
    assert field, extractor
    return lookup(entry, field[1])


@pytest.fixture(scope="module")
def metric(infra: Infra) -> dict[str, Any]:
    """The log-based metric resource."""
    return infra.resources["google_logging_metric.alerts"]


@pytest.fixture(scope="module")
def log_filter(infra: Infra, metric: dict[str, Any]) -> str:
    """The metric's filter, a literal local so that it can be evaluated here."""
    assert metric["filter"] == "${local.alert_log_filter}"
    return infra.locals["alert_log_filter"]


@pytest.mark.parametrize("kind", sorted(set(RULE_ALERTS.values())))
def test_alert_line_matches_the_metric_and_yields_its_labels(
    metric: dict[str, Any], log_filter: str, kind: str
) -> None:
    labels = {"dataset": "kiva_loans"}
    entry = log_entry(logging.ERROR, "kiva_loans: no file for 26 h", labels, alert=kind)

    extracted = {key: extract(entry, how) for key, how in metric["label_extractors"].items()}

    assert matches(log_filter, entry)
    assert extracted == {"alert": kind, "dataset": "kiva_loans"}


@pytest.mark.parametrize(
    ("level", "fields"),
    [
        (logging.WARNING, {"alert": "missing_data"}),  # below ERROR
        (logging.ERROR, {}),  # an error that is no data alert
        (logging.ERROR, {"alert": "something_else"}),
        (logging.WARNING, {"outcome": "rejected", "reason": "header"}),  # a rejected file
    ],
)
def test_other_lines_do_not_match_the_metric(
    log_filter: str, level: int, fields: dict[str, str]
) -> None:
    entry = log_entry(level, "an event", {"dataset": "kiva_loans"}, **fields)

    assert not matches(log_filter, entry)


def test_metric_labels_are_the_extracted_ones_and_the_alert_groups_by_them(
    infra: Infra, metric: dict[str, Any]
) -> None:
    declared = {label["key"] for label in metric["metric_descriptor"][0]["labels"]}
    [dynamic] = infra.resources["google_monitoring_alert_policy.data_alerts"]["dynamic"]
    [content] = dynamic["conditions"]["content"]
    [threshold] = content["condition_threshold"]
    fields = threshold["aggregations"][0]["group_by_fields"]
    grouped = {field.removeprefix("metric.label.") for field in fields}

    assert set(metric["label_extractors"]) == declared == grouped == {"alert", "dataset"}
    assert "logging.googleapis.com/user/${google_logging_metric.alerts.name}" in threshold["filter"]
    assert threshold["comparison"] == "COMPARISON_GT"
    assert threshold["threshold_value"] == 0
