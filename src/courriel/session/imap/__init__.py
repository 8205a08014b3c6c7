"""The IMAP session (RFC 9051): policy between the sans-IO core in ``courriel.wire.imap`` and
the store.

``session.py`` holds ``Session`` (dispatch, sync between a user's sessions), ``state.py`` the
state objects of RFC 9051 §3 (``NotAuthenticated``, ``Authenticated``, ``Selected``); each other
module serves one group of commands or one piece of state: ``select`` and ``selected`` the
selected mailbox and its view, ``fetch`` FETCH (its plan, its reads and its rendering),
``messages`` STORE/SEARCH/COPY/MOVE/EXPUNGE, ``search``/``sort``/``thread``/``context``
searching, ``mailboxes`` LIST/CREATE/RENAME/STATUS, ``acl``/``shared`` other users' mailboxes,
``notify`` NOTIFY, and so on. The adapter (``courriel.net.imap``) needs only ``Session`` and
``Action``.
"""

from courriel.session.imap.session import Action, Session

__all__ = ["Action", "Session"]
