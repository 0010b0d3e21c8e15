"""The actor body of the extract pipeline: planned rows in, Parquet parts and their metadata out.

Each actor loads the extractor once, checks catalog rows against the catalog contract, computes
features, validates them against the signal's contract and writes one Parquet part for the good
rows (with tombstones for items that left) and one for the quarantined ones. What goes back to
the driver is one small row of counts and part metadata per batch (`part_meta`).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from extractors.base import ERROR_COLUMN
from extractors.device import pick_device, set_cpu_threads
from features import get_signal
from features.catalog import CATALOG_CONTRACT
from features.signal import Signal
from features.standard import (
    QUARANTINE_SCHEMA,
    STAGE_CATALOG,
    STAGE_EXTRACT,
    STAGE_SIGNAL,
    TIMESTAMP,
)
from features.validation import split_valid
from jobs.lake.parts import Part, write_part
from jobs.lake.removals import tombstones
from jobs.pipeline.extractors import extractor_class
from jobs.pipeline.plan import GONE, INPUT_HASH, KIND, PLAN_COLUMNS
from jobs.serving.llm_tools import LLMTools
from jobs.settings import Settings
from jobs.storage import configure_fsspec

_LOCATION = re.compile(r"(?:[a-z][a-z0-9+.-]*://|/)\S+")


def _reason_key(stage: str, reason: str) -> str:
    """A reason without the row's own value or file, so that the run summary counts kinds."""
    return f"{stage}: {_LOCATION.sub('<uri>', reason.split(' (value')[0])}"


def _plain_strings(batch: pa.Table) -> pa.Table:
    """Large strings (what Ray Data's join hands back) as the plain strings extractors expect."""
    if not any(pa.types.is_large_string(f.type) for f in batch.schema):
        return batch
    fields = [
        f.with_type(pa.string()) if pa.types.is_large_string(f.type) else f for f in batch.schema
    ]
    return batch.cast(pa.schema(fields))


