"""UIDONLY (RFC 9586): once enabled, the client and server speak of messages by UID only.

Theory of operation
-------------------
``ENABLE UIDONLY`` sets ``SessionState.uidonly``, and SELECT hands it to the view. From then on
the commands that name messages by sequence number (FETCH, STORE, SEARCH, SORT, THREAD, COPY,
MOVE, REPLACE without UID) and any search program holding a sequence set are refused with
``BAD [UIDREQUIRED]`` (§3.2) before they run; the server sends ``* uid UIDFETCH (...)``
instead of FETCH (§3.3, ``responses.uidfetch``) and VANISHED instead of EXPUNGE (§3.4), which
the view does (``SelectedView.uidonly``). EXISTS still counts the messages.
"""

from __future__ import annotations

from courriel.wire.imap import commands as c
from courriel.wire.imap import responses as r
from courriel.wire.imap import search as s

UIDREQUIRED = b"UIDREQUIRED"


def _has_sequence(key: s.SearchKey) -> bool:
    match key:
        case s.SearchSequence(sequence_set=numbers):
            return not numbers.saved  # "$" is the saved result, kept as UIDs (RFC 5182)
        case s.SearchNot(key=inner):
            return _has_sequence(inner)
        case s.SearchOr(left=left, right=right):
            return _has_sequence(left) or _has_sequence(right)
        case s.SearchAnd(keys=keys):
            return any(_has_sequence(k) for k in keys)
        case _:
            return False


def refusal(cmd: c.Command) -> bytes | None:
    """``BAD [UIDREQUIRED]`` for a command that uses sequence numbers (RFC 9586 §3.2)."""
    match cmd:
        case c.Fetch() | c.Store() | c.Copy() | c.Move() | c.Replace() if not cmd.uid:
            return r.bad(cmd.tag, "Message sequence numbers are off (UIDONLY)", UIDREQUIRED)
        case c.Search() | c.Sort() | c.Thread():
            tree = cmd.criteria if isinstance(cmd, c.Search) else cmd.search
            if not cmd.uid or _has_sequence(tree):
                return r.bad(cmd.tag, "Message sequence numbers are off (UIDONLY)", UIDREQUIRED)
    return None
