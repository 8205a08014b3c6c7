"""Compiling Sieve scripts: the grammar (RFC 5228 §8), require, argument checks, and limits."""

from __future__ import annotations

import time

import pytest

from courriel.sieve import LimitExceeded, Limits, SieveError, compile_script

GOOD = [
    b"keep;",
    b"",
    b"# only a comment\r\n/* and a\r\nbracketed one */",
    b'require "fileinto"; fileinto "Archive";',
    b'require ["fileinto", "copy"]; fileinto :copy "A";',
    b'if header :contains ["from", "sender"] ["bank", "shop"] { discard; } else { keep; }',
    b"if size :over 100K { discard; } elsif size :under 1M { keep; }",
    b'if anyof (true, not false, allof (exists "from", true)) { stop; }',
    b'if address :domain :is "from" "example.org" { keep; }',
    b'require "relational"; if header :count "ge" "received" "5" { discard; }',
    b'require "subaddress"; if address :detail "to" "lists" { keep; }',
    b'require "envelope"; if envelope :all :is "from" "" { discard; }',
    b'require "body"; if body :content "text" :contains "x" { keep; }',
    b'require ["date", "relational"]; if date :value "ge" "date" "year" "2020" { keep; }',
    b'require "date"; if currentdate :zone "+0100" :is "weekday" "0" { keep; }',
    b'require "index"; if header :index 2 :last "received" "x" { keep; }',
    b'require ["variables"]; set :lower :upperfirst "a" "B"; if string "${a}" "b" { keep; }',
    b'require "imap4flags"; setflag "\\\\Seen"; addflag "f" ["a", "b"]; removeflag "a";',
    b'require "include"; include :personal :once :optional "x"; global "g"; return;',
    b'require "vacation"; vacation :days 3 :subject "s" :from "a@b.c" :addresses ["x@y.z"] "r";',
    b'require "vacation"; vacation :mime :handle "h" text:\r\n'
    b"Content-Type: text/plain\r\n\r\nHi\r\n.\r\n;",
    b'require ["reject", "ereject"]; if false { reject "no"; } else { ereject "no"; }',
    b'require ["mailbox", "fileinto"]; if mailboxexists "A" { fileinto :create "A"; }',
    b'require "comparator-i;ascii-numeric"; if header :comparator "i;ascii-numeric" "x" "1" {}',
    b'redirect "a@example.org";',
]


@pytest.mark.parametrize("script", GOOD)
def test_good_scripts_compile(script: bytes) -> None:
    compile_script(script)


BAD = [
    (b"keep", 'expected ";"'),
    (b"keep; }", "expected a command"),
    (b"if true { keep;", "never closed"),
    (b'fileinto "x";', 'needs require "fileinto"'),
    (b'require "nonsense";', 'extension "nonsense" is not supported'),
    (b'keep; require "fileinto";', "must come before"),
    (b"frobnicate;", "unknown command"),
    (b"if frob { keep; }", "unknown test"),
    (b"else { keep; }", 'must follow "if"'),
    (b"if true { keep; } else { keep; } elsif true { keep; }", 'must follow "if"'),
    (b'if header :is :contains "a" "b" { keep; }', "cannot be given together"),
    (b'if header :regex "a" "b" { keep; }', ":regex match type is not supported"),
    (b'if header :count "ge" "a" "1" {}', 'needs require "relational"'),
    (b'require "relational"; if header :value "xx" "a" "1" {}', ":value takes one of"),
    (b'if header :comparator "i;unknown" "a" "b" {}', 'comparator "i;unknown" is not supported'),
    (b"if size 10 { keep; }", "needs :over or :under"),
    (b'if header "a" { keep; }', "takes 2 argument(s)"),
    (b'redirect ["a@b.c", "d@e.f"];', "must be one string"),
    (b'keep "x";', "takes 0 argument(s)"),
    (b"if true keep;", "takes no test"),
    (b"if true;", "needs a block"),
    (b"stop { keep; }", "takes no block"),
    (b"if not (true, false) { keep; }", "exactly one test"),
    (b'"unterminated', "never closed"),
    (b"/* unterminated", "never closed"),
    (b"keep \x01;", "unexpected character"),
    (b"if size :over \xdb\xb0 {}", "unexpected character"),  # a digit, but not an ASCII one
    (b"keep; \xff", "not valid UTF-8"),
    (b'require "encoded-character"; keep; if header "a" "${hex:ff}" {}', "not valid UTF-8"),
    (b'if header :index 0 :last "a" "b" {}', 'needs require "index"'),
]


