"""The fuzz invariant: any bytes give events or ``ProtocolError``, and memory stays bounded."""

from __future__ import annotations

import itertools
import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from courriel.wire.errors import ProtocolError
from courriel.wire.smtp import Auth, AuthResponse, Data, Event, Reply, State, challenge
from courriel.wire.smtp import replies as r

LIMITS = {"max_message_bytes": 2000, "max_line": 512, "max_auth_line": 1024}

# Pieces of real conversations, so the fuzzer reaches DATA, BDAT, AUTH and STARTTLS, mixed
# with arbitrary bytes and the line ends that matter for smuggling.
FRAGMENTS = [
    b"EHLO c.example\r\n",
    b"HELO c.example\r\n",
    b"MAIL FROM:<a@example.net>\r\n",
    b"MAIL FROM:<> BODY=BINARYMIME SMTPUTF8\r\n",
    b"RCPT TO:<b@example.org> NOTIFY=NEVER\r\n",
    b"DATA\r\n",
    b"BDAT 7\r\n",
    b"BDAT 3 LAST\r\n",
    b"RSET\r\n",
    b"STARTTLS\r\n",
    b"AUTH PLAIN\r\n",
    b"AUTH LOGIN dXNlcg==\r\n",
    b"*\r\n",
    b"QUIT\r\n",
    b"\r\n.\r\n",
    b".\r\n",
    b"\n.\n",
    b"..\r\n",
    b"\r",
    b"\n",
    b"x" * 600,
]


def chunks() -> st.SearchStrategy[list[bytes]]:
    piece = st.one_of(st.sampled_from(FRAGMENTS), st.binary(max_size=64))
    return st.lists(st.lists(piece, max_size=6).map(b"".join), max_size=25)


def random_policy(d, rng: random.Random) -> None:
    refuse = Reply(550, "5.7.1", "no")

    def decide(event: Event) -> Reply:
        if rng.random() < 0.2:
            return refuse
        if isinstance(event, Auth | AuthResponse) and rng.random() < 0.5:
            return challenge(b"more")
        if isinstance(event, Data):
            return r.START_DATA
        return d.default_reply(event)

    for kind in Event.__args__:  # type: ignore[attr-defined]
        d.overrides[kind] = decide


# ``smtp`` is a stateless factory, so sharing it between examples is safe.
_SUPPRESS = [HealthCheck.too_slow, HealthCheck.function_scoped_fixture]


@settings(max_examples=300, deadline=None, suppress_health_check=_SUPPRESS)
@given(chunks(), st.randoms(use_true_random=False), st.booleans())
def test_any_bytes_give_events_or_protocol_errors(smtp, pieces, rng, tls):
    d = smtp(tls_available=tls, auth_mechanisms=("PLAIN", "LOGIN"), max_errors=30, **LIMITS)
    random_policy(d, rng)
    bound = LIMITS["max_message_bytes"] + LIMITS["max_auth_line"]
    for piece in pieces:
        if d.conn.state is State.CLOSED:
            break
        d.feed(piece)  # only ProtocolError is caught inside; anything else fails the test
        if d.conn.state is State.TLS:
            if d.conn.trailing_data:
                try:
                    d.conn.tls_started()
                except ProtocolError as e:
                    assert e.fatal
                assert d.conn.state is State.CLOSED
                break
            d.conn.tls_started()
        assert d.conn.buffered_bytes <= bound
    assert all(e.reply.endswith(b"\r\n") for e in d.errors)


# --- properties of the bulk readers -------------------------------------------------------

BODY_PIECES = [b"\r\n", b".", b"..", b"\r", b"\n", b"text", b"\r\n.\r", b"x" * 40]


@st.composite
def conversation(draw: st.DrawFn) -> bytes:
    out = [b"EHLO c.example\r\n"]
    for _ in range(draw(st.integers(1, 3))):
        out.append(b"MAIL FROM:<a@example.net>\r\nRCPT TO:<b@example.org>\r\n")
        body = b"".join(draw(st.lists(st.sampled_from(BODY_PIECES), max_size=40)))
        if draw(st.booleans()):
            out.append(b"DATA\r\n" + body.replace(b"\r\n.\r\n", b"\r\n..\r\n") + b"\r\n.\r\n")
        else:
            out.append(b"BDAT %d LAST\r\n" % len(body) + body)
    out.append(b"QUIT\r\n")
    return b"".join(out)


@settings(max_examples=200, deadline=None, suppress_health_check=_SUPPRESS)
@given(conversation(), st.lists(st.integers(0, 2000), max_size=30))
def test_output_does_not_depend_on_how_input_is_split(smtp, data, cuts):
    whole = smtp(max_message_bytes=300)
    expected = whole.feed(data)
    split = smtp(max_message_bytes=300)
    bounds = [0, *sorted(c % (len(data) + 1) for c in cuts), len(data)]
    got = b"".join(split.feed(data[a:b]) for a, b in itertools.pairwise(bounds))
    assert got == expected
    assert split.events == whole.events
    assert whole.conn.state is State.CLOSED and expected.endswith(b"221 2.0.0 bye\r\n")


COMMANDS = [
    b"EHLO c.example\r\n",
    b"HELO c.example\r\n",
    b"MAIL FROM:<a@example.net>\r\n",
    b"MAIL FROM:<bad\r\n",
    b"RCPT TO:<b@example.org>\r\n",
    b"RCPT TO:<@@>\r\n",
    b"RSET\r\n",
    b"NOOP\r\n",
    b"VRFY b\r\n",
    b"HELP\r\n",
    b"BOGUS\r\n",
    b"STARTTLS\r\n",  # not offered here: refused, so it stays a one-line command
]


@settings(max_examples=200, deadline=None, suppress_health_check=_SUPPRESS)
@given(st.lists(st.sampled_from(COMMANDS), max_size=40))
def test_every_pipelined_command_gets_one_reply(smtp, commands):
    # RFC 2920 §3.1: replies come back in order, one per command
    d = smtp(max_errors=1000)
    out = d.feed(b"".join(commands))
    final_lines = [line for line in out.split(b"\r\n") if line[3:4] == b" "]
    assert len(final_lines) == len(commands)
