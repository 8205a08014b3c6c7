"""The keys SORT and THREAD compare (RFC 5256, RFC 5957), made once per message from its parse.

Theory of operation
-------------------
SORT and THREAD over a large mailbox must not read every message's parse, let alone the
message: ``keys_of(meta)`` reduces the stored parse to the few strings they compare, the store
keeps them in one text column beside the message (``encode``; written at append, filled on
first use for messages stored before the column existed), and a SORT reads that column alone
(``decode``). What is kept, per RFC 5256 §3 and RFC 5957 §3:

* the base subject (RFC 5256 §2.1), upper-cased for the ``i;ascii-casemap`` comparator, and
  whether the subject said it was a reply or a forward (THREAD=REFERENCES step 5 needs it);
* the ``addr-mailbox`` of the first From, To and Cc address (SORT FROM, TO, CC), a group's
  name when the field starts with a group;
* the display name of the first From and To address, or its ``mailbox@host`` when it has
  none (SORT DISPLAYFROM, DISPLAYTO, RFC 5957 §3), case-folded;
* the sent date, the Date field in seconds since the epoch, empty when it cannot be read (the
  session then uses the internal date, RFC 5256 §2.2);
* the Message-ID and the message ids of References (or, when References holds none, the first
  of In-Reply-To), for THREAD=REFERENCES (RFC 5256 §3 step 1).

A missing field gives an empty string, which sorts first (RFC 5256 §3: "If the field is
missing, the empty string is used"). The encoded form is the fields joined by U+001F after a
version number; control characters never reach it, so no field can split.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from courriel.mail import envelope
from courriel.mail.message import MetaFormatError, SearchFields, search_fields_of

__all__ = [
    "EMPTY",
    "SortKeys",
    "base_subject",
    "decode",
    "encode",
    "field",
    "fields",
    "keys_of",
    "keys_of_fields",
    "message_ids",
]

VERSION = "1"
_SEP = "\x1f"
_FIELDS = 11  # the version and the ten keys
# Positions in ``fields(text)``, which a SORT over many messages reads without ``decode``.
SUBJECT, REPLY, FROM, TO, CC, DISPLAY_FROM, DISPLAY_TO, SENT, MESSAGE_ID, REFERENCES = range(1, 11)
EMPTY: tuple[str, ...] = (VERSION, *("",) * (_FIELDS - 1))  # no keys: every one empty
_CONTROLS = re.compile(r"[\x00-\x1f\x7f]+")
_SPACES = re.compile(r"[ \t\r\n]+")
# RFC 5256 §5: subj-trailer = "(fwd)" / WSP
_TRAILER = re.compile(r"(?:\(fwd\)| )\Z", re.IGNORECASE)
# subj-blob = "[" *BLOBCHAR "]" *WSP; subj-refwd = ("re" / ("fw" ["d"])) *WSP [subj-blob] ":"
_BLOB = r"\[[^\[\]]*\] *"
_REFWD = rf"(?:re|fwd?) *(?:{_BLOB})?:"
_LEADER = re.compile(rf"(?:(?:{_BLOB})*{_REFWD}| )", re.IGNORECASE)
_BLOB_RE = re.compile(_BLOB)
_MSG_ID = re.compile(r"<([^<>]+)>")
_ASCII_UPPER = str.maketrans("abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ")


@dataclass(frozen=True, slots=True)
class SortKeys:
    subject: str  # base subject, ASCII letters upper-cased
    reply: bool  # the subject had a "Re:", "Fwd:", "(fwd)" or "[fwd: ...]"
    sort_from: str  # addr-mailbox of the first From address, ASCII upper-cased
    sort_to: str
    sort_cc: str
    display_from: str  # RFC 5957: display name, or mailbox@host; case-folded
    display_to: str
    sent: int | None  # Date in seconds since the epoch; None: unreadable or absent
    message_id: str  # without the angle brackets; "" when absent
    references: tuple[str, ...]  # parents, oldest first


def base_subject(subject: str) -> tuple[str, bool]:
    """RFC 5256 §2.1: the base subject of a decoded subject, and whether it was a reply or
    forward (a subj-refwd, a "(fwd)" trailer or a "[fwd: ...]" wrapper was removed)."""
    # §2.1 (1): encoded words are decoded already; tabs and continuations become one space
    text = _SPACES.sub(" ", _CONTROLS.sub(" ", subject))
    reply = False
    while True:
        # (2): trailers, repeatedly
        while (m := _TRAILER.search(text)) is not None:
            reply |= m.group() != " "
            text = text[: m.start()]
        while True:
            # (3): leaders; (4): a leading blob, unless nothing would be left; (5): repeat
            m = _LEADER.match(text)
            if m is not None and m.end() > 0:
                reply |= m.group() != " "
                text = text[m.end() :]
                continue
            b = _BLOB_RE.match(text)
            if b is not None and text[b.end() :]:
                text = text[b.end() :]
                continue
            break
        # (6): "[fwd: ...]" around the rest is removed and the steps repeated
        if text[:5].lower() == "[fwd:" and text.endswith("]"):
            text = text[5:-1]
            reply = True
            continue
        return text, reply


def message_ids(value: str) -> list[str]:
    """The msg-ids in a References or In-Reply-To value, in order, without brackets."""
    return [i for m in _MSG_ID.findall(value) if (i := "".join(m.split()))]


def _utf8(text: str | None) -> str:
    """``envelope.parse_addresses`` reads bytes as Latin-1: its parts back as UTF-8."""
    return "" if text is None else text.encode("latin-1").decode("utf-8", "replace")


def _first_address(value: str | None) -> envelope.Address | None:
    """The first address as ENVELOPE lists it: a group's start counts, its name in the
    mailbox part and no host (RFC 9051 §7.5.2), as Dovecot sorts it; a group's end does not."""
    if not value:
        return None
    for address in envelope.parse_addresses(value.encode("utf-8")):
        if address.mailbox is not None:
            return address
    return None


