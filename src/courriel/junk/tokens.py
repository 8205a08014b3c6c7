"""The tokens a message is judged by: words of its text and a few marked header features.

Theory of operation
-------------------
``tokens`` reads the message's ``courriel.junk.view.View`` (its header fields and the decoded
text of its first text/plain and text/html parts, as the standard library's ``compat32``
parse gives them), takes the text (tags stripped from HTML, the host names of links kept as
``url:`` tokens), the words of its Subject (``subject:``), the domain of its From address
(``from:``) and the kinds of its parts (``part:``). Words are lower-cased runs of 3 to 24
letters or digits; a run of digits alone is skipped (prices, dates and ids teach nothing
lasting). At most ``view.MAX_TEXT`` characters of text are read (the first ones) and at most
``MAX_TOKENS`` distinct tokens kept, in order of first appearance, from the first
``view.MAX_BYTES`` of the message, so a huge message costs the same as a large one. The
result is a sorted tuple: the same bytes give the same tokens, which is what lets a message be
unlearned exactly.

``digest`` names a message by its stored bytes, so a message keeps its name through COPY and
MOVE. Header fields other than Subject and From give no tokens: the trace and filter fields
this server adds (Received, Authentication-Results, X-Spam-Status) must not teach the filter.
"""

from __future__ import annotations

import hashlib
import re

from courriel.junk import view
from courriel.junk.view import MAX_BYTES, MAX_PARTS, MAX_TEXT, View
from courriel.mail.message import MessageMeta

__all__ = ["LARGE", "MAX_BYTES", "MAX_PARTS", "MAX_TEXT", "MAX_TOKENS", "digest", "tokens"]

MAX_TOKENS = 1000  # distinct tokens kept per message
LARGE = 64 * 1024  # messages above this are tokenised in a worker thread by callers

_LONGEST = 24
_WORD = re.compile(r"[^\W_]{3,24}")
_TAG = re.compile(r"<[^>]{0,2000}>")
_URL = re.compile(r"https?://([a-z0-9.-]{1,253})", re.IGNORECASE)
_ENTITY = re.compile(r"&[a-z#0-9]{1,10};", re.IGNORECASE)


def digest(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()[:40]


# Bytes that can be part of a word, from ``text.encode()``: ASCII letters and digits, and every
# byte of a non-ASCII character (``_words`` blanks the non-ASCII ones that are not letters).
_WORD_BYTES = bytes(
    b if b >= 0x80 or chr(b).isalnum() else 0x20 for b in range(256)
)  # fmt: skip
_NON_ASCII = re.compile(r"[^\x00-\x7f]")


def _words(text: str) -> list[str]:
    """The lower-cased words of ``text``: ``_WORD``'s matches, each lowered, in order of
    first appearance, digit runs included (``of_view`` drops them once the words are
    distinct); a word repeated may appear more than once (its spellings in capitals).

    ``_WORD.findall`` costs about 60 ns a character, so the same words are found with
    operations that run in C: every character that is not a letter or digit (what ``_WORD``
    calls a word character, ``str.isalnum``) becomes a space -- by ``translate`` on the UTF-8
    bytes for ASCII, by ``replace`` for each other such character the text holds -- and
    ``split`` leaves the runs of word characters, of which the first of each spelling is
    kept (a repeated run repeats its matches, which teach nothing new). A run of 3 to 24
    characters is one match; a longer one is cut every 24 characters, as the pattern's bound
    cuts it. One ``lower`` over the matches joined by spaces lowers each as alone: a space
    is neither cased nor case-ignorable, so no word's context (Greek final sigma) crosses it.
    """
    data = text.encode("utf-8", "surrogatepass").translate(_WORD_BYTES)
    if not data.isascii():
        for c in set(_NON_ASCII.findall(text)):
            if not c.isalnum():
                data = data.replace(c.encode("utf-8", "surrogatepass"), b" ")
    runs = list(dict.fromkeys(data.decode("utf-8", "surrogatepass").split()))
    if runs and max(map(len, runs)) > _LONGEST:
        found = []
        for run in runs:
            n = len(run)
            found += [run[i : i + _LONGEST] for i in range(0, n, _LONGEST) if n - i > 2]
    else:
        found = [run for run in runs if len(run) > 2]
    return " ".join(found).lower().split(" ") if found else []


def tokens(raw: bytes, meta: MessageMeta | None = None) -> tuple[str, ...]:
    """The sorted distinct tokens of ``raw`` (see the module docstring); ``meta`` is its
    parse (``courriel.mail.message.parse``) when the caller has it."""
    return of_view(view.of(raw, meta))


def of_view(v: View) -> tuple[str, ...]:
    """The tokens of a message's view: every candidate in order, then the first
    ``MAX_TOKENS`` distinct ones that are not digits alone."""
    found = ["subject:" + w for w in _words(v.token_header.subject) if not w.isdigit()]
    for _name, address in view.addresses(v.token_header.froms)[:3]:
        domain = address.rpartition("@")[2].lower().strip()
        if domain:
            found.append("from:" + domain[:60])
    for kind, text in v.parts:
        found.append("part:" + kind[:40])
        if text is None:
            continue
        if kind == "text/html":
            found += ["url:" + host.lower()[:60] for host in _URL.findall(text)]
            text = _ENTITY.sub(" ", _TAG.sub(" ", text))
        found += _words(text)
    distinct = [t for t in dict.fromkeys(found) if not t.isdigit()]
    return tuple(sorted(distinct[:MAX_TOKENS]))
