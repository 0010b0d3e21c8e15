"""Test helper: check an extractor's output against its signal's contract, as the extract job does."""

from __future__ import annotations

from datetime import UTC, datetime

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
