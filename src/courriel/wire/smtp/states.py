"""The SMTP server's states and its two tables: which commands each state takes, and where a reply
leads.

Theory of operation
-------------------
``REFUSALS`` says, for every state that reads commands, which verbs are out of sequence there and
the 503 that answers them (RFC 5321 §4.1.4, §3.3); a verb absent from a state's row is legal in
that state. ``ON_REPLY`` says where the session's reply to each event takes the connection: a
command only changes the state once the server has accepted it, as in h11, so a refused MAIL
leaves no transaction behind and a refused RCPT does not count as a recipient.

RSET, NOOP and QUIT are legal in every command state (RFC 5321 §4.1.4 "... may be issued at any
time"). EHLO and HELO reset a transaction like RSET (§4.1.1.1, §4.1.4); inside a BDAT transfer
they are refused, because RFC 3030 §2 only lets RSET abandon chunks.
"""

from __future__ import annotations

import enum

from courriel.wire.smtp import events as ev
from courriel.wire.smtp import replies as r
from courriel.wire.smtp.replies import Reply


class State(enum.Enum):
    START = "start"  # connected, greeting not yet sent
    REFUSED = "refused"  # greeted with 554: only QUIT (RFC 5321 §3.1)
    FRESH = "fresh"  # greeted, no EHLO/HELO yet
    READY = "ready"  # EHLO/HELO done, no transaction
    MAIL = "mail"  # sender accepted, no recipient yet
    RCPT = "rcpt"  # at least one recipient accepted
    DATA = "data"  # 354 sent: reading the message up to <CRLF>.<CRLF>
    BDAT = "bdat"  # at least one BDAT chunk without LAST accepted (RFC 3030)
    AUTH = "auth"  # 334 sent: inside a SASL exchange (RFC 4954 §4)
    TLS = "tls"  # 220 sent to STARTTLS: waiting for the handshake (RFC 3207 §4)
    CLOSED = "closed"


VERBS = frozenset(
    {"EHLO", "HELO", "MAIL", "RCPT", "DATA", "BDAT", "RSET", "NOOP", "QUIT"}
    | {"VRFY", "HELP", "STARTTLS", "AUTH"}
)

_ALL_BUT_QUIT = dict.fromkeys(VERBS - {"QUIT"}, r.GREETING_REFUSED)

# state -> {verb: the reply refusing it}. Absent verbs are legal. States that do not read
# commands (START, DATA, AUTH, TLS, CLOSED) have no row.
REFUSALS: dict[State, dict[str, Reply]] = {
    State.REFUSED: _ALL_BUT_QUIT,  # RFC 5321 §3.1
    State.FRESH: {
        "MAIL": r.SEND_HELO_FIRST,  # RFC 5321 §4.1.4
        "RCPT": r.SEND_HELO_FIRST,
        "DATA": r.SEND_HELO_FIRST,
        "BDAT": r.SEND_HELO_FIRST,
        "STARTTLS": r.SEND_EHLO_FIRST,
        "AUTH": r.SEND_EHLO_FIRST,
    },
    State.READY: {
        "RCPT": r.SEND_MAIL_FIRST,  # RFC 5321 §3.3
        "DATA": r.SEND_MAIL_FIRST,
        "BDAT": r.SEND_MAIL_FIRST,
    },
    State.MAIL: {
        "MAIL": r.NESTED_MAIL,
        "DATA": r.SEND_RCPT_FIRST,  # RFC 5321 §3.3: DATA needs an accepted RCPT
        "BDAT": r.SEND_RCPT_FIRST,
        "STARTTLS": r.IN_TRANSACTION,
        "AUTH": r.IN_TRANSACTION,  # RFC 4954 §4
    },
    State.RCPT: {
        "MAIL": r.NESTED_MAIL,
        "STARTTLS": r.IN_TRANSACTION,
        "AUTH": r.IN_TRANSACTION,
    },
    State.BDAT: {
        "EHLO": r.BDAT_IN_PROGRESS,
        "HELO": r.BDAT_IN_PROGRESS,
        "MAIL": r.BDAT_IN_PROGRESS,
        "RCPT": r.BDAT_IN_PROGRESS,
        "DATA": r.DATA_AFTER_BDAT,  # RFC 3030 §2
        "VRFY": r.BDAT_IN_PROGRESS,
        "HELP": r.BDAT_IN_PROGRESS,
        "STARTTLS": r.BDAT_IN_PROGRESS,
        "AUTH": r.BDAT_IN_PROGRESS,
    },
}

# event type -> ((lowest code, highest code, next state), ...); the first range that holds the
# reply code wins, and no match leaves the state as it was. A 421 closes from anywhere
# (RFC 5321 §3.8), which the core applies before this table.
ON_REPLY: dict[type[ev.Event], tuple[tuple[int, int, State], ...]] = {
    ev.Ehlo: ((200, 299, State.READY),),
    ev.Helo: ((200, 299, State.READY),),
    ev.MailFrom: ((200, 299, State.MAIL),),
    ev.RcptTo: ((200, 299, State.RCPT),),
    ev.Data: ((354, 354, State.DATA),),
    ev.MessageData: ((200, 599, State.READY),),  # RFC 5321 §4.1.1.4: the transaction is over
    ev.BdatChunk: ((200, 299, State.BDAT), (300, 599, State.READY)),
    ev.BdatLast: ((200, 599, State.READY),),
    # RFC 4468 §3: a BURL that cannot be resolved ends the transaction, as a refused chunk does
    ev.BurlUrl: ((300, 599, State.READY),),
    ev.Rset: ((200, 299, State.READY),),  # from FRESH it stays FRESH: no EHLO was given
    ev.Noop: (),
    ev.Quit: ((221, 221, State.CLOSED),),
    ev.Vrfy: (),
    ev.Help: (),
    ev.StartTls: ((220, 220, State.TLS),),
    ev.Auth: ((334, 334, State.AUTH), (235, 235, State.READY)),
    ev.AuthResponse: ((334, 334, State.AUTH), (200, 599, State.READY)),
}


def after_reply(state: State, event: ev.Event, code: int) -> State:
    """The state once ``code`` answered ``event`` in ``state``."""
    for low, high, target in ON_REPLY[type(event)]:
        if low <= code <= high:
            if state is State.FRESH and target is State.READY and isinstance(event, ev.Rset):
                return State.FRESH
            return target
    return state
