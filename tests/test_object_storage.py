"""The lake, the media and Feast's registry on object storage (a local S3 server the test
starts): extract → Delta on S3 → Feast materialize → online lookup, with one set of storage
options reaching delta-rs, Ray, pyarrow, fsspec and boto3 alike."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import s3fs
from deltalake import DeltaTable, write_deltalake
from s3_server import S3Server

from features import get_signal
from jobs.pipeline.extract import ExtractRequest, run_extract
from jobs.sample import write_sample_catalog
from jobs.serving.client import get_signals
from jobs.serving.materialize import materialize
from jobs.settings import Settings
from jobs.storage import fsspec_s3

pytestmark = pytest.mark.slow
LOUDNESS = get_signal("audio_loudness@1")
QUALITY = get_signal("text_quality@1")
MEDIA_COLUMNS = ("audio_uri", "artwork_uri", "video_uri")


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    server = S3Server(tmp_path_factory.mktemp("s3") / "moto.log").start()
    server.create_bucket("content")
    yield server
    server.stop()


@pytest.fixture
def s3_settings(
    s3: S3Server, feast_repo: Path, monkeypatch: pytest.MonkeyPatch, ray_session: None
) -> Settings:
    """Settings whose lake and registry are on S3; only the Feast repository and SQLite online
    store are local."""
    env = {
        "SIGNALS_LAKE_URI": "s3://content/lake",
        "SIGNALS_STORAGE_OPTIONS": json.dumps(s3.storage_options),
        "SIGNALS_FEAST_REGISTRY": "s3://content/feast/registry.db",
        "SIGNALS_FEAST_REPO": str(feast_repo),
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return Settings.from_env()


def media_to_s3(settings: Settings, local: Path, bucket_prefix: str) -> None:
    """Upload the sample's media to S3, point the snapshot's URIs at it, and delete the local
    copy: a job that still read the disk would now fail."""
    fs = s3fs.S3FileSystem(**fsspec_s3(settings.storage_options))
    fs.put(str(local) + "/", bucket_prefix.removeprefix("s3://"), recursive=True)
    snapshot = DeltaTable(settings.default_snapshot_uri, storage_options=settings.storage_options)
    table = snapshot.to_pyarrow_table()
    for name in MEDIA_COLUMNS:
        moved = pc.replace_substring(table[name], str(local), bucket_prefix)
        table = table.set_column(table.schema.get_field_index(name), name, moved)
    write_deltalake(
        settings.default_snapshot_uri,
        table,
        mode="overwrite",
        storage_options=settings.storage_options,
    )
    for folder in ("audio", "artwork", "video"):
        shutil.rmtree(local / folder, ignore_errors=True)


def test_extract_materialize_and_serve_from_object_storage(
    s3_settings: Settings, tmp_path: Path
) -> None:
    settings = s3_settings
    media = tmp_path / "media"
    catalog = write_sample_catalog(
        settings.default_snapshot_uri, media, 24, storage_options=settings.storage_options
    )
    truth = {r["content_id"]: r for r in pq.read_table(catalog.ground_truth_uri).to_pylist()}
    media_to_s3(settings, media, "s3://content/media")

    for signal in (QUALITY, LOUDNESS):
        record = run_extract(settings, ExtractRequest(signal.ref, quarantine_threshold=0.5))
        assert record.status == "succeeded", record.error

    # Loudness was decoded from the audio on S3: it matches the ground truth it was made with.
    options = settings.storage_options
    stored = DeltaTable(settings.signal_uri(LOUDNESS.storage_name), storage_options=options)
    rows = {r["content_id"]: r for r in stored.to_pyarrow_table().to_pylist()}
    healthy = [c for c, t in truth.items() if t["loudness_lufs"] is not None and not t["broken"]]
    assert healthy and set(healthy) <= set(rows)
    for content_id in healthy:
        lufs = rows[content_id]["integrated_lufs"]
        assert lufs == pytest.approx(truth[content_id]["loudness_lufs"], abs=0.05), content_id

    # Feast reads the Delta tables on S3 and keeps its registry there; lookups serve them.
    done = materialize(settings, [QUALITY, LOUDNESS])
    assert done.views == [QUALITY.feature_view_name, LOUDNESS.feature_view_name]
    fs = s3fs.S3FileSystem(**fsspec_s3(options))
    assert fs.exists("content/feast/registry.db")
    assert fs.exists(f"content/lake/signals/{LOUDNESS.storage_name}/_delta_log")
    served = get_signals(healthy, signals=[LOUDNESS.ref, QUALITY.ref], settings=settings)
    column = f"{LOUDNESS.feature_view_name}__integrated_lufs"
    assert served[column].to_pylist() == [rows[c]["integrated_lufs"] for c in healthy]
    quality = DeltaTable(settings.signal_uri(QUALITY.storage_name), storage_options=options)
    lengths = {r["content_id"]: r["length_chars"] for r in quality.to_pyarrow_table().to_pylist()}
    served_lengths = served[f"{QUALITY.feature_view_name}__length_chars"].to_pylist()
    assert served_lengths == [lengths[c] for c in healthy]
