"""The NATS adapter: everything dtf says to NATS and JetStream goes through here.

`store` (the connection: events appended, followed and loaded; core messages; requests),
`consumer` (a worker's durable consumer of its assignments), `objects` (the object-store
buckets: code bundles, checkpoints), `claim` and `lease` (leadership by a KV lease: its
rules over any key, and the bucket's key) and `server` (the
nats-server processes dtf starts).  NATS exceptions are translated into `DtfError`s here;
nothing above this package imports nats.

`protocol` is the part of the store the coordinator uses, as Protocols, and `memory` (with
`memory_lease`) an implementation of it in memory, for tests of services in-process; neither
they nor `claim` import nats.
"""
