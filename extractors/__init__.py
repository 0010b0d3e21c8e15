"""How signals are computed from content: `base` (the interface), one module per modality
(`text`, `audio` with `audio_dsp`, `image` with `image_stats`, `video`, `llm`, `duplicates`),
`media` (opening files through fsspec) and `errors` (why one item could not be computed).

Imports torch, numpy, pyarrow, fsspec and model libraries — never ray, feast, deltalake,
`features` or `jobs`. Kept light: importing the package loads no model library; each extractor
module imports what it needs."""

from extractors.base import ERROR_COLUMN, Extractor

__all__ = ["ERROR_COLUMN", "Extractor"]
