"""The declared signals, one module per modality: `text`, `audio`, `artwork`, `video`, `llm`,
and `duplicates` for the catalog-wide ones.

Every module here holds declarations and nothing else; the registry (`features.registry`) imports
them all and collects every module-level `Signal`. Adding a signal is adding it to one of these
modules (or a new module here) and writing its extractor in `extractors/`.
"""
