"""Hash partitioning for Ray tasks that exchange tables: each map task returns one table per
reducer, each reducer receives one table from every map task. Objects move between tasks through
the object store (spilled to disk when it fills); the driver holds only references."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
from ray import ObjectRef
from ray.remote_function import RemoteFunction


def partition_of(content_ids: pa.Array | pa.ChunkedArray, partitions: int) -> np.ndarray:
    """The partition of each content_id: a stable hash, the same in every process and run."""
    ids = np.asarray(content_ids.to_pylist(), dtype=object)
    return (pd.util.hash_array(ids) % np.uint64(partitions)).astype(np.int64)


def split(table: pa.Table, dest: np.ndarray, partitions: int) -> tuple[pa.Table, ...] | pa.Table:
    """`table`'s rows by destination, as a task's returns (a bare table when there is one)."""
    order = np.argsort(dest, kind="stable")
    bounds = np.searchsorted(dest[order], np.arange(partitions + 1))
    ordered = table.take(pa.array(order)) if len(order) else table
    parts = tuple(ordered.slice(bounds[i], bounds[i + 1] - bounds[i]) for i in range(partitions))
    return parts if partitions > 1 else parts[0]


def fan_out(task: RemoteFunction, returns: int, *args: object) -> list[ObjectRef]:
    """Start `task` with `returns` outputs and list their references (one output or several)."""
    returned = task.options(num_returns=returns).remote(*args)
    return [returned] if isinstance(returned, ObjectRef) else list(returned)


def inbox(outputs: list[list[ObjectRef]], i: int) -> list[ObjectRef]:
    """The i-th return of every map task: what reducer i receives."""
    return [refs[i] for refs in outputs]
