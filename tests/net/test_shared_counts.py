"""The counts behind server-wide limits, as two forked processes see them."""

from __future__ import annotations

import os

from courriel.net.shared_counts import SharedCounts


def test_a_forked_worker_counts_into_its_own_row_and_everyone_sees_the_sum() -> None:
    table = SharedCounts(2)
    parent = table.row(0)
    parent.add("192.0.2.1", 1)
    pid = os.fork()
    if pid == 0:  # the second worker
        child = table.row(1)
        child.add("192.0.2.1", 1)
        child.add("192.0.2.7", 1)
        os._exit(0)
    assert os.waitpid(pid, 0)[1] == 0
    assert parent.count("192.0.2.1") == 2
    assert parent.count("192.0.2.7") == 1
    assert parent.total() == 3
    table.row(1).reset()  # its successor starts from nothing: those connections died with it
    assert parent.count("192.0.2.1") == 1
    assert parent.total() == 1


def test_a_release_never_wraps_below_zero() -> None:
    row = SharedCounts(1).row(0)
    row.add("x", -1)
    assert row.count("x") == 0
    assert row.total() == 0


def test_the_bucket_key_differs_per_table() -> None:
    # The hash is keyed per server start, so nobody can pick an address that shares a
    # counter with another: the same addresses spread differently in two tables.
    a, b = SharedCounts(1), SharedCounts(1)
    keys = [f"198.51.100.{i}" for i in range(50)]
    assert [a.index(k) for k in keys] != [b.index(k) for k in keys]
