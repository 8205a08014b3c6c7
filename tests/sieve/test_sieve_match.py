"""The :matches glob and the comparators, as tables (RFC 5228 §2.7.1, RFC 4790)."""

from __future__ import annotations

import pytest

from courriel.sieve.match import Matcher, glob


def no_budget(n: int) -> None:
    pass


@pytest.mark.parametrize(
    ("pattern", "value", "captures"),
    [
        ("abc", "abc", []),
        ("abc", "abcd", None),
        ("", "", []),
        ("*", "", [""]),
        ("*", "anything", ["anything"]),
        ("a*c", "abbbc", ["bbb"]),
        ("a*c", "ac", [""]),
        ("a?c", "abc", ["b"]),
        ("a?c", "ac", None),
        ("*@*", "ann@example.org", ["ann", "example.org"]),
        ("*.*", "a.b.c", ["a", "b.c"]),  # each star as short as it can be, left to right
        ("*x*x", "axbxcx", ["a", "bxc"]),
        ("\\*", "*", []),
        ("\\*", "a", None),
        ("a\\?", "a?", []),
        ("?*?", "ab", ["a", "", "b"]),
        ("é*", "été", ["té"]),  # "?" and "*" count characters, not octets
        ("*a*a*a*a*a*b", "a" * 5000, None),
    ],
)
def test_glob(pattern: str, value: str, captures: list[str] | None) -> None:
    spans = glob(pattern, value, no_budget)
    got = None if spans is None else [value[a:b] for a, b in spans]
    assert got == captures


def matcher(tags: dict[str, object]) -> Matcher:
    return Matcher.of(tags, no_budget, 1000)


def test_comparators() -> None:
    casemap = matcher({":is": True})
    assert casemap.one("Hello", "hELLO")
    assert not casemap.one("Été", "éTÉ")  # only ASCII letters fold (RFC 4790 §9.2)
    assert not matcher({":is": True, ":comparator": "i;octet"}).one("Hello", "hello")
    numeric = matcher({":value": "gt", ":comparator": "i;ascii-numeric"})
    assert numeric.one("10", "9") and not numeric.one("9", "10")
    assert numeric.one("x", "9")  # no digits sorts after every number (RFC 4790 §9.1)
    assert not matcher({":contains": True, ":comparator": "i;ascii-numeric"}).one("12", "1")
    count = matcher({":count": "ge"})
    assert count.any(["a", "b", "c"], ["3"]) and not count.any(["a"], ["2"])


def test_matches_keeps_the_case_of_the_value_in_captures() -> None:
    m = matcher({":matches": True})
    assert m.one("Re: Hello World", "re: *")
    assert m.captures == ["Re: Hello World", "Hello World"]
