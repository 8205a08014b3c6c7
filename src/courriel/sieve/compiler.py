"""From the parse tree to a checked script the interpreter can run without further checks.

Theory of operation
-------------------
``compile_script`` parses (``courriel.sieve.parser``), then walks the tree once and checks every
command and test against ``courriel.sieve.specs``: known name, the extension it needs declared
by ``require`` (RFC 5228 §3.2), tags known and given once, argument types and counts, tests and
blocks where they belong, ``elsif``/``else`` only after ``if``. Any fault is a ``SieveError``
with the line, so a script is refused when it is uploaded (ManageSieve PUTSCRIPT/CHECKSCRIPT),
never when mail arrives. With "encoded-character" required, ``${hex:..}`` and ``${unicode:..}``
are decoded here, once (RFC 5228 §2.4.2.4).

The result is a tree of ``Op``: each with its tags as a dict and its positional arguments as a
list of plain values (``str``, ``tuple[str, ...]``, ``int``); ``if``/``elsif``/``else`` chains
become one ``if`` op holding its branches.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from courriel.sieve.errors import SieveError
from courriel.sieve.limits import DEFAULT_LIMITS, Limits
from courriel.sieve.parser import Node, Number, Strings, Tag, parse
from courriel.sieve.specs import (
    ADDRESS_PARTS,
    COMMANDS,
    COMPARATORS,
    EXTENSIONS,
    MATCH_TYPES,
    RELATIONS,
    TAG_EXTENSIONS,
    TESTS,
    Arg,
    Spec,
)

Value = str | tuple[str, ...] | int | bool


@dataclass(slots=True)
class Op:
    name: str
    line: int
    tags: dict[str, Value] = field(default_factory=dict)
    args: list[Value] = field(default_factory=list)
    tests: list[Op] = field(default_factory=list)
    block: list[Op] = field(default_factory=list)
    branches: list[tuple[Op | None, list[Op]]] = field(default_factory=list)  # "if" only

    def text(self, i: int) -> str:
        value = self.args[i]
        assert isinstance(value, str)
        return value

    def strings(self, i: int) -> tuple[str, ...]:
        value = self.args[i]
        assert isinstance(value, tuple)
        return value


@dataclass(frozen=True, slots=True)
class Script:
    commands: list[Op]
    requires: frozenset[str]
    includes: tuple[tuple[str, str], ...]  # (":personal" | ":global", name), in order


_ENCODED = re.compile(r"\$\{(hex|unicode):([^}]*)\}", re.IGNORECASE)
_HEX = re.compile(r"[0-9a-fA-F]+")


def _decode_encoded(text: str, line: int) -> str:
    """RFC 5228 §2.4.2.4: ``${hex:41 42}`` and ``${unicode:1F600}`` inside strings."""

    def one(m: re.Match[str]) -> str:
        kind, body = m.group(1).lower(), m.group(2).strip(" \t\r\n")
        parts = body.split()
        if not parts or not all(_HEX.fullmatch(p) for p in parts):
            return m.group()  # not an encoding: left as written (RFC 5228 §2.4.2.4)
        if kind == "hex":
            try:
                return bytes(int(p, 16) for p in parts).decode("utf-8")
            except (ValueError, UnicodeDecodeError):
                raise SieveError(f"{m.group()} is not valid UTF-8", line) from None
        out = []
        for p in parts:
            cp = int(p, 16)
            if cp > 0x10FFFF or 0xD800 <= cp <= 0xDFFF:
                raise SieveError(f"{m.group()} names no Unicode character", line)
            out.append(chr(cp))
        return "".join(out)

    return _ENCODED.sub(one, text)


class _Compiler:
    def __init__(self) -> None:
        self.requires: set[str] = set()
        self.includes: list[tuple[str, str]] = []
        self.seen_other = False

    def need(self, extension: str, what: str, line: int) -> None:
        if extension not in self.requires:
            raise SieveError(f'{what} needs require "{extension}"', line)  # RFC 5228 §3.2

    def strings(self, s: Strings, line: int) -> tuple[str, ...]:
        if "encoded-character" in self.requires:
            return tuple(_decode_encoded(v, line) for v in s.values)
        return s.values

    def block(self, nodes: list[Node], top: bool) -> list[Op]:
        out: list[Op] = []
        for node in nodes:
            if node.name in ("elsif", "else"):
                prev = out[-1] if out else None
                if prev is None or prev.name != "if" or prev.branches[-1][0] is None:
                    raise SieveError(f'"{node.name}" must follow "if" or "elsif"', node.line)
                op = self.command(node)
                prev.branches.append((op.tests[0] if op.tests else None, op.block))
                continue
            if node.name == "require":
                if not top or self.seen_other:
                    # RFC 5228 §3.2: require only at the start of the script
                    raise SieveError('"require" must come before any other command', node.line)
                op = self.command(node)
                for ext in op.strings(0):
                    if ext not in EXTENSIONS:
                        raise SieveError(f'the extension "{ext}" is not supported', node.line)
                    self.requires.add(ext)
                continue
            self.seen_other = True
            op = self.command(node)
            if op.name == "if":
                op.branches.append((op.tests[0], op.block))
            out.append(op)
        return out

    def command(self, node: Node) -> Op:
        spec = COMMANDS.get(node.name)
        if spec is None:
            what = "a test" if node.name in TESTS else "an unknown command"
            raise SieveError(f'"{node.name}" is {what}, not a command', node.line)
        op = self.arguments(node, spec, "command")
        if spec.block and node.block is None:
            raise SieveError(f'"{node.name}" needs a block {{ ... }}', node.line)
        if not spec.block and node.block is not None:
            raise SieveError(f'"{node.name}" takes no block', node.line)
        if node.block is not None:
            op.block = self.block(node.block, top=False)
        if op.name == "include":
            where = ":global" if op.tags.get(":global") else ":personal"
            self.includes.append((where, op.text(0)))
        return op

    def test(self, node: Node) -> Op:
        spec = TESTS.get(node.name)
        if spec is None:
            what = "a command" if node.name in COMMANDS else "an unknown test"
            raise SieveError(f'"{node.name}" is {what}, not a test', node.line)
        return self.arguments(node, spec, "test")

    def arguments(self, node: Node, spec: Spec, kind: str) -> Op:
        if spec.extension is not None:
            self.need(spec.extension, f'the {kind} "{node.name}"', node.line)
        op = Op(node.name, node.line)
        positional: list[Strings | Number] = []
        args = node.args
        i = 0
        while i < len(args):
            arg = args[i]
            i += 1
            if not isinstance(arg, Tag):
                positional.append(arg)
                continue
            if positional:
                raise SieveError(f"{arg.name} must come before the other arguments", node.line)
            i = self.tag(op, spec, arg.name, args, i)
        self.check_tags(op, spec)
        self.positional(op, spec, positional)
        self.subtests(op, spec, node)
        return op

    def tag(self, op: Op, spec: Spec, name: str, args: list[Strings | Number | Tag], i: int) -> int:
        line = op.line
        if name in op.tags:
            raise SieveError(f"{name} is given twice", line)
        if name in TAG_EXTENSIONS:
            self.need(TAG_EXTENSIONS[name], name, line)
        arg_type: Arg | None
        if spec.matching and name in MATCH_TYPES:
            arg_type = Arg.STRING if name in (":count", ":value") else None
        elif spec.matching and name == ":comparator":
            arg_type = Arg.STRING
        elif spec.address_part and name in ADDRESS_PARTS:
            arg_type = None
        elif spec.index and name == ":index":
            arg_type = Arg.NUMBER
        elif spec.index and name == ":last":
            arg_type = None
        elif name in spec.tags:
            arg_type = spec.tags[name]
        elif name == ":regex":
            raise SieveError("the :regex match type is not supported", line)
        else:
            raise SieveError(f'"{op.name}" takes no {name}', line)
        if arg_type is None:
            op.tags[name] = True
            return i
        if i >= len(args) or isinstance(args[i], Tag):
            raise SieveError(f"{name} must be followed by {arg_type.value}", line)
        op.tags[name] = self.value(args[i], arg_type, f"the argument of {name}", line)
        return i + 1

    def check_tags(self, op: Op, spec: Spec) -> None:
        line = op.line
        for group in (MATCH_TYPES, ADDRESS_PARTS, *spec.exclusive):
            given = [t for t in op.tags if t in group]
            if len(given) > 1:
                raise SieveError(f"{' and '.join(given)} cannot be given together", line)
        for rel in (":count", ":value"):
            if rel in op.tags and op.tags[rel] not in RELATIONS:
                raise SieveError(f"{rel} takes one of {', '.join(sorted(RELATIONS))}", line)
        comparator = op.tags.get(":comparator")
        if isinstance(comparator, str):
            if comparator not in COMPARATORS:
                raise SieveError(f'the comparator "{comparator}" is not supported', line)
            ext = COMPARATORS[comparator]
            if ext is not None:
                self.need(ext, f'the comparator "{comparator}"', line)
        if ":last" in op.tags and ":index" not in op.tags:
            raise SieveError(":last needs :index", line)  # RFC 5260 §6
        if op.name == "size" and not ({":over", ":under"} & set(op.tags)):
            raise SieveError('"size" needs :over or :under', line)

    def positional(self, op: Op, spec: Spec, given: list[Strings | Number]) -> None:
        wanted = list(spec.positional)
        if spec.optional_first and len(given) == len(wanted) - 1:
            wanted = wanted[1:]
            op.args.append(())  # the optional argument left out
        if len(given) != len(wanted):
            raise SieveError(
                f'"{op.name}" takes {len(wanted)} argument(s) besides its tags, {len(given)} given',
                op.line,
            )
        for n, (arg, arg_type) in enumerate(zip(given, wanted, strict=True), 1):
            op.args.append(self.value(arg, arg_type, f"argument {n} of {op.name!r}", op.line))

    def value(self, arg: Strings | Number | Tag, arg_type: Arg, what: str, line: int) -> Value:
        if arg_type is Arg.NUMBER:
            if not isinstance(arg, Number):
                raise SieveError(f"{what} must be a number", line)
            return arg.value
        if not isinstance(arg, Strings):
            raise SieveError(f"{what} must be {arg_type.value}", line)
        values = self.strings(arg, line)
        if arg_type is Arg.STRING:
            if not arg.single:
                raise SieveError(f"{what} must be one string, not a list", line)
            return values[0]
        return values

    def subtests(self, op: Op, spec: Spec, node: Node) -> None:
        count = len(node.tests)
        if spec.tests == "" and count:
            raise SieveError(f'"{op.name}" takes no test', op.line)
        if spec.tests == "one" and count != 1:
            raise SieveError(f'"{op.name}" takes exactly one test', op.line)
        if spec.tests == "list" and count == 0:
            raise SieveError(f'"{op.name}" takes a list of tests', op.line)
        op.tests = [self.test(t) for t in node.tests]


def compile_script(script: bytes, limits: Limits = DEFAULT_LIMITS) -> Script:
    """The checked script; ``SieveError`` (``LimitExceeded``) says why it cannot be used."""
    compiler = _Compiler()
    commands = compiler.block(parse(script, limits), top=True)
    return Script(commands, frozenset(compiler.requires), tuple(compiler.includes))
