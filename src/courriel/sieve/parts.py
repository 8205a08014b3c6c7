"""Small pure rules the interpreter applies: address parts, content types, flag words, and
which actions cannot go together."""

from __future__ import annotations

from collections.abc import Iterable

from courriel.sieve import actions as a
from courriel.sieve.compiler import Op
from courriel.sieve.errors import RuntimeSieveError


def flag_words(values: Iterable[str]) -> list[str]:
    """RFC 5232 §3: each string may hold several flags separated by spaces."""
    return [w for v in values for w in v.split()]


def mailbox_key(name: str) -> str:
    return "INBOX" if name.upper() == "INBOX" else name


def type_matches(ctype: str, wanted: str) -> bool:
    """RFC 5173 §5.2: "" matches any, "text" any text/..., "text/plain" only itself."""
    if not wanted:
        return True
    return ctype == wanted if "/" in wanted else ctype.split("/")[0] == wanted


def address_part(op: Op, addr: str) -> str | None:
    local, at, domain = addr.rpartition("@")
    if not at:
        local, domain = addr, ""
    if op.tags.get(":localpart"):
        return local
    if op.tags.get(":domain"):
        return domain
    if op.tags.get(":user"):
        return local.split("+", 1)[0]  # RFC 5233 §4
    if op.tags.get(":detail"):
        _, plus, detail = local.partition("+")
        return detail if plus else None  # RFC 5233 §4: no separator, no match
    return addr


def check_conflicts(actions: list[a.Action]) -> None:
    if any(isinstance(x, a.Reject) for x in actions):
        # RFC 5429 §2.1: reject cannot be combined with actions that deliver or answer.
        others = [
            type(x).__name__.lower()
            for x in actions
            if isinstance(x, a.Keep | a.FileInto | a.Redirect | a.Vacation)
        ]
        if others:
            raise RuntimeSieveError(f"reject cannot be combined with {', '.join(others)}")
        if sum(isinstance(x, a.Reject) for x in actions) > 1:
            raise RuntimeSieveError("the script rejects the message twice")
