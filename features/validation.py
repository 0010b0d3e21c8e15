"""Checking rows against a contract: keep the rows that pass, explain each one that does not."""

from __future__ import annotations

from collections import defaultdict

import pandas as pd
import pandera.errors as pa_errors
import pandera.pandas as pa_schema
import pyarrow as pa


def _describe(case: pd.Series) -> str:
    column = case.get("column")
    check = case.get("check")
    value = case.get("failure_case")
    where = f"column '{column}'" if isinstance(column, str) and column else "row"
    if hasattr(value, "__len__") and not isinstance(value, str):
        shown = f"<{len(value)} values>"
    else:
        shown = repr(value)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return f"{where} failed check {check} (value {shown})"


def split_valid(
    table: pa.Table, contract: pa_schema.DataFrameSchema, key: str = "content_id"
) -> tuple[pa.Table, dict[int, str]]:
    """Validate every row of `table`; return the passing rows and {row position: reason}.

    A failure that concerns the whole batch (a missing column, a wrong dtype) fails every row
    with that reason: such a batch must never land, and each row says why.
    """
    if table.num_rows == 0:
        return table, {}
    frame = table.to_pandas(types_mapper=None, ignore_metadata=True)
    frame.index = pd.RangeIndex(len(frame))
    try:
        contract.validate(frame, lazy=True)
        return table, {}
    except pa_errors.SchemaErrors as errors:
        cases = errors.failure_cases
    reasons: dict[int, list[str]] = defaultdict(list)
    batch_wide: list[str] = []
    for _, case in cases.iterrows():
        index = case.get("index")
        if index is None or pd.isna(index):
            batch_wide.append(_describe(case))
        else:
            reasons[int(index)].append(_describe(case))
    if batch_wide:
        reason = "; ".join(dict.fromkeys(batch_wide))
        return table.slice(0, 0), {i: reason for i in range(table.num_rows)}
    merged = {i: "; ".join(dict.fromkeys(r)) for i, r in reasons.items()}
    keep = [i for i in range(table.num_rows) if i not in merged]
    return table.take(pa.array(keep, pa.int64())), merged
