"""How signals are computed from content. Imports torch, numpy, pyarrow, fsspec and model
libraries — never ray, feast or deltalake. Kept light: importing the package loads no model
library; each extractor module imports what it needs."""

from extractors.base import ERROR_COLUMN, Extractor

__all__ = ["ERROR_COLUMN", "Extractor"]
