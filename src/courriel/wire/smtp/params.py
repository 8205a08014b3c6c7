"""MAIL FROM and RCPT TO parameters: syntax, the values courriel offers, and xtext.

Theory of operation
-------------------
``split_params`` checks the generic esmtp-param grammar (RFC 5321 §4.1.2) and returns
(KEYWORD, value) pairs with the keyword upper-cased. ``mail_params`` and ``rcpt_params`` then
validate each known keyword against what the server offered in its EHLO answer and decode it
into a typed record. Every refusal is a ``ParamError`` carrying the reply:

* a keyword the server did not offer, or does not know: 555 5.5.4 (RFC 5321 §4.1.1.11);
* a known keyword with a bad value, or given twice: 501 5.5.4;
* SIZE above the limit: 552 5.3.4 (RFC 1870 §6).

xtext (RFC 3461 §4) is decoded here so the session sees ENVID, ORCPT and AUTH= as plain text.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, replace

from courriel.wire.smtp import replies
from courriel.wire.smtp.replies import Reply


class ParamError(ValueError):
    def __init__(self, reply: Reply) -> None:
        super().__init__(reply.text)
        self.reply = reply


class Body(enum.Enum):
    SEVEN_BIT = "7BIT"
    EIGHT_BIT_MIME = "8BITMIME"  # RFC 6152
    BINARY_MIME = "BINARYMIME"  # RFC 3030 §3


class Ret(enum.Enum):  # RFC 3461 §4.3
    FULL = "FULL"
    HDRS = "HDRS"


class Notify(enum.Enum):  # RFC 3461 §4.1; NEVER is the empty set
    SUCCESS = "SUCCESS"
    FAILURE = "FAILURE"
    DELAY = "DELAY"


@dataclass(frozen=True, slots=True)
class Offered:
    """The MAIL/RCPT extensions in effect for this EHLO."""

    size_limit: int
    smtputf8: bool
    chunking: bool
    dsn: bool
    auth: bool


@dataclass(frozen=True, slots=True)
class MailParams:
    size: int | None = None  # RFC 1870: the client's estimate, before dot-stuffing
    body: Body | None = None
    smtputf8: bool = False  # RFC 6531 §3.4
    ret: Ret | None = None
    envid: str | None = None  # xtext-decoded (RFC 3461 §4.4)
    auth: str | None = None  # xtext-decoded AUTH= (RFC 4954 §5); "<>" when unknown
    raw: tuple[tuple[str, str | None], ...] = ()


@dataclass(frozen=True, slots=True)
class RcptParams:
    notify: frozenset[Notify] | None = None  # None: not given; empty: NEVER
    orcpt_type: str | None = None  # "rfc822", "utf-8", ... upper/lower as sent
    orcpt: str | None = None  # decoded original recipient (RFC 3461 §4.2)
    raw: tuple[tuple[str, str | None], ...] = ()


_KEYWORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9\-]*")
_VALUE_ASCII = re.compile(r"[\x21-\x3c\x3e-\x7e]+")  # RFC 5321 §4.1.2 esmtp-value
_VALUE_UTF8 = re.compile(r"[\x21-\x3c\x3e-\x7e\u0080-\U0010ffff]+")  # RFC 6531 §3.3
_XTEXT = re.compile(r"(?:[\x21-\x2a\x2c-\x3c\x3e-\x7e]|\+[0-9A-F]{2})*")
_XTEXT_HEX = re.compile(r"\+([0-9A-F]{2})")
_UTF8_XTEXT = re.compile(
    r"(?:[\x21-\x2a\x2c-\x3c\x3e-\x5b\x5d-\x7e\u0080-\U0010ffff]"
    r"|\\x\{[0-9A-F]{1,6}\}|\+[0-9A-F]{2})*"
)
_UTF8_ESCAPE = re.compile(r"\\x\{([0-9A-F]{1,6})\}")
_SIZE = re.compile(r"[0-9]{1,20}")
_ADDR_TYPE = re.compile(r"[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+")
_MAX_ENVID = 100  # RFC 3461 §4.4
_MAX_ORCPT = 500  # RFC 3461 §4.2


def xtext_decode(text: str) -> str:
    """Decodes RFC 3461 §4 xtext; raises ``ValueError`` on bad syntax."""
    if not _XTEXT.fullmatch(text):
        raise ValueError("bad xtext")
    return _XTEXT_HEX.sub(lambda m: chr(int(m.group(1), 16)), text)


def utf8_xtext_decode(text: str) -> str:
    """Decodes RFC 6533 §3 utf-8-addr-xtext (``\\x{HEX}`` escapes, UTF-8 allowed)."""
    if not _UTF8_XTEXT.fullmatch(text):
        raise ValueError("bad utf-8-addr-xtext")
    try:
        text = _UTF8_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), text)
    except (ValueError, OverflowError) as e:
        raise ValueError("bad escape") from e
    return _XTEXT_HEX.sub(lambda m: chr(int(m.group(1), 16)), text)


def split_params(text: str, *, utf8: bool) -> list[tuple[str, str | None]]:
    """Splits ``KEY=value KEY2`` into pairs; raises ``ParamError`` on bad syntax."""
    out: list[tuple[str, str | None]] = []
    value_re = _VALUE_UTF8 if utf8 else _VALUE_ASCII
    for word in text.split():
        key, eq, value = word.partition("=")
        if not _KEYWORD.fullmatch(key) or (eq and not value_re.fullmatch(value)):
            raise ParamError(replies.BAD_PARAMETER)
        key = key.upper()
        if any(k == key for k, _ in out):
            raise ParamError(replies.DUPLICATE_PARAMETER)
        out.append((key, value if eq else None))
    return out


def _need(value: str | None) -> str:
    if value is None:
        raise ParamError(replies.BAD_PARAMETER)
    return value


def _mail_one(p: MailParams, key: str, value: str | None, offered: Offered) -> MailParams:
    if key == "SIZE":
        size = _need(value)
        if not _SIZE.fullmatch(size):
            raise ParamError(replies.BAD_PARAMETER)
        if int(size) > offered.size_limit:
            raise ParamError(replies.message_too_big(offered.size_limit))  # RFC 1870 §6
        return replace(p, size=int(size))
    elif key == "BODY":
        try:
            body = Body(_need(value).upper())
        except ValueError:
            raise ParamError(replies.BAD_PARAMETER) from None
        if body is Body.BINARY_MIME and not offered.chunking:
            raise ParamError(replies.BODY_NOT_OFFERED)  # RFC 3030 §3
        return replace(p, body=body)
    elif key == "SMTPUTF8" and offered.smtputf8:
        if value is not None:
            raise ParamError(replies.BAD_PARAMETER)  # RFC 6531 §3.4: no value
        return replace(p, smtputf8=True)
    elif key == "RET" and offered.dsn:
        try:
            return replace(p, ret=Ret(_need(value).upper()))
        except ValueError:
            raise ParamError(replies.BAD_PARAMETER) from None
    elif key == "ENVID" and offered.dsn:
        envid = _need(value)
        if len(envid) > _MAX_ENVID:  # RFC 3461 §4.4
            raise ParamError(replies.BAD_PARAMETER)
        return replace(p, envid=_decoded(envid))
    elif key == "AUTH" and offered.auth:
        auth = _need(value)
        return replace(p, auth="<>" if auth == "<>" else _decoded(auth))  # RFC 4954 §5
    raise ParamError(replies.UNKNOWN_PARAMETER)  # RFC 5321 §4.1.1.11


def _decoded(text: str) -> str:
    try:
        return xtext_decode(text)
    except ValueError:
        raise ParamError(replies.BAD_PARAMETER) from None


def mail_params(text: str, offered: Offered) -> MailParams:
    """Parses what follows the reverse-path of MAIL FROM."""
    # SMTPUTF8 widens the value syntax, so look for it before checking the other values.
    utf8 = offered.smtputf8 and any(w.upper() == "SMTPUTF8" for w in text.split())
    pairs = split_params(text, utf8=utf8)
    params = MailParams(raw=tuple(pairs))
    for key, value in pairs:
        params = _mail_one(params, key, value, offered)
    return params


def _notify(value: str) -> frozenset[Notify]:
    words = value.upper().split(",")
    if words == ["NEVER"]:
        return frozenset()
    try:
        kinds = [Notify(w) for w in words]
    except ValueError:
        raise ParamError(replies.BAD_PARAMETER) from None  # NEVER mixed in, or unknown
    if len(set(kinds)) != len(kinds):
        raise ParamError(replies.BAD_PARAMETER)
    return frozenset(kinds)


def _orcpt(value: str) -> tuple[str, str]:
    addr_type, semi, text = value.partition(";")
    if not semi or not _ADDR_TYPE.fullmatch(addr_type) or not text or len(value) > _MAX_ORCPT:
        raise ParamError(replies.BAD_PARAMETER)  # RFC 3461 §4.2
    try:
        if addr_type.lower() == "utf-8":
            return addr_type, utf8_xtext_decode(text)  # RFC 6533 §3
        return addr_type, xtext_decode(text)
    except ValueError:
        raise ParamError(replies.BAD_PARAMETER) from None


def rcpt_params(text: str, offered: Offered, *, utf8: bool) -> RcptParams:
    """Parses what follows the forward-path of RCPT TO."""
    pairs = split_params(text, utf8=utf8)
    notify: frozenset[Notify] | None = None
    orcpt: tuple[str, str] | None = None
    for key, value in pairs:
        if key == "NOTIFY" and offered.dsn:
            notify = _notify(_need(value))
        elif key == "ORCPT" and offered.dsn:
            orcpt = _orcpt(_need(value))
        else:
            raise ParamError(replies.UNKNOWN_PARAMETER)  # RFC 5321 §4.1.1.11
    return RcptParams(
        notify=notify,
        orcpt_type=orcpt[0] if orcpt else None,
        orcpt=orcpt[1] if orcpt else None,
        raw=tuple(pairs),
    )
