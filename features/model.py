"""`Model`: a signal computed by a model file, declared without an extractor class.

A team with a model of its own writes a `Signal` whose `model` names the file (ONNX, TorchScript,
or weights an architecture of `extractors` reads), the catalog columns it reads and, at most, a
small pre- and post-processing function. The extractor is the generic one
(`DECLARED_MODEL_EXTRACTOR`): `jobs` hands it this declaration, and the file's bytes are part of
its version, so replacing the file recomputes every item.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

DECLARED_MODEL_EXTRACTOR = "extractors.declared:DeclaredModel"


@dataclass(frozen=True)
class Model:
    """The model file behind a declared signal, and how catalog rows reach it.

    - `uri`: a local path, `package://<module>/<path>`, or any fsspec URI (`s3://…`).
    - `inputs`: the catalog columns read (and hashed); `required`: those without which the
      signal does not apply (rows lacking them are skipped, not quarantined).
    - `preprocess` (`module:function`): catalog rows (pyarrow) → the model's input arrays by
      name; by default each input column as float32, in the graph's input order.
    - `postprocess` (`module:function`): the model's outputs (arrays, in graph order) and the
      rows → feature name → one value per row; by default the i-th output is the i-th feature.
    """

    uri: str
    inputs: tuple[str, ...]
    required: tuple[str, ...] = ()
    preprocess: str | None = None
    postprocess: str | None = None
    batch_size: int = 256
    wants_gpu: bool = False

    def __post_init__(self) -> None:
        if not self.uri:
            raise ValueError("a model needs the URI of its file")
        if not self.inputs:
            raise ValueError(f"model {self.uri}: name the catalog columns it reads")
        for hook in (self.preprocess, self.postprocess):
            if hook is not None and ":" not in hook:
                raise ValueError(f"model {self.uri}: {hook!r} must be 'module:function'")

    def spec(self, features: tuple[str, ...]) -> dict[str, Any]:
        """What the generic extractor is built from: this declaration and the feature names."""
        return {**asdict(self), "features": features}
