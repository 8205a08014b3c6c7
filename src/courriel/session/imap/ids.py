"""The object ids of RFC 8474 (OBJECTID), made from what the store keeps anyway.

* MAILBOXID is ``M`` and the mailbox's row id, which RENAME keeps and which is never handed
  out again after DELETE (RFC 8474 §4: a new mailbox of the same name gets a new id);
* EMAILID is ``E`` and the body's content address: a COPY or MOVE keeps it, and identical
  messages share it, as RFC 8474 §5.1 allows;
* THREADID is ``T`` and a digest of the first message id in References (the thread's root),
  or of the message's own Message-ID when it starts a thread; None (NIL) when it has neither
  (§5.2 allows NIL).
"""

from __future__ import annotations

import hashlib
import re

from courriel.mail import sortkeys
from courriel.store.base import Mailbox

# RFC 8474 §7: objectid = 1*255(ALPHA / DIGIT / "_" / "-")
_NOT_OBJECTID = re.compile(r"[^A-Za-z0-9_-]")


def mailbox_id(box: Mailbox) -> str:
    return f"M{box.id}"


def email_id(blob_id: str) -> str:
    return "E" + _NOT_OBJECTID.sub("", blob_id)[:64]


def thread_id(keys: str | None) -> str | None:
    """From the message's stored sort keys (``courriel.mail.sortkeys``)."""
    refs = sortkeys.field(keys, sortkeys.REFERENCES).split()
    root = refs[0] if refs else sortkeys.field(keys, sortkeys.MESSAGE_ID)
    if not root:
        return None
    return "T" + hashlib.sha256(root.encode("utf-8")).hexdigest()[:24]
