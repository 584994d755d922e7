"""`dtf run`: collect, split, bundle, submit, follow the run, and show it as pytest would
(`run` the client, `options` its checked options, `embedded` the cluster it starts when no
server is configured, `progress` the live display, `summary` the final report on the terminal,
`reports` JUnit XML and JSON, `pytest_options`/`pytest_config` what the project's pytest
configuration asks for)."""
