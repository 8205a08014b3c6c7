"""Helpers for courriel's own tests; nothing here runs in a production server.

Test files import these by module path (never from a ``conftest.py``, whose module name pytest
reuses for every directory):

* ``net``: free loopback ports.
* ``fill``: users and messages put in place the way ``courriel.admin`` and delivery do.
* ``transcript``: the transcript runner and a server in the test's own event loop.
* ``server``: a whole server in a background thread, for real client programs.
* ``smtp``, ``imap``, ``pop3``: one protocol's server with test limits, and a client for it.
* ``placeholder``: the "service not available" handlers the runtime tests use.
* ``counting``: a store that records which of its methods a path calls.
"""
