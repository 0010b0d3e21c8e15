"""The lake: Delta tables on local disk or object storage, and everything that reads or writes them.

- `tables` — open, read, write and time-travel a table; the newest row per key;
- `parts` — Parquet parts written by workers, committed once per run with its app transaction;
- `snapshots` — a catalog snapshot's schema, version and size, read from its log;
- `runs`, `profiles` — the runs table (lineage) and the per-run value profiles (drift);
- `removals` — tombstones for items that left the catalog; `state` — where catalog-wide jobs keep
  state between runs;
- `maintenance` — compact, vacuum, history, `--as-of`; `lineage` — where a served value came from;
- `errors` — this room's errors.

The only code besides the Feast offline store (`feature_repo/`) that imports `deltalake`. Imports
`features`, `jobs.settings` and `jobs.storage`; never Ray, Feast or another room.
"""
