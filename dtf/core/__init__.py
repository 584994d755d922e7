"""The pure core: state folded from events, scheduling decisions, task splitting. No I/O."""
