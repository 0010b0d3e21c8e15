"""The extractor interface: a pure batch function from catalog rows to signal rows.

An extractor knows nothing of Ray, Delta or Feast. It reads `inputs` columns of a pyarrow batch and
returns one row per input row: `content_id`, its feature columns, and `error` — null when the row
was computed, otherwise a reason a person can act on. One bad item never fails a batch.
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import pyarrow as pa

ERROR_COLUMN = "error"


class Extractor(ABC):
    """Base of every extractor.

    Subclasses set `inputs`, `version` and the resource hints, load their model in `__init__`, and
    implement `extract`. `full_version` ties the code version to the exact weights, so that a new
    model changes every input hash and the job recomputes.
    """

    inputs: ClassVar[tuple[str, ...]] = ()
    # Inputs that must be present for the signal to apply at all: a video has no audio loudness.
    # Rows without them are counted as skipped, not quarantined.
    required: ClassVar[tuple[str, ...]] = ()
    version: ClassVar[str] = "1"
    # "item": one row in, one row out, over catalog snapshots (the extract job).
    # "catalog": needs every item at once (near-duplicates); run by its own job.
    scope: ClassVar[str] = "item"
    wants_gpu: ClassVar[bool] = False
    batch_size: ClassVar[int] = 64  # rows per `extract` call: the job's Ray Data batch size
    # Computed only when named (`signals extract NAME@V`), never by default: each item costs a
    # call to a paid service.
    on_demand: ClassVar[bool] = False
    # Functions the job offers this extractor (`bind_tools`), e.g. an LLM agent's lookups.
    tools_wanted: ClassVar[tuple[str, ...]] = ()

    def __init__(self, device: str | None = None) -> None:
        self.device = device or "cpu"

    def configure(self, options: Mapping[str, Any]) -> None:
        """Take what the job hands every actor: `SIGNALS_*` settings this extractor reads and the
        signal's answer schema. Called before `full_version` is read; most extractors need none."""
        return None

    def bind_tools(self, tools: Mapping[str, Any]) -> None:
        """Receive the `tools_wanted` the job built: name → (JSON-schema parameters, function)."""
        return None

    def take_usage(self) -> dict[str, int]:
        """What this extractor spent since the last call (LLM calls, tokens, cache hits): the job
        sums it per run. Free extractors spend nothing."""
        return {}

    def weights_hash(self) -> str:
        """Hash of the model weights this extractor loads ('' when it has none)."""
        return ""

    @property
    def full_version(self) -> str:
        """`<code version>+<weights hash prefix>`: changes whenever the output could change."""
        weights = self.weights_hash()
        return f"{self.version}+{weights[:12]}" if weights else self.version

    def input_hashes(self, batch: pa.Table) -> list[str]:
        """Hash of exactly what the extractor reads for each row, plus its full version.

        Equal hash ⇒ equal output ⇒ no recompute.
        """
        return self.hash_inputs(batch, self.full_version)

    @classmethod
    def hash_prefix(cls, full_version: str) -> str:
        """What every input hash of this extractor at this version starts from."""
        return f"{cls.__module__}.{cls.__qualname__}@{full_version}"

    @classmethod
    def hash_inputs(cls, batch: pa.Table, full_version: str) -> list[str]:
        """`input_hashes` without an instance: the extract job hashes rows in plain tasks before
        any model is loaded, and skips those it has computed. Media extractors extend this with
        the bytes' identity (ETag / size) rather than the URI alone.
        """
        columns = [batch.column(name).to_pylist() for name in cls.inputs]
        prefix = cls.hash_prefix(full_version)
        return (
            [
                hashlib.sha256(json.dumps([prefix, *values], default=str).encode()).hexdigest()
                for values in zip(*columns, strict=True)
            ]
            if columns
            else [hashlib.sha256(prefix.encode()).hexdigest()] * batch.num_rows
        )

    @abstractmethod
    def output_schema(self) -> pa.Schema:
        """The feature columns this extractor produces (without `content_id` and `error`)."""

    @abstractmethod
    def extract(self, batch: pa.Table) -> pa.Table:
        """Compute the features of every row of `batch`; failed rows carry a reason in `error`."""

    def result(
        self,
        content_ids: pa.Array | pa.ChunkedArray | Sequence[str],
        features: dict[str, Sequence[Any] | pa.Array],
        errors: Sequence[str | None],
    ) -> pa.Table:
        """Assemble the output table in the documented shape; used by every subclass."""
        schema = self.output_schema()
        columns: dict[str, Any] = {"content_id": pa.array(content_ids, pa.string())}
        for field in schema:
            columns[field.name] = pa.array(features[field.name], type=field.type)
        columns[ERROR_COLUMN] = pa.array(errors, pa.string())
        return pa.table(columns)
