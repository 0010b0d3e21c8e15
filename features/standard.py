"""The columns every signal row and every quarantine row carries (DESIGN.md, "Words" and "Time")."""

from __future__ import annotations

import pandas as pd
import pandera.pandas as pa_schema
import pyarrow as pa

TIMESTAMP = pa.timestamp("us", tz="UTC")

ENTITY_NAME = "content"
JOIN_KEY = "content_id"

# Lineage and time columns, in the order they are stored.
STANDARD_FIELDS: tuple[pa.Field, ...] = (
    pa.field("content_id", pa.string(), nullable=False),
    pa.field("event_timestamp", TIMESTAMP, nullable=False),
    pa.field("created_timestamp", TIMESTAMP, nullable=False),
    pa.field("input_updated_at", TIMESTAMP, nullable=True),
    pa.field("input_hash", pa.string(), nullable=False),
    pa.field("extractor_version", pa.string(), nullable=False),
    pa.field("run_id", pa.string(), nullable=False),
)
STANDARD_COLUMNS: tuple[str, ...] = tuple(f.name for f in STANDARD_FIELDS)

# The `input_hash` of a tombstone: a row, with every feature null, that records that the item had
# left the catalog when the run read it. It ends the item's served value (the online store drops
# it at the next materialization) and keeps its history for training sets. No real input hashes
# to it, so a returning item is computed again.
REMOVED_HASH = "removed"

# Where a served value's event time sits beside its features, in what `signals get` returns.
SERVED_AT = "_event_timestamp"


def standard_contract_columns() -> dict[str, pa_schema.Column]:
    """Pandera columns for the standard fields: keys and lineage are never null."""
    ts = pd.DatetimeTZDtype(unit="us", tz="UTC")
    return {
        "content_id": pa_schema.Column(str, pa_schema.Check.str_length(min_value=1)),
        "event_timestamp": pa_schema.Column(ts),
        "created_timestamp": pa_schema.Column(ts),
        "input_updated_at": pa_schema.Column(ts, nullable=True),
        "input_hash": pa_schema.Column(str, pa_schema.Check.str_length(min_value=1)),
        "extractor_version": pa_schema.Column(str, pa_schema.Check.str_length(min_value=1)),
        "run_id": pa_schema.Column(str, pa_schema.Check.str_length(min_value=1)),
    }


# Where a row that could not become a signal row goes, with the reason a person can act on.
QUARANTINE_SCHEMA = pa.schema(
    [
        pa.field("content_id", pa.string(), nullable=True),
        pa.field("signal", pa.string(), nullable=False),
        pa.field("stage", pa.string(), nullable=False),
        pa.field("reason", pa.string(), nullable=False),
        pa.field("input_hash", pa.string(), nullable=True),
        pa.field("input_updated_at", TIMESTAMP, nullable=True),
        pa.field("extractor_version", pa.string(), nullable=False),
        pa.field("run_id", pa.string(), nullable=False),
        pa.field("quarantined_at", TIMESTAMP, nullable=False),
    ]
)

# Stages at which a row can be quarantined.
STAGE_CATALOG = "catalog_contract"
STAGE_EXTRACT = "extract"
STAGE_SIGNAL = "signal_contract"
