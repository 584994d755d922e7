"""From the event stream into DuckDB: the stream reader process, the fold of aggregates, the
batches projections are given, the projector's transaction, and the tables the pipeline owns."""
