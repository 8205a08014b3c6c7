"""Parsers of GENURLAUTH, RESETKEY and URLFETCH (RFC 4467 §6, §9 formal syntax).

Theory of operation
-------------------
``GENURLAUTH url mechanism *(SP url mechanism)``, ``RESETKEY [mailbox *(SP mechanism)]`` and
``URLFETCH url *(SP url)``, where each URL may come as ``(url *(SP param))`` with the
parameters of RFC 5524 (URLAUTH=BINARY). URLs are astrings and are checked by the session
(``courriel.session.urlauth``), which answers a bad one with NO or NIL as RFC 4467 asks; a
parameter other than BODYPARTSTRUCTURE, BINARY and BODY, one given twice, or BINARY with BODY
(RFC 5524 §3.1: clients MUST NOT) is BAD. The number of URLs per command is bounded
(``MAX_URLS``) so one command's work stays small.
"""

from __future__ import annotations

from collections.abc import Callable

from courriel.wire.imap.commands import Command, GenUrlAuth, ResetKey, UrlFetch, UrlFetchItem
from courriel.wire.imap.lexer import Reader

MAX_URLS = 20
URLFETCH_PARAMS = ("BODYPARTSTRUCTURE", "BINARY", "BODY")  # RFC 5524 §3.1


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


def _urlfetch_item(r: Reader) -> UrlFetchItem:
    if not r.maybe_char(0x28):
        return UrlFetchItem(_url(r))
    url = _url(r)  # RFC 5524 §5 url-fetch-ext: "(" url-full *(SP url-fetch-param) ")"
    params: list[str] = []
    while r.maybe_sp():
        param = r.keyword("URLFETCH parameter")
        if param not in URLFETCH_PARAMS:
            r.fail(f"Unknown URLFETCH parameter {param}")
        if param in params:
            r.fail(f"{param} given twice for one URL")  # RFC 5524 §3.1
        params.append(param)
    if "BINARY" in params and "BODY" in params:
        r.fail("BINARY and BODY exclude each other")  # RFC 5524 §3.1
    r.char(0x29, "')' after the URLFETCH parameters")
    return UrlFetchItem(url, tuple(params))


def parse_urlfetch(r: Reader, uid: bool) -> UrlFetch:
    r.sp("URL after URLFETCH")
    items = [_urlfetch_item(r)]
    while r.maybe_sp():
        items.append(_urlfetch_item(r))
        if len(items) > MAX_URLS:
            r.fail(f"At most {MAX_URLS} URLs per command")
    return UrlFetch(r.tag, tuple(items))


URLAUTH_COMMANDS: dict[str, Callable[[Reader, bool], Command]] = {
    "GENURLAUTH": parse_genurlauth,
    "RESETKEY": parse_resetkey,
    "URLFETCH": parse_urlfetch,
}
