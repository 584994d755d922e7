"""dtf's event catalogue: wire schemas, subjects, and the JetStream topology, as plain data."""
