"""Running Sieve scripts: what each command, test and extension decides for a message."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from courriel.sieve import (
    Envelope,
    Limits,
    MessageView,
    RuntimeSieveError,
    compile_script,
    run,
)
from courriel.sieve import actions as a
from courriel.sieve.compiler import Script

MESSAGE = (
    b"Received: from a by b; Tue, 1 Dec 2026 09:00:00 +0000\r\n"
    b"Received: from c by d; Tue, 1 Dec 2026 08:00:00 +0000\r\n"
    b"From: Bank Billing <Billing+Invoices@Bank.Example>\r\n"
    b"To: Ann <ann+shopping@example.org>, bob@example.org\r\n"
    b"Cc: undisclosed-recipients:;\r\n"
    b"Subject: =?utf-8?q?Facture_n=C2=B0_42?= for November\r\n"
    b"Date: Tue, 1 Dec 2026 10:30:00 +0100\r\n"
    b"Message-ID: <m1@bank.example>\r\n"
    b"X-Priority: 2\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: multipart/alternative; boundary="b"\r\n'
    b"\r\n"
    b"--b\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: quoted-printable\r\n"
    b"\r\n"
    b"Please pay =E2=82=AC 12 now.\r\n"
    b"--b\r\n"
    b"Content-Type: text/html\r\n"
    b"\r\n"
    b"<p>HTML only words</p>\r\n"
    b"--b--\r\n"
)
NOW = datetime(2026, 12, 6, 3, 0, 0, tzinfo=UTC)  # a Sunday


def view(raw: bytes = MESSAGE, sender: str = "billing@bank.example") -> MessageView:
    return MessageView(raw, Envelope(sender, "ann+shopping@example.org", ""))


def actions(
    script: str,
    raw: bytes = MESSAGE,
    *,
    sender: str = "billing@bank.example",
    mailboxes: frozenset[str] = frozenset({"INBOX", "Archive"}),
    includes: dict[tuple[str, str], Script] | None = None,
    limits: Limits | None = None,
) -> list[a.Action]:
    compiled = compile_script(script.encode(), limits or Limits())
    outcome = run(
        compiled,
        view(raw, sender),
        mailboxes=mailboxes,
        includes=includes,
        limits=limits or Limits(),
        now=lambda: NOW,
    )
    return outcome.actions


KEEP = a.Keep(implicit=True)


def filed(name: str, flags: frozenset[str] = frozenset()) -> a.FileInto:
    return a.FileInto(name, flags)


def test_implicit_keep_and_its_cancellation() -> None:
    assert actions("") == [KEEP]
    assert actions("keep;") == [a.Keep()]
    assert actions("discard;") == [a.Discard()]
    assert actions('require "fileinto"; fileinto "Archive";') == [filed("Archive")]
    assert actions('redirect "x@example.net";') == [a.Redirect("x@example.net")]
    assert actions("stop; discard;") == [KEEP]


@pytest.mark.parametrize(
    ("test", "expected"),
    [
        ('header :contains "subject" "n\u00b0 42"', True),  # RFC 2047 decoded before matching
        ('header :is "subject" "facture n\u00b0 42 for november"', True),  # casemap default
        ('header :comparator "i;octet" :is "subject" "facture n\u00b0 42 for november"', False),
        ('header :matches "subject" "Facture*November"', True),
        ('header :matches "subject" "Facture?n*"', True),
        ('header :matches "subject" "*\\\\*"', False),  # an escaped star is a star
        ('header :is "x-missing" ""', False),
        ('exists ["from", "date"]', True),
        ('exists ["from", "x-missing"]', False),
        ('address :is "from" "billing+invoices@bank.example"', True),
        ('address :localpart :is "from" "billing+invoices"', True),
        ('address :domain :is "from" "bank.example"', True),
        ('address :all :contains "to" "bob@"', True),
        ('address :is "cc" "x"', False),  # an empty group holds no address
        ("size :over 500", True),
        ("size :under 500", False),
        ("not true", False),
        ("anyof (false, true)", True),
        ("allof (true, false)", False),
    ],
)
def test_base_tests(test: str, expected: bool) -> None:
    result = actions(f"if {test} {{ discard; }}")
    assert (result == [a.Discard()]) is expected


@pytest.mark.parametrize(
    ("test", "expected"),
    [
        ('envelope :is "from" "billing@bank.example"', True),
        ('envelope :domain :is "to" "example.org"', True),
        ('envelope :user "to" "ann"', True),  # RFC 5233
        ('envelope :detail "to" "shopping"', True),
        ('address :detail "from" "invoices"', True),
        ('address :user :is "to" "bob"', True),
        ('address :detail :is "to" ""', False),  # bob@ has no detail: no match
        ('header :count "eq" "received" "2"', True),  # RFC 5231
        ('header :count "gt" ["received", "from"] "2"', True),
        ('header :value "lt" :comparator "i;ascii-numeric" "x-priority" "3"', True),
        ('header :value "gt" :comparator "i;ascii-numeric" "x-priority" "10"', False),
        ('body :contains "pay \u20ac 12"', True),  # RFC 5173: text parts decoded
        ('body :contains "HTML only"', False),  # text/html is not text by default? it is text/*
        ('body :raw :contains "=E2=82=AC"', True),
        ('body :content "text/html" :contains "HTML only"', True),
        ('body :content "image" :contains "x"', False),
        ('date :is "date" "date" "2026-12-01"', True),  # RFC 5260: converted to UTC
        ('date :originalzone :is "date" "hour" "10"', True),
        ('date :zone "-0500" :is "date" "time" "04:30:00"', True),
        ('date :is "date" "zone" "+0000"', True),
        ('date :is "date" "weekday" "2"', True),
        ('date :is "date" "julian" "61375"', True),
        ('currentdate :is "weekday" "0"', True),
        ('currentdate :value "ge" "year" "2026"', True),
        ('header :index 1 :contains "received" "from a"', True),  # RFC 5260 §6
        ('header :index 1 :last :contains "received" "from c"', True),
        ('header :index 3 :contains "received" "from"', False),
        ('mailboxexists "Archive"', True),  # RFC 5490
        ('mailboxexists ["Archive", "Nope"]', False),
    ],
)
def test_extension_tests(test: str, expected: bool) -> None:
    require = (
        'require ["envelope", "subaddress", "relational", "body", "date", "index",'
        ' "mailbox", "comparator-i;ascii-numeric"];'
    )
    result = actions(f"{require} if {test} {{ discard; }}")
    if test == 'body :contains "HTML only"':
        expected = True  # RFC 5173 §5.2: :text covers every text/* part, HTML included
    assert (result == [a.Discard()]) is expected


def test_variables_and_match_variables() -> None:
    script = """require ["variables", "fileinto"];
    set "folder" "Lists";
    set :upperfirst "who" "bank";
    if header :matches "from" "* <*@*>" { set "domain" "${3}"; }
    set :length "n" "${domain}";
    fileinto "${folder}/${who}/${domain}/${n}/${unknown}x";
    """
    assert actions(script) == [filed("Lists/Bank/Bank.Example/12/x")]


def test_set_modifiers() -> None:
    script = """require ["variables", "fileinto"];
    set :lower :upperfirst "a" "hELLO";
    set :quotewildcard "b" "a*b?c\\\\";
    fileinto "${a}|${b}";
    """
    assert actions(script) == [filed("Hello|a\\*b\\?c\\\\")]


def test_imap4flags() -> None:
    script = """require ["imap4flags", "fileinto", "variables"];
    setflag "\\\\Seen";
    addflag ["$Work", "Later Now"];
    removeflag "later";
    if hasflag :is "$work" { fileinto "Archive"; }
    addflag "mine" "x";
    if hasflag "mine" "x" { keep :flags "\\\\Flagged"; }
    """
    flags = frozenset({"\\Seen", "$Work", "Now"})
    assert actions(script) == [
        a.FileInto("Archive", flags),
        a.Keep(frozenset({"\\Flagged"})),
    ]


def test_copy_and_create() -> None:
    script = """require ["fileinto", "copy", "mailbox"];
    fileinto :copy "Archive";
    redirect :copy "x@example.net";
    fileinto :create "New/Folder";
    """
    assert actions(script) == [
        filed("Archive"),
        a.Redirect("x@example.net", copy=True),
        a.FileInto("New/Folder", create=True),
    ]
    assert actions('require ["fileinto", "copy"]; fileinto :copy "Archive";') == [
        filed("Archive"),
        KEEP,
    ]


def test_duplicates_are_one_action() -> None:
    script = 'require "fileinto"; fileinto "A"; fileinto "A"; redirect "x@y.z"; redirect "x@y.z";'
    assert actions(script) == [filed("A"), a.Redirect("x@y.z")]


def test_reject_and_ereject() -> None:
    assert actions('require "reject"; reject "no thanks";') == [a.Reject("no thanks", False)]
    assert actions('require "ereject"; ereject "go away";') == [a.Reject("go away", True)]
    with pytest.raises(RuntimeSieveError, match="reject cannot be combined with keep"):
        actions('require "reject"; keep; reject "x";')


def test_vacation_action() -> None:
    script = (
        'require "vacation"; vacation :days 400 :subject "Away" :addresses ["ann@example.org"]'
        ' "Back on Monday.";'
    )
    [vacation, keep] = actions(script)
    assert keep == KEEP  # vacation keeps the implicit keep (RFC 5230 §4.7)
    assert isinstance(vacation, a.Vacation)
    assert vacation.days == 90  # capped (RFC 5230 §4.1 lets a site bound :days)
    assert vacation.subject == "Away"
    assert vacation.addresses == ("ann@example.org",)
    assert vacation.handle  # derived from the reply's text when not given
    with pytest.raises(RuntimeSieveError, match="vacation twice"):
        actions('require "vacation"; vacation "a"; vacation "b";')


def test_include_return_global_and_once() -> None:
    inner = compile_script(
        b'require ["include", "variables", "fileinto"]; global "box"; fileinto "${box}"; return;'
        b" discard;"
    )
    script = """require ["include", "variables"];
    global "box";
    set "box" "Archive";
    include :once "inner";
    include :once "inner";
    include :optional "missing";
    """
    assert actions(script, includes={(":personal", "inner"): inner}) == [filed("Archive")]
    with pytest.raises(RuntimeSieveError, match="'missing' \\(personal\\), which is missing"):
        actions('require "include"; include "missing";')
    with pytest.raises(RuntimeSieveError, match="which is missing"):
        actions(
            'require "include"; include :global "inner";', includes={(":personal", "inner"): inner}
        )


def test_include_loops_and_limits_fail_in_words() -> None:
    a_script = compile_script(b'require "include"; include "b";')
    b_script = compile_script(b'require "include"; include "a";')
    scripts = {(":personal", "a"): a_script, (":personal", "b"): b_script}
    with pytest.raises(RuntimeSieveError, match="in a loop: a -> b -> a"):
        actions('require "include"; include "a";', includes=scripts)
    chain = {
        (":personal", f"s{i}"): compile_script(f'require "include"; include "s{i + 1}";'.encode())
        for i in range(10)
    }
    with pytest.raises(RuntimeSieveError, match="nest deeper than 5"):
        actions('require "include"; include "s0";', includes=chain)


def test_redirect_limits_and_bad_addresses() -> None:
    many = " ".join(f'redirect "r{i}@example.net";' for i in range(5))
    with pytest.raises(RuntimeSieveError, match="more than 4 addresses"):
        actions(many)
    with pytest.raises(RuntimeSieveError, match="no address"):
        actions('redirect "not an address";')


def test_the_step_budget_bounds_a_run() -> None:
    # 300 searches through a long header cost about 1000 steps each: the budget stops them.
    long_subject = b"Subject: " + b"a" * 60_000 + b"\r\n\r\nbody\r\n"
    tests = " ".join('if header :contains "subject" "b" { keep; }' for _ in range(300))
    started = time.perf_counter()
    with pytest.raises(RuntimeSieveError, match="budget of 200000 steps"):
        actions(tests, long_subject)
    assert time.perf_counter() - started < 2.0


def test_matches_never_backtracks_catastrophically() -> None:
    # The classic input that makes a backtracking engine take exponential time.
    pattern = "*a" * 40 + "*b"
    value = "a" * 3000
    started = time.perf_counter()
    script = f'require "variables"; set "v" "{value}"; if string :matches "${{v}}" "{pattern}" {{}}'
    assert actions(script + 'if string :matches "${v}" "*a*a" { discard; }') == [a.Discard()]
    assert time.perf_counter() - started < 1.0


def test_runtime_errors_are_plain() -> None:
    with pytest.raises(RuntimeSieveError, match="holds no addresses"):
        actions('if address :is "subject" "x" { keep; }')


def test_envelope_auth_is_the_submitting_user() -> None:
    script = compile_script(
        b'require "envelope"; if envelope :is "auth" "ann@example.org" { discard; }'
    )
    submitted = MessageView(
        MESSAGE, Envelope("ann@example.org", "bob@example.org", "ann@example.org")
    )
    assert run(script, submitted).actions == [a.Discard()]
    assert run(script, view()).actions == [KEEP]  # from port 25: nobody authenticated
