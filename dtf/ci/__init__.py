"""`dtf ci`: a run in a CI pipeline, with the provider's labels, reports and annotations.

Above the client and the read models (it drives a run and reads its results), below the
command line.
"""
