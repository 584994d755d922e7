"""One module per projection; each defines PROJECTION (see projections.projection)."""
