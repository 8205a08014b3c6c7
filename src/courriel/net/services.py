"""What each protocol's handlers use of the server: narrow records that ``courriel.app`` builds.

net/ never sees the ``App``: each protocol gets only the services it uses, so a protocol module
can be read (and tested) knowing exactly what it may touch, and net/ imports nothing of app.py.
"""

from __future__ import annotations

from dataclasses import dataclass

from courriel.accounts.authenticator import Authenticator
from courriel.accounts.ratelimit import AuthLimiter
from courriel.junk.learn import JunkLearner
from courriel.net.shared_counts import CountsRow
from courriel.net.tls import TLSManager
from courriel.session.smtp import SessionServices
from courriel.store.base import Store


@dataclass(frozen=True, slots=True)
class LoginServices:
    """What POP3 and ManageSieve sessions use: the store, logins, TLS."""

    store: Store
    auth: Authenticator
    limiter: AuthLimiter  # failed-login limits shared by every protocol
    tls: TLSManager  # ``tls.context`` at the moment of STARTTLS is the one to use
    hostname: str


@dataclass(frozen=True, slots=True)
class ImapServices:
    """What IMAP sessions use of the server (built by ``courriel.app``)."""

    login: LoginServices
    appendlimit: int  # the largest message APPEND takes (RFC 7889)
    user_counts: CountsRow  # IMAP sessions per user, over every worker process
    # Learns from moves into and out of Junk and from $Junk/$NotJunk; None: no learning.
    junk: JunkLearner | None = None


@dataclass(frozen=True, slots=True)
class SmtpServices:
    """What SMTP sessions use of the server (built by ``courriel.app``)."""

    submission: SessionServices  # ports 587 and 465
    mx: SessionServices  # port 25: mail authentication and junk checks besides
    tls: TLSManager  # ``tls.context`` at the moment of STARTTLS is the one to use
    hostname: str
    max_message_bytes: int
