"""The POP3 core's state, limits and the calls a session makes into it."""

from __future__ import annotations

import pytest

from courriel.wire import sasl
from courriel.wire.errors import ProtocolError
from courriel.wire.pop3 import (
    NEED_DATA,
    PAUSED,
    Auth,
    AuthResponse,
    Capa,
    Noop,
    Pass,
    Pop3Config,
    Pop3Connection,
    State,
    Stls,
    User,
)

TLS = Pop3Config(tls_active=True, stls_offered=False)


def logged_in(config: Pop3Config = TLS) -> Pop3Connection:
    conn = Pop3Connection(config)
    conn.receive_data(b"USER u\r\nPASS p\r\n")
    assert conn.next_event() == User("u")
    assert conn.next_event() == Pass("p")
    conn.authenticated()
    return conn


def error_of(conn: Pop3Connection) -> ProtocolError:
    with pytest.raises(ProtocolError) as info:
        conn.next_event()
    return info.value


# --- STLS -------------------------------------------------------------------------------------


def test_stls_with_pipelined_bytes_sets_trailing_data_and_drops_them() -> None:
    conn = Pop3Connection(Pop3Config())
    conn.receive_data(b"STLS\r\nUSER mallory\r\n")
    assert conn.next_event() == Stls()
    assert conn.trailing_data  # RFC 2595 §4: thrown away, never read as commands
    assert conn.next_event() is PAUSED
    conn.tls_started()
    assert conn.next_event() is NEED_DATA  # the injected USER is gone


def test_bytes_arriving_while_stls_is_pending_set_trailing_data() -> None:
    conn = Pop3Connection(Pop3Config())
    conn.receive_data(b"STLS\r\n")
    assert conn.next_event() == Stls()
    assert not conn.trailing_data
    conn.receive_data(b"CAPA\r\n")
    assert conn.trailing_data
    assert conn.next_event() is PAUSED


def test_clean_stls_turns_tls_on_and_changes_capabilities() -> None:
    conn = Pop3Connection(Pop3Config())
    before = conn.capa_lines()
    assert "STLS" in before
    assert "USER" not in before
    assert not any(line.startswith("SASL") for line in before)
    conn.receive_data(b"STLS\r\n")
    assert conn.next_event() == Stls()
    assert conn.state is State.STARTING_TLS
    assert not conn.trailing_data
    conn.tls_started()
    assert conn.tls_active
    assert conn.plaintext_auth_allowed
    after = conn.capa_lines()
    assert "STLS" not in after  # RFC 2595 §4
    assert "USER" in after
    assert "SASL PLAIN LOGIN" in after


def test_stls_forgets_a_user_command_sent_in_the_clear() -> None:
    conn = Pop3Connection(Pop3Config(cleartext_auth=True))
    conn.receive_data(b"USER bob\r\n")
    assert conn.next_event() == User("bob")
    conn.receive_data(b"STLS\r\n")
    assert conn.next_event() == Stls()
    conn.tls_started()
    conn.receive_data(b"PASS secret\r\n")
    assert error_of(conn).reply == b"-ERR PASS must come right after USER\r\n"


def test_stls_not_offered_without_tls_explains() -> None:
    conn = Pop3Connection(Pop3Config(stls_offered=False))
    conn.receive_data(b"STLS\r\nUSER bob\r\n")
    assert error_of(conn).reply == b"-ERR STLS is not offered here\r\n"
    # no STLS to suggest, so the refusal does not suggest it
    expected = b"-ERR [AUTH] plaintext authentication is not allowed without TLS\r\n"
    assert error_of(conn).reply == expected


# --- capabilities -----------------------------------------------------------------------------


def test_capa_on_implicit_tls_port_exactly() -> None:
    conn = Pop3Connection(TLS)
    assert conn.capa_response() == (
        b"+OK capability list follows\r\n"
        b"TOP\r\nUIDL\r\nUSER\r\nSASL PLAIN LOGIN\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\n"
        b"PIPELINING\r\nEXPIRE NEVER\r\nIMPLEMENTATION courriel\r\n.\r\n"
    )


def test_capa_is_the_same_after_login() -> None:
    # RFC 2449 §5: what AUTHORIZATION announces, TRANSACTION announces too
    before = Pop3Connection(TLS).capa_lines()
    assert logged_in().capa_lines() == before


def test_capa_without_user_command() -> None:
    conn = Pop3Connection(Pop3Config(tls_active=True, user_command=False))
    assert "USER" not in conn.capa_lines()
    conn.receive_data(b"USER bob\r\n")
    assert error_of(conn).reply == b"-ERR USER/PASS is not offered; use AUTH\r\n"


