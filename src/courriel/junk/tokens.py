"""The tokens a message is judged by: words of its text and a few marked header features.

Theory of operation
-------------------
``tokens`` parses the message with the standard library (``compat32``, which never raises on
bad headers), takes the decoded text of its text/plain and text/html parts (tags stripped, the
host names of links kept as ``url:`` tokens), the words of its Subject (``subject:``), the
domain of its From address (``from:``) and the kinds of its parts (``part:``). Words are
lower-cased runs of 3 to 24 letters or digits; a run of digits alone is skipped (prices, dates
and ids teach nothing lasting). At most ``MAX_TEXT`` characters of text are read and at most
``MAX_TOKENS`` distinct tokens kept, in order of first appearance, from the first
``MAX_BYTES`` of the message, so a huge message costs the same as a large one. The result is
a sorted tuple: the same bytes give the same tokens, which is what lets a message be unlearned
exactly.

``digest`` names a message by its stored bytes, so a message keeps its name through COPY and
MOVE. Header fields other than Subject and From give no tokens: the trace and filter fields
this server adds (Received, Authentication-Results, X-Spam-Status) must not teach the filter.
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import re
from email.message import Message
from email.utils import getaddresses

MAX_BYTES = 1024 * 1024  # bytes of a message parsed at all (a cut MIME tree parses fine)
MAX_TEXT = 200_000  # characters of text looked at
MAX_TOKENS = 1000  # distinct tokens kept per message
MAX_PARTS = 50  # MIME parts looked at
LARGE = 64 * 1024  # messages above this are tokenised in a worker thread by callers

_WORD = re.compile(r"[^\W_]{3,24}")
_TAG = re.compile(r"<[^>]{0,2000}>")
_URL = re.compile(r"https?://([a-z0-9.-]{1,253})", re.IGNORECASE)
_ENTITY = re.compile(r"&[a-z#0-9]{1,10};", re.IGNORECASE)


def digest(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()[:40]


def _text(part: Message) -> str:
    try:
        payload = part.get_payload(decode=True)
    except (ValueError, LookupError, AssertionError):  # a broken encoding teaches nothing
        return ""
    if not isinstance(payload, bytes):
        return ""
    try:
        return payload.decode(part.get_content_charset() or "utf-8", "replace")
    except (LookupError, ValueError):  # an unknown or malformed charset name
        return payload.decode("utf-8", "replace")


def _words(text: str) -> list[str]:
    return [w for w in (m.lower() for m in _WORD.findall(text)) if not w.isdigit()]


def tokens(raw: bytes) -> tuple[str, ...]:
    """The sorted distinct tokens of ``raw`` (see the module docstring)."""
    msg = email.message_from_bytes(raw[:MAX_BYTES], policy=email.policy.compat32)
    found: dict[str, None] = {}

    def add(token: str) -> None:
        if len(found) < MAX_TOKENS:
            found[token] = None

    for word in _words(str(msg.get("Subject", ""))):
        add("subject:" + word)
    for _name, address in getaddresses([str(v) for v in msg.get_all("From", [])])[:3]:
        domain = address.rpartition("@")[2].lower().strip()
        if domain:
            add("from:" + domain[:60])
    budget = MAX_TEXT
    for n, part in enumerate(msg.walk()):
        if n >= MAX_PARTS or budget <= 0:
            break
        kind = part.get_content_type()
        add("part:" + kind[:40])
        if part.get_content_maintype() != "text":
            continue
        text = _text(part)[:budget]
        budget -= len(text)
        if kind == "text/html":
            for host in _URL.findall(text):
                add("url:" + host.lower()[:60])
            text = _ENTITY.sub(" ", _TAG.sub(" ", text))
        for word in _words(text):
            if len(found) >= MAX_TOKENS:
                break
            add(word)
    return tuple(sorted(found))
