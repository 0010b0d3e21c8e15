"""Steps that need one run's rows or a few items read only those: the run's own files, and the
files whose statistics may hold the items asked. Each test deletes from disk a file the
snapshot still names: a whole-table read fails on it, the narrow read never opens it."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from deltalake import DeltaTable, write_deltalake
from signal_rows import history

from features import CATALOG_SCHEMA, get_signal
from features.labels import taxonomy_labels
from features.signal import Signal
from jobs.lake import tables
from jobs.lake.parts import commit_parts, write_part
from jobs.lake.tables import latest_per_key, latest_signal_values, read_table
from jobs.quality.agreement import agreement_with_gold
from jobs.quality.annotation import GOLD_SCHEMA, catalog_texts, enqueue, gold_uri, open_items
from jobs.settings import Settings

LLM, TAGS = get_signal("llm_metadata@1"), get_signal("text_tags@2")
MOOD, TOPIC = taxonomy_labels()["mood"][0], taxonomy_labels()["topic"][0]
T0 = datetime(2026, 11, 1, tzinfo=UTC)
Rows = list[tuple[str, datetime, dict[str, object] | None]]


def commit(uri: str, signal: Signal, run_id: str, rows: Rows) -> str:
    """Commit one run's rows as the pipeline does (a part, one commit with the run id); its file."""
    part = write_part(uri, history(signal.ref, rows, run_id), run_id)
    commit_parts(uri, signal.arrow_schema(), [part], run_id)
    return part.path


def tags(genre: str) -> dict[str, object]:
    return {"genre": genre, "genre_score": 0.5, "mood": MOOD, "mood_score": 0.5, "topic": TOPIC,
            "topic_score": 0.5}  # fmt: skip


def answer(genre: str, confidence: float) -> dict[str, object]:
    flags = {f"warning_{w}": False for w in ("violence", "strong_language", "substance_use",
                                              "sexual_content")}  # fmt: skip
    return {"genre": genre, "mood": MOOD, "topic": TOPIC, **flags, "summary": "One line.",
            "confidence": confidence}  # fmt: skip


def files(uri: str) -> set[str]:
    """The data files of a table's current snapshot, from its log."""
    return set(DeltaTable(uri).get_add_actions(flatten=True).column("path").to_pylist())


def gone(uri: str, path: str) -> None:
    """Delete a data file the snapshot still names, so that any read that opens it fails."""
    os.remove(Path(uri) / path)


def test_enqueue_reads_only_the_runs_files_and_the_compared_files_that_may_hold_its_items(
    settings: Settings,
) -> None:
    answers = settings.signal_uri(LLM.storage_name)
    compared = settings.signal_uri(TAGS.storage_name)
    earlier = commit(answers, LLM, "run-a", [("episode:1", T0, answer("jazz", 0.1)),
                                             ("episode:2", T0, answer("jazz", 0.2))])  # fmt: skip
    later = T0 + timedelta(hours=1)
    ours = commit(answers, LLM, "run-b", [("track:1", later, answer("jazz", 0.4)),
                                          ("track:2", later, answer("rock", 0.9)),
                                          ("track:3", later, answer("jazz", 0.9))])  # fmt: skip
    commit(compared, TAGS, "tags-1", [("track:1", T0, tags("jazz")), ("track:2", T0, tags("rock")),
                                      ("track:3", T0, tags("jazz"))])  # fmt: skip
    commit(compared, TAGS, "tags-2", [("track:2", later, tags("blues"))])  # the newest, elsewhere
    others = commit(compared, TAGS, "tags-3", [("video:1", T0, tags("pop"))])
    gone(answers, earlier)
    gone(compared, others)
    with pytest.raises(OSError):
        read_table(answers)  # the whole table is no longer readable

    assert enqueue(settings, LLM, "run-b", [ours]) == 2
    queued = {i.content_id: i for i in open_items(settings)}
    assert queued["track:1"].reason == "confidence 0.40 < 0.6"
    assert queued["track:2"].reason == "genre: rock here, blues in text_tags@2"
    assert set(queued) == {"track:1", "track:2"}


