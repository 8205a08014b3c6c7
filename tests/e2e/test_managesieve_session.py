"""ManageSieve (RFC 5804) over a real socket with STARTTLS: every command, and the refusals a
client must hear at upload time (bad scripts, limits, include loops, the active script)."""

from __future__ import annotations

import base64
import imaplib
import re
import socket
import ssl
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from courriel.testing.server import Account, MailServer


class Client:
    """A line-and-literal reader for ManageSieve responses."""

    def __init__(self, server: MailServer) -> None:
        self.server = server
        self.sock: socket.socket | ssl.SSLSocket = socket.create_connection(
            (server.host, server.port("sieve")), timeout=10
        )
        self.buf = b""

    def close(self) -> None:
        self.sock.close()

    def line(self) -> bytes:
        while b"\r\n" not in self.buf:
            data = self.sock.recv(65536)
            assert data, "connection closed"
            self.buf += data
        line, self.buf = self.buf.split(b"\r\n", 1)
        m = re.search(rb"\{(\d+)\}$", line)
        if m:  # a literal follows: read it whole, with the rest of its line
            size = int(m.group(1))
            while len(self.buf) < size:
                self.buf += self.sock.recv(65536)
            literal, self.buf = self.buf[:size], self.buf[size:]
            return line + b"\r\n" + literal + self.line()
        return line

    def response(self) -> list[bytes]:
        """Every line up to and including the OK / NO / BYE."""
        lines = []
        while True:
            line = self.line()
            lines.append(line)
            if re.match(rb"(OK|NO|BYE)( |$)", line):
                return lines

    def command(self, data: bytes) -> list[bytes]:
        self.sock.sendall(data + b"\r\n")
        return self.response()

    def starttls(self) -> list[bytes]:
        assert self.command(b"STARTTLS")[-1].startswith(b"OK")
        context = self.server.ssl_context()
        self.sock = context.wrap_socket(self.sock, server_hostname=self.server.hostname)
        return self.response()

    def login(self, account: Account, password: str | None = None) -> bytes:
        secret = f"\0{account.address}\0{password or account.password}".encode()
        return self.command(b'AUTHENTICATE "PLAIN" "' + base64.b64encode(secret) + b'"')[-1]

    def put(self, name: str, script: bytes) -> bytes:
        head = f'PUTSCRIPT "{name}" {{{len(script)}+}}\r\n'.encode()
        return self.command(head + script)[-1]


def test_capabilities_tls_and_login(mail_server: MailServer, mail_user: Account) -> None:
    c = Client(mail_server)
    greeting = c.response()
    assert b'"IMPLEMENTATION" "courriel"' in greeting
    assert b'"STARTTLS"' in greeting and b'"SASL" ""' in greeting  # no password before TLS
    assert b'"VERSION" "1.0"' in greeting and greeting[-1] == b"OK"
    sieve_line = next(line for line in greeting if line.startswith(b'"SIEVE"'))
    for ext in (b"fileinto", b"vacation", b"imap4flags", b"include", b"variables", b"date"):
        assert ext in sieve_line
    refused = c.login(mail_user)
    assert refused.startswith(b"NO (ENCRYPT-NEEDED)")  # RFC 5804 §2.1
    caps = c.starttls()
    assert b'"SASL" "LOGIN PLAIN"' in caps and b'"STARTTLS"' not in caps  # RFC 5804 §2.2
    assert c.login(mail_user, "wrong").startswith(b"NO ")
    assert c.command(b"LISTSCRIPTS")[-1].startswith(b"NO ")
    assert c.login(mail_user) == b'OK "Logged in"'
    assert b'"OWNER" "alice@example.test"' in c.command(b"CAPABILITY")
    assert c.command(b'NOOP "t7"') == [b'OK (TAG "t7") "Done"']
    assert c.command(b"UNAUTHENTICATE") == [b"OK"]
    assert c.command(b"LISTSCRIPTS")[-1].startswith(b"NO ")
    assert c.command(b"LOGOUT") == [b'OK "Logout complete"']
    c.close()