def _mailbox(address: envelope.Address | None) -> str:
    return "" if address is None else _utf8(address.mailbox).translate(_ASCII_UPPER)


def _display(address: envelope.Address | None) -> str:
    """RFC 5957 §3: the display name, or the addr-spec when there is none."""
    if address is None:
        return ""
    name = _utf8(address.name).strip()
    if not name and address.host is None:  # a group's name, or a mailbox without a domain
        name = _utf8(address.mailbox)
    elif not name:
        name = f"{_utf8(address.mailbox)}@{_utf8(address.host)}"
    return name.casefold()


def keys_of(meta: bytes) -> SortKeys | None:
    """The keys of a message from its stored parse; None if the parse cannot be read."""
    try:
        fields = search_fields_of(meta)
    except MetaFormatError:
        return None
    return keys_of_fields(fields)


def keys_of_fields(fields: SearchFields) -> SortKeys:
    """The keys of a message from the header fields of its parse (``search_fields_of``)."""
    headers = fields.text_headers
    subject, reply = base_subject(headers.get("subject", ""))
    first_from = _first_address(headers.get("from"))
    first_to = _first_address(headers.get("to"))
    ids = message_ids(headers.get("message-id", ""))
    refs = message_ids(headers.get("references", ""))
    if not refs:
        refs = message_ids(headers.get("in-reply-to", ""))[:1]  # RFC 5256 §3 REFERENCES 1
    return SortKeys(
        subject=subject.translate(_ASCII_UPPER),
        reply=reply,
        sort_from=_mailbox(first_from),
        sort_to=_mailbox(first_to),
        sort_cc=_mailbox(_first_address(headers.get("cc"))),
        display_from=_display(first_from),
        display_to=_display(first_to),
        sent=None if fields.date is None else int(fields.date.timestamp()),
        message_id=ids[0] if ids else "",
        references=tuple(refs),
    )


def _clean(text: str) -> str:
    return _CONTROLS.sub(" ", text)


def encode(keys: SortKeys) -> str:
    """The stored form: the version and the keys joined by U+001F."""
    return _SEP.join(
        (
            VERSION,
            _clean(keys.subject),
            "1" if keys.reply else "",
            _clean(keys.sort_from),
            _clean(keys.sort_to),
            _clean(keys.sort_cc),
            _clean(keys.display_from),
            _clean(keys.display_to),
            "" if keys.sent is None else str(keys.sent),
            _clean(keys.message_id),
            " ".join(_clean(r).replace(" ", "") for r in keys.references),
        )
    )


def fields(text: str | None) -> Sequence[str]:
    """The stored keys split at their positions (``SUBJECT`` ...), all strings; ``EMPTY`` for
    none, another version or a damaged value. The cheap read a large SORT makes."""
    if not text:
        return EMPTY
    parts = text.split(_SEP)
    return parts if len(parts) == _FIELDS and parts[0] == VERSION else EMPTY


def field(text: str | None, position: int) -> str:
    """One key of the stored text (``SUBJECT`` ...), split no further than needed; "" for
    none, another version or a damaged value."""
    if not text:
        return ""
    parts = text.split(_SEP, position + 1)
    return parts[position] if len(parts) > position and parts[0] == VERSION else ""


def decode(text: str) -> SortKeys | None:
    """``encode`` read back; None for another version or a damaged value."""
    parts = fields(text)
    if parts is EMPTY:
        return None
    _, subject, reply, s_from, s_to, s_cc, d_from, d_to, sent, msgid, refs = parts
    try:
        when = int(sent) if sent else None
    except ValueError:
        return None
    return SortKeys(
        subject, reply == "1", s_from, s_to, s_cc, d_from, d_to, when, msgid, tuple(refs.split())
    )


def encoded_keys_of(meta: bytes) -> str | None:
    """``encode(keys_of(meta))``, or None when the parse cannot be read."""
    keys = keys_of(meta)
    return None if keys is None else encode(keys)
