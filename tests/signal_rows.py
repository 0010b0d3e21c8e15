"""Test helper: check an extractor's output against its signal's contract, as the extract job does."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from extractors.base import ERROR_COLUMN
from features import get_signal
from features.standard import REMOVED_HASH, TIMESTAMP
from features.validation import split_valid


def contract_violations(signal_ref: str, out: pa.Table) -> dict[int, str]:
    """The computed rows of `out`, given standard columns, that the signal's contract refuses."""
    signal = get_signal(signal_ref)
    ok = out.filter(pc.is_null(out.column(ERROR_COLUMN)))
    now = pa.array([datetime.now(UTC)] * ok.num_rows, TIMESTAMP)
    text = pa.array(["x"] * ok.num_rows, pa.string())
    standard = {
        "content_id": ok.column("content_id"),
        "event_timestamp": now,
        "created_timestamp": now,
        "input_updated_at": now,
        "input_hash": text,
        "extractor_version": text,
        "run_id": text,
    }
    rows = pa.table(standard | {name: ok.column(name) for name in signal.features})
    _, violations = split_valid(rows.cast(signal.arrow_schema()), signal.contract())
    return violations


def history(
    signal_ref: str, rows: list[tuple[str, datetime, dict[str, object] | None]], run_id: str
) -> pa.Table:
    """Rows of a signal table as a run would commit them: (content_id, event time, features);
    features None is a tombstone (the item left the catalog)."""
    signal = get_signal(signal_ref)
    return pa.Table.from_pylist(
        [
            {
                "content_id": cid,
                "event_timestamp": ts,
                "created_timestamp": ts,
                "input_updated_at": ts,
                "input_hash": REMOVED_HASH if features is None else f"{cid}@{ts:%s}",
                "extractor_version": "test",
                "run_id": run_id,
                **(features or {}),
            }
            for cid, ts, features in rows
        ],
        schema=signal.arrow_schema(),
    )


def standard_columns(ids: list[str], when: datetime, run_id: str = "seed") -> dict[str, object]:
    """The standard columns of signal rows for `ids`, all written at `when` by one run."""
    stamps = pa.array([when] * len(ids), pa.timestamp("us", tz="UTC"))
    return {
        "content_id": ids,
        "event_timestamp": stamps,
        "created_timestamp": stamps,
        "input_updated_at": stamps,
        "input_hash": ["h"] * len(ids),
        "extractor_version": ["1"] * len(ids),
        "run_id": [run_id] * len(ids),
    }


def duplicate_catalog(rng: np.random.Generator) -> tuple[pa.Table, pa.Table]:
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
            **standard_columns(ids, when),
            "phash": [f"{h:016x}" for h in hashes],
            "colour_layout": list(layouts),
        }
    ).cast(get_signal("artwork_hash@1").arrow_schema())
    audio = pa.table({**standard_columns(ids, when), "fingerprint": list(vectors)}).cast(
        get_signal("audio_fingerprint@1").arrow_schema()
    )
    return art, audio


def current_inputs(art: pa.Table, audio: pa.Table) -> pa.Table:
    """The catalog's newest inputs, as the extractor reads them (items without any dropped)."""
    newest = {}
    for table, columns in ((art, ("phash", "colour_layout")), (audio, ("fingerprint",))):
        for row in table.sort_by("event_timestamp").to_pylist():
            newest.setdefault(row["content_id"], {}).update({c: row[c] for c in columns})
    rows = [
        {"content_id": cid, "artwork_phash": v.get("phash"), "artwork_layout": v.get("colour_layout"),
         "audio_fingerprint": v.get("fingerprint")}
        for cid, v in sorted(newest.items())
        if v.get("phash") is not None or v.get("fingerprint") is not None
    ]  # fmt: skip
    return pa.Table.from_pylist(rows)


def duplicate_changes(
    art: pa.Table, audio: pa.Table, rng: np.random.Generator
) -> tuple[pa.Table, pa.Table]:
    """A day's changes: 400 copies 5's artwork, 401 copies 100's fingerprint (a new pair), 402
    copies 10's artwork and 40's fingerprint (two groups merge), 330 gets a new fingerprint (its
    pair with 30 splits) and 300 leaves (0's group loses its bridge to nobody: 0 and 350 stay)."""
    from jobs.lake.removals import tombstones

    when = datetime.now(UTC)
    by_id = {r["content_id"]: r for r in art.to_pylist()}
    sound = {r["content_id"]: r for r in audio.to_pylist()}

    def flipped(cid: str) -> str:
        return f"{int(by_id[cid]['phash'], 16) ^ (1 << int(rng.integers(64))):016x}"

    new_art = {
        "track:0400": (flipped("track:0005"), by_id["track:0005"]["colour_layout"]),
        "track:0402": (flipped("track:0010"), by_id["track:0010"]["colour_layout"]),
    }
    fresh = rng.standard_normal(128).astype(np.float32)
    new_audio = {
        "track:0401": np.asarray(sound["track:0100"]["fingerprint"], np.float32) + 0.01,
        "track:0402": np.asarray(sound["track:0040"]["fingerprint"], np.float32) + 0.01,
        "track:0330": fresh / np.linalg.norm(fresh).astype(np.float32),
    }
    art_rows = pa.table(
        {
            **standard_columns(list(new_art), when, "day"),
            "phash": [h for h, _ in new_art.values()],
            "colour_layout": [layout for _, layout in new_art.values()],
        }
    ).cast(get_signal("artwork_hash@1").arrow_schema())
    audio_rows = pa.table(
        {**standard_columns(list(new_audio), when, "day"), "fingerprint": list(new_audio.values())}
    ).cast(get_signal("audio_fingerprint@1").arrow_schema())
    gone = pa.array(["track:0300"])
    return tuple(  # type: ignore[return-value]
        pa.concat_tables(
            [
                rows,
                tombstones(gone, s.arrow_schema(), run_id="day", event_timestamp=when, version="1"),
            ]
        )
        for rows, s in (
            (art_rows, get_signal("artwork_hash@1")),
            (audio_rows, get_signal("audio_fingerprint@1")),
        )
    )
