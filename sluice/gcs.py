"""Cloud Storage access: the one place that builds a storage client, and its error mapping.

``storage_client`` talks to Google with default credentials, or, when ``settings.gcs_endpoint``
is set, to that endpoint (fake-gcs-server locally) anonymously. google-cloud-storage loads on
first use, never at import. ``gcs_faults`` turns the faults a retry can cure (HTTP 429 and
5xx, dropped connections, timeouts) into ``TransientError`` and lets every other error
(404, 412, 403) through unchanged, for the caller to decide.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, BinaryIO

from sluice.errors import ConfigError, TransientError
from sluice.settings import Settings

if TYPE_CHECKING:
    from google.cloud import storage

LOCAL_PROJECT = "local"
"""Project id used against an emulator, which ignores it."""


def storage_client(settings: Settings) -> storage.Client:
    """The storage client for ``settings`` (created once per endpoint and project)."""
    return _cached_client(settings.gcs_endpoint, settings.gcp_project)


@functools.lru_cache(maxsize=8)
def _cached_client(endpoint: str, project: str) -> storage.Client:
    # One client per process: it holds the credentials and a pooled HTTP session, and
    # building it with default credentials costs a metadata-server round trip.
    from google.cloud import storage

    if endpoint:
        from google.auth.credentials import AnonymousCredentials

        return storage.Client(
            project=LOCAL_PROJECT,
            credentials=AnonymousCredentials(),
            client_options={"api_endpoint": endpoint},
        )
    return storage.Client(project=project or None)


def is_local_path(uri: str) -> bool:
    """True for a plain filesystem path (no ``scheme://``)."""
    return "://" not in uri


def read_small(uri: str, settings: Settings) -> bytes:
    """The whole content of a small object (``gs://`` URI) or local file: an index, a manifest."""
    if uri.startswith("gs://"):
        bucket, name = parse_gs_uri(uri)
        with gcs_faults(f"reading {uri}"):
            return storage_client(settings).bucket(bucket).blob(name).download_as_bytes()
    from pathlib import Path

    return Path(uri).read_bytes()


def parse_gs_uri(uri: str) -> tuple[str, str]:
    """``gs://bucket/name`` -> ``(bucket, name)``."""
    bucket, _, name = uri.removeprefix("gs://").partition("/")
    if not uri.startswith("gs://") or not bucket or not name:
        raise ConfigError(f"expected a URI like gs://bucket/object, found {uri!r}")
    return bucket, name


def gs_uri(bucket: str, name: str) -> str:
    """``(bucket, name)`` -> ``gs://bucket/name``."""
    return f"gs://{bucket}/{name}"


def transient_gcs_errors() -> tuple[type[BaseException], ...]:
    """Exception types of Cloud Storage calls that a later retry may cure."""
    import requests
    from google.api_core import exceptions as api
    from google.auth import exceptions as auth

    return (
        api.TooManyRequests,
        api.ServerError,
        api.RetryError,  # the client's own retries ran out of time
        requests.ConnectionError,
        requests.Timeout,
        auth.TransportError,
        ConnectionError,
        TimeoutError,
    )


@contextmanager
def gcs_faults(action: str) -> Iterator[None]:
    """Raise ``TransientError`` for retryable Cloud Storage faults inside the block."""
    try:
        yield
    except transient_gcs_errors() as exc:
        raise TransientError(
            f"{action}: expected Cloud Storage to answer, found {type(exc).__name__}: {exc}"
        ) from exc


def open_object(
    client: storage.Client, bucket: str, name: str, generation: int, *, chunk_bytes: int
) -> BinaryIO:
    """A reader of exactly this generation's stored bytes, fetched ``chunk_bytes`` at a time.

    Each read is a ranged GET of that generation, so memory holds about one chunk and a newer
    upload of the same name cannot change the bytes mid-stream (a generation that is gone
    gives ``NotFound``, here or on a read). Stored bytes as they are: no gzip transcoding.
    """
    blob = client.bucket(bucket).blob(name, generation=generation)
    blob.reload()  # this generation's size, and NotFound now if it is already gone
    return io.BufferedReader(_GenerationReader(blob, chunk_bytes), buffer_size=chunk_bytes)


class _GenerationReader(io.RawIOBase):
    """Ranged reads of one object generation, each through a fresh ``Blob``.

    google-cloud-storage's own reader keeps one ``Blob`` and copies each response's
    ``x-goog-generation`` header into it; a server that reports the live generation there
    (fake-gcs-server does) would make every later chunk come from a newer upload.
    """

    def __init__(self, blob: storage.Blob, chunk_bytes: int) -> None:
        self._bucket, self._name, self._generation = blob.bucket, blob.name, blob.generation
        self._size = int(blob.size or 0)
        self._chunk_bytes = chunk_bytes
        self._position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        """Move the next ranged read (the pipeline reads a file's split ranges this way)."""
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._size}[whence]
        self._position = max(0, base + offset)
        return self._position

    def tell(self) -> int:
        return self._position

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        wanted = min(len(buffer), self._chunk_bytes, self._size - self._position)
        if wanted <= 0:
            return 0
        blob = self._bucket.blob(self._name, generation=self._generation)
        data = blob.download_as_bytes(
            start=self._position,
            end=self._position + wanted - 1,
            raw_download=True,
            checksum=None,
        )
        buffer[: len(data)] = data
        self._position += len(data)
        return len(data)