class ExtractBatches:
    """The actor body of the pipeline; one instance per actor, so the model loads once."""

    def __init__(
        self,
        signal_ref: str,
        run_id: str,
        event_timestamp: datetime,
        signal_uri: str,
        quarantine_uri: str,
        storage_options: dict[str, str],
        device: str | None,
        threads: int | None,
        expected_version: str | None = None,
        options: dict[str, Any] | None = None,
        settings: Settings | None = None,
    ) -> None:
        set_cpu_threads(threads)
        configure_fsspec(storage_options)
        self.signal: Signal = get_signal(signal_ref)
        extractor_cls = extractor_class(self.signal)
        self.extractor = extractor_cls(device=pick_device(device))
        self.extractor.configure(options or {})
        if self.extractor.tools_wanted and settings is not None:
            tools = LLMTools(settings, asking=self.signal.name)
            self.extractor.bind_tools(tools.tools(self.extractor.tools_wanted))
        self.version = self.extractor.full_version
        if expected_version is not None and self.version != expected_version:
            # Rows were hashed for another version: a node with other code or weights.
            raise RuntimeError(
                f"{self.signal.extractor} is {self.version} on this node but the run hashed "
                f"inputs for {expected_version}: every node must run the same image"
            )
        self.contract = self.signal.contract()
        self.schema = self.signal.arrow_schema()
        self.run_id = run_id
        self.event_timestamp = event_timestamp
        self.signal_uri = signal_uri
        self.quarantine_uri = quarantine_uri
        self.storage_options = storage_options

    def _quarantine_rows(
        self, batch: pa.Table, reasons: dict[int, str], stage: str, hashes: list[str] | None
    ) -> list[dict[str, object]]:
        ids = batch.column("content_id").to_pylist()
        updated_column = "updated_at" if "updated_at" in batch.column_names else "input_updated_at"
        updated = batch.column(updated_column).to_pylist()
        now = datetime.now(UTC)
        return [
            {
                "content_id": ids[i],
                "signal": self.signal.ref,
                "stage": stage,
                "reason": reason,
                "input_hash": hashes[i] if hashes else None,
                "input_updated_at": updated[i],
                "extractor_version": self.version,
                "run_id": self.run_id,
                "quarantined_at": now,
            }
            for i, reason in reasons.items()
        ]

    def _applicable(self, batch: pa.Table) -> tuple[pa.Table, int]:
        """Rows the signal applies to (its required inputs present) and how many it does not."""
        required = type(self.extractor).required
        if not required or batch.num_rows == 0:
            return batch, 0
        mask = pc.is_valid(batch.column(required[0]))
        for column in required[1:]:
            mask = pc.and_(mask, pc.is_valid(batch.column(column)))
        kept = batch.filter(mask)
        return kept, batch.num_rows - kept.num_rows

    def _extract(self, batch: pa.Table) -> pa.Table:
        if batch.num_rows == 0:  # a batch of removals only
            return self._no_features(batch, [])
        try:
            out = self.extractor.extract(batch)
        except Exception as exc:  # an extractor must not raise; if it does, no row is lost
            reason = f"extractor failed on the batch: {type(exc).__name__}: {exc}"
            return self._no_features(batch, [reason] * batch.num_rows)
        if out.column("content_id").to_pylist() != batch.column("content_id").to_pylist():
            raise RuntimeError(f"{self.signal.extractor} returned rows out of order")
        return out

    def _no_features(self, batch: pa.Table, errors: list[str]) -> pa.Table:
        nulls = {f.name: pa.nulls(batch.num_rows, f.type) for f in self.extractor.output_schema()}
        return self.extractor.result(batch.column("content_id"), nulls, errors)

    def __call__(self, batch: pa.Table) -> pa.Table:
        """Planned rows in (catalog rows to compute, items that left), part metadata out."""
        batch = _plain_strings(batch)
        gone = None
        if KIND in batch.column_names:
            is_gone = pc.equal(batch.column(KIND), GONE)
            gone = batch.filter(is_gone).column("content_id")
            batch = batch.filter(pc.invert(is_gone)).drop_columns(PLAN_COLUMNS)
        # A row the signal does not apply to (no audio for loudness) is skipped before it is
        # judged, so it cannot count against this signal's quarantine rate.
        applicable, skipped = self._applicable(batch)
        catalog_ok, bad = split_valid(applicable, CATALOG_CONTRACT)
        hashes = (
            applicable.column(INPUT_HASH).to_pylist()
            if INPUT_HASH in applicable.column_names
            else None
        )
        quarantined = self._quarantine_rows(applicable, bad, STAGE_CATALOG, hashes)
        return self.process(
            catalog_ok, read=batch.num_rows, skipped=skipped, quarantined=quarantined, gone=gone
        )

    def process(
        self,
        catalog_ok: pa.Table,
        *,
        read: int,
        skipped: int = 0,
        quarantined: list[dict[str, object]] | None = None,
        gone: pa.ChunkedArray | pa.Array | None = None,
        computed: pa.Table | None = None,
    ) -> pa.Table:
        """Extract, validate and write parts for rows that passed admission, and tombstones for
        the `gone` items (they left the catalog) in the same signal part.

        `catalog_ok` holds `content_id`, `updated_at` and the extractor's inputs; jobs whose
        input is not a catalog snapshot (near-duplicates) call this directly, with the
        extractor's output already `computed` when the job computed it across the catalog.
        """
        quarantined = list(quarantined or [])
        if INPUT_HASH in catalog_ok.column_names:
            hashes = catalog_ok.column(INPUT_HASH).to_pylist()
        else:
            hashes = self.extractor.input_hashes(catalog_ok)
        out = self._extract(catalog_ok) if computed is None else computed
        errors = out.column(ERROR_COLUMN).to_pylist()
        failed = {i: e for i, e in enumerate(errors) if e is not None}
        quarantined += self._quarantine_rows(catalog_ok, failed, STAGE_EXTRACT, hashes)

        ok = pa.array([e is None for e in errors], pa.bool_())
        ok_rows = catalog_ok.filter(ok)
        n = ok_rows.num_rows
        now = datetime.now(UTC)
        columns: dict[str, pa.Array | pa.ChunkedArray] = {
            "content_id": ok_rows.column("content_id"),
            "event_timestamp": pa.array([self.event_timestamp] * n, TIMESTAMP),
            "created_timestamp": pa.array([now] * n, TIMESTAMP),
            "input_updated_at": ok_rows.column("updated_at").cast(TIMESTAMP),
            "input_hash": pa.array([h for h, e in zip(hashes, errors, strict=True) if e is None]),
            "extractor_version": pa.array([self.version] * n, pa.string()),
            "run_id": pa.array([self.run_id] * n, pa.string()),
        }
        features = out.filter(ok)
        for name in self.signal.features:
            columns[name] = features.column(name)
        rows = pa.table(columns).cast(self.schema)
        valid, violations = split_valid(rows, self.contract)
        quarantined += self._quarantine_rows(
            rows, violations, STAGE_SIGNAL, rows.column("input_hash").to_pylist()
        )

        removed = 0
        if gone is not None and len(gone):
            removed = len(gone)
            dead = tombstones(
                gone,
                self.schema,
                run_id=self.run_id,
                event_timestamp=self.event_timestamp,
                version=self.version,
            )
            valid = pa.concat_tables([valid, dead])
        reasons = Counter(_reason_key(str(q["stage"]), str(q["reason"])) for q in quarantined)
        quarantine_part = (
            write_part(
                self.quarantine_uri,
                pa.Table.from_pylist(quarantined, schema=QUARANTINE_SCHEMA),
                self.run_id,
                self.storage_options,
            )
            if quarantined
            else None
        )
        return part_meta(
            write_part(self.signal_uri, valid, self.run_id, self.storage_options)
            if valid.num_rows
            else None,
            self.version,
            read=read,
            skipped=skipped,
            extracted=valid.num_rows - removed,
            quarantined=len(quarantined),
            removed=removed,
            quarantine_part=quarantine_part,
            reasons=reasons,
            usage=self.extractor.take_usage(),
        )


def part_meta(
    signal_part: Part | None,
    version: str,
    *,
    read: int = 0,
    skipped: int = 0,
    extracted: int = 0,
    quarantined: int = 0,
    removed: int = 0,
    quarantine_part: Part | None = None,
    reasons: Counter[str] | None = None,
    usage: dict[str, int] | None = None,
) -> pa.Table:
    """What a worker tells the driver about one batch: counts and the parts it wrote."""
    return pa.table(
        {
            "read": [read],
            "skipped": [skipped],
            "extracted": [extracted],
            "quarantined": [quarantined],
            "removed": [removed],
            "signal_part": [json.dumps(vars(signal_part)) if signal_part else None],
            "quarantine_part": [json.dumps(vars(quarantine_part)) if quarantine_part else None],
            "reasons": [json.dumps(reasons or {})],
            "extractor_version": [version],
            "usage": [json.dumps(usage or {})],
        }
    )
