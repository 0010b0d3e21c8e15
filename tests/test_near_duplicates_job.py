"""The distributed near-duplicates job: several partitions, the same groups as exact search."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa
import pytest
from deltalake import write_deltalake

from extractors.duplicates import NearDuplicates
from features import get_signal
from jobs.lake.removals import tombstones
from jobs.lake.tables import latest_signal_values
from jobs.pipeline import near_duplicates as job
from jobs.settings import Settings

pytestmark = pytest.mark.usefixtures("ray_session")
ART, AUDIO, OUT = (get_signal(s) for s in ("artwork_hash@1", "audio_fingerprint@1", job.SIGNAL))


def _standard(ids: list[str], when: datetime) -> dict[str, object]:
    stamps = pa.array([when] * len(ids), pa.timestamp("us", tz="UTC"))
    return {
        "content_id": ids,
        "event_timestamp": stamps,
        "created_timestamp": stamps,
        "input_updated_at": stamps,
        "input_hash": ["h"] * len(ids),
        "extractor_version": ["1"] * len(ids),
        "run_id": ["seed"] * len(ids),
    }


def _catalog(rng: np.random.Generator) -> tuple[pa.Table, pa.Table]:
    """400 items; items 300–329 copy the artwork of 0–29 (≤ 3 bits flipped, layout ±1/255),
    330–349 the fingerprint of 30–49; 350 copies 0's fingerprint too, so 0, 300 and 350 form one
    group across both kinds; 399 shares 1's pHash but not its colours."""
    n = 400
    ids = [f"track:{i:04d}" for i in range(n)]
    hashes = rng.integers(0, 2**63, size=n, dtype=np.uint64) * np.uint64(2)
    layouts = rng.uniform(0, 1, (n, 48)).astype(np.float32)
    vectors = rng.standard_normal((n, 128)).astype(np.float32)
    for copy, source in zip(range(300, 330), range(30), strict=True):
        hashes[copy] = hashes[source]
        for bit in rng.choice(64, size=rng.integers(0, 4), replace=False):
            hashes[copy] ^= np.uint64(1) << np.uint64(bit)
        layouts[copy] = np.clip(layouts[source] + rng.uniform(-1 / 255, 1 / 255, 48), 0, 1)
    for copy, source in [*zip(range(330, 350), range(30, 50), strict=True), (350, 0)]:
        vectors[copy] = vectors[source] + rng.standard_normal(128) * 0.05
    hashes[399], layouts[399] = hashes[1], 1 - layouts[1]
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    when = datetime.now(UTC) - timedelta(minutes=5)
    art = pa.table(
        {
            **_standard(ids, when),
            "phash": [f"{h:016x}" for h in hashes],
            "colour_layout": list(layouts),
        }
    ).cast(ART.arrow_schema())
    audio = pa.table({**_standard(ids, when), "fingerprint": list(vectors)}).cast(
        AUDIO.arrow_schema()
    )
    return art, audio


def _output(settings: Settings) -> dict[str, dict[str, object]]:
    rows = latest_signal_values(
        settings.signal_uri(OUT.storage_name), OUT.arrow_schema(), list(OUT.features)
    )
    return {r["content_id"]: r for r in rows.to_pylist()}


def test_the_job_on_several_partitions_finds_the_groups_exact_search_finds(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    art, audio = _catalog(np.random.default_rng(11))
    write_deltalake(settings.signal_uri(ART.storage_name), art)
    write_deltalake(settings.signal_uri(AUDIO.storage_name), audio)
    monkeypatch.setattr(job, "ITEMS_PER_PARTITION", 64)  # 7 item and 7 bucket partitions
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
