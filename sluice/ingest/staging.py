"""Bytes at a local path or a ``gs://`` URI, without Beam: staged Parquet and the input file.

The Beam pipeline and the in-function fast lane (``sluice.ingest.fast_lane``) stage and load
through these same few calls, so both lanes write and read their files one way. Local paths
are plain files (the laptop's staging directory); ``gs://`` goes through the process's one
storage client (``sluice.gcs``), which on Dataflow workers and in the function uses default
credentials. A Parquet file is written whole in one request: GCS writers need no seek, and
a retried write replaces the whole object.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import BinaryIO

import pyarrow as pa
import pyarrow.parquet as pq

from sluice.errors import WarehouseError
from sluice.gcs import gcs_faults, is_local_path, open_object, parse_gs_uri, storage_client
from sluice.schema import SourceRef
from sluice.settings import Settings


def join(directory: str, name: str) -> str:
    """``name`` inside ``directory`` (a local path or a ``gs://`` prefix)."""
    return f"{directory.rstrip('/')}/{name}"


def write_parquet(table: pa.Table, path: str, settings: Settings) -> str:
    """Write ``table`` as one Parquet file at ``path`` (local or ``gs://``); the path."""
    buffer = pa.BufferOutputStream()
    pq.write_table(table, buffer)
    data = buffer.getvalue().to_pybytes()
    if is_local_path(path):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_bytes(data)
        return path
    bucket, name = parse_gs_uri(path)
    with gcs_faults(f"staging {path}"):
        blob = storage_client(settings).bucket(bucket).blob(name)
        blob.upload_from_string(data, content_type="application/vnd.apache.parquet")
    return path


def read_parquet(path: str, settings: Settings, columns: list[str] | None = None) -> pa.Table:
    """A staged file (or some of its columns); a missing or broken one is a WarehouseError,
    as the adapters' own check of staged files would report it."""
    from google.api_core.exceptions import NotFound

    try:
        if is_local_path(path):
            return pq.read_table(path, columns=columns)
        bucket, name = parse_gs_uri(path)
        with gcs_faults(f"reading staged {path}"):
            data = storage_client(settings).bucket(bucket).blob(name).download_as_bytes()
        return pq.read_table(pa.BufferReader(data), columns=columns)
    except (FileNotFoundError, NotFound):
        raise WarehouseError(f"staged file {path}: expected a Parquet file, found none") from None
    except (OSError, pa.ArrowInvalid) as exc:
        raise WarehouseError(f"staged file {path}: expected Parquet, {exc}") from None


def exists(path: str, settings: Settings) -> bool:
    """Whether a staged file is there."""
    if is_local_path(path):
        return Path(path).exists()
    bucket, name = parse_gs_uri(path)
    with gcs_faults(f"looking for {path}"):
        return storage_client(settings).bucket(bucket).blob(name).exists()


def remove_tree(directory: str, settings: Settings) -> int:
    """Delete every file under ``directory`` (and, locally, the directory); files removed."""
    if is_local_path(directory):
        root = Path(directory)
        if not root.exists():
            return 0
        removed = sum(1 for p in root.rglob("*") if p.is_file())
        shutil.rmtree(root)
        return removed
    bucket, prefix = parse_gs_uri(directory.rstrip("/") + "/")
    client = storage_client(settings)
    with gcs_faults(f"removing {directory}"):
        blobs = list(client.list_blobs(bucket, prefix=prefix))
        for blob in blobs:
            blob.delete()
    return len(blobs)


def open_source(path: str, source: SourceRef, settings: Settings, *, chunk_bytes: int) -> BinaryIO:
    """The input's stored bytes, seekable; for the source object, exactly its generation.

    Reading ``gs://bucket/name`` without its generation would read whatever generation is
    live, so a newer upload of the same name would be loaded under this generation's label
    (and again by its own job). Stored bytes as they are: gzip is detected by its magic
    bytes, not by the object's name.
    """
    if is_local_path(path):
        return open(path, "rb")
    bucket, name = parse_gs_uri(path)
    client = storage_client(settings)  # one per process, made at first use
    if path == source.uri:
        return open_object(client, bucket, name, source.generation, chunk_bytes=chunk_bytes)
    blob = client.bucket(bucket).get_blob(name)
    if blob is None:
        from google.api_core.exceptions import NotFound

        raise NotFound(f"{path}: no such object")
    return open_object(client, bucket, name, int(blob.generation), chunk_bytes=chunk_bytes)
