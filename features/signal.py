"""`Signal`: the one declaration from which a signal's table, contract and feature view are derived."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Literal

import pandera.pandas as pa_schema
import pyarrow as pa

from features.model import DECLARED_MODEL_EXTRACTOR, Model
from features.standard import STANDARD_COLUMNS, STANDARD_FIELDS, standard_contract_columns
from features.types import FeatureType

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")

Metric = Literal["cosine", "l2", "inner_product"]


@dataclass(frozen=True)
class Searchable:
    """Which embedding of a signal is indexed for "more like this", and how vectors compare.

    Declared on the signal, so the contract, `signals list`, the Feast feature view (its field's
    `vector_index` and metric) and the vector index all read the same answer.
    """

    feature: str
    metric: Metric = "cosine"

    def summary(self) -> str:
        return f"{self.feature} ({self.metric})"


@dataclass(frozen=True)
class Signal:
    """A named, versioned group of features computed by one extractor.

    Everything else — the Delta table `signals/<name>/v<version>`, the Pandera contract with the
    standard columns, the Feast feature view `<name>_v<version>` — is read off this object, so a
    reviewer can understand a signal without reading any model or pipeline code.
    """

    name: str
    version: int
    description: str
    owner: str
    extractor: str  # import path, "package.module:ClassName"; `jobs` joins the two
    features: dict[str, FeatureType]
    tags: dict[str, str] = field(default_factory=dict)
    consumers: tuple[str, ...] = ()  # feature services (consumer groups) that include this signal
    ttl: timedelta = timedelta(days=30)  # how long a served value stays valid without a refresh
    freshness: timedelta = timedelta(days=1)  # how often the signal is expected to be recomputed
    # A model file the signal is computed by, with `extractor=DECLARED_MODEL_EXTRACTOR`.
    model: Model | None = None
    # The embedding served for similarity search, if any (`signals similar`).
    searchable: Searchable | None = None

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ValueError(f"signal name {self.name!r}: use lower_snake_case")
        if self.version < 1:
            raise ValueError(f"signal {self.name}: versions start at 1")
        if ":" not in self.extractor:
            raise ValueError(f"signal {self.name}: extractor must be 'module:Class'")
        clash = set(self.features) & set(STANDARD_COLUMNS)
        if clash:
            raise ValueError(
                f"signal {self.name}: features shadow standard columns {sorted(clash)}"
            )
        if not self.features:
            raise ValueError(f"signal {self.name}: declares no features")
        if (self.model is None) != (self.extractor != DECLARED_MODEL_EXTRACTOR):
            raise ValueError(
                f"signal {self.name}: a model file goes with extractor="
                f"{DECLARED_MODEL_EXTRACTOR!r}, and that extractor needs a model"
            )
        if self.searchable is not None:
            indexed = self.features.get(self.searchable.feature)
            if indexed is None or indexed.kind != "embedding":
                raise ValueError(
                    f"signal {self.name}: searchable names {self.searchable.feature!r}, "
                    "which is not one of its embedding features"
                )

    @property
    def ref(self) -> str:
        """`name@version`, the way people write it."""
        return f"{self.name}@{self.version}"

    @property
    def storage_name(self) -> str:
        """Path of the signal's Delta table below `<lake>/signals/`."""
        return f"{self.name}/v{self.version}"

    @property
    def feature_view_name(self) -> str:
        """The Feast feature view that serves this version."""
        return f"{self.name}_v{self.version}"

    @property
    def modality(self) -> str:
        return self.tags.get("modality", "")

    def arrow_schema(self) -> pa.Schema:
        """The Delta table's schema: the standard columns, then the features in declared order.

        Features are nullable in storage whatever their declaration: a tombstone (an item that
        left the catalog, `standard.REMOVED_HASH`) has no values. The contract, which every
        value row passes, is what holds a feature to non-null.
        """
        feature_fields = [
            pa.field(n, t.arrow_type(), nullable=True) for n, t in self.features.items()
        ]
        return pa.schema([*STANDARD_FIELDS, *feature_fields])

    def contract(self) -> pa_schema.DataFrameSchema:
        """The Pandera schema every row written to this signal's table must pass."""
        columns = standard_contract_columns()
        columns.update({n: t.column(n) for n, t in self.features.items()})
        return pa_schema.DataFrameSchema(
            columns,
            name=self.ref,
            strict=True,
            unique=["content_id"],
            description=self.description,
        )

    def feature_summary(self) -> str:
        """`1 (384-d)`-style text for `signals list`."""
        if len(self.features) == 1:
            (only,) = self.features.values()
            return f"1 ({only.summary()})" if only.kind == "embedding" else "1"
        return str(len(self.features))
