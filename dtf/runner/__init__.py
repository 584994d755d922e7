"""Running pytest for dtf: collecting a suite, and persistent per-slot pytest sessions.

In the caller:
  `collect.collect()`              lists a suite's items and their `dtf_requires` requirements
  `pytest_session.PytestSession`   one pytest process per worker slot, running batches
  `child_process`, `batch`, `launch`   its process plumbing and result bookkeeping

In the pytest child (`python -m dtf.runner.child`): `plugin` (loaded with `-p`), `collector`,
`batch_loop`, `item_outcome`, `requirements`, `wire` and `failure_text`.  These import only
the standard library, pytest and msgspec (never `events`), so they cannot shadow or pre-import
a top-level package of the project under test.
"""
