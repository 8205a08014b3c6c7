"""The Sieve grammar (RFC 5228 §8.2): tokens into a tree of commands and tests.

Theory of operation
-------------------
A recursive-descent parser over the token list of ``courriel.sieve.lexer``. Recursion follows
the nesting of blocks and tests, which is bounded (``Limits.nesting``) before each level is
entered, so a hostile script cannot exhaust the Python stack; the total number of commands and
tests and the length of string lists are bounded too. The tree is plain data: what each command
means is decided later, by ``courriel.sieve.compiler``.

    commands  = *command
    command   = identifier arguments (";" / block)
    block     = "{" commands "}"
    arguments = *argument [ test / test-list ]
    argument  = string-list / number / tag
    test      = identifier arguments
    test-list = "(" test *("," test) ")"
"""

from __future__ import annotations

from dataclasses import dataclass, field

from courriel.sieve.errors import LimitExceeded, SieveError
from courriel.sieve.lexer import Kind, Token, tokenize
from courriel.sieve.limits import Limits


@dataclass(frozen=True, slots=True)
class Strings:
    values: tuple[str, ...]
    single: bool  # written as one string rather than a [list]


@dataclass(frozen=True, slots=True)
class Number:
    value: int


@dataclass(frozen=True, slots=True)
class Tag:
    name: str  # with its colon, lower-case


Argument = Strings | Number | Tag


@dataclass(slots=True)
class Node:
    """A command (with ``block`` possibly) or a test; which one the compiler decides by place."""

    name: str
    line: int
    args: list[Argument] = field(default_factory=list)
    tests: list[Node] = field(default_factory=list)
    block: list[Node] | None = None


class _Parser:
    def __init__(self, tokens: list[Token], limits: Limits) -> None:
        self.tokens = tokens
        self.pos = 0
        self.limits = limits
        self.count = 0

    def peek(self) -> Token:
        return self.tokens[self.pos]

    def take(self) -> Token:
        tok = self.tokens[self.pos]
        if tok.kind is not Kind.END:
            self.pos += 1
        return tok

    def punct(self, ch: str) -> bool:
        tok = self.peek()
        if tok.kind is Kind.PUNCT and tok.value == ch:
            self.pos += 1
            return True
        return False

    def expect(self, ch: str, what: str) -> None:
        if not self.punct(ch):
            tok = self.peek()
            raise SieveError(f'expected "{ch}" {what}, found {_describe(tok)}', tok.line)

    def counted(self, line: int, depth: int) -> None:
        self.count += 1
        if self.count > self.limits.commands:
            raise LimitExceeded(f"more than {self.limits.commands} commands and tests", line)
        if depth > self.limits.nesting:
            raise LimitExceeded(f"blocks and tests nest deeper than {self.limits.nesting}", line)

    def commands(self, depth: int, closing: bool) -> list[Node]:
        out: list[Node] = []
        while True:
            tok = self.peek()
            if tok.kind is Kind.END:
                if closing:
                    raise SieveError('a block is never closed with "}"', tok.line)
                return out
            if closing and tok.kind is Kind.PUNCT and tok.value == "}":
                self.pos += 1
                return out
            out.append(self.command(depth))

    def command(self, depth: int) -> Node:
        tok = self.take()
        if tok.kind is not Kind.IDENT:
            raise SieveError(f"expected a command, found {_describe(tok)}", tok.line)
        self.counted(tok.line, depth)
        node = Node(tok.value, tok.line)
        self.arguments(node, depth)
        if self.punct("{"):
            node.block = self.commands(depth + 1, closing=True)
        else:
            self.expect(";", f"after the command {node.name!r}")
        return node

    def test(self, depth: int) -> Node:
        tok = self.take()
        if tok.kind is not Kind.IDENT:
            raise SieveError(f"expected a test, found {_describe(tok)}", tok.line)
        self.counted(tok.line, depth)
        node = Node(tok.value, tok.line)
        self.arguments(node, depth)
        return node

    def arguments(self, node: Node, depth: int) -> None:
        while True:
            tok = self.peek()
            if tok.kind is Kind.STRING:
                self.pos += 1
                node.args.append(Strings((tok.value,), single=True))
            elif tok.kind is Kind.NUMBER:
                self.pos += 1
                node.args.append(Number(tok.number))
            elif tok.kind is Kind.TAG:
                self.pos += 1
                node.args.append(Tag(tok.value))
            elif self.punct("["):
                node.args.append(self.string_list(tok.line))
            else:
                break
        tok = self.peek()
        if tok.kind is Kind.IDENT:
            node.tests.append(self.test(depth + 1))
        elif self.punct("("):
            node.tests.append(self.test(depth + 1))
            while self.punct(","):
                node.tests.append(self.test(depth + 1))
            self.expect(")", "to close the test list")

    def string_list(self, line: int) -> Strings:
        values: list[str] = []
        while True:
            tok = self.take()
            if tok.kind is not Kind.STRING:
                raise SieveError(f"expected a string in a list, found {_describe(tok)}", tok.line)
            values.append(tok.value)
            if len(values) > self.limits.list_items:
                raise LimitExceeded(
                    f"a list holds more than {self.limits.list_items} strings", line
                )
            if self.punct("]"):
                return Strings(tuple(values), single=False)
            self.expect(",", "between strings of a list")


def _describe(tok: Token) -> str:
    if tok.kind is Kind.END:
        return "the end of the script"
    if tok.kind is Kind.STRING:
        return "a string"
    return f"{tok.kind.value} {tok.value!r}"


def parse(script: bytes, limits: Limits) -> list[Node]:
    """The commands of ``script``; ``SieveError`` (or ``LimitExceeded``) when it is not Sieve."""
    parser = _Parser(tokenize(script, limits), limits)
    return parser.commands(0, closing=False)