def test_script_commands(mail_server: MailServer, mail_user: Account) -> None:
    c = Client(mail_server)
    c.response()
    c.starttls()
    assert c.login(mail_user).startswith(b"OK")
    assert c.command(b'HAVESPACE "a" 1000') == [b"OK"]
    assert c.command(b'HAVESPACE "a" 999999999')[-1].startswith(b"NO (QUOTA/MAXSIZE)")
    assert c.put("a", b'require "fileinto";\r\nfileinto "Archive";\r\n') == b"OK"
    assert c.put("b", b"keep;") == b"OK"
    assert c.command(b"LISTSCRIPTS") == [b'"a"', b'"b"', b"OK"]
    assert c.command(b'SETACTIVE "a"') == [b"OK"]
    assert c.command(b"LISTSCRIPTS") == [b'"a" ACTIVE', b'"b"', b"OK"]
    assert c.command(b'SETACTIVE "zz"')[-1].startswith(b"NO (NONEXISTENT)")
    assert c.command(b'GETSCRIPT "a"') == [
        b'{42}\r\nrequire "fileinto";\r\nfileinto "Archive";\r\n',
        b"OK",
    ]
    assert c.command(b'DELETESCRIPT "a"')[-1].startswith(b"NO (ACTIVE)")  # RFC 5804 §2.10
    assert c.command(b'RENAMESCRIPT "b" "a"')[-1].startswith(b"NO (ALREADYEXISTS)")
    assert c.command(b'RENAMESCRIPT "b" "c"') == [b"OK"]
    assert c.command(b'DELETESCRIPT "c"') == [b"OK"]
    assert c.command(b'GETSCRIPT "c"')[-1].startswith(b"NO (NONEXISTENT)")
    assert c.command(b'SETACTIVE ""') == [b"OK"]
    assert c.command(b"LISTSCRIPTS") == [b'"a"', b"OK"]
    assert c.command(b'CHECKSCRIPT "keep;"') == [b"OK"]
    c.close()


def test_bad_scripts_are_refused_at_upload_with_the_reason(
    mail_server: MailServer, mail_user: Account
) -> None:
    c = Client(mail_server)
    c.response()
    c.starttls()
    assert c.login(mail_user).startswith(b"OK")
    assert c.put(
        "x", b'keep;\r\nfileinto "a";\r\n'
    ) == b'NO "line 2: the command \\"fileinto\\"' + (b' needs require \\"fileinto\\""')
    deep = b"if true {" * 5000 + b"keep;" + b"}" * 5000
    assert b"nest deeper than 32" in c.put("x", deep)
    huge = b'redirect "' + b"a" * 100_000 + b'";'
    assert b"string is longer than 65536 bytes" in c.put("x", huge)
    assert b"regex match type is not supported" in c.put("x", b'if header :regex "a" "(a+)+$" {}')
    assert c.put("one", b'require "include"; include "two";') == b"OK"
    assert c.put("two", b'require "include"; include "one";') == (
        b'NO "scripts would include each other in a loop: two -> one -> two"'
    )
    assert b"NO " in c.command(b'CHECKSCRIPT "frob;"')[-1]
    assert c.command(b"LISTSCRIPTS") == [b'"one"', b"OK"]  # nothing refused was stored
    c.close()


def test_failed_logins_count_with_the_other_protocols(
    mail_server: MailServer, mail_user: Account
) -> None:
    c = Client(mail_server)
    c.response()
    c.starttls()
    replies = [c.login(mail_user, f"wrong{n}") for n in range(9)]
    assert all(r.startswith(b"NO ") for r in replies)
    c.close()
    c = Client(mail_server)
    c.response()
    c.starttls()
    assert c.login(mail_user, "wrong9").startswith(b"NO ")
    # The address is now over the shared limit: the right password is refused here too, with
    # a sentence, and IMAP refuses it as well.
    refused = c.login(mail_user)
    assert refused.startswith(b"NO (TRYLATER)"), refused
    c.close()
    context = mail_server.ssl_context()
    context.check_hostname = False
    with imaplib.IMAP4_SSL(mail_server.host, mail_server.port("imaps"), ssl_context=context) as m:
        try:
            m.login(mail_user.address, mail_user.password)
        except imaplib.IMAP4.error as e:
            assert "UNAVAILABLE" in str(e)
        else:
            raise AssertionError("IMAP accepted a login over the shared failure limit")
