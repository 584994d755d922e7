"""Subtests: unittest's `self.subTest` and pytest's `subtests` fixture, passing and failing.

Plain pytest reports a unittest test with a failed subtest as PASSED beside a SUBFAILED line
(and exits 1); dtf reports the item as failed.
"""

import unittest


class TestLoop(unittest.TestCase):
    def test_one_subtest_fails(self):
        for i in range(4):
            with self.subTest(i=i):
                self.assertNotEqual(i, 2)

    def test_all_subtests_pass(self):
        for i in range(3):
            with self.subTest(i=i):
                self.assertGreaterEqual(i, 0)


def test_fixture_subtest_fails(subtests):
    for i in range(3):
        with subtests.test(msg="check", i=i):
            assert i != 1


def test_fixture_subtests_pass(subtests):
    for i in range(2):
        with subtests.test(i=i):
            assert i < 2
