"""Sieve (RFC 5228) mail filtering: a sans-IO compiler and interpreter.

``compile_script`` checks a script when it is uploaded; ``run`` evaluates it against one
message and its envelope and returns the actions for delivery to carry out. Nothing here does
I/O: the store, the queue and the mailboxes are delivery's business (``courriel.queue.filtering``).

Invariants: every script and every run is bounded (``courriel.sieve.limits``); a script that
compiles never makes ``run`` raise anything but ``RuntimeSieveError``.
"""

from courriel.sieve.compiler import Script, compile_script
from courriel.sieve.errors import LimitExceeded, RuntimeSieveError, SieveError
from courriel.sieve.interpreter import Outcome, run
from courriel.sieve.limits import DEFAULT_LIMITS, Limits
from courriel.sieve.message import Envelope, MessageView
from courriel.sieve.specs import EXTENSIONS

__all__ = [
    "DEFAULT_LIMITS",
    "EXTENSIONS",
    "Envelope",
    "LimitExceeded",
    "Limits",
    "MessageView",
    "Outcome",
    "RuntimeSieveError",
    "Script",
    "SieveError",
    "compile_script",
    "run",
]
