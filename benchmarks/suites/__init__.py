"""Benchmark suites. Each module defines TITLE, DESCRIPTION, RATIOS, TABLE,
PLOTS, `configs(options)` (parent side, no framework import),
`measure(config, ctx)` (child side) and `summarize(record)`."""
