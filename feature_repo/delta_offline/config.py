"""How a source's path names a Delta table and version.

Source paths. A `FileSource` path that is an absolute path or a URI (`/abs`, `file://`, `s3://`, ...)
is used as is; a relative path (`signals/text_embedding/v1`) is joined to the lake URI, which is
`$SIGNALS_LAKE_URI` if set, else the config's `lake_uri` (relative to the repo), else
`<repo>/../lake`. A path may end in `@<version>` (`signals/text_embedding/v1@3`) to read that Delta
version. `storage_options` are handed to delta-rs as they are (`${VAR}` works in the YAML).
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlparse

from feast.data_format import DeltaFormat
from feast.data_source import DataSource
from feast.infra.offline_stores.file_source import FileSource
from feast.repo_config import RepoConfig

from feature_repo.errors import LAKE_URI_ENV, DeltaSourceError


def is_absolute(uri: str) -> bool:
    """Whether `uri` names a place on its own (a URI or an absolute path), not below the lake."""
    # A one-letter scheme is a Windows drive, not a URI.
    return len(urlparse(uri).scheme) > 1 or Path(uri).is_absolute()


def resolve_lake_uri(config: RepoConfig) -> str:
    """The lake a relative source path is joined to.

    The environment wins so that tests and jobs can point one repository at any lake without
    editing `feature_store.yaml`.
    """
    from_env = os.environ.get(LAKE_URI_ENV, "").strip()
    if from_env:
        return from_env if is_absolute(from_env) else os.path.abspath(from_env)
    repo = Path(config.repo_path) if config.repo_path else Path.cwd()
    configured = getattr(config.offline_store, "lake_uri", None)
    if configured:
        return configured if is_absolute(configured) else os.path.abspath(repo / configured)
    return os.path.abspath(repo / ".." / "lake")


def split_version(path: str) -> tuple[str, int | None]:
    """`signals/x/v1@3` → (`signals/x/v1`, 3); a path without a numeric `@` suffix is unpinned.

    Only digits count, so `abfss://container@account...` is not mistaken for a version.
    """
    base, sep, tail = path.rpartition("@")
    if sep and tail.isdigit():
        return base, int(tail)
    return path, None


def resolve_table_uri(config: RepoConfig, path: str) -> tuple[str, int | None]:
    """The table URI and pinned version a source path names, so every reader agrees on both."""
    base, version = split_version(path)
    if is_absolute(base):
        return base, version
    return f"{resolve_lake_uri(config).rstrip('/')}/{base}", version


def delta_source(data_source: DataSource) -> FileSource:
    """The source as the Delta `FileSource` this store reads; an error for any other kind."""
    if isinstance(data_source, FileSource) and isinstance(data_source.file_format, DeltaFormat):
        return data_source
    raise DeltaSourceError(
        f"source '{data_source.name}' is not a Delta FileSource",
        hint="DeltaOfflineStore reads FileSource(file_format=DeltaFormat()) only",
    )


def storage_options(config: RepoConfig, source: FileSource) -> dict[str, str]:
    """delta-rs's storage options for `source`: the config's, and the source's S3 endpoint."""
    options = dict(getattr(config.offline_store, "storage_options", None) or {})
    if source.s3_endpoint_override:
        options.setdefault("AWS_ENDPOINT_URL", source.s3_endpoint_override)
    return options
