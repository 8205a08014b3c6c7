"""The bounds every script and every run of it stays within.

Scripts are written by users and run on every message they receive, so each dimension that
could make a run or a compile cost more than a small constant is bounded, and the bound is
checked where the cost arises: size and string length in the lexer, nesting and the number of
commands in the parser, actions, redirects, includes and steps in the interpreter.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Limits:
    script_bytes: int = 256 * 1024  # one script's source
    string_bytes: int = 64 * 1024  # one string literal (quoted or multi-line)
    nesting: int = 32  # blocks and tests inside each other
    commands: int = 2000  # commands and tests in one script
    list_items: int = 1000  # strings in one string list
    actions: int = 64  # actions one run may take (RFC 5228 §2.10.6 allows a limit)
    redirects: int = 4  # redirect actions one run may take (RFC 5228 §4.2)
    include_depth: int = 5  # RFC 6609 §3.2: nested includes
    includes: int = 20  # scripts one run may include in all
    steps: int = 200_000  # interpreter steps: commands, tests and comparisons
    variable_bytes: int = 4000  # RFC 5229 §6: at least 4000 octets per variable
    variables: int = 256  # distinct variables per run
    body_bytes: int = 1024 * 1024  # the body test looks at this much of the message
    match_bytes: int = 64 * 1024  # longest value a comparison looks at


DEFAULT_LIMITS = Limits()
