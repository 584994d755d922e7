"""What the tests share besides fixtures: polling with deadlines (`polling`), a cluster of
real dtf processes (`cluster`), the exactly-once audit of a recorded log (`audit`), plain
pytest's own verdict on a suite (`plain_pytest`) and the paths of the test data (`paths`)."""
