"""The distributed near-duplicates job: several partitions, the same groups as exact search."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pytest
from deltalake import write_deltalake
from signal_rows import duplicate_catalog

from extractors.duplicates import NearDuplicates
from features import get_signal
from jobs.lake.removals import tombstones
from jobs.lake.tables import latest_signal_values
from jobs.pipeline import near_duplicates as job
from jobs.settings import Settings

pytestmark = pytest.mark.usefixtures("ray_session")
ART, AUDIO, OUT = (get_signal(s) for s in ("artwork_hash@1", "audio_fingerprint@1", job.SIGNAL))


def _output(settings: Settings) -> dict[str, dict[str, object]]:
    rows = latest_signal_values(
        settings.signal_uri(OUT.storage_name), OUT.arrow_schema(), list(OUT.features)
    )
    return {r["content_id"]: r for r in rows.to_pylist()}


def test_the_job_on_several_partitions_finds_the_groups_exact_search_finds(
    settings: Settings,
) -> None:
    art, audio = duplicate_catalog(np.random.default_rng(11))
    write_deltalake(settings.signal_uri(ART.storage_name), art)
    write_deltalake(settings.signal_uri(AUDIO.storage_name), audio)
    settings = replace(settings, near_duplicates_partition_items=64)  # 7 item, 7 bucket partitions
    stages: list[str] = []

    record = job.run_near_duplicates(settings, on_stage=stages.append)

    assert record.status == "succeeded" and record.extracted == 400
    assert any("7 partitions" in s for s in stages)
    exact = (
        NearDuplicates()
        .extract(
            pa.table(
                {
                    "content_id": art.column("content_id"),
                    "artwork_phash": art.column("phash"),
                    "artwork_layout": art.column("colour_layout"),
                    "audio_fingerprint": audio.column("fingerprint"),
                }
            )
        )
        .to_pylist()
    )
    out = _output(settings)
    for want in exact:
        got = out[want["content_id"]]
        assert (got["group_id"], got["group_size"], got["nearest_id"], got["match"]) == (
            want["group_id"],
            want["group_size"],
            want["nearest_id"],
            want["match"],
        )
    assert out["track:0300"]["group_id"] == out["track:0350"]["group_id"] == "track:0000"
    assert out["track:0000"]["group_size"] == 3
    assert out["track:0399"]["group_size"] == 1  # same structure, other colours
    assert sum(r["group_size"] > 1 for r in out.values()) == 30 * 2 + 20 * 2 + 1

    # Item 300 leaves the catalog: its hash and fingerprint are tombstoned, so is its group row,
    # and 0 and 350 stay a pair.
    gone = pa.array(["track:0300"])
    for signal in (ART, AUDIO):
        dead = tombstones(
            gone,
            signal.arrow_schema(),
            run_id="gone",
            event_timestamp=datetime.now(UTC),
            version="1",
        )
        write_deltalake(settings.signal_uri(signal.storage_name), dead, mode="append")

    again = job.run_near_duplicates(settings)

    assert (again.extracted, again.removed) == (399, 1)
    out = _output(settings)
    assert out["track:0300"]["group_id"] is None
    assert out["track:0000"]["group_size"] == out["track:0350"]["group_size"] == 2
