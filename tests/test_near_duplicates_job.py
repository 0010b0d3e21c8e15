"""The distributed near-duplicates job: several partitions, the same groups as exact search."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake
from signal_rows import current_inputs, duplicate_catalog, duplicate_changes, standard_columns

from extractors.duplicates import NearDuplicates
from features import get_signal
from jobs.lake.maintenance import vacuum
from jobs.lake.removals import tombstones
from jobs.lake.state import state_tables
from jobs.lake.tables import latest_signal_values
from jobs.pipeline import near_duplicates as job
from jobs.pipeline.duplicate_state import ITEMS, StateTables
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

    again = job.run_near_duplicates(settings, full=True)

    assert (again.extracted, again.removed) == (399, 1)
    out = _output(settings)
    assert out["track:0300"]["group_id"] is None
    assert out["track:0000"]["group_size"] == out["track:0350"]["group_size"] == 2


def test_a_daily_run_compares_only_what_changed_and_matches_a_full_run(
    settings: Settings,
) -> None:
    rng = np.random.default_rng(5)
    art, audio = duplicate_catalog(rng)
    art_uri, audio_uri = (settings.signal_uri(s.storage_name) for s in (ART, AUDIO))
    write_deltalake(art_uri, art)
    write_deltalake(audio_uri, audio)
    settings = replace(settings, near_duplicates_partition_items=64)
    by_id = {r["content_id"]: r for r in art.to_pylist()}
    job.run_near_duplicates(settings)
    DeltaTable(art_uri).optimize.compact()  # rewritten files hold no new rows
    day_art, day_audio = duplicate_changes(art, audio, rng)
    write_deltalake(art_uri, day_art, mode="append")
    write_deltalake(audio_uri, day_audio, mode="append")
    stages: list[str] = []

    daily = job.run_near_duplicates(settings, on_stage=stages.append)

    assert any(s.startswith("daily run") for s in stages)
    assert any("reading 2 new files" in s for s in stages), stages
    # Written again: the changed items and the members of the groups they touch, no others.
    touched = {"track:0400", "track:0005", "track:0305", "track:0401", "track:0100",
               "track:0402", "track:0010", "track:0310", "track:0040", "track:0340",
               "track:0330", "track:0030", "track:0000", "track:0350"}  # fmt: skip
    assert (daily.extracted, daily.removed) == (len(touched), 1)
    out = _output(settings)
    exact = NearDuplicates().extract(current_inputs(pa.concat_tables([art, day_art]),
                                              pa.concat_tables([audio, day_audio])))  # fmt: skip
    for want in exact.to_pylist():
        got = out[want["content_id"]]
        assert (got["group_id"], got["group_size"], got["nearest_id"], got["match"]) == (
            want["group_id"], want["group_size"], want["nearest_id"], want["match"],
        ), want["content_id"]  # fmt: skip
    assert out["track:0402"]["group_size"] == 5 and out["track:0340"]["group_id"] == "track:0010"
    assert out["track:0330"]["group_size"] == out["track:0030"]["group_size"] == 1
    assert out["track:0300"]["group_id"] is None
    assert out["track:0000"]["group_size"] == 2

    # A run with nothing new writes nothing; a full run rebuilds the same groups.
    assert job.run_near_duplicates(settings).extracted == 0
    again = job.run_near_duplicates(settings, full=True)
    assert again.extracted == exact.num_rows
    assert _output(settings) == out

    # A run that died after committing part of its state: the next run rebuilds it whole.
    items = StateTables.of(settings, "", datetime.now(UTC)).items
    write_deltalake(items, ITEMS.empty_table(), mode="append")
    stages.clear()
    rebuilt = job.run_near_duplicates(settings, on_stage=stages.append)
    assert not any(s.startswith("daily run") for s in stages)
    assert rebuilt.extracted == exact.num_rows and _output(settings) == out

    # Vacuum cleans the state beside the signal: the replaced state files go, the state holds.
    cleaned = vacuum(settings, job.SIGNAL, retention_hours=0, dry_run=False, force=True)
    assert cleaned.files[items] and set(state_tables(settings, OUT.storage_name)) <= set(
        cleaned.files
    )
    assert job.run_near_duplicates(settings).extracted == 0

    # A day when only artwork changes: the audio source has no new file, its stored values stand.
    copy = pa.table(
        {**standard_columns(["track:0403"], datetime.now(UTC), "day2"),
         "phash": [by_id["track:0020"]["phash"]], "colour_layout": [by_id["track:0020"]["colour_layout"]]}
    ).cast(ART.arrow_schema())  # fmt: skip
    write_deltalake(art_uri, copy, mode="append")
    assert job.run_near_duplicates(settings).extracted == 3  # 403 joins 20 and 320
    out = _output(settings)
    assert out["track:0403"]["group_id"] == out["track:0320"]["group_id"] == "track:0020"
    assert out["track:0403"]["group_size"] == 3
    assert out["track:0040"]["group_size"] == 5  # its fingerprint pairs were not lost
