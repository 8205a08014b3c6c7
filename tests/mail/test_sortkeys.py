"""The keys SORT and THREAD compare: RFC 5256 §2.1 base subjects, first addresses, message ids."""

from __future__ import annotations

import pytest

from courriel.mail import sortkeys
from courriel.mail.message import parse

BASE_SUBJECTS = [
    # (subject, base subject, reply or forward)
    ("Hello", "Hello", False),
    ("Re: Hello", "Hello", True),
    ("RE:  re: Hello", "Hello", True),
    ("Fwd: Hello", "Hello", True),
    ("fw: Hello", "Hello", True),
    ("Re[2]: Hello", "Hello", True),  # subj-refwd = "re" *WSP [subj-blob] ":"
    ("Re [2]: Hello", "Hello", True),  # subj-refwd with a subj-blob before the colon
    ("[list] Re: Hello", "Hello", True),  # §2.1 (3): blobs before a subj-refwd go with it
    ("[list] Hello", "Hello", False),  # §2.1 (4): a leading blob goes if text is left
    ("[list]", "[list]", False),  # ... but not when nothing would be left
    ("Hello (fwd)", "Hello", True),  # §2.1 (2): trailer
    ("Hello (FWD) (fwd)  ", "Hello", True),
    ("[Fwd: Re: Hello]", "Hello", True),  # §2.1 (6): the forward wrapper, then again
    ("[fwd: [list] Hello] (fwd)", "Hello", True),
    ("  Hello\t  world ", "Hello world", False),  # §2.1 (1): white space collapsed
    ("", "", False),
    ("Re:", "", True),
    ("Re: (fwd)", "", True),
    ("Return of the king", "Return of the king", False),  # "re" without a colon stays
]


@pytest.mark.parametrize(("subject", "base", "reply"), BASE_SUBJECTS)
def test_base_subject(subject: str, base: str, reply: bool) -> None:
    assert sortkeys.base_subject(subject) == (base, reply)


def _keys(raw: bytes) -> sortkeys.SortKeys:
    keys = sortkeys.keys_of(parse(raw).to_bytes())
    assert keys is not None
    return keys


def test_keys_of_a_message() -> None:
    keys = _keys(
        b"From: =?utf-8?q?J=C3=BCrgen_M=C3=BCller?= <Juergen@Example.org>\r\n"
        b"To: undisclosed:;, bob@example.org\r\n"
        b"Cc: <carol@example.org>\r\n"
        b"Subject: =?utf-8?q?Re=3A_caf=C3=A9?=\r\n"
        b"Date: Thu, 01 Jan 1970 01:00:10 +0100\r\n"
        b"Message-ID: <m1@example.org>\r\n"
        b"References: <r1@example.org>\r\n <r2@example.org> junk\r\n"
        b"In-Reply-To: <other@example.org>\r\n\r\nbody\r\n"
    )
    assert keys.subject == "CAFé"  # i;ascii-casemap: ASCII letters only
    assert keys.reply
    assert keys.sort_from == "JUERGEN"  # RFC 5256 §3 FROM: the addr-mailbox
    # the first address as ENVELOPE lists it: the group's start, with its name (as Dovecot)
    assert keys.sort_to == "UNDISCLOSED"
    assert keys.sort_cc == "CAROL"
    assert keys.display_from == "jürgen müller"  # RFC 5957 §3: the decoded display name
    plain = _keys(b"To: bob@example.org\r\nSubject: x\r\n\r\n")
    assert plain.display_to == "bob@example.org"  # no display name: the addr-spec
    assert keys.display_to == "undisclosed"  # a group: its name
    assert keys.sent == 10
    assert keys.message_id == "m1@example.org"
    assert keys.references == ("r1@example.org", "r2@example.org")  # In-Reply-To not used


def test_in_reply_to_stands_in_for_missing_references() -> None:
    keys = _keys(b"In-Reply-To: <a@x> <b@x>\r\nSubject: x\r\n\r\n")
    assert keys.references == ("a@x",)  # RFC 5256 §3 REFERENCES step 1: the first one
    assert keys.sent is None and keys.message_id == "" and keys.sort_from == ""


def test_encoding_round_trips_and_refuses_damage() -> None:
    keys = _keys(
        b"From: Ann <ann@x>\r\nSubject: one\x1ftwo\r\n"
        b"Message-ID: <a@x>\r\nReferences: <p@x>\r\n\r\n"
    )
    text = sortkeys.encode(keys)
    assert sortkeys.decode(text) == keys
    assert text.count("\x1f") == 10  # the unit separator inside the subject was cleaned
    assert sortkeys.decode("2" + text[1:]) is None  # another version
    assert sortkeys.decode(text + "\x1fmore") is None
    assert sortkeys.decode("") is None
    assert sortkeys.keys_of(b"not a parse") is None
