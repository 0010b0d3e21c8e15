"""The sample catalog behind `signals sample` and `make demo`: a synthetic snapshot with real media.

Why synthetic: the demo, the tests and the benchmarks need a catalog that exists offline, is the
same on every machine for a given seed, and whose media carry KNOWN answers — tempo, loudness,
dominant colours, planted duplicates, deliberately broken rows — so that the extractors that follow
are checked against ground truth instead of eyeballed.

What is written (`write_sample_catalog`):
- the snapshot, a Delta table with exactly `features.catalog.CATALOG_SCHEMA`;
- media under `media_dir`, referenced from the snapshot by **absolute local paths** (no `file://`
  scheme: soundfile, Pillow, PyAV and fsspec all open them as they are)::

      media_dir/audio/<type>-<number>.wav|flac|ogg   every track, episode, audiobook and chapter
      media_dir/artwork/<type>-<number>.png|jpg|webp every item
      media_dir/video/video-<number>.gif             every video (canvas loop, 10 frames/s, no audio)
      media_dir/ground_truth.parquet                 one row per item: what the media really hold

Audio clips are 6–8 s previews whatever the item's catalog `duration_ms` says; the ground truth's
`clip_duration_ms` is the clip's true length. Loudness ground truth is measured on the samples as a
decoder returns them (ITU-R BS.1770-4, `extractors.audio_dsp.integrated_loudness`), not merely
the target. Half of the tracks, episodes and audiobooks, in every language, state a genre in one
sentence of their description (`vocabulary/genres_<language>.json`); the ground truth's `genre` is
that label, for `text_tags`. Some episodes and audiobooks are translations of the item before them
(same title and description in another language, same names); the ground truth's
`translation_of` names the original, for cross-lingual `text_embedding`.

Determinism: every value of an item comes from counter-based random streams keyed by
(seed, content type, item number), so the same seed gives the same rows whatever the batch size,
and a batch can be produced without the ones before it (a 1M-item snapshot streams in batches).

Modules, each importing only those above it:
- `randomness` — the counter-based random streams; `plan` — the catalog's shape, row -> item;
- `words` — the vocabulary (`vocabulary/*.json`, one file per language, and the genre sentences)
  and the word pickers; `rows` — the text columns of each content type;
- `breaks` — the deliberately broken rows; `batches` — text-only rows, batch by batch;
- `audio` — preview clips; `artwork` — artwork and video loops; `duplicates` — planted copies;
- `media` — one item's files; `truth` — the ground truth; `writer` — `write_sample_catalog`.

Imports `features`, `extractors` and the lake (`jobs.lake.tables`, to write the snapshot).
"""

from __future__ import annotations

from extractors.audio_dsp import integrated_loudness, k_weighting_coefficients
from jobs.sample.batches import generate_catalog_rows, iter_catalog_batches
from jobs.sample.plan import LANGUAGES, REFERENCE_TIME, UPDATED_SPREAD_DAYS
from jobs.sample.truth import GROUND_TRUTH_FILE, GROUND_TRUTH_SCHEMA
from jobs.sample.writer import SampleCatalog, write_sample_catalog

__all__ = [
    "GROUND_TRUTH_FILE",
    "GROUND_TRUTH_SCHEMA",
    "LANGUAGES",
    "REFERENCE_TIME",
    "UPDATED_SPREAD_DAYS",
    "SampleCatalog",
    "generate_catalog_rows",
    "integrated_loudness",
    "iter_catalog_batches",
    "k_weighting_coefficients",
    "write_sample_catalog",
]
