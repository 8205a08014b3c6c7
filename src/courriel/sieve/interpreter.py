"""Runs a compiled Sieve script against one message and says what to do with it.

Theory of operation
-------------------
``run`` walks the compiled tree (``courriel.sieve.compiler``) with a ``_Run`` holding the state
of one execution: the actions so far, whether the implicit keep still stands (RFC 5228 §2.10.2),
the imap4flags internal variable (RFC 5232 §3), variables (RFC 5229) and the match variables of
the last successful :matches. It is synchronous and touches nothing outside itself: the message
(``MessageView``), the user's mailbox names (for ``mailboxexists`` and ``fileinto``) and the
scripts that ``include`` may name are handed in, already loaded.

Every command, test and comparison spends steps from ``Limits.steps``; the number of actions,
redirects, includes and include depth are bounded too. Passing a bound, or any other run-time
fault (an include that is missing, a loop of includes, conflicting actions), raises
``RuntimeSieveError`` with a sentence saying what happened; delivery then keeps the message in
INBOX (RFC 5228 §2.10.6).
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo

from courriel.sieve import actions as a
from courriel.sieve.compiler import Op, Script
from courriel.sieve.dates import date_part, zone_of
from courriel.sieve.errors import RuntimeSieveError
from courriel.sieve.limits import DEFAULT_LIMITS, Limits
from courriel.sieve.match import Matcher
from courriel.sieve.message import MessageView, is_address_field
from courriel.sieve.parts import (
    address_part,
    check_conflicts,
    flag_words,
    mailbox_key,
    type_matches,
)

_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_.]*|[0-9]+)\}")
_WILDCARDS = re.compile(r"([*?\\])")
DEFAULT_VACATION_DAYS = 7  # RFC 5230 §4.1
MIN_VACATION_DAYS = 1
MAX_VACATION_DAYS = 90

IncludeKey = tuple[str, str]  # (":personal" | ":global", name)


class _Stop(Exception):  # noqa: N818 - control flow, not an error
    pass


class _Return(Exception):  # noqa: N818
    pass


@dataclass(frozen=True, slots=True)
class Outcome:
    actions: list[a.Action]  # in the order taken; a final Keep when the implicit keep stood

    @property
    def kept(self) -> bool:
        return any(isinstance(x, a.Keep) for x in self.actions)


@dataclass(slots=True)
class _Frame:
    script: Script
    variables: dict[str, str] = field(default_factory=dict)
    globals: set[str] = field(default_factory=set)


@dataclass(slots=True)
class _Run:
    message: MessageView
    mailboxes: frozenset[str]
    includes: Mapping[IncludeKey, Script]
    limits: Limits
    now: datetime
    actions: list[a.Action] = field(default_factory=list)
    implicit_keep: bool = True
    flags: set[str] = field(default_factory=set)
    global_vars: dict[str, str] = field(default_factory=dict)
    captures: list[str] = field(default_factory=list)
    steps: int = 0
    included: set[IncludeKey] = field(default_factory=set)
    include_count: int = 0
    stack: list[IncludeKey] = field(default_factory=list)

    # --- budget -------------------------------------------------------------------------------

    def tick(self, n: int = 1) -> None:
        self.steps += n
        if self.steps > self.limits.steps:
            raise RuntimeSieveError(
                f"the script ran longer than its budget of {self.limits.steps} steps"
            )

    # --- variables (RFC 5229) -----------------------------------------------------------------

    def store_of(self, frame: _Frame, name: str) -> dict[str, str]:
        low = name.lower()
        if low.startswith("global.") or low in frame.globals:
            return self.global_vars
        return frame.variables

    def expand(self, frame: _Frame, text: str) -> str:
        if "variables" not in frame.script.requires or "${" not in text:
            return text

        def one(m: re.Match[str]) -> str:
            name = m.group(1)
            if name.isdigit():
                index = int(name)
                return self.captures[index] if index < len(self.captures) else ""
            low = name.lower()
            key = low.removeprefix("global.")
            return self.store_of(frame, low).get(key, "")

        self.tick(1 + len(text) // 256)
        return _VARIABLE.sub(one, text)

    def expand_all(self, frame: _Frame, values: Iterable[str]) -> list[str]:
        return [self.expand(frame, v) for v in values]

    def set_variable(self, frame: _Frame, name: str, value: str) -> None:
        store = self.store_of(frame, name)
        key = name.lower().removeprefix("global.")
        if (
            key not in store
            and len(frame.variables) + len(self.global_vars) >= self.limits.variables
        ):
            raise RuntimeSieveError(f"the script uses more than {self.limits.variables} variables")
        data = value.encode("utf-8")[: self.limits.variable_bytes]  # RFC 5229 §6
        store[key] = data.decode("utf-8", "ignore")

    # --- actions ------------------------------------------------------------------------------

    def act(self, action: a.Action, cancels_keep: bool) -> None:
        if len(self.actions) >= self.limits.actions:
            raise RuntimeSieveError(f"the script took more than {self.limits.actions} actions")
        if isinstance(action, a.Redirect):
            if sum(isinstance(x, a.Redirect) for x in self.actions) >= self.limits.redirects:
                # RFC 5228 §4.2: a limit on redirects keeps loops and mail bombs small
                raise RuntimeSieveError(
                    f"the script redirects to more than {self.limits.redirects} addresses"
                )
            if any(isinstance(x, a.Redirect) and x.address == action.address for x in self.actions):
                return  # RFC 5228 §2.10.3: the same redirect twice is one
        if isinstance(action, a.FileInto):
            for i, x in enumerate(self.actions):
                if isinstance(x, a.FileInto) and x.mailbox == action.mailbox:
                    self.actions[i] = a.FileInto(  # RFC 5232 §5: flags of both
                        x.mailbox, x.flags | action.flags, x.create or action.create
                    )
                    if cancels_keep:
                        self.implicit_keep = False
                    return
        if isinstance(action, a.Vacation) and any(isinstance(x, a.Vacation) for x in self.actions):
            raise RuntimeSieveError("the script answers with vacation twice")  # RFC 5230 §4.7
        self.actions.append(action)
        if cancels_keep:
            self.implicit_keep = False

    def flags_of(self, frame: _Frame, op: Op) -> frozenset[str]:
        given = op.tags.get(":flags")
        if isinstance(given, tuple):
            return frozenset(flag_words(self.expand_all(frame, given)))
        return frozenset(self.flags)

    # --- commands -----------------------------------------------------------------------------

    def block(self, frame: _Frame, ops: list[Op]) -> None:
        for op in ops:
            self.command(frame, op)

    def command(self, frame: _Frame, op: Op) -> None:
        self.tick()
        match op.name:
            case "if":
                for test, body in op.branches:
                    if test is None or self.test(frame, test):
                        self.block(frame, body)
                        return
            case "stop":
                raise _Stop
            case "return":
                raise _Return
            case "keep":
                self.act(a.Keep(self.flags_of(frame, op)), cancels_keep=True)
            case "discard":
                self.act(a.Discard(), cancels_keep=True)
            case "fileinto":
                name = self.expand(frame, op.text(0))
                copy = bool(op.tags.get(":copy"))
                create = bool(op.tags.get(":create"))
                self.act(a.FileInto(name, self.flags_of(frame, op), create), not copy)
            case "redirect":
                address = self.expand(frame, op.text(0)).strip()
                if "@" not in address or any(c in address for c in "<>\r\n ,"):
                    # RFC 5228 §4.2: a syntactically invalid address is a run-time error
                    raise RuntimeSieveError(f"redirect to {address!r}, which is no address")
                self.act(a.Redirect(address, bool(op.tags.get(":copy"))), not op.tags.get(":copy"))
            case "reject" | "ereject":
                reason = self.expand(frame, op.text(0))
                self.act(a.Reject(reason, op.name == "ereject"), cancels_keep=True)
            case "vacation":
                self.act(self.vacation(frame, op), cancels_keep=False)
            case "setflag" | "addflag" | "removeflag":
                self.flag_command(frame, op)
            case "set":
                self.set_command(frame, op)
            case "include":
                self.include(frame, op)
            case "global":
                for name in self.expand_all(frame, op.strings(0)):
                    frame.globals.add(name.lower())
            case _:
                raise RuntimeSieveError(f'"{op.name}" cannot run here')

    def vacation(self, frame: _Frame, op: Op) -> a.Vacation:
        days = op.tags.get(":days", DEFAULT_VACATION_DAYS)
        assert isinstance(days, int)
        days = min(max(days, MIN_VACATION_DAYS), MAX_VACATION_DAYS)  # RFC 5230 §4.1
        reason = self.expand(frame, op.text(0))

        def opt(tag: str) -> str | None:
            value = op.tags.get(tag)
            return self.expand(frame, value) if isinstance(value, str) else None

        addresses = op.tags.get(":addresses", ())
        assert isinstance(addresses, tuple)
        subject, from_address, mime = opt(":subject"), opt(":from"), bool(op.tags.get(":mime"))
        handle = opt(":handle")
        if handle is None:  # RFC 5230 §4.2: the same reply text is the same vacation
            seed = "\0".join([reason, subject or "", from_address or "", str(mime)])
            handle = hashlib.sha256(seed.encode("utf-8")).hexdigest()[:32]
        return a.Vacation(
            reason,
            days,
            subject,
            from_address,
            tuple(self.expand_all(frame, addresses)),
            mime,
            handle,
        )

    def flag_command(self, frame: _Frame, op: Op) -> None:
        variable = op.args[0]
        words = flag_words(self.expand_all(frame, op.strings(1)))
        if isinstance(variable, str) and variable:
            current = set(self.store_of(frame, variable).get(variable.lower(), "").split())
        else:
            current = self.flags
        match op.name:
            case "setflag":
                new = set(words)
            case "addflag":
                new = current | set(words)
            case _:
                new = {f for f in current if f.lower() not in {w.lower() for w in words}}
        if isinstance(variable, str) and variable:
            self.set_variable(frame, variable, " ".join(sorted(new)))
        else:
            self.flags = new

    def set_command(self, frame: _Frame, op: Op) -> None:
        name = op.text(0)
        value = self.expand(frame, op.text(1))
        # RFC 5229 §4.1: modifiers apply by precedence, :length last
        if op.tags.get(":lower"):
            value = value.lower()
        if op.tags.get(":upper"):
            value = value.upper()
        if op.tags.get(":lowerfirst"):
            value = value[:1].lower() + value[1:]
        if op.tags.get(":upperfirst"):
            value = value[:1].upper() + value[1:]
        if op.tags.get(":quotewildcard"):
            value = _WILDCARDS.sub(r"\\\1", value)
        if op.tags.get(":length"):
            value = str(len(value))
        self.set_variable(frame, name, value)

    def include(self, frame: _Frame, op: Op) -> None:
        where = ":global" if op.tags.get(":global") else ":personal"
        key = (where, op.text(0))
        if op.tags.get(":once") and key in self.included:
            return  # RFC 6609 §3.2
        if key in self.stack:
            chain = " -> ".join(n for _, n in [*self.stack, key])
            raise RuntimeSieveError(f"scripts include each other in a loop: {chain}")
        script = self.includes.get(key)
        if script is None:
            if op.tags.get(":optional"):
                return  # RFC 6609 §3.2: a missing optional script is skipped
            raise RuntimeSieveError(
                f"the script includes {key[1]!r} ({where[1:]}), which is missing"
            )
        if len(self.stack) >= self.limits.include_depth:
            raise RuntimeSieveError(f"includes nest deeper than {self.limits.include_depth}")
        self.include_count += 1
        if self.include_count > self.limits.includes:
            raise RuntimeSieveError(f"the script includes more than {self.limits.includes} scripts")
        self.included.add(key)
        self.stack.append(key)
        try:
            with contextlib.suppress(_Return):  # RFC 6609 §3.3: back to the including script
                self.block(_Frame(script), script.commands)
        finally:
            self.stack.pop()

    # --- tests --------------------------------------------------------------------------------

    def matcher(self, frame: _Frame, op: Op) -> Matcher:
        return Matcher.of(dict(op.tags), self.tick, self.limits.match_bytes)

    def matched(self, frame: _Frame, op: Op, values: Iterable[str], keys: tuple[str, ...]) -> bool:
        m = self.matcher(frame, op)
        result = m.any(values, self.expand_all(frame, keys))
        if result and m.captures is not None and "variables" in frame.script.requires:
            self.captures = m.captures  # RFC 5229 §3.2: only a successful :matches sets them
        return result

    def test(self, frame: _Frame, op: Op) -> bool:
        self.tick()
        match op.name:
            case "true":
                return True
            case "false":
                return False
            case "not":
                return not self.test(frame, op.tests[0])
            case "allof":
                return all(self.test(frame, t) for t in op.tests)
            case "anyof":
                return any(self.test(frame, t) for t in op.tests)
            case "exists":
                names = self.expand_all(frame, op.strings(0))
                return all(self.message.headers(n) for n in names)
            case "size":
                limit = op.args[0]
                assert isinstance(limit, int)
                if op.tags.get(":over"):
                    return self.message.size > limit
                return self.message.size < limit
            case "header":
                values = self.header_values(frame, op)
                return self.matched(frame, op, values, op.strings(1))
            case "address":
                return self.matched(frame, op, self.address_values(frame, op), op.strings(1))
            case "envelope":
                return self.matched(frame, op, self.envelope_values(frame, op), op.strings(1))
            case "body":
                return self.matched(frame, op, self.body_values(frame, op), op.strings(0))
            case "date" | "currentdate":
                return self.date_test(frame, op)
            case "mailboxexists":
                names = self.expand_all(frame, op.strings(0))
                return all(mailbox_key(n) in self.mailboxes for n in names)
            case "hasflag":
                variables = op.args[0]
                assert isinstance(variables, tuple)
                if variables:
                    text = " ".join(self.expand(frame, f"${{{v}}}") for v in variables)
                    have = text.split()
                else:
                    have = sorted(self.flags)
                return self.matched(frame, op, have, op.strings(1))
            case "string":
                source = self.expand_all(frame, op.strings(0))
                if op.tags.get(":count"):
                    source = [s for s in source if s]  # RFC 5229 §5: empty strings not counted
                return self.matched(frame, op, source, op.strings(1))
        raise RuntimeSieveError(f'"{op.name}" cannot run here')

    def indexed(self, op: Op, values: list[str]) -> list[str]:
        index = op.tags.get(":index")
        if not isinstance(index, int) or isinstance(index, bool):
            return values
        if index < 1 or index > len(values):
            return []
        return [values[-index] if op.tags.get(":last") else values[index - 1]]  # RFC 5260 §6

    def header_values(self, frame: _Frame, op: Op) -> list[str]:
        out: list[str] = []
        for name in self.expand_all(frame, op.strings(0)):
            out.extend(self.indexed(op, self.message.headers(name)))
        return out

    def address_values(self, frame: _Frame, op: Op) -> list[str]:
        out: list[str] = []
        for name in self.expand_all(frame, op.strings(0)):
            if not is_address_field(name):
                raise RuntimeSieveError(f'"address" names {name!r}, which holds no addresses')
            for addr in self.indexed(op, self.message.addresses(name)):
                part = address_part(op, addr)
                if part is not None:
                    out.append(part)
        return out

    def envelope_values(self, frame: _Frame, op: Op) -> list[str]:
        env = self.message.envelope
        out: list[str] = []
        for name in self.expand_all(frame, op.strings(0)):
            match name.lower():
                case "from":
                    addr = env.sender
                case "to":
                    addr = env.recipient
                case "auth":
                    addr = env.auth
                    if not addr:
                        continue
                case _:
                    continue  # RFC 5228 §5.4: unknown envelope parts do not match
            if addr == "":
                out.append("")  # RFC 5228 §5.4: the null reverse-path matches ""
                continue
            part = address_part(op, addr)
            if part is not None:
                out.append(part)
        return out

    def body_values(self, frame: _Frame, op: Op) -> list[str]:
        if op.tags.get(":raw"):
            return [self.message.raw_body()]
        content = op.tags.get(":content")
        parts = self.message.parts()
        if isinstance(content, tuple):
            wanted = [c.lower() for c in self.expand_all(frame, content)]
            return [text for ctype, text in parts if any(type_matches(ctype, w) for w in wanted)]
        return [text for ctype, text in parts if ctype.startswith("text/")]  # RFC 5173 §5.2

    def date_test(self, frame: _Frame, op: Op) -> bool:
        zone: tzinfo | None = UTC
        zone_text = op.tags.get(":zone")
        if isinstance(zone_text, str):
            zone = zone_of(self.expand(frame, zone_text))
            if zone is None:
                return False
        if op.tags.get(":originalzone"):
            zone = None
        if op.name == "currentdate":
            part_arg, keys = op.text(0), op.strings(1)
            moments = [self.now]
        else:
            header = self.expand(frame, op.text(0))
            part_arg, keys = op.text(1), op.strings(2)
            moments = list(self.message.date_of(header))
            index = op.tags.get(":index")
            if isinstance(index, int) and not isinstance(index, bool):
                if index < 1 or index > len(moments):
                    return False
                moments = [moments[-index] if op.tags.get(":last") else moments[index - 1]]
        part = self.expand(frame, part_arg)
        values = []
        for moment in moments:
            shown = moment if zone is None else moment.astimezone(zone)
            value = date_part(shown, part)
            if value is not None:
                values.append(value)
        return self.matched(frame, op, values, keys)


def run(
    script: Script,
    message: MessageView,
    *,
    mailboxes: frozenset[str] = frozenset(),
    includes: Mapping[IncludeKey, Script] | None = None,
    limits: Limits = DEFAULT_LIMITS,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Outcome:
    """The actions ``script`` takes on ``message``; ``RuntimeSieveError`` when the run fails."""
    state = _Run(message, mailboxes, includes or {}, limits, now())
    try:
        # RFC 5228 §3.3 stop; RFC 6609 §3.3 return at the top level ends the script too
        with contextlib.suppress(_Stop, _Return):
            state.block(_Frame(script), script.commands)
    except RecursionError:
        raise RuntimeSieveError("the script nests too deeply to run") from None
    check_conflicts(state.actions)
    actions = list(state.actions)
    if state.implicit_keep:
        actions.append(a.Keep(frozenset(state.flags), implicit=True))  # RFC 5228 §2.10.2
    return Outcome(actions)
