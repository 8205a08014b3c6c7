"""The three protocols as Python's own clients speak them, over a socket the check connected.

Theory of operation
-------------------
imaplib, poplib and smtplib open their own sockets by host name. The check needs the socket in
its own hands -- to time the connect and the handshake apart, to connect to the address its own
DNS gave while TLS checks the host *name* -- so each client class here takes a connected socket
(plain, or already TLS for the implicit-TLS ports) and uses it instead of opening one. STARTTLS
is left to the library (it wraps ``self.sock`` with ``server_hostname`` = the host name).

Each ``Protocol`` says, for the STARTTLS port, whether the server refuses passwords before TLS,
as RFC 9051 §6.2.3 (LOGINDISABLED), RFC 2595 §4 (no USER/SASL before STLS) and RFC 3207 §4.2
with RFC 4954 §4 (no AUTH before STARTTLS) want; and how to log in, turning a refusal into
``LoginRefusedError`` with the server's reply.
"""

from __future__ import annotations

import contextlib
import imaplib
import poplib
import smtplib
import socket
import ssl
from typing import Any, Protocol

LOCAL_NAME = "courriel-check.invalid"  # EHLO name: the check is no mail server (RFC 2606 .invalid)


class LoginRefusedError(Exception):
    def __init__(self, reply: str) -> None:
        super().__init__(reply)
        self.reply = reply


class UnexpectedReplyError(Exception):
    """The server answered something unexpected; the message is its reply."""


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, list | tuple):
        return " ".join(_text(v) for v in value)
    return str(value)


class ImapClient(imaplib.IMAP4):
    def __init__(self, sock: socket.socket, host: str, port: int) -> None:
        self._given = sock
        super().__init__(host, port, timeout=sock.gettimeout())

    def _create_socket(self, timeout: float | None) -> socket.socket:
        return self._given


class Pop3Client(poplib.POP3):
    def __init__(self, sock: socket.socket, host: str, port: int) -> None:
        self._given = sock
        super().__init__(host, port, timeout=sock.gettimeout() or 30.0)

    def _create_socket(self, timeout: float) -> socket.socket:
        return self._given


class SmtpClient(smtplib.SMTP):
    def __init__(self, sock: socket.socket, host: str, port: int) -> None:
        self._given = sock
        super().__init__(host, port, local_hostname=LOCAL_NAME, timeout=sock.gettimeout() or 30.0)

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        return self._given


class Speaker(Protocol):
    """One protocol's client side, as the checks drive it."""

    name: str

    def open(self, sock: socket.socket, host: str, port: int) -> Any:
        """A client that has read the greeting."""

    def offers_starttls(self, client: Any) -> bool: ...

    def refuses_plain_passwords(self, client: Any) -> tuple[bool, str]:
        """(refused?, what the server announced) on the STARTTLS port, before TLS."""

    def upgrade(self, client: Any, context: ssl.SSLContext) -> ssl.SSLSocket: ...

    def login(self, client: Any, user: str, password: str) -> None:
        """Raises ``LoginRefusedError`` with the server's reply."""

    def close(self, client: Any) -> None: ...


class Imap:
    name = "IMAP"

    def open(self, sock: socket.socket, host: str, port: int) -> ImapClient:
        return ImapClient(sock, host, port)

    def offers_starttls(self, client: ImapClient) -> bool:
        return "STARTTLS" in client.capabilities

    def refuses_plain_passwords(self, client: ImapClient) -> tuple[bool, str]:
        caps = " ".join(client.capabilities)
        return "LOGINDISABLED" in client.capabilities, f"CAPABILITY {caps}"  # RFC 9051 §6.2.3

    def upgrade(self, client: ImapClient, context: ssl.SSLContext) -> ssl.SSLSocket:
        client.starttls(ssl_context=context)
        assert isinstance(client.sock, ssl.SSLSocket)
        return client.sock

    def login(self, client: ImapClient, user: str, password: str) -> None:
        try:
            client.login(user, password)
        except imaplib.IMAP4.error as e:
            raise LoginRefusedError(_text(e.args[0] if e.args else e)) from None

    def close(self, client: ImapClient) -> None:
        with contextlib.suppress(Exception):
            client.logout()
        with contextlib.suppress(OSError):
            client.shutdown()  # logout closes only when the server answered it


class Pop3:
    name = "POP3"

    def open(self, sock: socket.socket, host: str, port: int) -> Pop3Client:
        return Pop3Client(sock, host, port)

    def _capa(self, client: Pop3Client) -> dict[str, list[str]]:
        try:
            return client.capa()
        except poplib.error_proto:
            return {}  # RFC 2449 is optional: no CAPA, no STLS

    def offers_starttls(self, client: Pop3Client) -> bool:
        return "STLS" in self._capa(client)

    def refuses_plain_passwords(self, client: Pop3Client) -> tuple[bool, str]:
        capa = self._capa(client)
        sasl = capa.get("SASL", [])
        # RFC 2595 §4: no USER, no plain-text SASL before STLS.
        refused = "USER" not in capa and not ({"PLAIN", "LOGIN"} & set(sasl))
        return refused, "CAPA " + " ".join(sorted(capa))

    def upgrade(self, client: Pop3Client, context: ssl.SSLContext) -> ssl.SSLSocket:
        client.stls(context=context)
        assert isinstance(client.sock, ssl.SSLSocket)
        return client.sock

    def login(self, client: Pop3Client, user: str, password: str) -> None:
        try:
            client.user(user)
            client.pass_(password)
        except poplib.error_proto as e:
            raise LoginRefusedError(_text(e.args[0] if e.args else e)) from None

    def close(self, client: Pop3Client) -> None:
        with contextlib.suppress(Exception):
            client.quit()
        with contextlib.suppress(OSError):
            client.close()


class Smtp:
    name = "SMTP"

    def open(self, sock: socket.socket, host: str, port: int) -> SmtpClient:
        client = SmtpClient(sock, host, port)
        code, _ = client.ehlo()
        if code != 250:
            raise UnexpectedReplyError(f"EHLO answered {code}")
        return client

    def offers_starttls(self, client: SmtpClient) -> bool:
        return client.has_extn("starttls")

    def refuses_plain_passwords(self, client: SmtpClient) -> tuple[bool, str]:
        # RFC 4954 §4 and common practice: AUTH is offered only once TLS is on.
        names = " ".join(k.upper() for k in client.esmtp_features)
        return not client.has_extn("auth"), f"EHLO {names}"

    def upgrade(self, client: SmtpClient, context: ssl.SSLContext) -> ssl.SSLSocket:
        code, reply = client.starttls(context=context)
        if code != 220:
            raise UnexpectedReplyError(f"STARTTLS answered {code} {_text(reply)}")
        client.ehlo()  # RFC 3207 §4.2: the session starts over
        assert isinstance(client.sock, ssl.SSLSocket)
        return client.sock

    def login(self, client: SmtpClient, user: str, password: str) -> None:
        try:
            client.login(user, password)
        except smtplib.SMTPAuthenticationError as e:
            raise LoginRefusedError(f"{e.smtp_code} {_text(e.smtp_error)}") from None
        except smtplib.SMTPNotSupportedError:
            raise LoginRefusedError("AUTH not offered") from None
        except smtplib.SMTPException as e:
            raise LoginRefusedError(str(e)) from None

    def close(self, client: SmtpClient) -> None:
        with contextlib.suppress(Exception):
            client.quit()
        with contextlib.suppress(OSError):
            client.close()
