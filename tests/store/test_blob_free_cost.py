"""Freeing a message body costs the same at 200,000 messages as at 2,000 (SQLite).

Expunging the last copy of a message deletes its ``blobs`` row; with foreign keys on, SQLite
then looks for ``messages`` rows still naming that body. Without an index on
``messages(blob_id)`` that look is a scan of every message, about 16 ms per freed body at
200,000 messages, inside the one writer, stalling every delivery meanwhile. Migration 0020
added the index. This test counts the SQLite virtual machine's steps for the delete (exact and
repeatable, unlike a timing) at two mailbox sizes and requires them to stay flat; and, so the
measure is known to see a scan, that dropping the index makes the larger count grow with the
table.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from courriel.store.sqlite.driver import migrate

SMALL = 2_000
LARGE = 200_000


def _fill(conn: sqlite3.Connection, count: int) -> None:
    """``count`` messages in one mailbox, each with a body of its own, and one freed body."""
    conn.execute("PRAGMA foreign_keys = OFF")  # the filler skips users and mailboxes
    conn.execute("DELETE FROM messages")
    conn.execute("DELETE FROM blobs")
    conn.execute(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)"
        " INSERT INTO blobs (id, refcount, size) SELECT 'b' || i, 1, 10 FROM n",
        (count,),
    )
    conn.execute(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)"
        " INSERT INTO messages (mailbox_id, uid, modseq, sysflags, keywords,"
        " internal_date, size, blob_id, meta)"
        " SELECT 1, i, i, 0, '', '2026-01-01T00:00:00+00:00', 10, 'b' || i, x'' FROM n",
        (count,),
    )
    conn.execute("INSERT INTO blobs (id, refcount, size) VALUES ('freed', 0, 10)")
    conn.commit()
    conn.execute("PRAGMA foreign_keys = ON")


def _steps_to_free(conn: sqlite3.Connection) -> int:
    steps = 0

    def count() -> int:
        nonlocal steps
        steps += 1
        return 0  # go on

    conn.set_progress_handler(count, 1)
    try:
        conn.execute("DELETE FROM blobs WHERE id = 'freed'")
    finally:
        conn.set_progress_handler(None, 1)
    conn.rollback()  # the freed body is there again for the next count
    return steps


def test_freeing_a_body_does_not_scan_the_messages(tmp_path: Path) -> None:
    db = tmp_path / "courriel.db"
    migrate(db)
    conn = sqlite3.connect(db, isolation_level="DEFERRED")
    try:
        _fill(conn, SMALL)
        small = _steps_to_free(conn)
        _fill(conn, LARGE)
        large = _steps_to_free(conn)
        # a B-tree seek is one step whatever the depth: flat, give or take a few steps
        assert large <= small + 50, (small, large)

        conn.execute("DROP INDEX messages_blob")
        conn.commit()
        unindexed = _steps_to_free(conn)
        assert unindexed > 20 * large, (large, unindexed)  # the count does see a scan
    finally:
        conn.close()