def test_non_plaintext_mechanism_is_offered_before_tls() -> None:
    conn = Pop3Connection(Pop3Config(sasl_mechanisms=("SCRAM-SHA-256", "PLAIN")))
    assert conn.sasl_mechanisms() == ("SCRAM-SHA-256",)
    assert "SASL SCRAM-SHA-256" in conn.capa_lines()
    conn.receive_data(b"AUTH scram-sha-256 biwsbj11c2VyLHI9ZnlrbytkMmxiYkZnT05Sdjlx\r\n")
    event = conn.next_event()
    assert event == Auth("SCRAM-SHA-256", b"n,,n=user,r=fyko+d2lbbFgONRv9q")


def test_no_sasl_line_when_no_mechanism_is_allowed_now() -> None:
    conn = Pop3Connection(Pop3Config(sasl_mechanisms=("PLAIN",)))
    assert not any(line.startswith("SASL") for line in conn.capa_lines())


def test_cleartext_auth_allows_user_without_tls() -> None:
    conn = Pop3Connection(Pop3Config(cleartext_auth=True))
    assert conn.plaintext_auth_allowed
    assert "USER" in conn.capa_lines()
    assert "STLS" in conn.capa_lines()
    conn.receive_data(b"USER bob\r\n")
    assert conn.next_event() == User("bob")


# --- SASL -------------------------------------------------------------------------------------


def test_challenge_bytes() -> None:
    conn = Pop3Connection(TLS)
    conn.receive_data(b"AUTH LOGIN\r\n")
    assert conn.next_event() == Auth("LOGIN")
    # RFC 5034 §4: "+" SP base64 CRLF
    assert conn.challenge(b"Username:") == b"+ VXNlcm5hbWU6\r\n"


def test_empty_challenge_and_empty_response() -> None:
    conn = Pop3Connection(TLS)
    conn.receive_data(b"AUTH PLAIN\r\n")
    conn.next_event()
    assert conn.challenge(b"") == b"+ \r\n"
    conn.receive_data(b"\r\n")
    assert conn.next_event() == AuthResponse(b"")


def test_sasl_response_may_pass_the_command_line_limit() -> None:
    conn = Pop3Connection(TLS)
    conn.receive_data(b"AUTH PLAIN\r\n")
    conn.next_event()
    conn.challenge(b"")
    conn.receive_data(b"QUFB" * 1000 + b"\r\n")  # 4002 octets, RFC 5034 §4
    assert conn.next_event() == AuthResponse(b"AAA" * 1000)


def test_sasl_response_over_the_decoded_size_cap_is_refused() -> None:
    conn = Pop3Connection(TLS)
    conn.receive_data(b"AUTH PLAIN\r\n")
    conn.next_event()
    conn.challenge(b"")
    conn.receive_data(b"QUFB" * 2000 + b"\r\n")  # 6000 octets decoded: more than any PLAIN
    assert error_of(conn).reply == b"-ERR the authentication response is too long\r\n"
    assert conn.state is State.AUTHORIZATION


def test_sasl_response_over_its_own_limit_ends_the_exchange() -> None:
    conn = Pop3Connection(Pop3Config(tls_active=True, max_sasl_line=64))
    conn.receive_data(b"AUTH PLAIN\r\n")
    conn.next_event()
    conn.challenge(b"")
    conn.receive_data(b"QUFB" * 100 + b"\r\nCAPA\r\n")
    assert error_of(conn).reply == b"-ERR line too long\r\n"
    assert conn.state is State.AUTHORIZATION
    assert conn.next_event() == Capa()


def test_secrets_stay_out_of_repr() -> None:
    assert "hunter2" not in repr(Pass("hunter2"))
    assert "hunter2" not in repr(Auth("PLAIN", b"\0bob\0hunter2"))
    assert "hunter2" not in repr(AuthResponse(b"hunter2"))


# --- line limits ------------------------------------------------------------------------------


def test_line_of_exactly_255_octets_is_accepted() -> None:
    conn = Pop3Connection(TLS)
    name = "a" * (255 - len("USER \r\n"))
    conn.receive_data(f"USER {name}\r\n".encode())
    assert conn.next_event() == User(name)


def test_line_of_256_octets_is_refused_and_the_next_one_is_read() -> None:
    conn = Pop3Connection(TLS)
    name = "a" * (256 - len("USER \r\n"))
    conn.receive_data(f"USER {name}\r\nCAPA\r\n".encode())
    assert error_of(conn).reply == b"-ERR line too long\r\n"  # RFC 2449 §4
    assert conn.next_event() == Capa()
    assert conn.errors == 1


def test_long_line_over_many_reads_is_refused_once_and_skipped() -> None:
    conn = Pop3Connection(TLS)
    conn.receive_data(b"USER " + b"x" * 300)
    assert error_of(conn).reply == b"-ERR line too long\r\n"
    for _ in range(100):
        conn.receive_data(b"y" * 10_000)
        assert conn.next_event() is NEED_DATA
    conn.receive_data(b"zzz\r\nCAPA\r\n")
    assert conn.next_event() == Capa()
    assert conn.errors == 1


