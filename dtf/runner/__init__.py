"""Running pytest for dtf: collecting a suite, and persistent per-slot pytest sessions.

In the caller:
  `collect.collect()`              lists a suite's items and their `dtf_requires` requirements
  `pytest_session.PytestSession`   one pytest process per worker slot, running batches
  `child_process`, `batch`, `launch`   its process plumbing and result bookkeeping

In the pytest child: the `child` package, which imports only the standard library and
pytest (never `events`, nor anything else of dtf), so it runs in any interpreter with pytest
and cannot shadow or pre-import a top-level package of the project under test.
"""
