"""How signals are computed from content. Imports torch, numpy, pyarrow, fsspec and model
libraries — never ray, feast or deltalake."""

from extractors.base import ERROR_COLUMN, Extractor
from extractors.device import pick_device

__all__ = ["ERROR_COLUMN", "Extractor", "pick_device"]
