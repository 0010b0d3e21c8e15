"""What each signal is: declarations, contracts and the catalog-snapshot contract.

Imports pandera and pyarrow only — never ray, feast, torch or deltalake.
"""

from features.catalog import CATALOG_COLUMNS, CATALOG_SCHEMA, CONTENT_TYPES, check_snapshot_schema
from features.errors import SchemaMismatchError, SignalsError, UnknownSignalError
from features.registry import all_signals, consumer_groups, get_signal
from features.signal import Signal
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
    "Signal",
    "SignalsError",
    "String",
    "UnknownSignalError",
    "all_signals",
    "check_snapshot_schema",
    "consumer_groups",
    "get_signal",
]
