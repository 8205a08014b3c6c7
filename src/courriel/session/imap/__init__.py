"""The IMAP session (RFC 9051): policy between the sans-IO core in ``courriel.wire.imap`` and
the store.

``session.py`` holds ``Session`` (states, dispatch, sync between a user's sessions); each other
module serves one group of commands or one piece of state: ``select`` and ``selected`` the
selected mailbox and its view, ``messages`` FETCH/STORE/COPY/MOVE/EXPUNGE, ``fetch`` the FETCH
plan and its rendering, ``search``/``sort``/``thread``/``context`` searching, ``mailboxes``
LIST/CREATE/RENAME/STATUS, ``acl``/``shared`` other users' mailboxes, ``notify`` NOTIFY, and
so on. The adapter (``courriel.net.imap``) needs only ``Session`` and ``Action``.
"""

from courriel.session.imap.session import Action, Session

__all__ = ["Action", "Session"]
