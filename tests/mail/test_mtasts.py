"""MTA-STS records and policies (RFC 8461), as tables."""

from __future__ import annotations

import pytest

from courriel.mail.mtasts import Mode, Policy, PolicyError, parse_policy, parse_txt


@pytest.mark.parametrize(
    ("strings", "expected"),
    [
        (["v=STSv1; id=20160831085700Z;"], "20160831085700Z"),
        (["v=STSv1;id=abc"], "abc"),
        (["v=STSv1; id=abc; ext=1"], "abc"),
        (["other", "v=STSv1; id=1"], "1"),
        (["v=STSv1; id=1", "v=STSv1; id=2"], None),  # RFC 8461 §3.1: two records, no policy
        (["v=STSv2; id=1"], None),
        (["v=STSv1; id=" + "a" * 33], None),
        (["v=STSv1; id=a-b"], None),
        (["v=STSv1"], None),
        ([], None),
    ],
)
def test_txt(strings: list[str], expected: str | None) -> None:
    assert parse_txt(strings) == expected


def test_policy_with_crlf_and_unknown_keys() -> None:
    text = (
        "version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmx: *.Example.NET.\r\n"
        "max_age: 604800\r\nextension: ignored\r\n"
    )
    assert parse_policy(text) == Policy(Mode.ENFORCE, 604800, ("mail.example.com", "*.example.net"))


def test_max_age_is_capped_at_a_year() -> None:
    policy = parse_policy(
        "version: STSv1\nmode: testing\nmx: a.example\nmax_age: 99999999999\n"[:-2]
    )
    assert policy.max_age == 31_557_600


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("mode: enforce\nmx: a\nmax_age: 1\n", "version"),
        ("version: STSv1\nmode: strict\nmx: a\nmax_age: 1\n", "mode"),
        ("version: STSv1\nmode: enforce\nmx: a\n", "max_age"),
        ("version: STSv1\nmode: enforce\nmx: a\nmax_age: -1\n", "max_age"),
        ("version: STSv1\nmode: enforce\nmax_age: 1\n", "no mx"),
        ("version: STSv1\ngarbage\n", "colon"),
    ],
)
def test_bad_policies(text: str, reason: str) -> None:
    with pytest.raises(PolicyError, match=reason):
        parse_policy(text)


def test_mode_none_needs_no_mx() -> None:
    assert parse_policy("version: STSv1\nmode: none\nmax_age: 10\n").mode is Mode.NONE


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("mail.example.com", True),
        ("MAIL.example.com.", True),
        ("mx1.example.net", True),
        ("a.b.example.net", False),  # RFC 8461 §4.1: the wildcard is one label
        ("example.net", False),
        ("other.example.com", False),
    ],
)
def test_mx_patterns(host: str, allowed: bool) -> None:
    policy = Policy(Mode.ENFORCE, 1, ("mail.example.com", "*.example.net"))
    assert policy.allows(host) is allowed
