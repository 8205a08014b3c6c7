"""The text SEARCH compares (courriel.mail.searchtext): folding, decoded parts, header fields."""

from __future__ import annotations

from pathlib import Path

import pytest

from courriel.mail.message import parse
from courriel.mail.searchtext import body_texts, fold, header_block_text, header_field_texts

MIXED = (Path(__file__).parent / "messages" / "mixed.eml").read_bytes().replace(b"\n", b"\r\n")


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("ABC", "abc"),
        ("Éte", "éte"),
        ("e\u0301", "é"),  # decomposed and precomposed
        ("STRASSE", "straße"),  # full case folding
        ("ﬁle", "file"),  # compatibility ligature
    ],
)
def test_fold_makes_equal_what_search_treats_as_equal(a: str, b: str) -> None:
    assert fold(a) == fold(b)


def test_fold_keeps_different_letters_apart() -> None:
    assert fold("café") != fold("cafe")
    assert fold("zebra") not in fold("ZEBU")


def test_body_texts_yields_each_text_part_decoded_in_order() -> None:
    texts = list(body_texts(MIXED, parse(MIXED)))
    assert texts == [
        "Un café crème, s'il vous plaît. Merci.",  # quoted-printable, ISO-8859-1
        "From: Carol <carol@example.test>\r\nSubject: inner note\r\n\r\n",  # encapsulated
        "Inner body with zebra.",
        "begin 644 x",  # unknown encoding: searched as stored
        "<p>Grüße aus Köln</p>",  # base64, UTF-8
    ]


def test_body_texts_refuses_a_meta_of_another_message() -> None:
    with pytest.raises(ValueError, match="does not match"):
        body_texts(MIXED + b"x", parse(MIXED))


def test_header_text_decodes_encoded_words() -> None:
    assert header_field_texts(MIXED, "SUBJECT") == ["café menu"]
    assert header_field_texts(MIXED, "cc") == ["Jürgen <jurgen@example.test>"]
    assert header_field_texts(MIXED, "x-absent") == []
    block = header_block_text(MIXED)
    assert "Subject: café menu\r\n" in block
    assert "boundary" in block and "preamble" not in block


def test_header_fields_every_occurrence_in_order() -> None:
    raw = b"Received: one\r\nX: y\r\nreceived: two\r\n  folded\r\n\r\nReceived: body\r\n"
    assert header_field_texts(raw, "Received") == ["one", "two  folded"]
    assert header_field_texts(raw, "received", header_end=raw.index(b"\r\n\r\n") + 4) == [
        "one",
        "two  folded",
    ]
