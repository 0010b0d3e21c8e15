"""Models as artifacts: an extractor whose weights are one file at a URI.

A model file is ONNX (run by ONNX Runtime), TorchScript (`torch.jit.load`), or a weights file for
an architecture the code defines (safetensors, or a packed format its architecture reads). Its URI
is a local path, `package://<module>/<path>` for a file inside an installed package (weights that
ship in a wheel, so nothing is downloaded at run time), or anything fsspec opens (`s3://…`).

The file is read once per process and device (an actor loads it in its constructor); its
`weights_hash` is the sha256 of its bytes, so a new file is a new extractor version, a new input
hash for every item, and a recompute.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import tempfile
import threading
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from extractors.base import Extractor
from extractors.device import pick_device
from extractors.errors import ModelFileError

PACKAGE_SCHEME = "package://"
ONNX_SUFFIXES = frozenset({".onnx"})
TORCHSCRIPT_SUFFIXES = frozenset({".jit", ".pt", ".ts", ".torchscript"})
_CHUNK = 1 << 22
_lock = threading.Lock()


def _package_file(uri: str) -> Path:
    """`package://module/path/in/it` → the file inside the installed package, found without
    importing the module (a package may do work at import that a model file does not need)."""
    module, _, inner = uri[len(PACKAGE_SCHEME) :].partition("/")
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise ModelFileError(f"{uri}: no installed package {module!r}")
    for folder in spec.submodule_search_locations:
        candidate = Path(folder) / inner
        if candidate.is_file():
            return candidate
    raise ModelFileError(f"{uri}: package {module!r} has no file {inner!r}")


@cache
def _fetched(uri: str) -> Path:
    """A remote model file copied once per process into a local folder (ONNX Runtime and torch
    open paths, not streams)."""
    import fsspec

    folder = Path(tempfile.mkdtemp(prefix="signals-model-"))
    target = folder / Path(uri.rstrip("/")).name
    try:
        with fsspec.open(uri, "rb") as src, target.open("wb") as dst:
            shutil.copyfileobj(src, dst, _CHUNK)
    except FileNotFoundError as exc:
        raise ModelFileError(f"{uri}: no such model file") from exc
    return target


def resolve(uri: str) -> Path:
    """The local file a model URI names: why one function — every loader, the hash and the error
    messages agree on what "the model file" is."""
    if uri.startswith(PACKAGE_SCHEME):
        return _package_file(uri)
    if uri.startswith("file://"):
        uri = uri[len("file://") :]
    if "://" in uri:
        return _fetched(uri)
    path = Path(uri).expanduser()
    if not path.is_file():
        raise ModelFileError(f"{uri}: no such model file")
    return path


@cache
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def file_sha256(uri: str) -> str:
    """sha256 of the model file's bytes; recomputed only when the file's size or mtime change,
    so a file replaced in place between two runs is noticed."""
    path = resolve(uri)
    stat = path.stat()
    return _sha256(str(path), stat.st_size, stat.st_mtime_ns)


class OnnxModel:
    """An ONNX Runtime session on the CPU, or on CUDA when the device is a GPU and this ONNX
    Runtime build has the CUDA provider (`onnxruntime-gpu`); the providers in use are kept, so a
    benchmark can say where it ran."""

    def __init__(self, path: Path, device: str) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        threads = os.environ.get("OMP_NUM_THREADS")
        if threads:
            options.intra_op_num_threads = int(threads)
            options.inter_op_num_threads = 1
        wanted = ["CPUExecutionProvider"]
        if device.startswith("cuda") and "CUDAExecutionProvider" in ort.get_available_providers():
            index = device.partition(":")[2] or "0"
            wanted.insert(0, ("CUDAExecutionProvider", {"device_id": int(index)}))  # type: ignore[arg-type]
        self.session = ort.InferenceSession(str(path), options, providers=wanted)
        self.providers = tuple(self.session.get_providers())
        self.input_names = tuple(i.name for i in self.session.get_inputs())
        self.output_names = tuple(o.name for o in self.session.get_outputs())

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        """All outputs, in the graph's order."""
        return self.session.run(None, feeds)


# An architecture the code defines: it builds a torch module from the model file on a device.
Architecture = Callable[[Path, str], Any]


def _load(path: Path, device: str, architecture: Architecture | None) -> Any:
    if architecture is not None:
        return architecture(path, device)
    suffix = path.suffix.lower()
    if suffix in ONNX_SUFFIXES:
        return OnnxModel(path, device)
    if suffix in TORCHSCRIPT_SUFFIXES:
        import torch

        module = torch.jit.load(str(path), map_location=device)
        module.eval()
        return module
    raise ModelFileError(
        f"{path}: cannot tell how to load a {suffix or 'suffix-less'} file: use .onnx (ONNX "
        "Runtime), .pt/.jit/.ts (TorchScript), or name the architecture that reads it"
    )


_loaded: dict[tuple[str, str, str, Architecture | None], Any] = {}


def load_model(uri: str, device: str = "cpu", architecture: Architecture | None = None) -> Any:
    """The model in `uri` on `device`, loaded once per process: actors of two signals that share
    a file (or a test session) hold it once, and a changed file (new hash) is loaded anew."""
    path = resolve(uri)
    key = (str(path), file_sha256(uri), device, architecture)
    with _lock:
        if key not in _loaded:
            _loaded[key] = _load(path, device, architecture)
        return _loaded[key]


class ArtifactExtractor(Extractor):
    """Base of the extractors whose model is one file: subclasses name `model_uri` (and an
    `architecture` when the file is weights, not a graph) and call `self.model`.

    `wants_gpu`: the job gives the actor a GPU when asked and one exists; the model then runs on
    CUDA (torch device or ONNX Runtime's CUDA provider), otherwise on the CPU.
    """

    model_uri: ClassVar[str] = ""
    architecture: ClassVar[Architecture | None] = None
    wants_gpu = True

    def __init__(self, device: str | None = None) -> None:
        super().__init__(pick_device(device))
        self.model = load_model(self.model_uri, self.device, type(self).architecture)

    def weights_hash(self) -> str:
        return file_sha256(self.model_uri)
