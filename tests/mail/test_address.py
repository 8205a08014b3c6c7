"""Mailbox parsing and normalisation (RFC 5321 §4.1.2, §4.5.3.1; RFC 6531; UTS 46)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from courriel.mail.address import (
    Address,
    AddressError,
    is_plain_mailbox,
    normalize_address,
    normalize_domain,
    parse_address,
    plain_mailbox,
    split_plus,
)

# --- domains ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("example.org", "example.org"),
        ("EXAMPLE.Org", "example.org"),
        ("Bücher.Example", "xn--bcher-kva.example"),
        ("xn--bcher-kva.example", "xn--bcher-kva.example"),
        ("XN--BCHER-KVA.example", "xn--bcher-kva.example"),
        ("\uff25\uff38\uff21\uff2d\uff30\uff2c\uff25\u3002org", "example.org"),  # full-width, 。
        ("faß.de", "xn--fa-hia.de"),  # non-transitional: ß stays ß
        ("例え.テスト", "xn--r8jz45g.xn--zckzah"),
        ("example.org.", "example.org"),  # one trailing dot: the fully qualified spelling
        ("localhost", "localhost"),
        ("a-b.c-d.example", "a-b.c-d.example"),
        ("ab--cd.example", "ab--cd.example"),  # LDH label, not an IDNA one: allowed
        ("123.example", "123.example"),
        ("a" * 63 + ".example", "a" * 63 + ".example"),
        ("[192.0.2.1]", "[192.0.2.1]"),
        ("[IPv6:2001:DB8:0:0::1]", "[IPv6:2001:db8::1]"),
        ("[ipv6:::1]", "[IPv6:::1]"),
        ("[IPv6:::ffff:192.0.2.1]", "[IPv6:::ffff:c000:201]"),
    ],
)
def test_normalize_domain(given: str, expected: str) -> None:
    assert normalize_domain(given) == expected


@pytest.mark.parametrize(
    ("given", "complaint"),
    [
        ("", "empty"),
        (".", "empty label"),
        ("a..b", "empty label"),
        (".example.org", "empty label"),
        ("example.org..", "empty label"),
        ("a" * 64 + ".example", "longer than 63"),
        (".".join(["a" * 60] * 5), "longer than 255"),
        ("-a.example", "letters, digits and inner hyphens"),
        ("a-.example", "letters, digits and inner hyphens"),
        ("under_score.example", "letters, digits and inner hyphens"),
        ("sp ace.example", "letters, digits and inner hyphens"),
        ("xn--zz.example", "not a valid A-label"),
        ("bü--cher.example", "internationalised"),  # U-label with "--" at positions 3-4
        ("192.0.2.1", "address literal such as"),
        ("example.123", "address literal such as"),
        ("[192.0.2.300]", "not a valid IPv4"),
        ("[192.0.2]", "not a valid IPv4"),
        ("[IPv6:2001:db8::g]", "not a valid IPv6"),
        ("[IPv6:fe80::1%eth0]", "zone index"),
        ("[x-tag:foo]", "not an address literal we know"),
        ("[192.0.2.1", "letters, digits and inner hyphens"),
    ],
)
def test_normalize_domain_refuses(given: str, complaint: str) -> None:
    with pytest.raises(AddressError, match=complaint):
        normalize_domain(given)


# --- addresses --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "local", "domain", "text"),
    [
        ("joe@example.org", "joe", "example.org", "joe@example.org"),
        ("Joe.Smith@EXAMPLE.ORG", "Joe.Smith", "example.org", "Joe.Smith@example.org"),
        ("joe@Bücher.Example", "joe", "xn--bcher-kva.example", "joe@xn--bcher-kva.example"),
        ('"joe"@example.org', "joe", "example.org", "joe@example.org"),  # quotes not needed
        ('"joe smith"@example.org', "joe smith", "example.org", '"joe smith"@example.org'),
        ('"a\\"b"@example.org', 'a"b', "example.org", '"a\\"b"@example.org'),
        ('"a\\\\b"@example.org', "a\\b", "example.org", '"a\\\\b"@example.org'),
        ('"\\a"@example.org', "a", "example.org", "a@example.org"),  # needless quoted-pair
        ('"a..b"@example.org', "a..b", "example.org", '"a..b"@example.org'),
        ('""@example.org', "", "example.org", '""@example.org'),
        ("!#$%&'*+-/=?^_`{|}~@example.org", "!#$%&'*+-/=?^_`{|}~", "example.org", None),
        ("user+tag@example.org", "user+tag", "example.org", "user+tag@example.org"),
        ("josé@exemple.fr", "josé", "exemple.fr", "josé@exemple.fr"),
        ("用户@例子.广告", "用户", "xn--fsqu00a.xn--4rr70v", "用户@xn--fsqu00a.xn--4rr70v"),
        ("joe@[192.0.2.1]", "joe", "[192.0.2.1]", "joe@[192.0.2.1]"),
        ("joe@[IPv6:2001:db8::1]", "joe", "[IPv6:2001:db8::1]", "joe@[IPv6:2001:db8::1]"),
        ("joe@example.org.", "joe", "example.org", "joe@example.org"),
        ("a" * 64 + "@example.org", "a" * 64, "example.org", None),
    ],
)
def test_parse_address(given: str, local: str, domain: str, text: str | None) -> None:
    address = parse_address(given)
    assert address == Address(local, domain)
    assert str(address) == (text if text is not None else given)
    assert normalize_address(given) == str(address)


@pytest.mark.parametrize(
    ("given", "complaint"),
    [
        ("", "empty"),
        ("joe", "has no '@'"),
        ("@example.org", "source routes"),
        ("@a.example,@b.example:joe@c.example", "source routes"),
        ("joe@", "after '@' is empty"),
        ("joe@other@example.org", "more than one '@'"),
        (".joe@example.org", "starts or ends with a dot"),
        ("joe.@example.org", "starts or ends with a dot"),
        ("jo..e@example.org", "two dots in a row"),
        ("jo e@example.org", "contains ' '"),
        ("jo(e)@example.org", "contains '\\('"),
        ("jo,e@example.org", "contains ','"),
        ("jo\x01e@example.org", "contains"),
        ("jo\x85e@example.org", "contains"),  # C1 control
        ('"joe@example.org', "no closing double quote"),
        ('"joe"x@example.org', 'followed directly by "@"'),
        ('"jo\x07e"@example.org', "control character"),
        ('"joe\\\x01"@example.org', "backslash"),
        ('"joe\\', "backslash"),
        ("joe@exa mple.org", "letters, digits and inner hyphens"),
        ("joe@a..example", "empty label"),
        ("a" * 65 + "@example.org", "at most 64"),
        ('"a ' + "a" * 61 + '"@example.org', "at most 64"),  # quotes count on the wire
        ("é" * 33 + "@example.org", "at most 64"),  # 66 octets in UTF-8
        ("joe@" + ".".join(["a" * 62] * 4), "longer than 254"),  # path > 256 with brackets
        ("x" * 2000 + "@example.org", "longer than 254"),
    ],
)
def test_parse_address_refuses(given: str, complaint: str) -> None:
    with pytest.raises(AddressError, match=complaint):
        parse_address(given)


def test_path_limit_counts_angle_brackets() -> None:
    # RFC 5321 §4.5.3.1.3: 256 octets for "<" mailbox ">", so 254 for the mailbox itself.
    domain = ".".join(["a" * 61, "b" * 61, "c" * 61, "d" * 61])  # 247 octets
    assert len(domain) == 247
    fits = "x" * 6 + "@" + domain  # 254 octets
    assert len(parse_address(fits).local) == 6
    with pytest.raises(AddressError):
        parse_address("x" * 7 + "@" + domain)


@pytest.mark.parametrize("given", ["josé@example.org", '"josé"@example.org', "joe@bücher.example"])
def test_non_ascii_needs_smtputf8(given: str) -> None:
    with pytest.raises(AddressError, match="SMTPUTF8"):
        parse_address(given, allow_utf8=False)
    assert parse_address(given, allow_utf8=True).domain.isascii()


def test_ascii_address_without_smtputf8() -> None:
    assert parse_address("joe@xn--bcher-kva.example", allow_utf8=False).domain_unicode == (
        "bücher.example"
    )


def test_address_properties() -> None:
    literal = parse_address("joe@[192.0.2.1]")
    assert literal.is_literal
    assert literal.domain_unicode == "[192.0.2.1]"
    named = parse_address("josé@Bücher.Example")
    assert not named.is_literal
    assert not named.is_ascii
    assert named.domain_unicode == "bücher.example"


# --- plus-addressing --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("local", "base", "tag"),
    [
        ("user", "user", None),
        ("user+tag", "user", "tag"),
        ("user+", "user", ""),
        ("user+a+b", "user", "a+b"),
        ("+tag", "+tag", None),
        ("first.last+lists", "first.last", "lists"),
        ("", "", None),
    ],
)
def test_split_plus(local: str, base: str, tag: str | None) -> None:
    assert split_plus(local) == (base, tag)


# --- relay hacks ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "plain"),
    [
        ("joe@example.org", True),
        ("joe+tag@example.org", True),
        ('"joe smith"@example.org', True),
        ("joe%other.example@example.org", False),
        ("host!joe@example.org", False),
        ('"joe@other.example"@example.org', False),
        ("joe@other.example@example.org", False),
        ("@relay.example:joe@example.org", False),
        ("not an address", False),
    ],
)
def test_is_plain_mailbox(given: str, plain: bool) -> None:
    assert is_plain_mailbox(given) is plain


def test_plain_mailbox_names_the_routing_character() -> None:
    with pytest.raises(AddressError, match="'%'"):
        plain_mailbox("joe%other.example@example.org")
    assert plain_mailbox("Joe@Example.ORG") == Address("Joe", "example.org")


# --- invariants -------------------------------------------------------------------------------

_atext = st.sampled_from("abcXYZ019!#$%&'*+-/=?^_`{|}~é")
_local = st.lists(st.text(_atext, min_size=1, max_size=8), min_size=1, max_size=4).map(".".join)
_label = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True).filter(
    lambda label: not label.startswith("xn--")  # A-labels must also decode; tested above
)
_domain = (
    st.lists(_label, min_size=1, max_size=4)
    .filter(lambda labels: not labels[-1].isdigit())  # an all-digit TLD is refused, see above
    .map(".".join)
)


@given(_local, _domain)
def test_normalised_form_is_a_fixed_point(local: str, domain: str) -> None:
    once = normalize_address(f"{local}@{domain}")
    assert normalize_address(once) == once
    assert parse_address(once) == Address(local, domain)


@given(st.text(max_size=80))
def test_any_text_parses_or_raises_address_error(text: str) -> None:
    try:
        address = parse_address(text)
    except AddressError:
        return
    assert normalize_address(str(address)) == str(address)
