"""The CAPABILITY list an IMAP session announces, which depends on TLS and login.

Theory of operation
-------------------
Before TLS on the STARTTLS listener (143) the server offers STARTTLS and LOGINDISABLED and no
AUTH= mechanism at all (RFC 9051 §6.2.3, RFC 8314 §4.1: passwords only inside TLS). Once TLS is
active (STARTTLS done, or 993) AUTH=PLAIN and AUTH=LOGIN appear. After login the full list of
extensions is announced; clients read it from the tagged OK's CAPABILITY code (RFC 9051 §7.1)
and must ask again after STARTTLS (RFC 9051 §6.2.1).
"""

from __future__ import annotations

from courriel.wire.imap.commands import State

BASE = ("IMAP4rev1", "IMAP4rev2", "LITERAL+", "SASL-IR", "ID", "ENABLE")
MECHANISMS = ("AUTH=PLAIN", "AUTH=LOGIN")
EXTENSIONS = (
    "IDLE",
    "NAMESPACE",
    "UIDPLUS",
    "MULTIAPPEND",  # RFC 3502: one store call, all or none
    "BINARY",  # RFC 3516
    "REPLACE",  # RFC 8508
    "CATENATE",  # RFC 4469
    "OBJECTID",  # RFC 8474
    "SAVEDATE",  # RFC 8514
    "PREVIEW",  # RFC 8970
    "UNAUTHENTICATE",  # RFC 8437
    "UIDONLY",  # RFC 9586
    "MOVE",
    "CONDSTORE",
    "QRESYNC",
    "UNSELECT",
    "ESEARCH",
    "SEARCHRES",
    "SORT",  # RFC 5256
    "SORT=DISPLAY",  # RFC 5957
    "THREAD=ORDEREDSUBJECT",
    "THREAD=REFERENCES",
    "ESORT",  # RFC 5267 §3
    "PARTIAL",  # RFC 9394 (SEARCH and SORT)
    "CONTEXT=SEARCH",  # RFC 5267 §4
    "CONTEXT=SORT",
    "CHILDREN",
    "SPECIAL-USE",
    "CREATE-SPECIAL-USE",
    "LIST-EXTENDED",
    "LIST-STATUS",
    "STATUS=SIZE",
    "UTF8=ACCEPT",
    "QUOTA",
    "QUOTA=RES-STORAGE",
    "QUOTA=RES-MESSAGE",  # RFC 9208 §5.2
    "QUOTA=RES-MAILBOX",  # RFC 9208 §5.3
    "ACL",  # RFC 4314
    "RIGHTS=kxte",  # RFC 4314 §2.1.1: the rights k, x, t and e are kept apart
    "LIST-MYRIGHTS",  # RFC 8440
    "METADATA",  # RFC 5464: server and mailbox entries
    "NOTIFY",  # RFC 5465
    "URLAUTH",  # RFC 4467, INTERNAL mechanism
    "URLAUTH=BINARY",  # RFC 5524, extended URLFETCH
)

# What ENABLE accepts (RFC 5161 §3.1); QRESYNC implies CONDSTORE (RFC 7162 §3.2.3).
ENABLEABLE = frozenset({"CONDSTORE", "QRESYNC", "IMAP4REV2", "UTF8=ACCEPT", "UIDONLY"})


def capabilities(
    state: State, *, tls: bool, appendlimit: int, compressed: bool = False
) -> list[str]:
    caps = list(BASE)
    if state is State.NOT_AUTHENTICATED:
        if tls:
            caps += MECHANISMS
        else:
            caps += ["STARTTLS", "LOGINDISABLED"]  # RFC 9051 §6.2.3, §7.2.2
        return caps
    caps += EXTENSIONS
    caps.append(f"APPENDLIMIT={appendlimit}")  # RFC 7889 §4
    if not compressed:
        caps.append("COMPRESS=DEFLATE")  # RFC 4978 §3: not listed once it is active
    return caps
