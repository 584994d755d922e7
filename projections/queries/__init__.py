"""Reading the read models: rows out of DuckDB, run references, series, and the analyses
over them (regressions, trends, summaries, error patterns) that the CLI and reports show."""
