"""The incremental plan on one block: which items are computed, skipped and tombstoned.

Pure pyarrow (`jobs.pipeline.plan.plan_batch`), no Ray: the hash shuffle that feeds it is tested end to
end in test_incremental and test_removals_and_lineage.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pyarrow as pa

from features.standard import REMOVED_HASH
from jobs.pipeline.plan import GONE, KIND, OUTCOME_SCHEMA, SNAPSHOT, plan_batch

T0 = datetime(2026, 11, 1, tzinfo=UTC)
SCHEMA = pa.schema(
    [pa.field("content_id", pa.string()), pa.field("title", pa.string())]
    + [f for f in OUTCOME_SCHEMA if f.name != "content_id"]
)


def _snapshot(item: str, input_hash: str) -> dict[str, object]:
    return {"content_id": item, "title": f"title of {item}", "input_hash": input_hash,
            KIND: SNAPSHOT}  # fmt: skip


def _outcome(item: str, input_hash: str, day: int, kind: str = "value") -> dict[str, object]:
    at = T0 + timedelta(days=day)
    return {"content_id": item, "input_hash": input_hash, "_at": at, "_created": at, KIND: kind}


def _plan(rows: list[dict[str, object]], *, full: bool = False) -> dict[str, set[str]]:
    out = plan_batch(pa.Table.from_pylist(rows, SCHEMA), full=full)
    assert out.schema == SCHEMA
    kinds = out.column(KIND).to_pylist()
    ids = out.column("content_id").to_pylist()
    return {
        "compute": {i for i, k in zip(ids, kinds, strict=True) if k == SNAPSHOT},
        "tombstone": {i for i, k in zip(ids, kinds, strict=True) if k == GONE},
    }


def test_only_an_input_equal_to_the_newest_outcome_is_skipped() -> None:
    plan = _plan(
        [
            _snapshot("same", "a"), _outcome("same", "a", 1),
            _snapshot("edited", "b"), _outcome("edited", "a", 1),
            _snapshot("new", "a"),
            # reverted A → B → A: A is stored, but B is what is served
            _snapshot("reverted", "a"), _outcome("reverted", "a", 1), _outcome("reverted", "b", 2),
            # removed, then back with the same input: its newest outcome is the tombstone
            _snapshot("back", "a"), _outcome("back", "a", 1), _outcome("back", REMOVED_HASH, 2,
                                                                        "tombstone"),
            # quarantined by a trusted run with this very input: the same input fails the same way
            _snapshot("bad", "q"), _outcome("bad", "a", 1), _outcome("bad", "q", 2, "quarantined"),
            # ... but not when a newer value was computed from another input since
            _snapshot("healed", "q"), _outcome("healed", "q", 1, "quarantined"),
            _outcome("healed", "b", 2),
        ]
    )  # fmt: skip
    assert plan["compute"] == {"edited", "new", "reverted", "back", "healed"}
    assert plan["tombstone"] == set()


def test_live_items_missing_from_the_snapshot_get_one_tombstone() -> None:
    plan = _plan(
        [
            _snapshot("kept", "a"), _outcome("kept", "a", 1),
            _outcome("gone", "a", 1),
            _outcome("gone-twice", "a", 1), _outcome("gone-twice", "a", 1),
            _outcome("already", "a", 1), _outcome("already", REMOVED_HASH, 2, "tombstone"),
            # its value was replaced by a quarantine since: still served, so still tombstoned
            _outcome("stale", "a", 1), _outcome("stale", "b", 2, "quarantined"),
            _outcome("never-served", "q", 1, "quarantined"),
        ]
    )  # fmt: skip
    assert plan["compute"] == set()
    assert sorted(plan["tombstone"]) == ["gone", "gone-twice", "stale"]


def test_full_computes_every_snapshot_row_and_still_finds_removals() -> None:
    plan = _plan(
        [_snapshot("same", "a"), _outcome("same", "a", 1), _outcome("gone", "a", 1)], full=True
    )
    assert plan == {"compute": {"same"}, "tombstone": {"gone"}}
