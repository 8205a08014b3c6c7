"""What each Sieve command and test takes: its tags, positional arguments and extension.

The table is read by ``courriel.sieve.compiler``; adding a command is one entry here and one
handler in the interpreter. Tag argument types: ``STRING`` (one string), ``STRINGS`` (a string
list), ``NUMBER``, or ``None`` for a tag that takes no argument.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class Arg(enum.Enum):
    STRING = "a string"
    STRINGS = "a string list"
    NUMBER = "a number"


S, SL, N = Arg.STRING, Arg.STRINGS, Arg.NUMBER


@dataclass(frozen=True, slots=True)
class Spec:
    extension: str | None  # the capability a script must require; None: base language
    positional: tuple[Arg, ...] = ()
    tags: dict[str, Arg | None] = field(default_factory=dict)
    optional_first: bool = False  # the first positional argument may be left out
    matching: bool = False  # takes :comparator and a match type (RFC 5228 §2.7)
    address_part: bool = False  # takes :all / :localpart / :domain (RFC 5228 §2.7.4)
    index: bool = False  # takes :index and :last with the "index" extension (RFC 5260 §6)
    tests: str = ""  # "" none, "one", "list"
    block: bool = False
    exclusive: tuple[frozenset[str], ...] = ()  # tags of which at most one may be given


# Tags that need an extension beyond the command's own.
TAG_EXTENSIONS: dict[str, str] = {
    ":count": "relational",  # RFC 5231 §4
    ":value": "relational",
    ":user": "subaddress",  # RFC 5233 §4
    ":detail": "subaddress",
    ":copy": "copy",  # RFC 3894 §3
    ":create": "mailbox",  # RFC 5490 §3.2
    ":flags": "imap4flags",  # RFC 5232 §5
    ":index": "index",  # RFC 5260 §6
    ":last": "index",
}

MATCH_TYPES = frozenset({":is", ":contains", ":matches", ":count", ":value"})
ADDRESS_PARTS = frozenset({":all", ":localpart", ":domain", ":user", ":detail"})
COMPARATORS = {
    "i;octet": None,  # RFC 4790 §9.3; always there (RFC 5228 §2.7.3)
    "i;ascii-casemap": None,  # RFC 4790 §9.2; always there
    "i;ascii-numeric": "comparator-i;ascii-numeric",  # RFC 4790 §9.1
}
RELATIONS = frozenset({"gt", "ge", "lt", "le", "eq", "ne"})  # RFC 5231 §5

EXTENSIONS = (
    "fileinto",
    "reject",
    "ereject",
    "envelope",
    "body",
    "relational",
    "subaddress",
    "copy",
    "mailbox",
    "date",
    "index",
    "variables",
    "include",
    "imap4flags",
    "vacation",
    "encoded-character",
    "comparator-i;octet",
    "comparator-i;ascii-casemap",
    "comparator-i;ascii-numeric",
)

_FLAGS = {":flags": SL}
_SET_MODIFIERS: dict[str, Arg | None] = dict.fromkeys(
    (":lower", ":upper", ":lowerfirst", ":upperfirst", ":quotewildcard", ":length")
)
_VACATION = {
    ":days": N,
    ":subject": S,
    ":from": S,
    ":addresses": SL,
    ":mime": None,
    ":handle": S,
}

COMMANDS: dict[str, Spec] = {
    "require": Spec(None, (SL,)),
    "if": Spec(None, tests="one", block=True),
    "elsif": Spec(None, tests="one", block=True),
    "else": Spec(None, block=True),
    "stop": Spec(None),
    "keep": Spec(None, tags=dict(_FLAGS)),
    "discard": Spec(None),
    "redirect": Spec(None, (S,), {":copy": None}),
    "fileinto": Spec("fileinto", (S,), {":copy": None, ":create": None, **_FLAGS}),
    "reject": Spec("reject", (S,)),
    "ereject": Spec("ereject", (S,)),
    "vacation": Spec("vacation", (S,), _VACATION),
    "setflag": Spec("imap4flags", (S, SL), optional_first=True),
    "addflag": Spec("imap4flags", (S, SL), optional_first=True),
    "removeflag": Spec("imap4flags", (S, SL), optional_first=True),
    "set": Spec("variables", (S, S), dict(_SET_MODIFIERS)),
    "include": Spec(
        "include",
        (S,),
        {":personal": None, ":global": None, ":once": None, ":optional": None},
        exclusive=(frozenset({":personal", ":global"}),),
    ),
    "return": Spec("include"),
    "global": Spec("include", (SL,)),
}

TESTS: dict[str, Spec] = {
    "address": Spec(None, (SL, SL), matching=True, address_part=True, index=True),
    "envelope": Spec("envelope", (SL, SL), matching=True, address_part=True),
    "header": Spec(None, (SL, SL), matching=True, index=True),
    "exists": Spec(None, (SL,)),
    "size": Spec(
        None, (N,), {":over": None, ":under": None}, exclusive=(frozenset({":over", ":under"}),)
    ),
    "allof": Spec(None, tests="list"),
    "anyof": Spec(None, tests="list"),
    "not": Spec(None, tests="one"),
    "true": Spec(None),
    "false": Spec(None),
    "body": Spec(
        "body",
        (SL,),
        {":raw": None, ":content": SL, ":text": None},
        matching=True,
        exclusive=(frozenset({":raw", ":content", ":text"}),),
    ),
    "date": Spec(
        "date",
        (S, S, SL),
        {":zone": S, ":originalzone": None},
        matching=True,
        index=True,
        exclusive=(frozenset({":zone", ":originalzone"}),),
    ),
    "currentdate": Spec("date", (S, SL), {":zone": S}, matching=True),
    "mailboxexists": Spec("mailbox", (SL,)),
    "hasflag": Spec("imap4flags", (SL, SL), matching=True, optional_first=True),
    "string": Spec("variables", (SL, SL), matching=True),
}
