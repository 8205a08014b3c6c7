"""Parser of NOTIFY (RFC 5465 §8).

Theory of operation
-------------------
``NOTIFY NONE`` or ``NOTIFY SET [STATUS] (filter events) ...``. A filter is SELECTED,
SELECTED-DELAYED, INBOXES, PERSONAL, SUBSCRIBED, or SUBTREE / MAILBOXES followed by one
mailbox or a parenthesised list; events are NONE or a parenthesised list of event names, where
MessageNew may carry fetch attributes. Event names are matched case-insensitively and kept in
their RFC spelling; an unknown one is kept as sent, for the session to refuse with BADEVENT
(§5). The grammar rules that need no state are checked here and answered with BAD: a filter
appears once, SELECTED and SELECTED-DELAYED not both and only with message events (§6.1), and
for them MessageNew and MessageExpunge together, FlagChange only with them (§5.2, §5.3).
Groups and mailbox names per command are bounded.
"""

from __future__ import annotations

from courriel.wire.imap.commands import Notify, NotifyGroup
from courriel.wire.imap.fetch import FetchAttribute
from courriel.wire.imap.lexer import Reader
from courriel.wire.imap.parse_fetch import parse_fetch_attributes

MAX_GROUPS = 10
MESSAGE_EVENTS = frozenset({"MessageNew", "MessageExpunge", "FlagChange", "AnnotationChange"})
MAX_MAILBOXES = 100
FILTERS = frozenset(
    {"SELECTED", "SELECTED-DELAYED", "INBOXES", "PERSONAL", "SUBSCRIBED", "SUBTREE", "MAILBOXES"}
)
EVENTS = {
    name.upper(): name
    for name in (
        "MessageNew",
        "MessageExpunge",
        "FlagChange",
        "AnnotationChange",
        "MailboxName",
        "SubscriptionChange",
        "MailboxMetadataChange",
        "ServerMetadataChange",
    )
}


def _mailboxes(r: Reader) -> tuple[str, ...]:
    r.sp("mailbox after the filter")
    if r.peek() != 0x28:
        return (r.mailbox(),)
    r.open_paren("'(' to start mailboxes")
    names = [r.mailbox()]
    while r.maybe_sp():
        names.append(r.mailbox())
        if len(names) > MAX_MAILBOXES:
            r.fail(f"At most {MAX_MAILBOXES} mailboxes per NOTIFY")
    r.close_paren("')' to end mailboxes")
    return tuple(names)


def _events(r: Reader) -> tuple[tuple[str, ...], tuple[FetchAttribute, ...]]:
    if r.peek() != 0x28:
        if r.keyword("events or NONE") != "NONE":
            r.fail("Expected events or NONE")
        return (), ()
    r.open_paren("'(' to start events")
    events: list[str] = []
    fetch: tuple[FetchAttribute, ...] = ()
    while True:
        name = r.keyword("event name")
        event = EVENTS.get(name, name)
        if event in events:
            r.fail(f"Event {event} given twice")
        events.append(event)
        if event == "MessageNew" and r.maybe_sp():
            if r.peek() == 0x28:
                fetch = parse_fetch_attributes(r)
                if not r.maybe_sp():
                    break
        elif not r.maybe_sp():
            break
        if len(events) > len(EVENTS) + 4:
            r.fail("Too many events")
    r.close_paren("')' to end events")
    return tuple(events), fetch


def _group(r: Reader) -> NotifyGroup:
    r.open_paren("'(' to start an event group")
    name = r.keyword("filter")
    if name not in FILTERS:
        r.fail(f"Unknown NOTIFY filter {name}")
    mailboxes = _mailboxes(r) if name in ("SUBTREE", "MAILBOXES") else ()
    r.sp("events after the filter")
    events, fetch = _events(r)
    if name.startswith("SELECTED"):
        if set(events) - MESSAGE_EVENTS:
            r.fail(f"Only message events go with {name}")  # RFC 5465 §6.1
        # RFC 5465 §5.2, §5.3: the selected mailbox's numbers need both or neither, and
        # FlagChange needs them.
        new, expunge = "MessageNew" in events, "MessageExpunge" in events
        if new != expunge or ("FlagChange" in events and not new):
            r.fail(f"{name} needs MessageNew and MessageExpunge together")
    r.close_paren("')' to end the event group")
    return NotifyGroup(name, mailboxes, events, fetch)


def parse_notify(r: Reader, uid: bool) -> Notify:
    r.sp("SET or NONE after NOTIFY")
    verb = r.keyword("SET or NONE after NOTIFY")
    if verb == "NONE":
        return Notify(r.tag, None)
    if verb != "SET":
        r.fail("Expected SET or NONE after NOTIFY")
    r.sp("event groups after NOTIFY SET")
    status = False
    if r.peek() != 0x28:
        if r.keyword("STATUS or an event group") != "STATUS":
            r.fail("Expected STATUS or an event group")
        status = True
        r.sp("event groups after STATUS")
    groups = [_group(r)]
    while r.maybe_sp():
        groups.append(_group(r))
        if len(groups) > MAX_GROUPS:
            r.fail(f"At most {MAX_GROUPS} event groups per NOTIFY")
    named = [g.filter for g in groups if g.filter not in ("SUBTREE", "MAILBOXES")]
    if len(set(named)) != len(named):
        r.fail("A filter may be given once")
    if "SELECTED" in named and "SELECTED-DELAYED" in named:
        r.fail("SELECTED and SELECTED-DELAYED exclude each other")  # RFC 5465 §6.1
    return Notify(r.tag, tuple(groups), status)
