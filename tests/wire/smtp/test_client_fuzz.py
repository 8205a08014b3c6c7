"""The client core's fuzz invariant: any server bytes give replies or ``BadReply``, bounded."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from courriel.wire.smtp.client import ClientConnection, Phase
from courriel.wire.smtp.client_commands import ClientEnvelope, RecipientSpec
from courriel.wire.smtp.client_replies import BadReply, ReplyLimits

LIMITS = ReplyLimits(max_line=256, max_lines=16, max_bytes=2048)

FRAGMENTS = [
    b"220 mx ready\r\n",
    b"250-mx\r\n250-PIPELINING\r\n250-CHUNKING\r\n250-8BITMIME\r\n250 DSN\r\n",
    b"250 2.1.0 ok\r\n",
    b"250-",
    b"354 go\r\n",
    b"550 5.1.1 no\r\n",
    b"451 4.3.0 later\r\n",
    b"421 4.3.2 bye\r\n",
    b"\r\n",
    b"\n",
    b"x" * 300,
]
ENVELOPE = ClientEnvelope(
    "a@example.net", (RecipientSpec("b@example.org"), RecipientSpec("c@example.org")), b"hi\r\n"
)


def drive(pieces: list[bytes]) -> None:
    conn = ClientConnection(LIMITS)
    for piece in pieces:
        conn.receive_data(piece)
        while conn.phase is not Phase.CLOSED:
            reply = conn.next_reply()
            if reply is None:
                break
            conn.receive(reply)
            # a well-behaved adapter: greet, then one transaction after another
            if conn.phase is Phase.FRESH:
                conn.ehlo("client.example")
            elif conn.phase is Phase.READY:
                conn.begin(ENVELOPE)
        assert conn.buffered <= LIMITS.max_bytes + LIMITS.max_line + len(piece)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.binary(max_size=64)), max_size=30))
def test_any_bytes_give_replies_or_bad_reply(pieces: list[bytes]) -> None:
    try:
        drive(pieces)
    except BadReply as e:
        assert e.fatal and str(e)  # a sentence for the log and the outcome
