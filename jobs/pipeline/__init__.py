"""The pipeline: the Ray jobs that compute signals and land them in the lake.

- `extract` — one signal over a catalog snapshot: hash, `plan` (unchanged, removed), the actor
  pool (`worker`), and the driver's `commit`; `extractors` joins declarations to extractors;
- `backfill` — a new major version over the whole catalog, then served beside the old one;
- `near_duplicates` — the catalog-wide signal, through the same commit path;
- `runtime` — joining or starting Ray; `submit` — running any job on a cluster (Ray job API);
- `failpoints` — where tests may kill a driver; `errors` — this room's errors.

The only room that imports Ray. Imports `features`, `extractors`, the lake, the quality room (the
review queue an LLM run fills) and the serving room (materialization after a backfill, the LLM
tools an agentic extractor calls); nothing imports it but the CLI.
"""
