"""Where catalog-wide jobs keep state between runs: `lake/_state/<signal table>/<name>`.

A job whose next run builds on the last one (near-duplicates keeps its LSH buckets and groups)
stores Delta tables here, one folder per signal; maintenance vacuums them with the signal's table.
"""

from __future__ import annotations

import pyarrow.fs as pafs

from jobs.lake.tables import split_uri
from jobs.settings import Settings


def state_uri(settings: Settings, storage_name: str, name: str) -> str:
    """The state table `name` of a signal (its storage name)."""
    return settings.lake_path("_state", storage_name, name)


def state_tables(settings: Settings, storage_name: str) -> list[str]:
    """Every state table a signal has: what vacuum cleans beside the signal's own table."""
    fs, root = split_uri(settings.lake_path("_state", storage_name), settings.storage_options)
    found = fs.get_file_info(pafs.FileSelector(root, allow_not_found=True))
    base = settings.lake_path("_state", storage_name)
    return sorted(
        f"{base}/{info.base_name}" for info in found if info.type == pafs.FileType.Directory
    )
