"""dtf: distributed testing and benchmarking on NATS JetStream."""

__version__ = "0.1.0"
