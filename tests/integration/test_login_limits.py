"""Failed-login limits over real sockets: a guesser is slowed, the owner is not locked out.

Clients connect from different loopback addresses (127.0.0.2, 127.0.0.3 ...) to a server on
127.0.0.1, so the per-address counting is the real one. The defaults hold: 10 failures per
address and 20 per account in a 300 s window, and a session closed after 10 in a row.
"""

from __future__ import annotations

import socket
from pathlib import Path

from courriel.testing.imap import PASSWORD, USER, Raw, Server
from courriel.testing.transcript import HOSTNAME


def connect(server: Server, source: str) -> Raw:
    host, port = server.address()
    sock = socket.create_connection((host, port), timeout=10, source_address=(source, 0))
    return Raw(server.tls().wrap_socket(sock, server_hostname=HOSTNAME))


def login(client: Raw, password: str) -> str:
    return client.command(f"LOGIN {USER} {password}")[-1]


def guess(server: Server, source: str, times: int) -> list[str]:
    client = connect(server, source)
    try:
        return [login(client, f"wrong{n}") for n in range(times)]
    finally:
        client.close()


def test_an_attack_on_the_account_does_not_lock_out_the_owner(tmp_path: Path) -> None:
    with Server.started(tmp_path) as server:
        server.add_user()
        owner = connect(server, "127.0.0.1")
        assert " OK " in login(owner, PASSWORD)  # the owner's usual address, now known
        owner.close()
        # Guessers on three addresses spend the account's 20 failures.
        for source, times in (("127.0.0.2", 9), ("127.0.0.3", 9), ("127.0.0.4", 2)):
            answers = guess(server, source, times)
            assert all("NO [AUTHENTICATIONFAILED]" in a for a in answers), answers
        # A new address is refused before its (right) password is checked, and told why.
        stranger = connect(server, "127.0.0.5")
        refused = login(stranger, PASSWORD)
        assert "NO [UNAVAILABLE] Too many failed logins for this account; try again in" in refused
        stranger.close()
        # The owner's own address keeps working, from another process's point of view too:
        # the memory of the successful login is in the store.
        owner = connect(server, "127.0.0.1")
        assert " OK " in login(owner, PASSWORD)
        owner.close()


def test_a_guessing_address_is_limited_and_its_sessions_closed(tmp_path: Path) -> None:
    with Server.started(tmp_path) as server:
        server.add_user()
        client = connect(server, "127.0.0.7")
        for n in range(9):
            assert "NO [AUTHENTICATIONFAILED]" in login(client, f"wrong{n}")
        # The tenth failure in a row ends the session: NO, then BYE, then the server hangs up.
        client.send("t99 LOGIN alice@example.test wrong9")
        assert client.line().startswith("t99 NO [AUTHENTICATIONFAILED]")
        assert client.line() == "* BYE Too many failed logins, closing"
        try:
            client.line(timeout=5)
            raise AssertionError("the server kept the session open")
        except ConnectionError:
            pass
        client.close()
        # That address has spent its 10 failures: a new session is refused, right password
        # or not; another address is not affected.
        again = connect(server, "127.0.0.7")
        assert "Too many failed logins from your address; try again in" in login(again, PASSWORD)
        again.close()
        other = connect(server, "127.0.0.8")
        assert " OK " in login(other, PASSWORD)
        other.close()
