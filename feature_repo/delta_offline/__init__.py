"""A Feast offline store that reads Delta Lake tables through delta-rs, honouring the Delta log.

Why a store of our own: Feast's `file`/`dask` store reads a Delta folder as plain Parquet, so once an
overwrite or a compaction has removed files from the log (and until vacuum deletes them) it returns
rows the table no longer holds; Feast's `duckdb` store reads Delta through DuckDB's `delta` extension,
which is downloaded at run time. This store keeps the DuckDB store's ibis point-in-time logic and
swaps only the reader: `deltalake.DeltaTable` resolves the snapshot from the log, so exactly the
table's current (or pinned) files are read, projected to the columns a query needs, and streamed.

One job a module:
- `config` — how a source path becomes a table URI and version;
- `tables` — opening a source's Delta table, its columns, its snapshot as a lazy dataset, and the
  private memory-bounded DuckDB every job over the history runs on;
- `pulls` — materialization's reads: a window's rows streamed file by file, superseded rows
  (not each entity's newest) found in a first pass over keys and timestamps;
- `pull_job` — `DeltaPullJob`: those rows as record batches, a Ray dataset or one table;
- `snapshots` — what the point-in-time join reads: each view's columns and locators, and a
  source's snapshot as lazy DuckDB views (all of it, or one file);
- `retrieval` — the point-in-time join itself (`plan_join`) and `DeltaRetrievalJob`, which
  fetches the features of the chosen history rows one file at a time;
- `ray_join` — the same join on a Ray cluster: entity rows and history hash-partitioned by
  entity key, each partition joined by `plan_join` in its own task;
- `store` — `DeltaOfflineStore` and its `offline_store:` settings, which Feast's configuration names.
"""
