"""Contract exports agree with the Pandera contract every write obeys."""

from __future__ import annotations

from datetime import UTC, datetime

import jsonschema
import pyarrow as pa
import pytest
import yaml

from features import get_signal
from features.contract_doc import contract_document
from features.contract_export import ODCS_API_VERSION, json_schema, odcs
from features.validation import split_valid

LOUDNESS = get_signal("audio_loudness@1")
NOW = datetime(2026, 11, 26, tzinfo=UTC)


def _row(**features: object) -> dict[str, object]:
    return {
        "content_id": "track:000001",
        "event_timestamp": NOW,
        "created_timestamp": NOW,
        "input_updated_at": None,
        "input_hash": "h",
        "extractor_version": "1",
        "run_id": "r",
        "integrated_lufs": -14.0,
        "loudness_range_lu": 6.5,
        "true_peak_dbtp": -1.0,
        **features,
    }


def _json(row: dict[str, object]) -> dict[str, object]:
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in row.items()}


@pytest.mark.parametrize(
    ("features", "valid"),
    [
        ({}, True),
        ({"integrated_lufs": -71.0}, False),  # under ge=-70
        ({"true_peak_dbtp": 21.0}, False),  # over le=20
        ({"integrated_lufs": None}, False),  # required
    ],
)
def test_json_schema_accepts_and_rejects_the_rows_the_pandera_contract_does(
    features: dict[str, object], valid: bool
) -> None:
    row = _row(**features)
    table = pa.Table.from_pylist([row], schema=LOUDNESS.arrow_schema())
    passed, _ = split_valid(table, LOUDNESS.contract())
    assert (passed.num_rows == 1) is valid
    validator = jsonschema.Draft202012Validator(json_schema(contract_document(LOUDNESS)))
    assert validator.is_valid(_json(row)) is valid


def test_json_schema_of_an_embedding_fixes_its_dimension() -> None:
    schema = json_schema(contract_document(get_signal("text_embedding@1")))
    embedding = schema["properties"]["embedding"]
    assert (embedding["type"], embedding["minItems"], embedding["maxItems"]) == ("array", 384, 384)
    assert "embedding" in schema["required"] and "input_updated_at" not in schema["required"]


def test_odcs_document_names_the_table_key_types_bounds_and_owner() -> None:
    document = yaml.safe_load(yaml.safe_dump(odcs(contract_document(LOUDNESS, "1"))))
    assert (document["apiVersion"], document["kind"]) == (ODCS_API_VERSION, "DataContract")
    assert (document["id"], document["version"]) == ("content-signals.audio_loudness.v1", "1.0.0")
    (table,) = document["schema"]
    assert table["physicalName"] == "signals/audio_loudness/v1"
    props = {p["name"]: p for p in table["properties"]}
    assert props["content_id"]["primaryKey"] is True
    assert props["input_updated_at"]["required"] is False
    lufs = props["integrated_lufs"]
    assert (lufs["logicalType"], lufs["required"]) == ("number", True)
    assert lufs["logicalTypeOptions"] == {"minimum": -70, "maximum": 10}
    custom = {p["property"]: p["value"] for p in document["customProperties"]}
    assert custom["owner"] == "content-understanding" and custom["extractorVersion"] == "1"
    assert custom["consumers"] == ["ads", "catalog-quality", "playback"]
