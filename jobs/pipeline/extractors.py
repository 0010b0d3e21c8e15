"""How the pipeline joins a declaration to its extractor: import it, version it, configure it,
hash its inputs, and say which signals the extract job computes by default.

`features` names an extractor by import path and `extractors` never learns of `features`: this
module is where the two meet, on the driver and in every Ray worker.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

import pyarrow as pa

from extractors.base import Extractor
from features import all_signals, get_signal
from features.contract_doc import contract_document
from features.contract_export import answer_schema
from features.signal import Signal
from jobs.pipeline.plan import INPUT_HASH
from jobs.storage import configure_fsspec


def load_extractor_class(path: str) -> type[Extractor]:
    """Import `module:Class`: how `jobs` joins a declaration to its extractor."""
    module_name, _, class_name = path.partition(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    if not (isinstance(cls, type) and issubclass(cls, Extractor)):
        raise TypeError(f"{path} is not an Extractor")
    return cls


def extractor_class(signal: Signal) -> type[Extractor]:
    """The extractor of a signal: its class, or for a signal declared from a model file the
    generic model extractor made for that declaration (`features.model.Model`)."""
    cls = load_extractor_class(signal.extractor)
    if signal.model is not None:
        return cls.declared(signal.model.spec(tuple(signal.features)))  # type: ignore[attr-defined]
    return cls


def item_signals() -> list[Signal]:
    """Signals computed item by item from catalog snapshots (what `extract` runs by default):
    on-demand ones (a paid call per item) only when named."""
    return [
        s
        for s in all_signals()
        if (cls := extractor_class(s)).scope == "item" and not cls.on_demand
    ]


def hash_batch(
    batch: pa.Table, signal_ref: str, full_version: str, storage_options: dict[str, str]
) -> pa.Table:
    """Add `input_hash` to catalog rows: a plain task, no model, so unchanged rows cost a hash
    (and a stat of their media) and are dropped before any actor sees them."""
    configure_fsspec(storage_options)
    cls = extractor_class(get_signal(signal_ref))
    return batch.append_column(
        INPUT_HASH, pa.array(cls.hash_inputs(batch, full_version), pa.string())
    )


def extractor_version(signal_ref: str, options: dict[str, Any] | None = None) -> str:
    """The extractor's full version (code + weights, or model + prompt), computed where
    extractors run."""
    instance = extractor_class(get_signal(signal_ref))(device="cpu")
    instance.configure(options or {})
    return instance.full_version


def extractor_options(signal: Signal, env: Mapping[str, str]) -> dict[str, Any]:
    """What every actor's extractor is configured with: the `SIGNALS_*` settings extractors read
    (captured in the driver, so actors on any node see the same) and the schema of the answer
    the signal's contract accepts."""
    return {**env, "answer_schema": answer_schema(contract_document(signal))}
