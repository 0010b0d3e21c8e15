"""Reaching media behind URIs (fsspec) and the per-item extractor shape for audio, images and video.

A media extractor computes one item at a time from one URI column. Whatever goes wrong with one
file — missing, empty, truncated, undecodable, too large — becomes that row's reason; the batch goes
on. The input hash covers the file's identity (size and ETag / modification time), not just its URI,
so replacing a file under the same name triggers a recompute.
"""

from __future__ import annotations

import hashlib
import json
from abc import abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any, ClassVar

import fsspec
import pyarrow as pa

from extractors.base import Extractor
from extractors.errors import MediaError


def _info(uri: str) -> dict[str, Any]:
    fs, path = fsspec.core.url_to_fs(uri)
    try:
        return fs.info(path)
    except FileNotFoundError:
        raise MediaError(f"media not found: {uri}") from None


def media_identity(uri: str) -> str:
    """What identifies the bytes behind a URI without reading them: size plus ETag or mtime."""
    info = _info(uri)
    stamp = info.get("ETag") or info.get("etag") or info.get("mtime") or info.get("LastModified")
    return f"{info.get('size')}:{stamp}"


@contextmanager
def open_media(uri: str, max_bytes: int) -> Iterator[IO[bytes]]:
    """Open a media file for streaming reads, refusing empty and oversized files up front."""
    size = _info(uri).get("size")
    if size == 0:
        raise MediaError(f"empty file (0 bytes): {uri}")
    if size is not None and size > max_bytes:
        raise MediaError(f"file too large: {size} bytes > limit {max_bytes}: {uri}")
    with fsspec.open(uri, "rb") as handle:
        yield handle


def describe_failure(exc: BaseException) -> str:
    """A one-line reason for an unexpected decoder error, naming its type."""
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


class MediaExtractor(Extractor):
    """An extractor that reads one media URI column and computes each item on its own."""

    media_column: ClassVar[str] = ""
    max_bytes: ClassVar[int] = 512 * 1024**2

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.media_column:
            cls.inputs = cls.inputs or (cls.media_column,)
            cls.required = (cls.media_column,)

    @classmethod
    def hash_inputs(cls, batch: pa.Table, full_version: str) -> list[str]:
        prefix = cls.hash_prefix(full_version)
        hashes = []
        for uri in batch.column(cls.media_column).to_pylist():
            try:
                identity = media_identity(uri) if uri else "none"
            except (MediaError, OSError, ValueError):
                identity = "unreadable"
            hashes.append(hashlib.sha256(json.dumps([prefix, uri, identity]).encode()).hexdigest())
        return hashes

    @abstractmethod
    def extract_one(self, uri: str) -> dict[str, Any]:
        """Features of one item, or raise `MediaError` with a reason a person can act on."""

    def extract(self, batch: pa.Table) -> pa.Table:
        names = self.output_schema().names
        features: dict[str, list[Any]] = {name: [] for name in names}
        errors: list[str | None] = []
        for uri in batch.column(self.media_column).to_pylist():
            try:
                if not uri:
                    raise MediaError(f"no {self.media_column}")
                values = self.extract_one(uri)
                error = None
            except MediaError as exc:
                values, error = {}, str(exc)
            except Exception as exc:  # a decoder's own error: keep its type and message
                values, error = {}, f"cannot decode {uri}: {describe_failure(exc)}"
            for name in names:
                features[name].append(values.get(name))
            errors.append(error)
        return self.result(batch.column("content_id"), features, errors)
