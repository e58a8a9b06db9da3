"""fork_map: a list's tail computed in a forked child gives exactly the one-process results."""

import os

import pytest

from core.forking import fork_map


def square_with_pid(value):
    return value * value, os.getpid()


def test_the_tail_is_computed_in_another_process_and_the_results_keep_their_order():
    results = fork_map(square_with_pid, list(range(1000)), minimum=10)
    assert [value for value, _pid in results] == [n * n for n in range(1000)]
    pids = {pid for _value, pid in results}
    # the head here, the tail in the child
    assert results[0][1] == os.getpid()
    assert len(pids) == 2


def test_a_short_list_stays_in_this_process():
    results = fork_map(square_with_pid, list(range(5)), minimum=10)
    assert {pid for _value, pid in results} == {os.getpid()}


def test_a_child_that_fails_costs_time_not_results():
    parent = os.getpid()

    def fails_in_the_child(value):
        if os.getpid() != parent:
            raise RuntimeError("the child's part fails")
        return value + 1

    assert fork_map(fails_in_the_child, list(range(100)), minimum=10) == list(range(1, 101))


def test_a_child_that_dies_costs_time_not_results():
    parent = os.getpid()

    def dies_in_the_child(value):
        if os.getpid() != parent:
            os._exit(9)
        return -value

    assert fork_map(dies_in_the_child, list(range(100)), minimum=10) == [-n for n in range(100)]


def test_a_failure_in_the_head_is_raised_here():
    def fails_at_three(value):
        if value == 3:
            raise ValueError("three")
        return value

    with pytest.raises(ValueError, match="three"):
        fork_map(fails_at_three, list(range(100)), minimum=10)