def test_partial_line_under_the_limit_waits() -> None:
    conn = Pop3Connection(TLS)
    for byte in b"RETR":
        conn.receive_data(bytes([byte]))
        assert conn.next_event() is NEED_DATA
    conn.receive_data(b"\r\n")
    assert error_of(conn).reply == b"-ERR RETR is not valid before authentication\r\n"


# --- error budget -----------------------------------------------------------------------------


def test_error_budget_closes_the_connection() -> None:
    conn = Pop3Connection(Pop3Config(tls_active=True, max_errors=3))
    conn.receive_data(b"FOO\r\nBAR\r\n" + b"x" * 300 + b"\r\nCAPA\r\n")
    assert not error_of(conn).fatal
    assert not error_of(conn).fatal
    last = error_of(conn)  # the long line spends the last unit
    assert last.fatal
    assert last.reply == b"-ERR too many errors; closing the connection\r\n"
    assert conn.state is State.CLOSED
    assert conn.next_event() is PAUSED  # the CAPA after it is never read


def test_error_budget_counts_errors_not_commands() -> None:
    conn = logged_in(Pop3Config(tls_active=True, max_errors=2))
    conn.receive_data(b"FOO\r\n" + b"NOOP\r\n" * 50 + b"RETR 0\r\n")
    assert not error_of(conn).fatal
    for _ in range(50):
        assert conn.next_event() == Noop()
    assert error_of(conn).fatal


# --- QUIT and the session's calls -------------------------------------------------------------


def test_quit_in_authorization_closes_without_update() -> None:
    conn = Pop3Connection(TLS)
    conn.receive_data(b"QUIT\r\nUSER bob\r\n")
    conn.next_event()
    assert conn.state is State.CLOSED  # RFC 1939 §6: no UPDATE without a login
    conn.receive_data(b"CAPA\r\n")
    assert conn.next_event() is PAUSED


def test_quit_in_transaction_enters_update() -> None:
    conn = logged_in()
    conn.receive_data(b"QUIT\r\nDELE 1\r\n")
    conn.next_event()
    assert conn.state is State.UPDATE
    assert conn.next_event() is PAUSED


@pytest.mark.parametrize("call", ["authenticated", "tls_started", "stls_declined"])
def test_session_calls_out_of_place_are_bugs(call: str) -> None:
    conn = logged_in()
    with pytest.raises(RuntimeError):
        getattr(conn, call)()


def test_challenge_after_login_is_a_bug() -> None:
    with pytest.raises(RuntimeError):
        logged_in().challenge(b"")


def test_tls_started_without_stls_is_a_bug() -> None:
    with pytest.raises(RuntimeError):
        Pop3Connection(Pop3Config()).tls_started()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_line": 5},
        {"max_sasl_line": 0},
        {"max_errors": 0},
        {"sasl_mechanisms": ("plain",)},
    ],
)
def test_config_rejects_nonsense(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        Pop3Config(**kwargs)  # type: ignore[arg-type]


def test_events_drive_the_shared_sasl_exchange() -> None:
    # The session's loop for AUTH, in miniature: the core decodes, the exchange decides.
    conn = Pop3Connection(TLS)
    conn.receive_data(b"AUTH LOGIN\r\nYm9iQGV4YW1wbGUub3Jn\r\nc2VjcmV0\r\n")
    event = conn.next_event()
    assert isinstance(event, Auth)
    exchange = sasl.SaslExchange()
    step = exchange.start_decoded(event.mechanism, event.initial_response)
    sent = []
    while isinstance(step, sasl.Challenge):
        sent.append(conn.challenge(step.data))
        response = conn.next_event()
        assert isinstance(response, AuthResponse)
        step = exchange.step_decoded(response.data)
    conn.authenticated()
    assert sent == [b"+ VXNlcm5hbWU6\r\n", b"+ UGFzc3dvcmQ6\r\n"]
    assert step == sasl.Credentials("bob@example.org", "secret")
    assert conn.state is State.TRANSACTION


def test_discarding_trailing_data_counts_it_and_tls_starts_clean() -> None:
    conn = Pop3Connection(Pop3Config())
    conn.receive_data(b"STLS\r\nUSER mallory\r\n")
    assert conn.next_event() == Stls()
    assert conn.discard_trailing_data() == len(b"USER mallory\r\n")
    assert not conn.trailing_data
    conn.tls_started()
    assert conn.tls_active
    assert conn.next_event() is NEED_DATA  # RFC 2595 §4: the USER sent in clear is gone
