"""One invariant per stage: any bytes compile or raise SieveError; a compiled script runs or
raises RuntimeSieveError, on any message."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from courriel.sieve import (
    Envelope,
    Limits,
    MessageView,
    RuntimeSieveError,
    SieveError,
    compile_script,
    run,
)

PIECES = [
    "require",
    '["fileinto", "variables", "imap4flags", "relational", "body", "date", "index", "include"]',
    "if",
    "elsif",
    "else",
    "{",
    "}",
    "(",
    ")",
    "[",
    "]",
    ",",
    ";",
    "header",
    "address",
    "body",
    "date",
    "string",
    "hasflag",
    ":matches",
    ":contains",
    ":count",
    ":value",
    '"ge"',
    ":index",
    "2",
    ":last",
    '"subject"',
    '"*a?b*"',
    '"${1}${x}"',
    "fileinto",
    "set",
    "addflag",
    "keep",
    "discard",
    "stop",
    "include",
    "not",
    "anyof",
    "true",
    '"x"',
    "text:\r\nline\r\n.\r\n",
]
MESSAGES = st.sampled_from(
    [
        b"",
        b"Subject: ab\r\n\r\n",
        b"Subject: =?x?q?bad?=\r\nDate: garbage\r\nFrom: <<>>\r\n\r\nbody",
        b"Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n\r\n--x--",
    ]
)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(PIECES), max_size=40), MESSAGES)
def test_scripts_compile_and_run_or_fail_in_words(pieces: list[str], raw: bytes) -> None:
    source = " ".join(pieces).encode()
    try:
        script = compile_script(source, Limits(steps=5000))
    except SieveError:
        return
    try:
        run(script, MessageView(raw, Envelope("a@b.c", "d@e.f")), limits=Limits(steps=5000))
    except RuntimeSieveError:
        return


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_any_bytes_compile_or_raise_sieve_error(data: bytes) -> None:
    try:
        compile_script(data)
    except SieveError:
        return
