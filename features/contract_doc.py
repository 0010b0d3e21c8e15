"""A signal's contract as plain data: what review compares, and what the exports are made from.

Why a document rather than comparing Pandera objects: review must compare the catalog at two git
revisions, which live in two different processes (or two exported files). A JSON-stable dict of
exactly what the contract promises — entity, key, columns with their types, nullability and
checks, the extractor and its code version, and the metadata — crosses that boundary intact.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

from features.signal import Signal
from features.standard import ENTITY_NAME, JOIN_KEY, STANDARD_FIELDS
from features.types import FeatureType

FORMAT = "content-signals/contracts@1"
# FeatureType fields that are not checks: they have their own place in a column's document.
_NOT_CHECKS = {"nullable", "description", "kind"}


def column_document(feature: FeatureType) -> dict[str, Any]:
    """One feature column: Arrow type, nullability, description and its checks' parameters."""
    checks = {
        f.name: _plain(getattr(feature, f.name))
        for f in dataclasses.fields(feature)
        if f.name not in _NOT_CHECKS and getattr(feature, f.name) is not None
    }
    return {
        "kind": feature.kind,
        "arrow_type": str(feature.arrow_type()),
        "nullable": feature.nullable,
        "description": feature.description,
        "checks": checks,
    }


def _plain(value: object) -> object:
    return list(value) if isinstance(value, tuple) else value


def contract_document(signal: Signal, extractor_version: str | None = None) -> dict[str, Any]:
    """The whole contract of one signal version.

    `extractor_version` is the extractor's code version (`Extractor.version`); `features` cannot
    import extractors, so whoever can (the `jobs` CLI) passes it in.
    """
    return {
        "name": signal.name,
        "version": signal.version,
        "entity": ENTITY_NAME,
        "key": [JOIN_KEY],
        "description": signal.description,
        "owner": signal.owner,
        "tags": dict(sorted(signal.tags.items())),
        "consumers": sorted(signal.consumers),
        "ttl_seconds": int(signal.ttl.total_seconds()),
        "freshness_seconds": int(signal.freshness.total_seconds()),
        "extractor": signal.extractor,
        "extractor_version": extractor_version,
        "standard_columns": {
            f.name: {"arrow_type": str(f.type), "nullable": f.nullable} for f in STANDARD_FIELDS
        },
        "features": {name: column_document(t) for name, t in signal.features.items()},
        "searchable": (
            {"feature": signal.searchable.feature, "metric": signal.searchable.metric}
            if signal.searchable
            else None
        ),
    }


def catalog_document(
    signals: Iterable[Signal], extractor_versions: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Every declared signal's contract, keyed by `name@version`: one side of a review."""
    versions = extractor_versions or {}
    return {
        "format": FORMAT,
        "signals": {
            s.ref: contract_document(s, versions.get(s.extractor))
            for s in sorted(signals, key=lambda s: (s.name, s.version))
        },
    }
