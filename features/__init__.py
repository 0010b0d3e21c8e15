"""What each signal is: declarations, contracts and the catalog-snapshot contract.

- `declarations/` — the declared signals, one module per modality; `registry` finds them all;
- `signal`, `types`, `standard`, `labels` — the `Signal` declaration, its feature types, the
  columns every row carries, the label sets contracts admit;
- `catalog`, `validation` — the catalog-snapshot contract, and checking rows against a contract;
- `contract_doc`, `contract_export`, `review` — contracts as documents, exported, and compared;
- `profile`, `annotation` — value profiles and drift; which answers people review;
- `errors` — the project's error hierarchy (`SignalsError`, `retryable`).

Imports pandera and pyarrow only — never ray, feast, torch, deltalake, `extractors` or `jobs`.
"""

from features.catalog import CATALOG_COLUMNS, CATALOG_SCHEMA, CONTENT_TYPES, check_snapshot_schema
from features.errors import SchemaMismatchError, SignalsError, UnknownSignalError
from features.registry import all_signals, consumer_groups, get_signal
from features.signal import Searchable, Signal
from features.standard import (
    ENTITY_NAME,
    JOIN_KEY,
    QUARANTINE_SCHEMA,
    STANDARD_COLUMNS,
    STANDARD_FIELDS,
)
from features.types import Bool, Embedding, FeatureType, Float, Int, String

__all__ = [
    "CATALOG_COLUMNS",
    "CATALOG_SCHEMA",
    "CONTENT_TYPES",
    "ENTITY_NAME",
    "JOIN_KEY",
    "QUARANTINE_SCHEMA",
    "STANDARD_COLUMNS",
    "STANDARD_FIELDS",
    "Bool",
    "Embedding",
    "FeatureType",
    "Float",
    "Int",
    "SchemaMismatchError",
    "Searchable",
    "Signal",
    "SignalsError",
    "String",
    "UnknownSignalError",
    "all_signals",
    "check_snapshot_schema",
    "consumer_groups",
    "get_signal",
]
