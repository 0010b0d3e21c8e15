"""Human review of model answers: what is queued and why, `signals annotate` in the terminal,
the gold set it builds, and `signals evaluate --gold` judging signals by it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from deltalake import DeltaTable, write_deltalake
from signal_rows import history
from typer.testing import CliRunner

from features import get_signal
from features.labels import taxonomy_labels
from jobs.cli import app
from jobs.quality.agreement import agreement_with_gold
from jobs.quality.annotation import enqueue, gold, open_items
from jobs.sample import write_sample_catalog
from jobs.settings import Settings

LLM = get_signal("llm_metadata@1")
TAGS = get_signal("text_tags@2")
MOOD, TOPIC = taxonomy_labels()["mood"][0], taxonomy_labels()["topic"][0]
FLAGS = {f"warning_{w}": False for w in ("violence", "strong_language", "substance_use",
                                          "sexual_content")}  # fmt: skip


def answer(genre: str | None, confidence: float) -> dict[str, object]:
    return {"genre": genre, "mood": MOOD, "topic": TOPIC, **FLAGS, "summary": "One line.",
            "confidence": confidence}  # fmt: skip


def write_run(settings: Settings, run_id: str, rows: list[tuple]) -> list[str]:
    """Append one run's answers; the data files it added (what `commit_run` hands `enqueue`)."""
    uri = settings.signal_uri(LLM.storage_name)

    def files() -> set[str]:
        table = DeltaTable(uri)
        return set(table.get_add_actions(flatten=True).column("path").to_pylist())

    before = files() if DeltaTable.is_deltatable(uri) else set()
    write_deltalake(uri, history(LLM.ref, rows, run_id), mode="append")
    return sorted(files() - before)


@pytest.fixture
def reviewed(settings: Settings) -> tuple[Settings, list[str], list[str]]:
    """Four answers of one run: sure and agreeing, unsure, sure but disagreeing with the
    zero-shot tags, and sure with nothing to compare against; with the run's files."""
    catalog = write_sample_catalog(
        settings.default_snapshot_uri, settings.media_dir, 4, with_media=False
    )
    ids = DeltaTable(catalog.snapshot_uri).to_pyarrow_table()["content_id"].to_pylist()
    now = datetime.now(UTC)
    llm = [(ids[0], now, answer("jazz", 0.9)), (ids[1], now, answer("jazz", 0.4)),
           (ids[2], now, answer("rock", 0.9)), (ids[3], now, answer("pop", 0.95))]  # fmt: skip
    files = write_run(settings, "run-1", llm)
    tags = {"mood": MOOD, "mood_score": 0.5, "topic": TOPIC, "topic_score": 0.5,
            "genre_score": 0.5}  # fmt: skip
    zero_shot = [
        (ids[0], now, {**tags, "genre": "jazz"}),
        (ids[2], now, {**tags, "genre": "blues"}),
    ]
    write_deltalake(settings.signal_uri(TAGS.storage_name), history(TAGS.ref, zero_shot, "tags"))
    return settings, ids, files


def test_unsure_and_disagreeing_answers_are_queued_with_their_reason(
    reviewed: tuple[Settings, list[str], list[str]],
) -> None:
    settings, ids, files = reviewed
    assert enqueue(settings, LLM, "run-1", files) == 2
    queued = {i.content_id: i for i in open_items(settings)}
    assert set(queued) == {ids[1], ids[2]}
    assert queued[ids[1]].reason == "confidence 0.40 < 0.6"
    assert queued[ids[2]].reason == "genre: rock here, blues in text_tags@2"
    assert queued[ids[2]].compared["genre"] == "blues"
    assert enqueue(settings, LLM, "another-run", files) == 0  # only that run's rows
    assert enqueue(settings, LLM, "run-1", files) == 0  # a run is queued once
    assert len(open_items(settings)) == 2


def test_annotate_builds_the_gold_set_and_evaluate_judges_signals_by_it(
    reviewed: tuple[Settings, list[str], list[str]],
) -> None:
    settings, ids, files = reviewed
    enqueue(settings, LLM, "run-1", files)
    runner = CliRunner()
    # The unsure item: accept. The disagreeing one: correct genre to blues, keep the mood, and
    # say the item has no topic.
    answers = {ids[1]: "a\n", ids[2]: "c\nblues\n\n-\n"}  # shown by queue time, then id
    typed = "".join(answers[i] for i in sorted(answers))
    done = runner.invoke(app, ["annotate", "--annotator", "ana"], input=typed)
    assert done.exit_code == 0, done.output
    summary = done.output.splitlines()[-1]
    assert "1 accepted" in summary and "1 corrected" in summary and "0 still open" in summary
    assert "genre: rock here, blues in text_tags@2" in done.output  # why it is asked
    labels = {(r["content_id"], r["field"]): r for r in gold(settings).to_pylist()}
    assert labels[(ids[1], "genre")]["label"] == "jazz"
    assert labels[(ids[1], "genre")]["decision"] == "accepted"
    assert labels[(ids[2], "genre")]["label"] == "blues"
    assert labels[(ids[2], "mood")]["label"] == MOOD
    assert labels[(ids[2], "topic")]["label"] is None
    assert labels[(ids[2], "topic")]["annotator"] == "ana"
    assert open_items(settings) == []
    # A later run of the same items does not ask again: they are in the gold set.
    later = datetime.now(UTC)
    again = write_run(settings, "run-2", [(ids[1], later, answer("jazz", 0.3)),
                                          (ids[2], later, answer("rock", 0.9))])  # fmt: skip
    assert enqueue(settings, LLM, "run-2", again) == 0

    scores = {(a.signal, a.field): a for s in (LLM, TAGS) for a in agreement_with_gold(settings, s)}
    genre = scores[(LLM.ref, "genre")]
    assert (genre.items, genre.agreement, genre.precision, genre.recall) == (2, 0.5, 0.5, 0.5)
    topic = scores[(LLM.ref, "topic")]  # said a topic twice, right once (the other has none)
    assert (topic.agreement, topic.precision, topic.recall) == (0.5, 0.5, 1.0)
    zero_shot = scores[(TAGS.ref, "genre")]  # the tags only know the disagreeing item: right
    assert (zero_shot.items, zero_shot.agreement) == (1, 1.0)

    report = settings.lake_path("reports", "gold.md")
    shown = runner.invoke(app, ["evaluate", "--gold", "--out", report])
    assert shown.exit_code == 0, shown.output
    assert "llm_metadata@1" in shown.output and "text_tags@2" in shown.output
    with open(report) as handle:
        assert "| llm_metadata@1 | genre | 2 | 0.50 | 0.50 | 0.50 |" in handle.read()


def test_evaluate_gold_without_decisions_says_what_to_do(settings: Settings) -> None:
    result = CliRunner().invoke(app, ["evaluate", "--gold"])
    assert result.exit_code == 1
    assert "the gold set is empty" in result.output and "signals annotate" in result.output
