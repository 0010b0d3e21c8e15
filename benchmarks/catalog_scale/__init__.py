"""Every catalog-wide step at two sizes 10× apart: wall time and peak memory of the process tree.

    .venv/bin/python -m benchmarks.catalog_scale                      # 100k and 1M
    .venv/bin/python -m benchmarks.catalog_scale --small 10000 --step near_duplicates

Each step is a module here with `prepare(workdir, items)` (writes synthetic signal tables in the
signals' own schemas into a private lake; not measured) and `measure(workdir, items)` (runs the real
command over them and returns its figures) and optionally `check(workdir, items)` (quality of the
result — recall, precision — computed after the measured run). Each runs in a fresh child process, so Ray, Feast and
DuckDB start cold and the peak covers the driver and every Ray process it started.
"""
