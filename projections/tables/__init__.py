"""One module per projection; each defines PROJECTION (see projections.pipeline.folded)."""
