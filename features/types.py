"""Feature column types: one object per column that knows its Arrow type and its Pandera checks.

A declaration says `Float(ge=-70, le=0)`; the Delta schema, the contract and the docs are read off it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pandera.pandas as pa_schema
import pyarrow as pa


@dataclass(frozen=True)
class FeatureType:
    """Base of every feature column type."""

    nullable: bool = False
    description: str = ""

    kind: str = field(default="", init=False)

    def arrow_type(self) -> pa.DataType:
        raise NotImplementedError

    def checks(self) -> list[pa_schema.Check]:
        return []

    def pandera_dtype(self) -> object:
        return None

    def column(self, name: str) -> pa_schema.Column:
        """The Pandera column that enforces this type, its range and its nullability."""
        return pa_schema.Column(
            self.pandera_dtype(),
            checks=self.checks(),
            nullable=self.nullable,
            name=name,
            description=self.description or None,
        )

    def summary(self) -> str:
        """A short human description, used by `signals list` and the docs."""
        return self.kind


def _range_checks(ge: float | None, le: float | None) -> list[pa_schema.Check]:
    checks = []
    if ge is not None:
        checks.append(pa_schema.Check.ge(ge))
    if le is not None:
        checks.append(pa_schema.Check.le(le))
    return checks


@dataclass(frozen=True)
class Float(FeatureType):
    """A 32-bit float feature, optionally bounded."""

    ge: float | None = None
    le: float | None = None
    kind: str = field(default="float", init=False)

    def arrow_type(self) -> pa.DataType:
        return pa.float32()

    def pandera_dtype(self) -> object:
        return "float32"

    def checks(self) -> list[pa_schema.Check]:
        return _range_checks(self.ge, self.le)


@dataclass(frozen=True)
class Int(FeatureType):
    """A 64-bit integer feature, optionally bounded."""

    ge: int | None = None
    le: int | None = None
    kind: str = field(default="int", init=False)

    def arrow_type(self) -> pa.DataType:
        return pa.int64()

    def pandera_dtype(self) -> object:
        return "Int64" if self.nullable else "int64"

    def checks(self) -> list[pa_schema.Check]:
        return _range_checks(self.ge, self.le)


@dataclass(frozen=True)
class Bool(FeatureType):
    """A boolean flag."""

    kind: str = field(default="bool", init=False)

    def arrow_type(self) -> pa.DataType:
        return pa.bool_()

    def pandera_dtype(self) -> object:
        return "boolean" if self.nullable else "bool"


@dataclass(frozen=True)
class String(FeatureType):
    """A string feature, optionally restricted to a set of allowed values."""

    isin: tuple[str, ...] | None = None
    kind: str = field(default="string", init=False)

    def arrow_type(self) -> pa.DataType:
        return pa.string()

    def pandera_dtype(self) -> object:
        return None  # object columns of str; nullability and `isin` carry the contract

    def checks(self) -> list[pa_schema.Check]:
        return [pa_schema.Check.isin(list(self.isin))] if self.isin else []


@dataclass(frozen=True)
class Embedding(FeatureType):
    """A dense float32 vector of a fixed dimension, optionally L2-normalised.

    Stored as `list<float32>` (Delta has no fixed-size list); the dimension is a contract check.
    """

    dim: int = 0
    normalized: bool = False
    kind: str = field(default="embedding", init=False)

    def arrow_type(self) -> pa.DataType:
        return pa.list_(pa.float32())

    def checks(self) -> list[pa_schema.Check]:
        dim, normalized = self.dim, self.normalized

        def well_formed(series: pd.Series) -> pd.Series:
            # One vectorised pass over the batch: shape, finiteness and (optionally) unit norm.
            def ok(v: object) -> bool:
                if v is None:
                    return True  # nullability is the column's own check
                arr = np.asarray(v, dtype=np.float32)
                if arr.shape != (dim,) or not np.isfinite(arr).all():
                    return False
                return not normalized or abs(float(np.linalg.norm(arr)) - 1.0) <= 1e-3

            return series.map(ok).astype(bool)

        name = f"embedding_dim_{dim}" + ("_unit_norm" if normalized else "")
        return [pa_schema.Check(well_formed, name=name)]

    def summary(self) -> str:
        return f"{self.dim}-d float32" + (", L2-normalised" if self.normalized else "")


@dataclass(frozen=True)
class Segments(FeatureType):
    """Time segments of an item: `[start_s, end_s]` pairs in seconds, e.g. where speech is.

    Stored whole, as `list<list<float32>>` (one `[start, end]` list per segment; Delta has no
    fixed-size list, so the pair shape is a contract check, as an embedding's dimension is).
    Each pair starts at or after 0 and before it ends, and the pairs are sorted and do not
    overlap (one may start where the previous ended). `max_s`, when given, bounds every end.
    An empty list is a value: the item was measured and holds no such segment.

    Served whole too: Feast serves a list of lists as `Array(Array(Float32))` (a `VALUE_LIST`,
    whose inner type the registry keeps), so the feature view carries the same value as the
    table; the signal's scalar features (count, share, first onset) are the summary a reader
    that wants no list takes.
    """

    max_s: float | None = None
    kind: str = field(default="segments", init=False)

    def arrow_type(self) -> pa.DataType:
        return pa.list_(pa.list_(pa.float32()))

    def checks(self) -> list[pa_schema.Check]:
        limit = self.max_s

        def well_formed(series: pd.Series) -> pd.Series:
            def ok(v: object) -> bool:
                if v is None:
                    return True  # nullability is the column's own check
                pairs = [np.asarray(p, dtype=np.float64) for p in v]  # type: ignore[attr-defined]
                if any(p.shape != (2,) for p in pairs):
                    return False
                if not pairs:
                    return True
                arr = np.stack(pairs)
                starts, ends = arr[:, 0], arr[:, 1]
                return bool(
                    np.isfinite(arr).all()
                    and (starts >= 0).all()
                    and (starts < ends).all()
                    and (starts[1:] >= ends[:-1]).all()
                    and (limit is None or (ends <= limit).all())
                )

            return series.map(ok).astype(bool)

        return [pa_schema.Check(well_formed, name="segments_sorted_non_overlapping")]

    def summary(self) -> str:
        return "[start_s, end_s] segments"
