"""The side of dtf that runs inside a pytest process, in the project's own interpreter.

It imports only the standard library and pytest, and its modules import each other
relatively: `dtf.runner.launch` copies this package into a directory of its own and starts
`python -m dtf_child` with only that directory added to the path, so the project's
interpreter needs neither dtf nor any of its dependencies, and nothing of dtf's environment
(its other packages, their pytest plugins) leaks into the user's test session.

`__main__` (the entry point), `plugin` (loaded with `-p`), `collector` (collect mode),
`batch_loop` (session mode), `item_outcome`, `requirements`, `failure_text`, `lifeline`, and
`wire`, the protocol the parent reads too.
"""
