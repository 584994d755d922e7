"""The command line (`main`: parsing and dispatch; `inspection`: status, show, events tail;
`analysis`: replay, report, regressions, trends, errors).  Nothing imports this package."""
