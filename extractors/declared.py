"""`DeclaredModel`: the extractor of every signal declared from a model file alone.

A declaration names the file, the catalog columns it reads and the features it yields
(`features.model.Model`); `DeclaredModel.declared(spec)` makes the extractor for it — a subclass
that carries the declaration, so the job hashes, loads and runs it like any other. The model file
is loaded once per actor (ONNX Runtime or TorchScript, on CUDA when the actor has a GPU); its
bytes and the declaration are the extractor's version.
"""

from __future__ import annotations

import hashlib
import importlib
import json
from collections.abc import Callable
from functools import cache
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa

from extractors.artifact import ArtifactExtractor, OnnxModel


def _function(path: str | None) -> Callable[..., Any] | None:
    if path is None:
        return None
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


def _column_inputs(rows: pa.Table, inputs: tuple[str, ...]) -> list[np.ndarray]:
    """The default preprocessing: each input column as a float32 vector, in declared order."""
    return [np.asarray(rows.column(c).to_numpy(zero_copy_only=False), np.float32) for c in inputs]


def _rows_of(values: Any, n: int) -> list[Any]:
    """One value per row from an output array: scalars for (n,) or (n, 1), lists for (n, d)."""
    array = np.asarray(values)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if len(array) != n:
        raise ValueError(f"the model returned {len(array)} values for {n} rows")
    return [row.tolist() if array.ndim > 1 else row.item() for row in array]


class DeclaredModel(ArtifactExtractor):
    """Runs the declared model file over catalog rows; rows missing an input are errors."""

    spec: ClassVar[dict[str, Any]] = {}
    version = "1"

    @classmethod
    def declared(cls, spec: dict[str, Any]) -> type[DeclaredModel]:
        """The extractor class of one declaration (`Model.spec(features)`), made once per spec."""
        return _declared(json.dumps(spec, sort_keys=True))

    def __init__(self, device: str | None = None) -> None:
        if not self.spec:
            raise TypeError("DeclaredModel runs a declaration: use DeclaredModel.declared(spec)")
        super().__init__(device)
        self._pre = _function(self.spec["preprocess"])
        self._post = _function(self.spec["postprocess"])

    def weights_hash(self) -> str:
        declaration = json.dumps(self.spec, sort_keys=True).encode()
        return hashlib.sha256(super().weights_hash().encode() + declaration).hexdigest()

    def output_schema(self) -> pa.Schema:
        # The contract types the columns; the model's own dtypes are cast by it.
        return pa.schema([pa.field(name, pa.null()) for name in self.spec["features"]])

    def _run(self, rows: pa.Table) -> list[Any]:
        inputs = self._pre(rows) if self._pre else _column_inputs(rows, tuple(self.inputs))
        if isinstance(self.model, OnnxModel):
            feeds = (
                inputs
                if isinstance(inputs, dict)
                else dict(zip(self.model.input_names, inputs, strict=True))
            )
            return self.model.run(feeds)
        import torch

        tensors = inputs.values() if isinstance(inputs, dict) else inputs
        with torch.inference_mode():
            out = self.model(*(torch.as_tensor(t, device=self.device) for t in tensors))
        out = out if isinstance(out, tuple | list) else [out]
        return [o.cpu().numpy() for o in out]

    def extract(self, batch: pa.Table) -> pa.Table:
        missing = [
            next((f"missing input: {c} is null" for c in self.inputs if batch.column(c)[i].as_py() is None), None)
            for i in range(batch.num_rows)
        ]  # fmt: skip
        good = [i for i, reason in enumerate(missing) if reason is None]
        names = list(self.spec["features"])
        columns: dict[str, list[Any]] = {name: [None] * batch.num_rows for name in names}
        if good:
            rows = batch.take(good)
            outputs = self._run(rows)
            values = (
                self._post(outputs, rows) if self._post else dict(zip(names, outputs, strict=False))
            )
            for name in names:
                for row, value in zip(good, _rows_of(values[name], len(good)), strict=True):
                    columns[name][row] = value
        table = {
            "content_id": batch.column("content_id"),
            **{n: pa.array(columns[n]) for n in names},
        }
        return pa.table({**table, "error": pa.array(missing, pa.string())})


@cache
def _declared(spec_json: str) -> type[DeclaredModel]:
    spec = json.loads(spec_json)
    attributes = {
        "spec": spec,
        "model_uri": spec["uri"],
        "inputs": tuple(spec["inputs"]),
        "required": tuple(spec["required"]),
        "batch_size": spec["batch_size"],
        "wants_gpu": spec["wants_gpu"],
        "__module__": __name__,
        "__qualname__": f"DeclaredModel[{spec['uri']}]",
    }
    return type("DeclaredModel", (DeclaredModel,), attributes)
