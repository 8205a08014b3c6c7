"""A client's model of its selected mailbox, and the rules every server update must keep.

Theory of operation
-------------------
``View`` is what one session knows: the UID at each sequence number (``None`` until the server
said it) and, per UID, the flags with the MODSEQ they were reported with. ``apply`` takes the
untagged responses of one command, in order, with the kind of command they answered, and updates
the model as RFC 9051 says a client must; every rule the server breaks raises ``Violation``:

* EXISTS never shrinks the view: messages leave only through EXPUNGE or VANISHED
  (RFC 9051 §7.4.1, §7.5.1).
* EXPUNGE (and VANISHED without EARLIER, RFC 7162 §3.2.10) is not sent in answer to FETCH, STORE
  or SEARCH (RFC 9051 §7.5.1): sequence numbers must not shift under those commands.
* A sequence number in EXPUNGE or FETCH lies within the view; a UID reported for a sequence
  number never changes, and UIDs ascend with sequence numbers (RFC 9051 §2.3.1.1).
* With CONDSTORE a message's MODSEQ never goes down, and flags reported with a MODSEQ are never
  replaced by flags reported with a lower one (RFC 7162 §3.1.1, §3.1.4). Equal MODSEQs must come
  with equal flags.

``check_against`` compares the model, as it stood after NOOP, with a fresh
``FETCH 1:* (UID FLAGS MODSEQ)``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from stress_wire import Response, Token


class Violation(AssertionError):  # noqa: N818 - reads as "a violation of the protocol"
    """The server broke a rule; the message says which and where."""


class Kind(enum.Enum):
    """What a command allows the server to send in its answer (RFC 9051 §7.5.1)."""

    NO_EXPUNGE = "fetch/store/search"  # non-UID FETCH, STORE, SEARCH
    ANY = "any"


@dataclass(frozen=True, slots=True)
class Seen:
    modseq: int
    flags: frozenset[str]


@dataclass(frozen=True, slots=True)
class Fetched:
    seq: int
    uid: int | None
    flags: frozenset[str] | None
    modseq: int | None


def parse_uid_set(text: str) -> list[int]:
    out: list[int] = []
    for part in text.split(","):
        lo, _, hi = part.partition(":")
        a, b = int(lo), int(hi or lo)
        out.extend(range(min(a, b), max(a, b) + 1))
    return out


def fetched(tokens: list[Token]) -> Fetched:
    """``* n FETCH (...)`` as a record."""
    items = tokens[3]
    assert isinstance(items, list), tokens
    uid = flags = modseq = None
    for name, value in zip(items[::2], items[1::2], strict=True):
        key = name.upper() if isinstance(name, str) else ""
        if key == "UID":
            assert isinstance(value, str)
            uid = int(value)
        elif key == "FLAGS":
            assert isinstance(value, list)
            # \Recent belongs to one session (RFC 3501 §2.3.2) and is not shared state.
            flags = frozenset(_flag(f) for f in value) - {"\\Recent"}
        elif key == "MODSEQ":
            assert isinstance(value, list)
            modseq = int(str(value[0]))
    assert isinstance(tokens[1], str)
    return Fetched(int(tokens[1]), uid, flags, modseq)


def _flag(f: Token) -> str:
    assert isinstance(f, str)
    # RFC 9051 §2.3.2: system flags are case-insensitive; keywords are compared as sent.
    return "\\" + f[1:].capitalize() if f.startswith("\\") else f


@dataclass
class View:
    name: str  # who owns this view, for messages
    condstore: bool
    uids: list[int | None] = field(default_factory=list)
    seen: dict[int, Seen] = field(default_factory=dict)

    def fail(self, why: str, response: Response | None = None) -> Violation:
        where = f" in {response.text!r}" if response is not None else ""
        return Violation(f"{self.name}: {why}{where}")

    # --- applying responses -----------------------------------------------------------------

    def apply(self, responses: tuple[Response, ...], kind: Kind) -> list[Fetched]:
        """Applies one command's untagged responses; returns the FETCH records among them."""
        out: list[Fetched] = []
        for response in responses:
            tokens = response.tokens()
            if len(tokens) < 3 or tokens[0] != "*":
                continue
            word = tokens[2].upper() if isinstance(tokens[2], str) else ""
            head = tokens[1].upper() if isinstance(tokens[1], str) else ""
            if word == "EXISTS":
                self._exists(int(str(tokens[1])), response)
            elif word == "EXPUNGE":
                if kind is Kind.NO_EXPUNGE:
                    raise self.fail("EXPUNGE in answer to FETCH/STORE/SEARCH", response)
                self._expunge(int(str(tokens[1])), response)
            elif word == "FETCH":
                record = fetched(tokens)
                self._fetch(record, response)
                out.append(record)
            elif head == "VANISHED":
                self._vanished(tokens, kind, response)
        return out

    def _exists(self, n: int, response: Response) -> None:
        if n < len(self.uids):  # RFC 9051 §7.4.1
            raise self.fail(f"EXISTS {n} below the {len(self.uids)} messages in view", response)
        self.uids.extend([None] * (n - len(self.uids)))

    def _expunge(self, seq: int, response: Response) -> None:
        if not 1 <= seq <= len(self.uids):  # RFC 9051 §7.4.1
            raise self.fail(f"EXPUNGE {seq} outside 1..{len(self.uids)}", response)
        uid = self.uids.pop(seq - 1)
        if uid is not None:
            self.seen.pop(uid, None)

    def _vanished(self, tokens: list[Token], kind: Kind, response: Response) -> None:
        earlier = isinstance(tokens[2], list)
        if earlier:
            return  # RFC 7162 §3.2.10: VANISHED (EARLIER) does not change the view
        if kind is Kind.NO_EXPUNGE:  # RFC 7162 §3.2.10: same rule as EXPUNGE
            raise self.fail("VANISHED in answer to FETCH/STORE/SEARCH", response)
        for uid in parse_uid_set(str(tokens[2])):
            self._remove_uid(uid)

    def _remove_uid(self, uid: int) -> None:
        if uid in self.uids:
            self.uids.remove(uid)
            self.seen.pop(uid, None)
            return
        # Not known by UID: it can only be a message whose UID was not reported yet, between
        # its known neighbours. Those slots are interchangeable, so any of them may go.
        for i, slot in enumerate(self.uids):
            if slot is not None:
                continue
            before = max((u for u in self.uids[:i] if u is not None), default=0)
            after = min((u for u in self.uids[i + 1 :] if u is not None), default=1 << 62)
            if before < uid < after:
                del self.uids[i]
                return

    def _fetch(self, record: Fetched, response: Response) -> None:
        if not 1 <= record.seq <= len(self.uids):
            raise self.fail(f"FETCH for {record.seq} outside 1..{len(self.uids)}", response)
        i = record.seq - 1
        if record.uid is not None:
            known = self.uids[i]
            if known is not None and known != record.uid:  # RFC 9051 §2.3.1.1
                raise self.fail(f"message {record.seq} was UID {known}, now {record.uid}", response)
            before = [u for u in self.uids[:i] if u is not None]
            after = [u for u in self.uids[i + 1 :] if u is not None]
            if (before and before[-1] >= record.uid) or (after and after[0] <= record.uid):
                raise self.fail(f"UID {record.uid} out of order at {record.seq}", response)
            self.uids[i] = record.uid
        uid = self.uids[i]
        if uid is None or record.flags is None:
            return
        if record.modseq is None:
            if not self.condstore:
                self.seen[uid] = Seen(0, record.flags)
            return
        self._flags(uid, Seen(record.modseq, record.flags), response)

    def _flags(self, uid: int, new: Seen, response: Response) -> None:
        old = self.seen.get(uid)
        if old is not None and new.modseq < old.modseq:  # RFC 7162 §3.1.1
            raise self.fail(f"UID {uid} MODSEQ went down {old.modseq} -> {new.modseq}", response)
        if old is not None and new.modseq == old.modseq and new.flags != old.flags:
            raise self.fail(
                f"UID {uid} flags {sorted(old.flags)} -> {sorted(new.flags)} at one MODSEQ",
                response,
            )
        self.seen[uid] = new

    # --- checkpoints ------------------------------------------------------------------------

    def snapshot(self) -> tuple[list[int | None], dict[int, Seen]]:
        return list(self.uids), dict(self.seen)

    def check_against(
        self, before: tuple[list[int | None], dict[int, Seen]], fresh: list[Fetched]
    ) -> None:
        """The model taken after NOOP (``before``) equals a fresh FETCH of every message.

        After NOOP the server has told the session everything (RFC 9051 §6.1.2: NOOP is how a
        client polls): every message, every UID, and the latest flags of each.
        """
        uids, seen = before
        seqs = [f.seq for f in fresh]
        if seqs != list(range(1, len(uids) + 1)):
            raise self.fail(f"FETCH 1:* answered messages {seqs} for a view of {len(uids)}")
        for f in fresh:
            known = uids[f.seq - 1]
            if known is not None and known != f.uid:
                raise self.fail(f"message {f.seq} is UID {f.uid}; the view said {known}")
            old = seen.get(f.uid) if f.uid is not None else None
            if old is not None and f.flags is not None and old.flags != f.flags:
                raise self.fail(
                    f"after NOOP, UID {f.uid} had flags {sorted(old.flags)} (MODSEQ "
                    f"{old.modseq}) but FETCH says {sorted(f.flags)} (MODSEQ {f.modseq}): "
                    "a flag change was not reported"
                )

    def state(self) -> list[tuple[int | None, frozenset[str] | None]]:
        """(UID, flags) per sequence number, for comparing sessions."""
        return [(u, self.seen[u].flags if u in self.seen else None) for u in self.uids]
