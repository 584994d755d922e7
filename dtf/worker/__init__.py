"""The worker daemon (`service`), what it runs (`command` for command tasks, `dtf.runner` for
pytest), its `checkpoint`s, the `hardware` it offers and the `interpreter` it runs tests with."""
