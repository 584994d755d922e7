"""The NATS adapter: everything dtf says to NATS and JetStream goes through here.

`store` (the connection: events appended, followed and loaded; core messages; requests),
`consumer` (a worker's durable consumer of its assignments), `objects` (the object-store
buckets: code bundles, checkpoints), `lease` (leadership by a KV lease) and `server` (the
nats-server processes dtf starts).  NATS exceptions are translated into `DtfError`s here;
nothing above this package imports nats.
"""