@pytest.mark.parametrize(("script", "words"), BAD)
def test_bad_scripts_say_why_with_a_line(script: bytes, words: str) -> None:
    with pytest.raises(SieveError) as info:
        compile_script(script)
    assert words in str(info.value)


def test_errors_name_the_line() -> None:
    with pytest.raises(SieveError) as info:
        compile_script(b'require "fileinto";\r\n\r\nif true {\r\n  frob;\r\n}\r\n')
    assert info.value.line == 4
    assert str(info.value).startswith("line 4: ")


def test_strings_escapes_multiline_and_encoded_characters() -> None:
    script = compile_script(
        b'require ["encoded-character", "fileinto"];\r\n'
        b'fileinto "a\\"b\\\\c\\d";\r\n'
        b'fileinto "${hex:c3 a9}${unicode:1F600}${hex:zz}";\r\n'
        b"fileinto text: # comment\r\n..dotted\r\nline\r\n.\r\n;\r\n"
    )
    names = [op.text(0) for op in script.commands]
    assert names == ['a"b\\cd', "\u00e9\U0001f600${hex:zz}", ".dotted\r\nline\r\n"]


def test_numbers_take_quantifiers() -> None:
    script = compile_script(b"if size :over 2K { keep; } if size :under 1G { keep; }")
    assert [op.branches[0][0].args[0] for op in script.commands] == [2048, 1 << 30]  # type: ignore[union-attr]


# --- limits: each one refused at compile (upload) time, with a clear sentence ---------------


def test_deep_nesting_is_refused_quickly() -> None:
    deep = b"if true {" * 10_000 + b"keep;" + b"}" * 10_000
    started = time.perf_counter()
    with pytest.raises(LimitExceeded, match="nest deeper than 32"):
        compile_script(deep)
    nested_tests = b"if " + b"not " * 10_000 + b"true { keep; }"
    with pytest.raises(LimitExceeded, match="nest deeper than 32"):
        compile_script(nested_tests)
    lists = b"if " + b"anyof(" * 10_000 + b"true" + b")" * 10_000 + b" {}"
    with pytest.raises(LimitExceeded, match="nest deeper"):
        compile_script(lists)
    assert time.perf_counter() - started < 1.0


def test_huge_strings_and_scripts_are_refused() -> None:
    with pytest.raises(LimitExceeded, match="string is longer than 65536 bytes"):
        compile_script(b'redirect "' + b"a" * 70_000 + b'";')
    with pytest.raises(LimitExceeded, match="string is longer"):
        compile_script(
            b"redirect text:\r\n" + b"a" * 1000 + b"\r\n" * 100 + b"a" * 70_000 + b"\r\n.\r\n;"
        )
    with pytest.raises(LimitExceeded, match="script is larger than 262144 bytes"):
        compile_script(b"keep;" * 60_000)


def test_too_many_commands_and_list_items() -> None:
    with pytest.raises(LimitExceeded, match="more than 2000 commands"):
        compile_script(b"keep;" * 2001)
    items = b", ".join(b'"x"' for _ in range(1001))
    with pytest.raises(LimitExceeded, match="more than 1000 strings"):
        compile_script(b'if header :is "a" [' + items + b"] { keep; }")


def test_limits_can_be_set() -> None:
    small = Limits(nesting=2, commands=5)
    compile_script(b"if true { if true { keep; } }", small)
    with pytest.raises(LimitExceeded):
        compile_script(b"if true { if true { if true { keep; } } }", small)
    with pytest.raises(LimitExceeded):
        compile_script(b"keep; keep; keep; keep; keep; keep;", small)
