"""The QUOTA commands (RFC 9208): GETQUOTA, GETQUOTAROOT, SETQUOTA.

Theory of operation
-------------------
Each user has one quota root, "", covering all their mailboxes, with up to three resources:
STORAGE (reported in units of 1024 octets, §5.1), MESSAGE (the number of messages, §5.2) and
MAILBOX (the number of mailboxes, §5.3). A QUOTA response must give a limit for each resource
it names, so only the resources the user has a limit on are listed, and a user with no limit
at all has no quota root (GETQUOTAROOT names none). The limits are enforced by the store, in
the transaction of the write that would pass them (``OverQuota``): APPEND, COPY and MOVE get
``NO [OVERQUOTA]``, CREATE too (MAILBOX), and SMTP delivery is refused (``session/smtp*``).

SETQUOTA is refused with ``NO [NOPERM]``: quotas are the administrator's to set, with
``courriel user quota`` (RFC 9208 §4.5 lets a server restrict SETQUOTA to administrators).
A mailbox shared by another user counts against its owner's quota, whose root is not the
grantee's to read (``imap_shared``).
"""

from __future__ import annotations

from courriel.session.imap.state import Authenticated
from courriel.store.base import QuotaUsage
from courriel.wire.imap import commands as c
from courriel.wire.imap import responses as r

QUOTA_ROOT = ""


def resources(usage: QuotaUsage) -> list[tuple[str, int, int]]:
    """(name, usage, limit) of each resource the user has a limit on (RFC 9208 §5)."""
    out: list[tuple[str, int, int]] = []
    if usage.limit_bytes is not None:
        out.append(("STORAGE", (usage.bytes + 1023) // 1024, usage.limit_bytes // 1024))
    if usage.limit_messages is not None:
        out.append(("MESSAGE", usage.messages, usage.limit_messages))
    if usage.limit_mailboxes is not None:
        out.append(("MAILBOX", usage.mailboxes, usage.limit_mailboxes))
    return out


async def getquotaroot(state: Authenticated, cmd: c.GetQuotaRoot) -> bytes:
    if await state.store.get_mailbox(state.user_id, cmd.mailbox) is None:
        return r.no(cmd.tag, "No such mailbox", r.NONEXISTENT)
    usage = await state.store.quota_usage(state.user_id)
    if not usage.limited:
        return r.quotaroot(cmd.mailbox, [], utf8=state.utf8) + r.ok(cmd.tag, "No quota")
    out = [r.quotaroot(cmd.mailbox, [QUOTA_ROOT], utf8=state.utf8)]
    out.append(r.quota(QUOTA_ROOT, resources(usage)))  # RFC 9208 §4.3
    return b"".join(out) + r.ok(cmd.tag, "GETQUOTAROOT completed")


async def getquota(state: Authenticated, cmd: c.GetQuota) -> bytes:
    usage = await state.store.quota_usage(state.user_id)
    if cmd.root != QUOTA_ROOT or not usage.limited:
        return r.no(cmd.tag, "No such quota root", r.NONEXISTENT)  # RFC 9208 §4.2
    return r.quota(QUOTA_ROOT, resources(usage)) + r.ok(cmd.tag, "GETQUOTA completed")


def setquota(cmd: c.SetQuota) -> bytes:
    return r.no(cmd.tag, "Quotas are set by the administrator", r.NOPERM)  # RFC 9208 §4.5