@pytest.mark.parametrize("fold_rows", [tables.FOLD_ROWS, 1])
def test_newest_values_of_some_items_are_the_whole_tables_newest_restricted_to_them(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, fold_rows: int
) -> None:
    monkeypatch.setattr(tables, "FOLD_ROWS", fold_rows)  # 1: reduced after every batch
    uri = settings.signal_uri(TAGS.storage_name)
    hour = timedelta(hours=1)
    commit(uri, TAGS, "r1", [(f"track:{i}", T0, tags("jazz")) for i in range(6)])
    commit(uri, TAGS, "r2", [("track:1", T0 + hour, tags("rock")), ("track:4", T0 + hour, None)])
    # track:1's newest row is in r2's file, not in the later r3's; track:4's is a tombstone.
    commit(uri, TAGS, "r3", [("track:1", T0 - hour, tags("pop")),
                             ("track:3", T0 + hour, tags("soul"))])  # fmt: skip
    asked = ["track:1", "track:3", "track:4", "track:5", "track:9"]
    whole = latest_per_key(
        read_table(uri, columns=["content_id", "genre", "event_timestamp", "created_timestamp"]),
        order=("event_timestamp", "created_timestamp"),
    )
    expected = whole.filter(pc.is_in(whole["content_id"], pa.array(asked)))
    elsewhere = commit(uri, TAGS, "r4", [("video:1", T0 + hour, tags("pop"))])
    gone(uri, elsewhere)
    with pytest.raises(OSError):
        latest_signal_values(uri, TAGS.arrow_schema(), ["genre"])  # every item: opens r4's file

    narrow = latest_signal_values(uri, TAGS.arrow_schema(), ["genre"], content_ids=asked)
    assert narrow.sort_by("content_id").to_pylist() == (
        expected.select(["content_id", "genre"]).sort_by("content_id").to_pylist()
    )
    assert {r["content_id"]: r["genre"] for r in narrow.to_pylist()} == {
        "track:1": "rock", "track:3": "soul", "track:4": None, "track:5": "jazz",
    }  # fmt: skip
    assert latest_signal_values(uri, TAGS.arrow_schema(), ["genre"], content_ids=[]).num_rows == 0


def test_catalog_texts_and_gold_agreement_read_only_the_items_asked(settings: Settings) -> None:
    snapshot = settings.default_snapshot_uri
    for kind in ("episode", "track"):  # a file each: their content_id ranges do not overlap
        items = [{"content_id": f"{kind}:{i}", "content_type": kind, "title": f"{kind} {i}",
                  "updated_at": T0} for i in range(3)]  # fmt: skip
        write_deltalake(snapshot, pa.Table.from_pylist(items, schema=CATALOG_SCHEMA), mode="append")
        if kind == "episode":
            (episodes,) = files(snapshot)
    uri = settings.signal_uri(TAGS.storage_name)
    commit(uri, TAGS, "t1", [("track:0", T0, tags("jazz")), ("track:1", T0, tags("rock"))])
    others = commit(uri, TAGS, "t2", [("video:0", T0, tags("pop"))])
    decided = [{"content_id": "track:0", "field": "genre", "label": "jazz", "decision": "accepted",
                "signal": LLM.ref, "annotator": "ana", "decided_at": T0}]  # fmt: skip
    write_deltalake(gold_uri(settings), pa.Table.from_pylist(decided, schema=GOLD_SCHEMA))
    gone(snapshot, episodes)
    gone(uri, others)

    texts = catalog_texts(settings, ["track:1", "track:2"])
    assert {c: t["title"] for c, t in texts.items()} == {"track:1": "track 1", "track:2": "track 2"}
    (genre,) = [a for a in agreement_with_gold(settings, TAGS) if a.field == "genre"]
    assert (genre.items, genre.agreement) == (1, 1.0)
    with pytest.raises(OSError):
        read_table(snapshot)
