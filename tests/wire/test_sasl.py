"""SASL PLAIN (RFC 4616) and LOGIN (draft-murchison-sasl-login) transcripts, server side."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from courriel.wire.sasl import (
    MECHANISMS,
    Challenge,
    Credentials,
    SaslError,
    SaslExchange,
    SaslFailure,
    SaslState,
    decode_response,
)


def b64(data: bytes) -> bytes:
    return base64.b64encode(data)


# --- PLAIN ------------------------------------------------------------------------------------


def test_plain_with_initial_response() -> None:
    ex = SaslExchange()
    result = ex.start("PLAIN", b64(b"\0alice@example.org\0s3cret"))
    assert result == Credentials("alice@example.org", "s3cret", "")
    assert ex.state is SaslState.DONE


def test_plain_without_initial_response_sends_an_empty_challenge() -> None:
    ex = SaslExchange()
    assert ex.start("plain", None) == Challenge(b"")  # mechanism names are case-insensitive
    assert ex.state is SaslState.PLAIN_RESPONSE
    result = ex.step(b64(b"\0alice@example.org\0s3cret") + b"\r\n")
    assert result == Credentials("alice@example.org", "s3cret", "")


def test_plain_authzid_equal_to_authcid_is_accepted() -> None:
    result = SaslExchange().start("PLAIN", b64(b"Alice@Example.org\0alice@example.org\0pw"))
    assert result == Credentials("alice@example.org", "pw", "Alice@Example.org")


def test_plain_authzid_of_someone_else_is_refused() -> None:
    ex = SaslExchange()
    with pytest.raises(SaslError) as info:
        ex.start("PLAIN", b64(b"bob@example.org\0alice@example.org\0pw"))
    assert info.value.failure is SaslFailure.AUTHZID_REFUSED
    assert ex.state is SaslState.FAILED


def test_plain_is_utf8() -> None:
    message = "\0josé@exemple.fr\0mot de passe é€".encode()
    assert SaslExchange().start("PLAIN", b64(message)) == Credentials(
        "josé@exemple.fr", "mot de passe é€", ""
    )


def test_plain_equals_sign_is_an_empty_initial_response() -> None:
    # RFC 4954 §4: "=" is a zero-length initial response, which PLAIN cannot accept.
    with pytest.raises(SaslError) as info:
        SaslExchange().start("PLAIN", b"=")
    assert info.value.failure is SaslFailure.MALFORMED


@pytest.mark.parametrize(
    "message",
    [
        b"",
        b"alice\0pw",  # one NUL: no authzid field at all
        b"\0alice\0pw\0extra",
        b"\0\0pw",  # empty authcid
        b"\0alice\0",  # empty password
        b"\0al\xffice\0pw",  # not UTF-8
        b"\0alice\0p\xc3",  # truncated UTF-8
        b"\xff\0alice\0pw",  # authzid not UTF-8
    ],
)
def test_plain_malformed(message: bytes) -> None:
    with pytest.raises(SaslError) as info:
        SaslExchange().start("PLAIN", b64(message))
    assert info.value.failure is SaslFailure.MALFORMED


def test_plain_cancelled_by_the_client() -> None:
    ex = SaslExchange()
    ex.start("PLAIN", None)
    with pytest.raises(SaslError) as info:
        ex.step(b"*\r\n")
    assert info.value.failure is SaslFailure.CANCELLED
    assert ex.state is SaslState.FAILED


@pytest.mark.parametrize(
    "line",
    [
        b"AGFsaWNlAHB",  # missing padding ("AGFsaWNlAHB3" is NUL alice NUL pw)
        b"AGFsaWNl AHB3",  # space inside
        b"AGFsaWNlAHB3\r\nAAAA",  # two lines
        b"AGFsaWNlAHB3!",  # outside the alphabet
        b"AGFsaWNlAHB3=",  # stray padding
        b"AGFsaWNlAHB3AAAA====",  # padding where none is due
        b"YR==",  # non-zero pad bits ("a" is "YQ==")
        b"=",  # "=" only means empty in an initial response
        b"-_-_",  # base64url is another alphabet
    ],
)
def test_plain_bad_base64(line: bytes) -> None:
    ex = SaslExchange()
    ex.start("PLAIN", None)
    with pytest.raises(SaslError) as info:
        ex.step(line)
    assert info.value.failure is SaslFailure.BAD_BASE64


def test_the_valid_spelling_of_the_same_response_passes() -> None:
    ex = SaslExchange()
    ex.start("PLAIN", None)
    assert ex.step(b"AGFsaWNlAHB3") == Credentials("alice", "pw")


def test_plain_bad_base64_in_initial_response() -> None:
    with pytest.raises(SaslError) as info:
        SaslExchange().start("PLAIN", b"not base64!")
    assert info.value.failure is SaslFailure.BAD_BASE64


def test_plain_cancel_as_initial_response() -> None:
    with pytest.raises(SaslError) as info:
        SaslExchange().start("PLAIN", b"*")
    assert info.value.failure is SaslFailure.CANCELLED


def test_overlong_response_is_refused_before_decoding() -> None:
    ex = SaslExchange()
    ex.start("PLAIN", None)
    with pytest.raises(SaslError) as info:
        ex.step(b64(b"\0a\0" + b"p" * 5000))
    assert info.value.failure is SaslFailure.MALFORMED


# --- LOGIN ------------------------------------------------------------------------------------


def test_login_transcript() -> None:
    ex = SaslExchange()
    assert ex.start("LOGIN", None) == Challenge(b"Username:")
    assert ex.step(b64(b"alice@example.org") + b"\r\n") == Challenge(b"Password:")
    assert ex.step(b64(b"s3cret") + b"\r\n") == Credentials("alice@example.org", "s3cret")
    assert ex.state is SaslState.DONE


def test_login_with_the_username_as_initial_response() -> None:
    ex = SaslExchange()
    assert ex.start("login", b64(b"alice@example.org")) == Challenge(b"Password:")
    assert ex.step(b64("pässword".encode())) == Credentials("alice@example.org", "pässword")


@pytest.mark.parametrize(
    ("username", "password"),
    [(b"", b"pw"), (b"alice", b""), (b"al\0ice", b"pw"), (b"alice", b"p\0w"), (b"\xff", b"pw")],
)
def test_login_malformed(username: bytes, password: bytes) -> None:
    ex = SaslExchange()
    ex.start("LOGIN", None)
    with pytest.raises(SaslError) as info:
        ex.step(b64(username))
        ex.step(b64(password))
    assert info.value.failure is SaslFailure.MALFORMED


def test_login_equals_sign_initial_response_is_an_empty_username() -> None:
    with pytest.raises(SaslError) as info:
        SaslExchange().start("LOGIN", b"=")
    assert info.value.failure is SaslFailure.MALFORMED


@pytest.mark.parametrize("at", ["username", "password"])
def test_login_cancel(at: str) -> None:
    ex = SaslExchange()
    ex.start("LOGIN", None)
    if at == "password":
        ex.step(b64(b"alice@example.org"))
    with pytest.raises(SaslError) as info:
        ex.step(b"*")
    assert info.value.failure is SaslFailure.CANCELLED


# --- decoded entry points, for cores that decode base64 themselves -----------------------------


def test_plain_decoded() -> None:
    ex = SaslExchange()
    assert ex.start_decoded("PLAIN", None) == Challenge(b"")
    assert ex.step_decoded(b"\0alice@example.org\0pw") == Credentials("alice@example.org", "pw")


def test_plain_decoded_initial_response() -> None:
    result = SaslExchange().start_decoded("PLAIN", b"\0alice@example.org\0pw")
    assert result == Credentials("alice@example.org", "pw")


def test_decoded_input_is_not_base64_decoded_again() -> None:
    # "YQ==" decoded is "a"; fed as decoded bytes it is the literal text "YQ==".
    ex = SaslExchange()
    ex.start_decoded("LOGIN", None)
    ex.step_decoded(b"alice")
    assert ex.step_decoded(b"YQ==") == Credentials("alice", "YQ==")


def test_login_decoded_with_empty_initial_response() -> None:
    ex = SaslExchange()
    with pytest.raises(SaslError) as info:
        ex.start_decoded("LOGIN", b"")
    assert info.value.failure is SaslFailure.MALFORMED
    assert ex.state is SaslState.FAILED


def test_decoded_authzid_mismatch() -> None:
    with pytest.raises(SaslError) as info:
        SaslExchange().start_decoded("PLAIN", b"bob\0alice\0pw")
    assert info.value.failure is SaslFailure.AUTHZID_REFUSED


# --- the exchange as a whole ------------------------------------------------------------------


@pytest.mark.parametrize("mechanism", ["CRAM-MD5", "XOAUTH2", "GSSAPI", "", "PLAIN "])
def test_unknown_mechanism(mechanism: str) -> None:
    ex = SaslExchange()
    with pytest.raises(SaslError) as info:
        ex.start(mechanism, None)
    assert info.value.failure is SaslFailure.UNKNOWN_MECHANISM
    assert ex.state is SaslState.FAILED


def test_advertised_mechanisms_all_start() -> None:
    for name in MECHANISMS:
        assert isinstance(SaslExchange().start(name, None), Challenge)


def test_out_of_order_calls_are_caller_bugs() -> None:
    ex = SaslExchange()
    with pytest.raises(RuntimeError):
        ex.step(b"AAAA")
    ex.start("PLAIN", b64(b"\0a\0b"))
    with pytest.raises(RuntimeError):
        ex.step(b"AAAA")
    with pytest.raises(RuntimeError):
        ex.start("PLAIN", None)


def test_no_step_after_failure() -> None:
    ex = SaslExchange()
    ex.start("LOGIN", None)
    with pytest.raises(SaslError):
        ex.step(b"!!")
    with pytest.raises(RuntimeError):
        ex.step(b64(b"alice"))


@pytest.mark.parametrize(
    ("data", "initial", "decoded"),
    [
        (b"=", True, b""),
        (b"", False, b""),
        (b"", True, b""),
        (b"YQ==\r\n", False, b"a"),
        (b"YQ==\n", False, b"a"),
        (b"YWI=", False, b"ab"),
    ],
)
def test_decode_response(data: bytes, initial: bool, decoded: bytes) -> None:
    assert decode_response(data, initial=initial) == decoded


@given(st.sampled_from(MECHANISMS), st.none() | st.binary(max_size=64), st.lists(st.binary()))
def test_any_input_gives_a_step_or_sasl_error(
    mechanism: str, initial: bytes | None, lines: list[bytes]
) -> None:
    ex = SaslExchange()
    try:
        result = ex.start(mechanism, initial)
        for line in lines:
            if not isinstance(result, Challenge):
                break
            result = ex.step(line)
    except SaslError as e:
        assert isinstance(e.failure, SaslFailure)
        assert ex.state is SaslState.FAILED
        return
    assert isinstance(result, Challenge | Credentials)


@given(st.text(min_size=1).filter(lambda s: "\0" not in s), st.text(min_size=1))
def test_plain_round_trip(authcid: str, password: str) -> None:
    message = b"\0" + authcid.encode() + b"\0" + password.encode()
    if "\0" in password:
        with pytest.raises(SaslError):
            SaslExchange().start("PLAIN", b64(message))
        return
    assert SaslExchange().start("PLAIN", b64(message)) == Credentials(authcid, password)
