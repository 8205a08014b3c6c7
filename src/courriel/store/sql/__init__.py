"""The store logic, written once as sans-IO transaction scripts shared by every SQL backend.

Theory of operation
-------------------
Each write or read the ``Store`` offers is a *script*: a generator that yields ``Query`` objects
(SQL with ``?`` placeholders, parameters, and whether the rows are wanted), receives each query's
rows (a list of tuples) through ``send()``, and finally returns its result. Scripts do no I/O:
they decide, the driver executes. A write script returns ``Done``: its value plus what must happen
*after* the commit (change events to publish, bodies no longer referenced).

How a driver runs a script (SQLite: ``courriel.store.sqlite.driver.run_script``; PostgreSQL:
the same loop with ``?`` rewritten to ``$1..$n`` and ``await conn.fetch(...)``)::

    try:
        query = next(script)
        while True:
            rows = execute(query.sql, query.params)   # all rows, as a list of tuples
            query = script.send(rows)
    except StopIteration as stop:
        result = stop.value                           # then COMMIT (writes)

All queries of one script run in one transaction (SQLite: one SAVEPOINT inside a group commit;
PostgreSQL: one transaction, READ COMMITTED is enough). An exception out of the script means it
wrote nothing: the driver rolls its part back and hands the exception to the caller. Reads run
in one snapshot (SQLite: a deferred transaction; PostgreSQL: REPEATABLE READ READ ONLY).

The SQL is portable between SQLite >= 3.35 and PostgreSQL >= 15: ``RETURNING``, ``ON CONFLICT``,
``CASE``, ``substr``, ``&``; no dialect functions. Column values round-trip as ``int``, ``str``,
``bytes`` or ``None``; the DDL of each dialect lives in ``migrations/<dialect>/``.

Concurrency under PostgreSQL: a script that reads and then writes messages of a mailbox first
locks that mailbox's row (``core.lock_mailbox``, a no-op UPDATE), and UIDs and MODSEQs are
allocated with one ``UPDATE mailboxes ... RETURNING`` (``core.allocate``), so they stay gap-free
and increasing across machines. Rows are locked in one order everywhere -- mailboxes by id, then
blobs by id, then users by id -- so two scripts never wait for each other in a cycle.

Flags are stored as ``sysflags`` (a bit mask of the five system flags, so "unseen" is an integer
test) plus ``keywords`` (sorted, space-separated; keywords are atoms and hold no space).
"\\Recent" is never stored (RFC 9051 drops it; RFC 3501 makes it per session). Every message one
call changes in one mailbox gets the same new MODSEQ: one bump per call per mailbox (a MOVE
inside one mailbox bumps twice: once for the copies, once for the expunges).

Modules: ``core`` (query type, codecs, shared sub-scripts, migrations), ``accounts``,
``mailboxes``, ``messages`` (the scripts), ``store`` (``SqlStore``, ``Driver``).
"""

from courriel.store.sql.core import Done, Query, Row, Rows, Script, migrations
from courriel.store.sql.store import Driver, SqlStore

__all__ = [
    "Done",
    "Driver",
    "Query",
    "Row",
    "Rows",
    "Script",
    "SqlStore",
    "migrations",
]
