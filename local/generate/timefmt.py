"""Vectorised timestamp text in the shapes the datasets use."""

from __future__ import annotations

import numpy as np

EMPTY = -1
"""Epoch value that stands for an empty field."""
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def epoch_seconds(day: str) -> int:
    """Seconds since 1970-01-01 UTC at the start of ``day`` (``YYYY-MM-DD``)."""
    return int(np.datetime64(day, "s").astype(np.int64))


def kiva_timestamps(seconds: np.ndarray) -> np.ndarray:
    """Kiva's ``2014-01-15 04:48:22.000 +0000`` per epoch second; ``EMPTY`` becomes ``""``."""
    iso = np.datetime_as_string(np.maximum(seconds, 0).astype("datetime64[s]"), unit="s")
    text = np.array([f"{t[:10]} {t[11:]}.000 +0000" for t in iso.tolist()], dtype=object)
    text[seconds == EMPTY] = ""
    return text


def iso_timestamps(utc_ms: np.ndarray, offset_minutes: np.ndarray, suffix: np.ndarray) -> list[str]:
    """ISO 8601 local times: ``2026-11-24T10:15:03.123`` shifted by the offset, plus its suffix."""
    local = (utc_ms + offset_minutes.astype(np.int64) * 60_000).astype("datetime64[ms]")
    iso = np.datetime_as_string(local, unit="ms").tolist()
    return [t + s for t, s in zip(iso, suffix.tolist(), strict=True)]


def clf_timestamps(utc_ms: np.ndarray, offset_minutes: np.ndarray) -> list[str]:
    """Apache's ``%t`` without brackets, local time and offset: ``08/Nov/2026:13:55:36 +0100``."""
    local = (utc_ms // 1000 + offset_minutes.astype(np.int64) * 60).astype("datetime64[s]")
    iso = np.datetime_as_string(local, unit="s").tolist()
    return [
        f"{t[8:10]}/{_MONTHS[int(t[5:7]) - 1]}/{t[:4]}:{t[11:]} {offset_text(m).replace(':', '')}"
        for t, m in zip(iso, offset_minutes.tolist(), strict=True)
    ]


def rfc3339_utc(utc_us: np.ndarray) -> list[str]:
    """RFC 3339 UTC times with microseconds and ``Z``, as Cloud Logging writes them."""
    iso = np.datetime_as_string(utc_us.astype("datetime64[us]"), unit="us").tolist()
    return [t + "Z" for t in iso]


def offset_text(minutes: int, utc_as_z: bool = False) -> str:
    """``+01:00`` for 60, ``-05:00`` for -300, ``+00:00`` (or ``Z``) for UTC."""
    if minutes == 0 and utc_as_z:
        return "Z"
    sign = "-" if minutes < 0 else "+"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
