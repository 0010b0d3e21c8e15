"""The declaration layer: what a Signal derives, and what its contracts accept and refuse."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pytest

from features import (
    CATALOG_SCHEMA,
    STANDARD_COLUMNS,
    Embedding,
    Float,
    SchemaMismatchError,
    Signal,
    UnknownSignalError,
    all_signals,
    check_snapshot_schema,
    consumer_groups,
    get_signal,
)
from features.catalog import schema_problems
from features.validation import split_valid

NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


def _unit(dim: int, seed: int) -> list[float]:
    v = np.random.default_rng(seed).normal(size=dim).astype(np.float32)
    return (v / np.linalg.norm(v)).tolist()


def _rows(signal: Signal, embeddings: list[object]) -> pa.Table:
    n = len(embeddings)
    return pa.Table.from_pydict(
        {
            "content_id": [f"track:{i:06d}" for i in range(n)],
            "event_timestamp": [NOW] * n,
            "created_timestamp": [NOW] * n,
            "input_updated_at": [NOW] * n,
            "input_hash": ["h"] * n,
            "extractor_version": ["1+abc"] * n,
            "run_id": ["run-1"] * n,
            "embedding": embeddings,
        },
        schema=signal.arrow_schema(),
    )


def test_a_declaration_derives_its_table_name_feature_view_and_schema() -> None:
    signal = get_signal("text_embedding@1")
    assert signal.storage_name == "text_embedding/v1"
    assert signal.feature_view_name == "text_embedding_v1"
    assert signal.arrow_schema().names == [*STANDARD_COLUMNS, "embedding"]
    assert signal.arrow_schema().field("embedding").type == pa.list_(pa.float32())
    assert signal.feature_summary() == "1 (384-d float32, L2-normalised)"


def test_signals_are_discovered_from_the_features_package_and_grouped_by_consumer() -> None:
    refs = [s.ref for s in all_signals()]
    assert "text_embedding@1" in refs
    assert get_signal("text_embedding") is get_signal("text_embedding@2")  # the newest
    assert get_signal("text_embedding@2") in consumer_groups()["search"]
    assert get_signal("text_embedding@1") not in consumer_groups()["search"]


def test_an_unknown_signal_is_a_clear_error_that_lists_the_known_ones() -> None:
    with pytest.raises(UnknownSignalError) as info:
        get_signal("text_embeding@1")
    assert "text_embedding@1" in info.value.render()


def test_embedding_contract_rejects_wrong_dimension_non_unit_norm_and_nan() -> None:
    signal = get_signal("text_embedding@1")
    bad_nan = _unit(384, 3)
    bad_nan[5] = float("nan")
    table = _rows(signal, [_unit(384, 1), _unit(383, 2), [1.0] * 384, bad_nan, _unit(384, 4)])
    good, reasons = split_valid(table, signal.contract())
    assert good.column("content_id").to_pylist() == ["track:000000", "track:000004"]
    assert set(reasons) == {1, 2, 3}
    assert all("embedding_dim_384_unit_norm" in r for r in reasons.values())


def test_float_range_is_enforced_and_a_loosened_declaration_accepts_more() -> None:
    strict = Signal(
        name="loudness",
        version=1,
        description="d",
        owner="o",
        extractor="m:C",
        features={"lufs": Float(ge=-70, le=0)},
    )
    table = pa.Table.from_pydict(
        {
            **_rows(get_signal("text_embedding@1"), [None, None]).drop(["embedding"]).to_pydict(),
            "lufs": pa.array([-12.0, 3.0], pa.float32()),
        },
        schema=strict.arrow_schema(),
    )
    good, reasons = split_valid(table, strict.contract())
    assert good.num_rows == 1
    assert "less_than_or_equal_to(0)" in reasons[1]


def test_a_declaration_may_not_shadow_standard_columns() -> None:
    with pytest.raises(ValueError, match="run_id"):
        Signal(
            name="x",
            version=1,
            description="d",
            owner="o",
            extractor="m:C",
            features={"run_id": Embedding(dim=2)},
        )


def test_catalog_schema_check_names_missing_and_mistyped_columns() -> None:
    schema = CATALOG_SCHEMA.remove(CATALOG_SCHEMA.get_field_index("title"))
    schema = schema.set(schema.get_field_index("updated_at"), pa.field("updated_at", pa.string()))
    problems = schema_problems(schema)
    assert "column 'title': missing (expected string)" in problems
    assert "column 'updated_at': expected timestamp[us, tz=UTC], found string" in problems
    with pytest.raises(SchemaMismatchError) as info:
        check_snapshot_schema(schema)
    assert "nothing was written" in info.value.render()


def test_catalog_schema_check_only_asks_for_what_the_job_reads() -> None:
    schema = CATALOG_SCHEMA.remove(CATALOG_SCHEMA.get_field_index("audio_uri"))
    assert schema_problems(schema, ("title", "description")) == []
    assert schema_problems(schema, ("audio_uri",)) == [
        "column 'audio_uri': missing (expected string)"
    ]
