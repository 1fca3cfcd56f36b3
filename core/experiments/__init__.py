"""Prompt experiments: one locked prompt configuration run over every row of a table, on one or
more models, scored, and compared (`gembot experiment …`, and a CSV sent by DM with `run:`).

`spec` is the locked configuration, `cases` the input table and its template, `checks` what is
refused before a request, `estimates` the dry run, `pacing` the per-model limits, `runner` the
cached and resumable run, `batch_run` the same through the Gemini Batch API, `scoring` and
`judge` the grades, `pricing` the cost, `summary` the per-model figures, `export` the row-level
file, `comparison_plot` the chart. What one request gave back is a `core.gemini.outcomes.Reply`.
"""
