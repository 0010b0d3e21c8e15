"""The label sets contracts admit: the tag taxonomy's labels and the language codes.

Declarations read them from here, so that a contract admits exactly what the extractor may say.
"""

from __future__ import annotations

from pathlib import Path

import yaml

# The taxonomy file is the one list of tag labels; the extractor reads the same file. Read here by
# path (a data file, not an import of `extractors`), so the contract admits exactly its labels.
TAXONOMY_PATH = Path(__file__).resolve().parent.parent / "extractors" / "taxonomy.yaml"


def taxonomy_labels(path: Path = TAXONOMY_PATH) -> dict[str, tuple[str, ...]]:
    """Facet → its labels, in file order: the values `text_tags` may take."""
    facets = yaml.safe_load(path.read_text(encoding="utf-8"))["facets"]
    return {facet: tuple(spec["labels"]) for facet, spec in facets.items()}


# ISO 639-1 codes of the 75 languages lingua-language-detector 2.x identifies, plus "und"
# (undetermined). A test checks this list against the installed lingua.
LANGUAGE_CODES: tuple[str, ...] = (
    "af", "ar", "az", "be", "bg", "bn", "bs", "ca", "cs", "cy", "da", "de", "el", "en", "eo",
    "es", "et", "eu", "fa", "fi", "fr", "ga", "gu", "he", "hi", "hr", "hu", "hy", "id", "is",
    "it", "ja", "ka", "kk", "ko", "la", "lg", "lt", "lv", "mi", "mk", "mn", "mr", "ms", "nb",
    "nl", "nn", "pa", "pl", "pt", "ro", "ru", "sk", "sl", "sn", "so", "sq", "sr", "st", "sv",
    "sw", "ta", "te", "th", "tl", "tn", "tr", "ts", "uk", "ur", "vi", "xh", "yo", "zh", "zu",
)  # fmt: skip
UNDETERMINED = "und"
