"""Running the store: the jobs, serving and reports, in rooms with one engine each.

    jobs/
      settings.py, storage.py  where things are, and one set of storage options for every client
      lake/                     Delta tables (deltalake): parts and commits, runs, profiles,
                                removals, maintenance, lineage
      pipeline/                 Ray jobs: extract (plan, worker, commit), backfill,
                                near-duplicates, job submission
      serving/                  Feast: store, materialize, online removal, client, HTTP server,
                                training sets, LLM tools
      quality/                  evaluation, annotation and the gold set, drift, contract review
      sample/                   the synthetic sample catalog: vocabulary, rows, media, ground truth
      cli/                      `signals` (typer), one module per command group
      __main__.py               `python -m jobs <command>`: the entry point of cluster jobs

Arrows point one way: `cli` → every room; `pipeline` → `serving`, `quality`, `lake`;
`serving`, `quality`, `sample` → `lake`; `quality` → `sample` (its ground truth); every room →
`features`, `extractors`, `settings`, `storage`. Nothing imports `cli`.
"""
