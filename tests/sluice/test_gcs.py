"""sluice.gcs against a real fake-gcs-server: the client, URIs, fault mapping, streaming reads."""

from __future__ import annotations

import io
import os
from typing import TYPE_CHECKING, Any

import pytest
import requests
from google.api_core import exceptions as api
from google.cloud.storage import Blob, Bucket

from sluice.errors import ConfigError, TransientError
from sluice.gcs import gcs_faults, gs_uri, open_object, parse_gs_uri, storage_client
from sluice.settings import load_settings

if TYPE_CHECKING:
    from tests.gcs_fixtures import GcsBuckets

pytest_plugins = ["tests.gcs_fixtures"]


def test_parse_gs_uri_splits_bucket_and_nested_name() -> None:
    assert parse_gs_uri("gs://landing/incoming/kiva_loans/a b.csv") == (
        "landing",
        "incoming/kiva_loans/a b.csv",
    )


@pytest.mark.parametrize("uri", ["landing/a.csv", "gs://landing", "gs://landing/", "gs:///a.csv"])
def test_parse_gs_uri_rejects_incomplete_uris(uri: str) -> None:
    with pytest.raises(ConfigError, match="expected a URI like gs://bucket/object"):
        parse_gs_uri(uri)


def test_gs_uri_round_trips_through_parse() -> None:
    assert parse_gs_uri(gs_uri("b", "x/y.csv")) == ("b", "x/y.csv")


def test_storage_client_with_endpoint_talks_to_the_emulator_anonymously(gcs: GcsBuckets) -> None:
    gcs.landing.blob("incoming/x.csv").upload_from_string(b"a\n1\n")

    client = storage_client(load_settings())

    assert client.bucket(gcs.landing.name).blob("incoming/x.csv").download_as_bytes() == b"a\n1\n"
    assert client.project == "local"


@pytest.mark.parametrize(
    "fault",
    [
        api.ServiceUnavailable("down"),
        api.TooManyRequests("slow down"),
        api.InternalServerError("oops"),
        requests.ConnectionError("refused"),
        requests.Timeout("timed out"),
    ],
)
def test_gcs_faults_turns_retryable_faults_into_transient_errors(fault: Exception) -> None:
    expected = "reading x: expected Cloud Storage to answer"
    with pytest.raises(TransientError, match=expected), gcs_faults("reading x"):
        raise fault


@pytest.mark.parametrize(
    "fault", [api.NotFound("gone"), api.PreconditionFailed("412"), api.Forbidden("no")]
)
def test_gcs_faults_lets_other_errors_through(fault: Exception) -> None:
    with pytest.raises(type(fault)), gcs_faults("reading x"):
        raise fault


def test_open_object_streams_in_ranged_chunks(
    gcs: GcsBuckets, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = os.urandom(1_000_000)
    blob = gcs.landing.blob("incoming/big.bin")
    blob.upload_from_string(data)
    requested: list[tuple[int, int]] = []
    download = Blob.download_as_bytes

    def spy(self: Blob, *args: Any, **kwargs: Any) -> bytes:
        requested.append((kwargs["start"], kwargs["end"]))
        return download(self, *args, **kwargs)

    monkeypatch.setattr(Blob, "download_as_bytes", spy)
    chunk = 64 * 1024

    with open_object(
        gcs.client, gcs.landing.name, blob.name, blob.generation, chunk_bytes=chunk
    ) as reader:
        pieces = iter(lambda: reader.read(10_000), b"")
        read = b"".join(pieces)

    assert read == data
    assert len(requested) >= len(data) // chunk
    assert max(end - start for start, end in requested) <= chunk


def test_open_object_reads_the_pinned_generation_not_a_newer_upload(gcs: GcsBuckets) -> None:
    blob = gcs.landing.blob("incoming/a.csv")
    blob.upload_from_string(b"first\n")
    first = blob.generation
    gcs.landing.blob("incoming/a.csv").upload_from_string(b"second\n")

    # fake-gcs-server keeps no old generations, like a bucket without versioning.
    with pytest.raises(api.NotFound):
        open_object(gcs.client, gcs.landing.name, blob.name, first, chunk_bytes=1024)


def test_open_object_reads_an_older_generation_through_a_buffered_reader(
    gcs: GcsBuckets,
) -> None:
    versioned = Bucket(gcs.client, f"{gcs.landing.name}-v")
    versioned.versioning_enabled = True  # as infra/ sets landing: older generations stay
    bucket = gcs.client.create_bucket(versioned)
    blob = bucket.blob("incoming/a.csv")
    blob.upload_from_string(b"first\nrows\n")
    first = blob.generation
    bucket.blob("incoming/a.csv").upload_from_string(b"second\n")

    reader = open_object(gcs.client, bucket.name, blob.name, first, chunk_bytes=4)
    with io.BufferedReader(reader) as buffered:  # probes seek(), as open_decompressed does
        assert buffered.read() == b"first\nrows\n"


def test_open_object_keeps_gzip_bytes_as_stored(gcs: GcsBuckets) -> None:
    import gzip

    packed = gzip.compress(b"a,b\n1,2\n")
    blob = gcs.landing.blob("incoming/a.csv.gz")
    blob.content_encoding = "gzip"
    blob.upload_from_string(packed, content_type="text/csv")

    with open_object(gcs.client, gcs.landing.name, blob.name, blob.generation, chunk_bytes=64) as r:
        assert r.read(1000) == packed
