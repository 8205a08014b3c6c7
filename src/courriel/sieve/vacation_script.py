"""The Sieve script behind the web page's vacation form: written from the form, read back.

Theory of operation
-------------------
``build`` writes a script of two commands: one ``vacation`` (RFC 5230) with the form's text,
then, when the user had a script of their own active, ``include :personal :optional`` of it
(RFC 6609), so their rules still run after the vacation rule. The message goes in a
``text:`` multi-line string (RFC 5228 §2.4.2): every line ends in CRLF and a line starting
with "." gets one more, so quotes, backslashes, a lone "." and any UTF-8 text come back as
written; ``${`` is never expanded, since the script requires neither "variables" nor
"encoded-character". Single-line values are quoted strings with ``\\`` and ``"`` escaped.
The multi-line form always ends with a line break, so the reason is the message plus CRLF;
``read`` takes that one CRLF off again.

``read`` compiles a stored script and gives the form's values back only when the script has
exactly this shape (a script of that name uploaded by hand is not mistaken for ours).
"""

from __future__ import annotations

from dataclasses import dataclass

from courriel.sieve.compiler import Op, Script, compile_script
from courriel.sieve.errors import SieveError
from courriel.sieve.limits import DEFAULT_LIMITS, Limits

MARK = "# Vacation reply, written by courriel's web page; saving the form there replaces it."
CRLF = "\r\n"


@dataclass(frozen=True, slots=True)
class VacationForm:
    message: str  # CRLF line breaks
    subject: str = ""  # "" : the reply's subject is "Auto: " and the original's
    days: int = 7  # RFC 5230 §4.1: the default period
    addresses: tuple[str, ...] = ()  # the user's other addresses (RFC 5230 §4.5)


def quoted(text: str) -> str:
    """A Sieve quoted string (RFC 5228 §2.4.2): backslash and double quote escaped."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def multiline(text: str) -> str:
    """A ``text:`` string whose value is ``text`` + CRLF (RFC 5228 §2.4.2, dot-stuffed)."""
    lines = [("." + line if line.startswith(".") else line) for line in text.split(CRLF)]
    return "text:" + CRLF + "".join(line + CRLF for line in lines) + "." + CRLF


def build(form: VacationForm, include: str | None) -> str:
    parts = ["vacation", f":days {form.days}"]
    if form.subject:
        parts.append(f":subject {quoted(form.subject)}")
    if form.addresses:
        parts.append(":addresses [" + ", ".join(quoted(a) for a in form.addresses) + "]")
    requires = '["vacation", "include"]' if include is not None else '"vacation"'
    lines = [MARK, f"require {requires};", " ".join(parts) + " " + multiline(form.message) + ";"]
    if include is not None:
        lines.append(f"include :personal :optional {quoted(include)};")
    return CRLF.join(lines) + CRLF


def read(text: str, limits: Limits = DEFAULT_LIMITS) -> tuple[VacationForm, str | None] | None:
    """The form and the included script's name of a script ``build`` wrote, else None."""
    if not text.startswith(MARK + CRLF):
        return None
    try:
        script = compile_script(text.encode("utf-8"), limits)
    except SieveError:
        return None
    ops = script.commands
    if not ops or ops[0].name != "vacation" or len(ops) > 2:
        return None
    include = None
    if len(ops) == 2:
        if ops[1].name != "include":
            return None
        include = ops[1].text(0)
    op = ops[0]
    days, subject, addresses = (
        op.tags.get(":days", 7),
        op.tags.get(":subject", ""),
        op.tags.get(":addresses", ()),
    )
    reason = op.text(0)
    if not (isinstance(days, int) and isinstance(subject, str) and isinstance(addresses, tuple)):
        return None
    return VacationForm(reason.removesuffix(CRLF), subject, days, addresses), include


def _ops(ops: list[Op]) -> list[Op]:
    out: list[Op] = []
    for op in ops:
        out.append(op)
        out.extend(_ops(op.block))
        for _, body in op.branches:
            out.extend(_ops(body))
    return out


def answers(script: Script) -> bool:
    """Whether the script has a ``vacation`` command anywhere (RFC 5230 §4.7: two in one run
    are an error, so it cannot be wrapped by ours)."""
    return any(op.name == "vacation" for op in _ops(script.commands))
