"""courriel's benchmark suite: courriel side by side with Dovecot and Postfix, one command.

Theory of operation
-------------------
``python -m bench`` (``make bench``) builds one corpus of messages (``bench.corpus``), starts a
private instance of every server on loopback high ports under one temporary directory
(``bench.servers``), gives each the same users and the same mail (``bench.fill``), and runs each
chosen workload (``bench.workloads``) against every server back to back, repeated, keeping the
median. ``bench.report`` prints one table per workload, with a courriel/anchor ratio column, and
writes the machine-readable result to ``bench/results/<timestamp>.json``.

Rules every piece keeps: load goes only to 127.0.0.1; every loop is bounded in count and in time
and stops by itself; the system's own Dovecot and Postfix are never started or changed (the
private instances read their own configuration directories). Nothing here asserts a speed: the
test suite checks the harness's pieces, never its numbers.
"""
