"""``SmtpConnection``: the sans-IO SMTP server engine (RFC 5321 with its ESMTP extensions).

Theory of operation
-------------------
Bytes go in with ``receive_data``; ``next_event`` returns the next complete unit as an event.
Every event waits for exactly one ``send(reply)``, and the reply decides where the connection
goes next (``states.ON_REPLY``): the core never guesses whether the session accepted a
command. Legal command order is the table ``states.REFUSALS``; a command out of order, a syntax
error or a limit reached raises ``ProtocolError`` carrying the exact reply, and the core has
already moved to the state that reply implies. Anything else escaping this module is a bug.

Bytes are consumed only while the core is ready for them. After DATA nothing is read until the
session has answered 354, so pipelined content after a refused DATA is read as commands, and
pipelined content after an accepted DATA as message (RFC 2920 §3.1). After STARTTLS's 220
nothing is read at all: bytes already buffered are ``trailing_data``, which the adapter throws
away (``discard_trailing_data``) before the handshake; ``tls_started`` refuses if any are left
(RFC 3207 §4.2, the CVE-2011-0411 class), because they arrived in plaintext and must not be
executed as if they came under TLS.

Errors are budgeted: every 4xx/5xx reply, the core's or the session's, counts, and the reply that
reaches ``max_errors`` is followed by 421 4.7.0 and the connection closes. A delivered message
resets the count, as Postfix's hard error limit counts errors "without delivering mail".
Commands that move no mail (NOOP, RSET, VRFY, HELP) are junk past ``max_junk_commands``: each
further one counts as an error too (Postfix's junk command limit), so a client pipelining
thousands of NOOPs gets 421 after a few hundred replies instead of keeping a session busy.

A BDAT chunk of more than twice the message limit is refused with 552 at once and the
connection closed: reading it only to stay in step could take for ever (a size of 2^64).
Smaller oversized chunks are read and thrown away as they arrive, then refused.
"""

from __future__ import annotations

import re
from typing import NoReturn

from courriel.wire.errors import ProtocolError
from courriel.wire.linebuffer import LineBuffer, LineTooLong
from courriel.wire.smtp import commands as cmd
from courriel.wire.smtp import events as ev
from courriel.wire.smtp import replies as r
from courriel.wire.smtp.data import ChunkReader, DotReader, MessageRefused
from courriel.wire.smtp.params import Body, MailParams, Offered, ParamError
from courriel.wire.smtp.replies import Reply
from courriel.wire.smtp.settings import SmtpConfig
from courriel.wire.smtp.states import REFUSALS, VERBS, State, after_reply

_ESMTP_ONLY = frozenset({"BDAT", "STARTTLS", "AUTH"})
_BURL_RE = re.compile(r"(\S+)(?: +(LAST))? *", re.IGNORECASE)  # RFC 4468 §3
_NO_TRANSACTION = frozenset({State.START, State.REFUSED, State.FRESH, State.READY, State.CLOSED})
_JUNK = (ev.Noop, ev.Rset, ev.Vrfy, ev.Help)


class UsageError(RuntimeError):
    """The session called the core out of turn; this is a bug in the session, not the peer."""


