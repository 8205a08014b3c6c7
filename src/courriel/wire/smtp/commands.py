"""Command-line syntax: from one CRLF-terminated line to a verb and a typed argument.

Theory of operation
-------------------
``split_line`` checks what every command line must be (CRLF at the end and nowhere else, no
control characters, valid UTF-8) and splits off the verb. The ``parse_*`` functions each parse
one verb's argument into its event, or raise ``CommandError`` with the 501/553/555 reply. They
know nothing of state: sequencing is the core's table (``states.REFUSALS``).

Leniency, chosen to match what mail programs really send and what Postfix accepts:
spaces after "MAIL FROM:" / "RCPT TO:" and between parameters are allowed; the verb and the
FROM/TO keywords are case-insensitive (RFC 5321 §2.4). Strictness where it matters for safety:
a bare LF or CR in a command is refused (RFC 5321 §2.3.8), since a server and a proxy that
split lines differently can be made to disagree about where a command ends.
"""

from __future__ import annotations

import base64
import binascii
import re

from courriel.wire.smtp import replies
from courriel.wire.smtp.events import Auth, Ehlo, Helo, MailFrom, RcptTo
from courriel.wire.smtp.params import Offered, mail_params, rcpt_params
from courriel.wire.smtp.paths import PathError, is_address_literal, is_domain, parse_path
from courriel.wire.smtp.replies import Reply


class CommandError(ValueError):
    def __init__(self, reply: Reply, *, fatal: bool = False) -> None:
        super().__init__(reply.text)
        self.reply = reply
        self.fatal = fatal


_CONTROLS = bytes(range(0x20)) + b"\x7f"
# "<" then quoted strings (which may hold ">") or other characters, then ">" (RFC 5321 §4.1.2)
_PATH = re.compile(r'<(?:"(?:[^"\\]|\\.)*"|[^">])*>')
_MECHANISM = re.compile(r"[A-Z0-9\-_]{1,20}")  # RFC 4422 §3.1 mechanism names
_BDAT = re.compile(r"([0-9]{1,20})(?: +(LAST))? *", re.IGNORECASE)  # RFC 3030 §2


def split_line(line: bytes) -> tuple[str, str]:
    """(VERB upper-cased, argument) of a line that ends with LF; raises ``CommandError``."""
    if not line.endswith(b"\r\n") or b"\r" in line[:-2]:
        raise CommandError(replies.BARE_NEWLINE_COMMAND)  # RFC 5321 §2.3.8
    body = line[:-2]
    if len(body.translate(None, _CONTROLS)) != len(body):
        raise CommandError(replies.BAD_CHARACTERS)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise CommandError(replies.BAD_CHARACTERS) from None
    verb, _, arg = text.partition(" ")
    return verb.upper(), arg


def parse_hello(verb: str, arg: str) -> Ehlo | Helo:
    """EHLO/HELO: one word, a Domain or address literal (RFC 5321 §4.1.1.1).

    A word that is neither is still reported (with ``valid=False``): many honest clients send
    a bare or underscored machine name, and refusing it is policy, not syntax.
    """
    words = arg.split()
    if not words:
        raise CommandError(replies.SYNTAX_EHLO if verb == "EHLO" else replies.SYNTAX_HELO)
    domain = words[0]
    valid = is_domain(domain) or is_address_literal(domain)
    return Ehlo(domain, valid) if verb == "EHLO" else Helo(domain, valid)


def _path_and_rest(arg: str, keyword: str, syntax: Reply) -> tuple[str, str, str]:
    """Splits ``FROM:<path> params`` into (argument after the colon, path, params)."""
    if arg[: len(keyword)].upper() != keyword:
        raise CommandError(syntax)
    after = arg[len(keyword) :].lstrip(" ")
    m = _PATH.match(after)
    if m is None:
        raise CommandError(syntax)
    rest = after[m.end() :]
    if rest and not rest.startswith(" "):
        raise CommandError(syntax)
    return after, m.group(), rest


def parse_mail(arg: str, offered: Offered, *, esmtp: bool) -> MailFrom:
    """MAIL FROM:<reverse-path> [params] (RFC 5321 §4.1.1.2)."""
    raw, path_text, rest = _path_and_rest(arg, "FROM:", replies.SYNTAX_MAIL)
    if rest.strip() and not esmtp:
        raise CommandError(replies.UNKNOWN_PARAMETER)  # parameters are ESMTP (RFC 5321 §4.1.1.11)
    params = mail_params(rest, offered)  # raises ParamError, a CommandError's sibling
    if path_text == "<>":
        return MailFrom(None, raw, params)  # RFC 5321 §4.5.5 null reverse-path
    try:
        path = parse_path(path_text, utf8=params.smtputf8)
    except PathError as e:
        bad = replies.NEED_SMTPUTF8 if e.needs_utf8 else replies.BAD_SENDER_ADDRESS
        raise CommandError(bad) from None
    return MailFrom(path, raw, params)


def parse_rcpt(arg: str, offered: Offered, *, esmtp: bool, utf8: bool) -> RcptTo:
    """RCPT TO:<forward-path> [params] (RFC 5321 §4.1.1.3)."""
    raw, path_text, rest = _path_and_rest(arg, "TO:", replies.SYNTAX_RCPT)
    if rest.strip() and not esmtp:
        raise CommandError(replies.UNKNOWN_PARAMETER)
    params = rcpt_params(rest, offered, utf8=utf8)
    try:
        path = parse_path(path_text, utf8=utf8, postmaster=True)
    except PathError as e:
        raise CommandError(replies.NEED_SMTPUTF8 if e.needs_utf8 else replies.BAD_ADDRESS) from None
    return RcptTo(path, raw, params)


def parse_bdat(arg: str) -> tuple[int, bool]:
    """BDAT chunk-size [LAST] (RFC 3030 §2).

    A BDAT whose size cannot be read leaves no way to find where its data ends, so the error
    is fatal: going on would read message content as commands.
    """
    m = _BDAT.fullmatch(arg)
    if m is None:
        raise CommandError(replies.SYNTAX_BDAT, fatal=True)
    return int(m.group(1)), m.group(2) is not None


def parse_auth(arg: str, mechanisms: tuple[str, ...]) -> Auth:
    """AUTH mechanism [initial-response] (RFC 4954 §4)."""
    words = arg.split(" ")
    if not 1 <= len(words) <= 2 or not _MECHANISM.fullmatch(words[0].upper()):
        raise CommandError(replies.SYNTAX_AUTH)
    mechanism = words[0].upper()
    if mechanism not in mechanisms:
        raise CommandError(replies.AUTH_MECHANISM_UNKNOWN)  # RFC 4954 §6
    if len(words) == 1:
        return Auth(mechanism, None)
    if words[1] == "=":
        return Auth(mechanism, b"")  # RFC 4954 §4: "=" is an empty initial response
    return Auth(mechanism, decode_base64(words[1]))


def decode_base64(text: str) -> bytes:
    """A SASL line: strict base64 or 501 5.5.2 (RFC 4954 §4)."""
    try:
        raw = text.encode("ascii")
        decoded = base64.b64decode(raw, validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise CommandError(replies.AUTH_BAD_BASE64) from None
    if base64.b64encode(decoded) != raw:
        # RFC 4648 §3.5: non-zero pad bits would give one response two encodings.
        raise CommandError(replies.AUTH_BAD_BASE64)
    return decoded


def no_argument(arg: str, syntax: Reply) -> None:
    """RSET, QUIT, DATA and STARTTLS take no argument (RFC 5321 §4.1.1, RFC 3207 §4)."""
    if arg.strip():
        raise CommandError(syntax)
