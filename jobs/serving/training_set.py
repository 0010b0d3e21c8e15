"""Training sets: a point-in-time join of entity rows against the signal tables' Delta history.

    signals training-set labels.parquet --service recommendations --out train.parquet

Each entity row (`content_id`, `event_timestamp`, any label columns) gets the values that serving
returned at that moment: the newest row at or before the timestamp, within the signal's TTL.
Feast's `get_historical_features` does the join; the offline store reads the tables through their
Delta log, so compaction and vacuum never change a training set.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from features import JOIN_KEY, get_signal
from features.registry import service_signals
from jobs.serving.errors import EntityFileError, FeatureRequestError
from jobs.serving.store import apply_repo
from jobs.settings import Settings

TIME_COLUMN = "event_timestamp"


@dataclass(frozen=True)
class TrainingSet:
    """Where a training set was written and what it holds."""

    path: Path
    rows: int
    features: list[str]  # full names, `view__feature`
    filled: dict[str, int]  # feature → rows with a value at their timestamp


def read_entities(path: Path) -> pd.DataFrame:
    """Entity rows from Parquet or CSV, with `event_timestamp` as UTC; a clear error otherwise."""
    if not path.exists():
        raise EntityFileError(f"no entity file at {path}")
    try:
        frame = pd.read_csv(path) if path.suffix == ".csv" else pd.read_parquet(path)
    except Exception as exc:  # pyarrow / pandas parse errors: the file is not what it says
        raise EntityFileError(f"cannot read {path} as {path.suffix or 'parquet'}: {exc}") from exc
    missing = [c for c in (JOIN_KEY, TIME_COLUMN) if c not in frame.columns]
    if missing:
        raise EntityFileError(
            f"{path} lacks {', '.join(missing)}",
            hint=f"an entity file has one row per example: {JOIN_KEY}, {TIME_COLUMN}, any labels",
        )
    try:
        frame[TIME_COLUMN] = pd.to_datetime(frame[TIME_COLUMN], utc=True)
    except (ValueError, TypeError) as exc:
        raise EntityFileError(f"{path}: {TIME_COLUMN} is not a timestamp: {exc}") from exc
    frame[JOIN_KEY] = frame[JOIN_KEY].astype(str)
    return frame


def build_training_set(
    settings: Settings,
    entities: Path,
    out: Path,
    *,
    service: str | None = None,
    signals: Sequence[str] | None = None,
) -> TrainingSet:
    """Join `entities` point-in-time against a feature service's (or some signals') history and
    write Parquet; the rows come back in the entity file's order."""
    if (service is None) == (not signals):
        raise FeatureRequestError(
            "name a feature service (--service) or signals (--signal), not both"
        )
    chosen = service_signals(service) if service else tuple(get_signal(s) for s in signals or ())
    frame = read_entities(entities)
    order = "__entity_row__"
    frame[order] = range(len(frame))
    store = apply_repo(settings)
    features = (
        store.get_feature_service(service)
        if service
        else [f"{s.feature_view_name}:{f}" for s in chosen for f in s.features]
    )
    job = store.get_historical_features(entity_df=frame, features=features, full_feature_names=True)
    table = job.to_arrow().sort_by(order).drop_columns([order])
    out.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, out)
    names = [f"{s.feature_view_name}__{f}" for s in chosen for f in s.features]
    filled = {
        n: table.num_rows - table.column(n).null_count for n in names if n in table.schema.names
    }
    return TrainingSet(out, table.num_rows, names, filled)
