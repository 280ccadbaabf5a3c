"""kzoo benchmarks: measured speed, memory and scaling, never asserted in tests.

    python -m benchmarks run --suite NAME|all [--quick] [--backend tensorflow|jax]
                             [--out benchmarks/results] [--profile CONFIG]
    python -m benchmarks list [--suite NAME] [--quick]

Each configuration runs in a fresh subprocess (`benchmarks.worker`), so its
peak memory is its own. The parent (`benchmarks.harness`) imports no deep
learning framework: it schedules configurations, enforces the time and memory
limits, computes ratios against the reference measured in the same run and
writes `results-<backend>-<device>.json`, `report-<backend>-<device>.md` and
PNG plots under `<out>/<suite>/` (`benchmarks.report`).
"""