class SmtpConnection:
    """One SMTP server connection. See the package docstring for how a session drives it."""

    def __init__(self, config: SmtpConfig) -> None:
        self.config = config
        self._buf = LineBuffer()
        self._state = State.START
        self._awaiting: ev.Event | None = None
        self._tls = config.tls_active
        self._authenticated = False
        self._esmtp = False  # EHLO (not HELO) was accepted: extensions are in effect
        self._errors = 0
        self._junk = 0  # NOOP, RSET, VRFY and HELP since the last delivered message
        self._discarding = False  # dropping the rest of an over-long line
        self._offered_now: Offered | None = None
        # the transaction
        self._mail: MailParams | None = None
        self._recipients = 0
        self._dot: DotReader | None = None
        self._chunks: ChunkReader | None = None
        self._chunk_error_counted = False
        # the BDAT chunk being read now
        self._reading: ChunkReader | None = None
        self._reading_size = 0
        self._reading_last = False
        self._reading_refusal: Reply | None = None

    # --- what the session may look at -------------------------------------------------------

    @property
    def state(self) -> State:
        return self._state

    @property
    def tls_active(self) -> bool:
        return self._tls

    @property
    def authenticated(self) -> bool:
        return self._authenticated

    @property
    def errors(self) -> int:
        return self._errors

    @property
    def recipients(self) -> int:
        """Recipients accepted in the current transaction."""
        return self._recipients

    @property
    def trailing_data(self) -> bool:
        """Bytes arrived after STARTTLS before TLS started (to be thrown away, never run)."""
        return self._state is State.TLS and bool(self._buf)

    @property
    def reading_message(self) -> bool:
        """Message content is being read (after 354, or inside a BDAT chunk): the data timeout
        applies rather than the command timeout (RFC 5321 §4.5.3.2.5)."""
        return self._state is State.DATA or self._reading is not None

    @property
    def mid_command(self) -> bool:
        """Part of a command has arrived and the rest is on its way: a partial line, a BDAT
        line whose chunk is still to come, or the start of a DATA message. (Right after 354
        nothing has arrived yet: a message that comes whole needs no hurried acknowledgement.)"""
        if self._buf or self._reading is not None:
            return True
        return self._state is State.DATA and self._dot is not None and self._dot.started

    @property
    def buffered_bytes(self) -> int:
        """Octets held in memory: unread input plus message content read so far."""
        held = sum(x.held for x in (self._dot, self._chunks) if x is not None)
        return len(self._buf) + held

    def extensions(self) -> list[str]:
        """The EHLO keywords offered now (they change with TLS and authentication)."""
        c = self.config
        out = ["PIPELINING", f"SIZE {c.max_message_bytes}", "8BITMIME", "ENHANCEDSTATUSCODES"]
        if c.smtputf8:
            out.append("SMTPUTF8")
        if c.chunking:
            out += ["CHUNKING", "BINARYMIME"]
            if c.burl:
                out.append("BURL imap")  # RFC 4468 §3: IMAP URLs with URLAUTH
        if c.dsn:
            out.append("DSN")
        if c.tls_available and not self._tls:
            out.append("STARTTLS")  # RFC 3207 §4.2: not offered again under TLS
        if self._auth_offered():
            out.append("AUTH " + " ".join(c.auth_mechanisms))  # RFC 4954 §3
            if c.legacy_auth_line:
                out.append("AUTH=" + " ".join(c.auth_mechanisms))
        return out

    # --- replies the core builds -------------------------------------------------------------

    def ehlo_reply(self, greeting: str = "") -> Reply:
        """250 with the hostname and what is offered now (RFC 5321 §4.1.1.1)."""
        first = f"{self.config.hostname} {greeting}".rstrip()
        return Reply(250, "", first, tuple(self.extensions()))

    def helo_reply(self) -> Reply:
        return Reply(250, "", self.config.hostname)

    # --- input ------------------------------------------------------------------------------

    def greeting(self, reply: Reply | None = None) -> bytes:
        """The first line: 220 (ready), 554 (refused: only QUIT follows) or 421 (go away)."""
        if self._state is not State.START:
            raise UsageError("the greeting was already sent")
        reply = reply or Reply(220, "", f"{self.config.hostname} ESMTP ready")
        if reply.code == 220:
            self._state = State.FRESH
        elif reply.code == 554:
            self._state = State.REFUSED  # RFC 5321 §3.1
        elif reply.code == 421:
            self._close()
        else:
            raise UsageError(f"a greeting is 220, 554 or 421, not {reply.code}")
        return reply.encode()

    def receive_data(self, data: bytes) -> None:
        """Buffers bytes from the peer. Call ``next_event`` until ``NeedData`` before more."""
        if self._state is not State.CLOSED:
            self._buf.feed(data)

    def connection_lost(self) -> None:
        """The peer went away: a message being read is dropped, never delivered."""
        self._close()

    def discard_trailing_data(self) -> int:
        """Throws away what came after STARTTLS, before the handshake; how many octets.

        RFC 3207 §4.2: those bytes arrived in plaintext and are never read as commands; the
        adapter calls this before it starts TLS, so ``tls_started`` then finds nothing.
        """
        if self._state is not State.TLS:
            return 0
        return self._buf.clear()

    def tls_started(self) -> None:
        """The TLS handshake after STARTTLS completed: forget the plaintext session."""
        if self._state is not State.TLS:
            raise UsageError("tls_started without an accepted STARTTLS")
        if self._buf:
            self._close()
            raise ProtocolError(r.TLS_PIPELINED.encode(), fatal=True)  # RFC 3207 §4.2
        # RFC 3207 §4.2: discard what the client said in plaintext (EHLO, AUTH); it must
        # send EHLO again.
        self._tls = True
        self._esmtp = False
        self._authenticated = False
        self._state = State.FRESH

    def next_event(self) -> ev.Event | ev.NeedData | ev.Closed:
        if self._state is State.CLOSED:
            return ev.Closed()
        if self._awaiting is not None:
            raise UsageError(f"reply to {self._awaiting!r} first")
        if self._state in (State.START, State.TLS):
            raise UsageError(f"no input is read in state {self._state.name}")
        if self._discarding:
            if not self._buf.discard_line():
                return ev.NeedData()
            self._discarding = False
        if self._state is State.DATA:
            return self._read_message()
        if self._reading is not None:
            return self._read_chunk()
        return self._read_line()

    # --- output -----------------------------------------------------------------------------

    def send(self, reply: Reply) -> bytes:
        """Answers the last event; returns the bytes to write and moves the state on."""
        if self._state is State.CLOSED:
            raise UsageError("the connection is closed")
        if reply.code == 421:
            self._close()  # RFC 5321 §3.8: the server may close at any time with 421
            return reply.encode()
        event = self._awaiting
        if event is None:
            raise UsageError("no event is waiting for a reply")
        self._awaiting = None
        self._accepted(event, reply)
        self._enter(after_reply(self._state, event, reply.code))
        data = reply.encode()
        if reply.code >= 400 or self._is_junk(event):
            data += self._count_error()
        return data

    def _is_junk(self, event: ev.Event) -> bool:
        if not isinstance(event, _JUNK):
            return False
        self._junk += 1
        return self._junk > self.config.max_junk_commands

    # --- internals --------------------------------------------------------------------------

    def _accepted(self, event: ev.Event, reply: Reply) -> None:
        """What a positive reply to ``event`` teaches the core besides the new state."""
        code = reply.code
        if isinstance(event, ev.Ehlo | ev.Helo) and 200 <= code < 300:
            self._esmtp = isinstance(event, ev.Ehlo)
        elif isinstance(event, ev.MailFrom) and 200 <= code < 300:
            self._mail = event.params
        elif isinstance(event, ev.RcptTo) and 200 <= code < 300:
            self._recipients += 1
        elif isinstance(event, ev.Data) and code == 354:
            self._dot = DotReader(self.config.max_message_bytes, strict_lines=self._strict())
        elif isinstance(event, ev.Auth | ev.AuthResponse) and code == 235:
            self._authenticated = True
        elif isinstance(event, ev.MessageData | ev.BdatLast) and 200 <= code < 300:
            self._errors = 0
            self._junk = 0

    def _enter(self, state: State) -> None:
        if state in _NO_TRANSACTION:
            self._mail = None
            self._recipients = 0
            self._dot = None
            self._chunks = None
            self._chunk_error_counted = False
        self._state = state

    def _close(self) -> None:
        self._enter(State.CLOSED)
        self._awaiting = None
        self._reading = None
        self._buf.clear()

    def _count_error(self) -> bytes:
        self._errors += 1
        if self._errors >= self.config.max_errors:
            self._close()
            return r.TOO_MANY_ERRORS.encode()
        return b""

    def _fail(self, reply: Reply, *, fatal: bool = False, count: bool = True) -> NoReturn:
        data = reply.encode()
        if count:
            data += self._count_error()
        if fatal:
            self._close()
        raise ProtocolError(data, fatal=fatal or self._state is State.CLOSED)

    def _emit(self, event: ev.Event) -> ev.Event:
        self._awaiting = event
        return event

    def _strict(self) -> bool:
        return self.config.strict_lines

    def _auth_offered(self) -> bool:
        c = self.config
        return bool(c.auth_mechanisms) and (self._tls or not c.auth_requires_tls)

    def _offered(self) -> Offered:
        # It only changes when TLS starts, so build it once per TLS state.
        offered = self._offered_now
        if offered is None or offered.auth != self._auth_offered():
            c = self.config
            offered = Offered(
                size_limit=c.max_message_bytes,
                smtputf8=c.smtputf8,
                chunking=c.chunking,
                dsn=c.dsn,
                auth=self._auth_offered(),
            )
            self._offered_now = offered
        return offered

    def _read_line(self) -> ev.Event | ev.NeedData:
        auth = self._state is State.AUTH
        try:
            line = self._buf.readline(self.config.max_auth_line if auth else self.config.max_line)
        except LineTooLong:
            self._discarding = True
            if auth:
                self._enter(State.READY)  # the SASL exchange is abandoned
            self._fail(r.AUTH_LINE_TOO_LONG if auth else r.LINE_TOO_LONG)  # RFC 5321 §4.5.3.1.4
        if line is None:
            return ev.NeedData()
        if auth:
            return self._auth_line(line)
        return self._command(line)

    def _auth_line(self, line: bytes) -> ev.Event:
        """A client line inside a SASL exchange (RFC 4954 §4)."""
        self._enter(State.READY)  # until the session answers 334 again
        if not line.endswith(b"\r\n") or b"\r" in line[:-2]:
            self._fail(r.BARE_NEWLINE_COMMAND)  # RFC 5321 §2.3.8
        text = line[:-2].decode("ascii", "replace")
        if text == "*":
            self._fail(r.AUTH_CANCELLED)  # RFC 4954 §4
        try:
            data = cmd.decode_base64(text)
        except cmd.CommandError as e:
            self._fail(e.reply)
        self._state = State.AUTH
        return self._emit(ev.AuthResponse(data))

    def _command(self, line: bytes) -> ev.Event | ev.NeedData:
        try:
            verb, arg = cmd.split_line(line)
        except cmd.CommandError as e:
            self._fail(e.reply)
        if verb == "BURL":
            return self._burl(arg)
        if verb not in VERBS:
            self._fail(r.EXPN_DISABLED if verb == "EXPN" else r.UNRECOGNIZED)  # RFC 5321 §4.2.4
        if verb == "BDAT":
            return self._bdat(arg)
        refusal = REFUSALS[self._state].get(verb)
        if refusal is None and verb in _ESMTP_ONLY and not self._esmtp:
            refusal = r.SEND_EHLO_FIRST
        if refusal is not None:
            self._fail(refusal)
        if verb == "RCPT" and self._recipients >= self.config.max_recipients:
            # RFC 5321 §4.5.3.1.10: 452, and not an error: the client sends the rest later.
            self._fail(r.TOO_MANY_RECIPIENTS, count=False)
        try:
            return self._emit(self._parse(verb, arg))
        except (cmd.CommandError, ParamError) as e:
            self._fail(e.reply)

    def _parse(self, verb: str, arg: str) -> ev.Event:
        match verb:
            case "EHLO" | "HELO":
                return cmd.parse_hello(verb, arg)
            case "MAIL":
                return cmd.parse_mail(arg, self._offered(), esmtp=self._esmtp)
            case "RCPT":
                utf8 = self._mail is not None and self._mail.smtputf8
                return cmd.parse_rcpt(arg, self._offered(), esmtp=self._esmtp, utf8=utf8)
            case "DATA":
                cmd.no_argument(arg, r.SYNTAX_DATA)
                if self._mail is not None and self._mail.body is Body.BINARY_MIME:
                    raise cmd.CommandError(r.DATA_WITH_BINARYMIME)  # RFC 3030 §3
                if self._chunks is not None:
                    raise cmd.CommandError(r.DATA_AFTER_BDAT)  # RFC 3030 §2
                return ev.Data()
            case "RSET":
                cmd.no_argument(arg, r.SYNTAX_RSET)
                return ev.Rset()
            case "NOOP":
                return ev.Noop(arg)
            case "QUIT":
                cmd.no_argument(arg, r.SYNTAX_QUIT)
                return ev.Quit()
            case "VRFY":
                if not arg.strip():
                    raise cmd.CommandError(r.SYNTAX_VRFY)
                return ev.Vrfy(arg.strip())
            case "HELP":
                return ev.Help(arg.strip())
            case "STARTTLS":
                return self._parse_starttls(arg)
            case _:
                return self._parse_auth(arg)

    def _parse_starttls(self, arg: str) -> ev.StartTls:
        cmd.no_argument(arg, r.SYNTAX_STARTTLS)  # RFC 3207 §4
        if self._tls:
            raise cmd.CommandError(r.ALREADY_TLS)
        if not self.config.tls_available:
            raise cmd.CommandError(r.TLS_NOT_OFFERED)
        return ev.StartTls()

    def _parse_auth(self, arg: str) -> ev.Auth:
        if not self.config.auth_mechanisms:
            raise cmd.CommandError(r.AUTH_NOT_OFFERED)
        if self._authenticated:
            raise cmd.CommandError(r.ALREADY_AUTHENTICATED)  # RFC 4954 §4
        if not self._auth_offered():
            raise cmd.CommandError(r.AUTH_NEEDS_TLS)
        return cmd.parse_auth(arg, self.config.auth_mechanisms)

    # --- message content --------------------------------------------------------------------

    def _read_message(self) -> ev.Event | ev.NeedData:
        dot = self._dot
        assert dot is not None  # DATA state is only entered with a reader
        if not dot.read(self._buf):
            return ev.NeedData()
        try:
            message = dot.result()
        except MessageRefused as e:
            self._enter(State.READY)  # RFC 5321 §4.1.1.4: the transaction ends either way
            self._fail(e.reply)
        return self._emit(ev.MessageData(message, dot.long_lines))

    def _bdat(self, arg: str) -> ev.Event | ev.NeedData:
        """BDAT: the chunk is read even when the command is refused, to stay in step."""
        if not self.config.chunking:
            self._fail(r.NOT_IMPLEMENTED)
        try:
            size, last = cmd.parse_bdat(arg)
        except cmd.CommandError as e:
            self._fail(e.reply, fatal=e.fatal)
        if size > 2 * self.config.max_message_bytes:
            # RFC 3030 §2 would have the chunk read to stay in step, but it may never end;
            # a client that merely ignored SIZE (up to twice the limit) is read and refused.
            self._fail(r.chunk_too_big(self.config.max_message_bytes), fatal=True, count=False)
        refusal = REFUSALS[self._state].get("BDAT")
        if refusal is None and not self._esmtp:
            refusal = r.SEND_EHLO_FIRST
        if refusal is not None:
            reader = ChunkReader(0, binary=True)
            reader.discard()
        else:
            if self._chunks is None:
                binary = self._mail is not None and self._mail.body is Body.BINARY_MIME
                limit = self.config.max_message_bytes
                self._chunks = ChunkReader(limit, binary=binary, strict_lines=self._strict())
            reader = self._chunks
        reader.start(size)
        self._reading = reader
        self._reading_size = size
        self._reading_last = last
        self._reading_refusal = refusal
        return self._read_chunk()

    def _burl(self, arg: str) -> ev.Event:
        """BURL url [LAST] (RFC 4468 §3): allowed where BDAT is, once authenticated."""
        if not (self.config.burl and self.config.chunking):
            self._fail(r.NOT_IMPLEMENTED)
        m = _BURL_RE.fullmatch(arg)
        if m is None:
            self._fail(r.SYNTAX_BURL)
        refusal = REFUSALS[self._state].get("BDAT")
        if refusal is None and not self._esmtp:
            refusal = r.SEND_EHLO_FIRST
        if refusal is None and not self._authenticated:
            refusal = r.AUTH_REQUIRED  # RFC 4468 §3: the URL is fetched for the user
        if refusal is not None:
            self._fail(refusal)
        return self._emit(ev.BurlUrl(m.group(1), m.group(2) is not None))

    def burl_data(self, data: bytes) -> ev.BdatChunk | ev.BdatLast | Reply:
        """The content of the awaited ``BurlUrl``, fetched by the session, joins the message
        as a BDAT chunk would (RFC 4468 §3). Returns the event to answer now instead (a chunk,
        or the whole message after LAST), or the refusal to send for the ``BurlUrl``."""
        event = self._awaiting
        if not isinstance(event, ev.BurlUrl):
            raise UsageError(f"no BURL is waiting, but {event!r}")
        if self._chunks is None:
            binary = self._mail is not None and self._mail.body is Body.BINARY_MIME
            limit = self.config.max_message_bytes
            self._chunks = ChunkReader(limit, binary=binary, strict_lines=self._strict())
        reader = self._chunks
        reader.start(len(data))
        piece = LineBuffer()
        piece.feed(data)
        reader.read(piece)
        failure = reader.refusal()
        if failure is not None:
            return failure
        answer: ev.BdatChunk | ev.BdatLast
        if not event.last:
            answer = ev.BdatChunk(len(data))
        else:
            try:
                message, long_lines = reader.result()
            except MessageRefused as e:
                return e.reply
            answer = ev.BdatLast(len(data), message, long_lines)
        self._awaiting = answer
        return answer

    def _read_chunk(self) -> ev.Event | ev.NeedData:
        reader = self._reading
        assert reader is not None
        if not reader.read(self._buf):
            return ev.NeedData()
        self._reading = None
        if self._reading_refusal is not None:
            self._fail(self._reading_refusal)
        if not self._reading_last:
            failure = reader.refusal()
            if failure is not None:
                # The rest of the chunks are still read and refused until LAST; the error
                # counts once, so a large pipelined message cannot spend the whole budget.
                first = not self._chunk_error_counted
                self._chunk_error_counted = True
                self._fail(failure, count=first)
            return self._emit(ev.BdatChunk(self._reading_size))
        try:
            message, long_lines = reader.result()
        except MessageRefused as e:
            first = not self._chunk_error_counted
            self._enter(State.READY)
            self._fail(e.reply, count=first)
        return self._emit(ev.BdatLast(self._reading_size, message, long_lines))
