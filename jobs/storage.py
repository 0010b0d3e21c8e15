"""One set of storage options for every client that reaches the lake and the media.

The settings hold them in delta-rs's words (`AWS_ENDPOINT_URL`, `AWS_ACCESS_KEY_ID`,
`AWS_REGION`, `AWS_ALLOW_HTTP`, …), because delta-rs takes them as they are. pyarrow's S3
filesystem (the workers' Parquet parts) and fsspec's s3fs (media, profiles) name the same things
differently: they are translated here, once, so the three never disagree about where a bucket is.
Options left out fall back to each client's own environment lookup (AWS_* variables, an instance
role), which is what a cluster with IAM roles wants.
"""

from __future__ import annotations

import os
from typing import Any

import fsspec.config
import pyarrow.fs as pafs


def _aws(storage_options: dict[str, str] | None) -> dict[str, str]:
    return {k.upper(): v for k, v in (storage_options or {}).items()}


def pyarrow_s3(storage_options: dict[str, str] | None) -> pafs.S3FileSystem:
    """pyarrow's S3 filesystem with the lake's options."""
    opts = _aws(storage_options)
    return pafs.S3FileSystem(
        access_key=opts.get("AWS_ACCESS_KEY_ID"),
        secret_key=opts.get("AWS_SECRET_ACCESS_KEY"),
        session_token=opts.get("AWS_SESSION_TOKEN"),
        region=opts.get("AWS_REGION") or opts.get("AWS_DEFAULT_REGION"),
        endpoint_override=opts.get("AWS_ENDPOINT_URL"),
        scheme="http" if opts.get("AWS_ALLOW_HTTP", "").lower() == "true" else "https",
    )


def fsspec_s3(storage_options: dict[str, str] | None) -> dict[str, Any]:
    """s3fs's keyword arguments for the lake's options (only those that are set)."""
    opts = _aws(storage_options)
    kwargs: dict[str, Any] = {
        "key": opts.get("AWS_ACCESS_KEY_ID"),
        "secret": opts.get("AWS_SECRET_ACCESS_KEY"),
        "token": opts.get("AWS_SESSION_TOKEN"),
        "endpoint_url": opts.get("AWS_ENDPOINT_URL"),
    }
    region = opts.get("AWS_REGION") or opts.get("AWS_DEFAULT_REGION")
    if region:
        kwargs["client_kwargs"] = {"region_name": region}
    return {k: v for k, v in kwargs.items() if v is not None}


def configure_fsspec(storage_options: dict[str, str] | None) -> None:
    """Make the lake's options fsspec's defaults for `s3://` in this process.

    Extractors open media with plain `fsspec.open(uri)` and know nothing of settings (they never
    import jobs); a Ray task or actor calls this first, so the same URI opens on every node.
    """
    kwargs = fsspec_s3(storage_options)
    if kwargs:
        fsspec.config.conf.setdefault("s3", {}).update(kwargs)


def export_for_boto3(storage_options: dict[str, str] | None) -> None:
    """Give boto3 clients in this process (Feast's S3 registry) the lake's options.

    Feast builds its registry's S3 client from the environment alone (`FEAST_S3_ENDPOINT_URL`
    and the AWS_* variables); values already in the environment win.
    """
    opts = _aws(storage_options)
    names = {
        "AWS_ACCESS_KEY_ID": "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY": "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN": "AWS_SESSION_TOKEN",
        "AWS_REGION": "AWS_DEFAULT_REGION",
        "AWS_ENDPOINT_URL": "FEAST_S3_ENDPOINT_URL",
    }
    for key, variable in names.items():
        if opts.get(key):
            os.environ.setdefault(variable, opts[key])
