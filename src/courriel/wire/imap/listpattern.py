"""LIST and LSUB mailbox patterns (RFC 9051 §6.3.9), matched in time linear in the name.

Theory of operation
-------------------
``*`` matches any run of characters and ``%`` any run without the hierarchy delimiter. A
regular expression built from such a pattern (``.*a.*a.*b``) backtracks: 60 wildcards against
a 200-character name never finish, and the whole event loop waits with the client. So a
pattern is compiled instead into a small nondeterministic automaton whose states are positions
in the pattern, and the set of live states is one Python ``int`` used as a bit set (the
shift-and method). Each character of the name costs a few integer operations on that bit set,
whatever the pattern, so one match is O(len(name) * len(pattern) / word size).

Runs of wildcards are first collapsed (``**``, ``*%`` and ``%*`` are ``*``; ``%%`` is ``%``),
so a wildcard is always followed by a literal or by the end, and one shift computes the
closure of the skip moves. State ``i`` means "the first ``i`` pattern elements are matched";
the name matches when the final state is live after its last character.

INBOX is case-insensitive (RFC 9051 §5.1): when a pattern starts with the five letters, in any
case, they match the first five characters of a name in any case.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_PATTERN_CHARS = 1024  # longer than any real mailbox path; bounds the cost of one match
MAX_PATTERNS = 64  # patterns in one LIST command (RFC 5258 §3 allows a list)


class PatternTooLong(ValueError):  # noqa: N818 - reads as "listpattern.PatternTooLong"
    """The pattern is longer than ``MAX_PATTERN_CHARS``."""


@dataclass(frozen=True, slots=True)
class ListPattern:
    """A compiled pattern; ``matches(name)`` is linear in ``len(name)``."""

    inbox: bool  # the pattern began with INBOX in some case: compare those five loosely
    literals: dict[str, int]  # character -> bit set of the positions holding it
    star: int  # positions holding "*"
    percent: int  # positions holding "%"
    final: int  # the accepting state's bit
    delimiter: str

    def matches(self, name: str) -> bool:
        if self.inbox:
            if name[:5].upper() != "INBOX":
                return False
            name = name[5:]
        literals, star, percent, delimiter = self.literals, self.star, self.percent, self.delimiter
        wild = star | percent
        live = 1 | ((1 & wild) << 1)  # state 0 and, past a leading wildcard, state 1
        for ch in name:
            nxt = ((live & literals.get(ch, 0)) << 1) | (live & star)
            if ch != delimiter:
                nxt |= live & percent
            # Closure: a wildcard may stop here, so the literal after it is live too.
            live = nxt | ((nxt & wild) << 1)
            if not live:
                return False
        return bool(live & self.final)


def _collapse(pattern: str) -> list[str]:
    out: list[str] = []
    for ch in pattern:
        if ch in "*%" and out and out[-1] in "*%":
            out[-1] = "*" if "*" in (ch, out[-1]) else "%"
        else:
            out.append(ch)
    return out


def compile_pattern(reference: str, pattern: str, delimiter: str = "/") -> ListPattern:
    """The pattern for ``LIST reference pattern``; ``PatternTooLong`` past the limit."""
    full = pattern if pattern.startswith(delimiter) or not reference else reference + pattern
    if len(full) > MAX_PATTERN_CHARS:
        raise PatternTooLong(f"Mailbox pattern longer than {MAX_PATTERN_CHARS} characters")
    inbox = full[:5].upper() == "INBOX"
    elements = _collapse(full[5:] if inbox else full)
    literals: dict[str, int] = {}
    star = percent = 0
    for i, ch in enumerate(elements):
        bit = 1 << i
        if ch == "*":
            star |= bit
        elif ch == "%":
            percent |= bit
        else:
            literals[ch] = literals.get(ch, 0) | bit
    return ListPattern(inbox, literals, star, percent, 1 << len(elements), delimiter)
