"""Parsers of GENURLAUTH, RESETKEY and URLFETCH (RFC 4467 §6, §9 formal syntax).

Theory of operation
-------------------
``GENURLAUTH url mechanism *(SP url mechanism)``, ``RESETKEY [mailbox *(SP mechanism)]`` and
``URLFETCH url *(SP url)``. URLs are astrings and are checked by the session
(``courriel.session.urlauth``), which answers a bad one with NO or NIL as RFC 4467 asks. The
number of URLs per command is bounded (``MAX_URLS``) so one command's work stays small.
"""

from __future__ import annotations

from collections.abc import Callable

from courriel.wire.imap.commands import Command, GenUrlAuth, ResetKey, UrlFetch
from courriel.wire.imap.lexer import Reader

MAX_URLS = 20


def _url(r: Reader) -> str:
    return r.astring_text("URL")


def parse_genurlauth(r: Reader, uid: bool) -> GenUrlAuth:
    r.sp("URL after GENURLAUTH")
    items: list[tuple[str, str]] = []
    while True:
        url = _url(r)
        r.sp("mechanism after the URL")
        items.append((url, r.keyword("URLAUTH mechanism")))
        if len(items) > MAX_URLS:
            r.fail(f"At most {MAX_URLS} URLs per command")
        if not r.maybe_sp():
            return GenUrlAuth(r.tag, tuple(items))


def parse_resetkey(r: Reader, uid: bool) -> ResetKey:
    if not r.maybe_sp():
        return ResetKey(r.tag, None)
    mailbox = r.mailbox()
    mechanisms: list[str] = []
    while r.maybe_sp():
        mechanisms.append(r.keyword("URLAUTH mechanism"))
        if len(mechanisms) > MAX_URLS:
            r.fail("Too many mechanisms")
    return ResetKey(r.tag, mailbox, tuple(mechanisms))


def parse_urlfetch(r: Reader, uid: bool) -> UrlFetch:
    r.sp("URL after URLFETCH")
    urls = [_url(r)]
    while r.maybe_sp():
        urls.append(_url(r))
        if len(urls) > MAX_URLS:
            r.fail(f"At most {MAX_URLS} URLs per command")
    return UrlFetch(r.tag, tuple(urls))


URLAUTH_COMMANDS: dict[str, Callable[[Reader, bool], Command]] = {
    "GENURLAUTH": parse_genurlauth,
    "RESETKEY": parse_resetkey,
    "URLFETCH": parse_urlfetch,
}
