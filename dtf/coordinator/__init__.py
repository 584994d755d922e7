"""The coordinator service (`service`): a shell around the core's rules (`dtf.core.decisions`)."""
