"""The core's one invariant: any bytes give events, NeedData or ProtocolError, nothing else."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from courriel.wire.errors import ProtocolError
from courriel.wire.imap import Connection, Limits, LiteralRequest, NeedData
from courriel.wire.imap.commands import Authenticate, Idle
from courriel.wire.imap.events import ConnectionClosed

# pieces of real commands, so the fuzzer gets past the tag and into every parser
TOKENS = [
    b"a1 ",
    b"UID ",
    b"FETCH ",
    b"SEARCH ",
    b"STORE ",
    b"APPEND ",
    b"SELECT ",
    b"LIST ",
    b"LOGIN ",
    b"STATUS ",
    b"CREATE ",
    b"ID ",
    b"ENABLE ",
    b"IDLE",
    b"AUTHENTICATE PLAIN",
    b"SETQUOTA ",
    b"MOVE ",
    b"COPY ",
    b"EXPUNGE",
    b"RETURN ",
    b"CHARSET ",
    b"(",
    b")",
    b"[",
    b"]",
    b"<",
    b">",
    b" ",
    b"\r\n",
    b"\n",
    b"{3}\r\n",
    b"{2+}\r\n",
    b"~{1+}\r\n",
    b"{99999999999}\r\n",
    b'"',
    b"\\",
    b"*",
    b"$",
    b":",
    b",",
    b"1",
    b"0",
    b"4294967296",
    b"INBOX",
    b"&Jjo-",
    b"&",
    b"-",
    b"BODY.PEEK[HEADER.FIELDS (",
    b"BINARY[1]",
    b"<0.10>",
    b"FLAGS",
    b"+FLAGS.SILENT ",
    b"\\Seen",
    b"NOT ",
    b"OR ",
    b"ON 1-Jan-2000",
    b"MODSEQ ",
    b"(QRESYNC (1 2 1:5 (1 2)))",
    b"(CHANGEDSINCE 1 VANISHED)",
    b"(UNCHANGEDSINCE 5)",
    b"UTF8 (",
    b"NIL",
    b"DONE\r\n",
    b"=\r\n",
    b"AGJvYgBwdw==\r\n",
    b"\x00",
    b"\xff",
    b"\xc3\xa9",
]

chunks = st.lists(st.one_of(st.binary(max_size=12), st.sampled_from(TOKENS)), max_size=40).map(
    b"".join
)


def drive(conn: Connection, data: bytes, split: int, accept: bool) -> None:
    for start in range(0, len(data) or 1, max(split, 1)):
        conn.receive_data(data[start : start + max(split, 1)])
        for _ in range(10_000):
            try:
                event = conn.next_event()
            except ProtocolError as e:
                assert e.reply.endswith(b"\r\n")
                if e.fatal:
                    return
                continue
            if isinstance(event, NeedData | ConnectionClosed):
                break
            if isinstance(event, LiteralRequest):
                if accept:
                    conn.accept_literal()
                else:
                    conn.refuse_literal()
            elif isinstance(event, Idle) and not conn.idling:
                conn.start_idle(event.tag)
            elif isinstance(event, Authenticate):
                conn.sasl_challenge(event.tag, b"")
        else:
            raise AssertionError("next_event did not come back to NeedData")


@settings(max_examples=400, deadline=None)
@given(chunks, st.integers(1, 64), st.booleans(), st.booleans())
def test_any_bytes_give_events_or_protocol_errors(
    data: bytes, split: int, accept: bool, utf8: bool
) -> None:
    conn = Connection(Limits(max_line=200, max_literal=64, max_depth=8, max_ranges=5))
    if utf8:
        conn.enable_utf8()
    drive(conn, data, split, accept)
    conn.receive_data(b"")
    drive(conn, b"", 1, accept)
