"""Configuration: one TOML file, every setting with a documented default.

Where the file is:
  1. ``--config PATH`` on the command line;
  2. else ``$COURRIEL_DATA/courriel.toml`` when ``COURRIEL_DATA`` is set;
  3. else ``./var/courriel.toml``.
A missing file means "all defaults" (``courriel serve`` writes a commented one on first run).
Relative paths in the file are relative to the data directory; the data directory itself, when
relative, is relative to the directory holding the file.

``DEFAULT_TOML`` below is the reference: it is what ``courriel serve`` writes on first run and
what README.md documents. ``load`` validates every value and names the bad key on error.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

CONFIG_NAME = "courriel.toml"


class ConfigError(Exception):
    """The configuration file cannot be read or holds a bad value; the message says which."""


@dataclass(frozen=True, slots=True)
class ListenerConfig:
    name: str  # smtp, submission, submissions, imap, imaps, pop3, pop3s, sieve, https, http
    protocol: str  # smtp | imap | pop3 | managesieve | http
    standard_port: int
    implicit_tls: bool
    enabled: bool = True
    address: str = ""  # "" = auto: all addresses when the standard port can be bound
    port: int = 0  # 0 = auto: the standard port if it can be bound, else 10000 + it


# name -> (protocol, standard port, implicit TLS). Order is the order of the settings table.
LISTENERS: dict[str, tuple[str, int, bool]] = {
    "imaps": ("imap", 993, True),
    "imap": ("imap", 143, False),
    "pop3s": ("pop3", 995, True),
    "pop3": ("pop3", 110, False),
    "submissions": ("smtp", 465, True),
    "submission": ("smtp", 587, False),
    "smtp": ("smtp", 25, False),
    # Sieve filter editing (RFC 5804) with STARTTLS.
    "sieve": ("managesieve", 4190, False),
    # Client set-up documents and the MTA-STS policy (``courriel.web``); plain HTTP redirects.
    "https": ("http", 443, True),
    "http": ("http", 80, False),
}


@dataclass(frozen=True, slots=True)
class StoreConfig:
    url: str = ""  # "" = SQLite in <data_dir>/courriel.db; or postgresql://user@host/db
    blobs: str = "blobs"  # directory of message files (SQLite backend)
    pool_size: int = 10  # PostgreSQL connections per worker process
    inline_max: int = 65536  # SQLite: bodies up to this many bytes live in the database


@dataclass(frozen=True, slots=True)
class TLSConfig:
    cert: str = ""  # PEM certificate chain; "" = self-signed, made on first run in <data>/tls
    key: str = ""  # PEM private key


@dataclass(frozen=True, slots=True)
class AuthConfig:
    cache_seconds: float = 60.0  # how long a verified password is remembered; 0 disables
    argon2_time_cost: int = 3
    argon2_memory_kib: int = 65536
    argon2_parallelism: int = 4
    failure_delay_seconds: float = 2.0  # wait before answering a failed login
    failure_window_seconds: int = 300  # failed logins are counted per window of this length
    max_failures_per_ip: int = 10  # then logins from that address are refused until it ends
    max_failures_per_account: int = 20  # then logins to that account are refused likewise


@dataclass(frozen=True, slots=True)
class LimitsConfig:
    max_connections: int = 2000
    max_connections_per_ip: int = 50
    max_message_bytes: int = 50 * 1024 * 1024
    shutdown_grace_seconds: float = 10.0


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """The process model: how many workers, and when a stalled one is reported and replaced."""

    workers: int = 0  # worker processes; 0 = one per core this process may run on
    stall_log_seconds: float = 0.25  # a worker's event loop blocked longer is logged; 0 = never
    stall_kill_seconds: float = 10.0  # ... and blocked longer than this, replaced; 0 = never

    def worker_count(self) -> int:
        if self.workers:
            return self.workers
        try:
            return len(os.sched_getaffinity(0)) or 1
        except AttributeError:  # pragma: no cover - not Linux
            return os.cpu_count() or 1


@dataclass(frozen=True, slots=True)
class QueueConfig:
    """The outbound queue: retry schedule, warnings, and how its worker shares the work."""

    first_retry_seconds: float = 300.0  # after the first temporary failure (Postfix: 300 s)
    max_retry_seconds: float = 4000.0  # the doubling stops here (Postfix: 4000 s)
    give_up_seconds: float = 5 * 86400.0  # then the message is returned (Postfix: 5 days)
    delay_warning_seconds: float = 4 * 3600.0  # warn the sender once after this; 0: never
    poll_seconds: float = 10.0  # look for work another process queued or flushed
    lease_seconds: float = 300.0  # an entry stays with one worker this long (renewed)
    concurrency: int = 20  # deliveries at the same time, per process


@dataclass(frozen=True, slots=True)
class LogConfig:
    level: str = "info"  # debug | info | warning | error
    format: str = "text"  # text | json


@dataclass(frozen=True, slots=True)
class DnsConfig:
    nameservers: tuple[str, ...] = ()  # "host" or "host:port"; () = the system's resolv.conf
    timeout_seconds: float = 10.0  # one lookup, all servers and retries included


@dataclass(frozen=True, slots=True)
class RelayConfig:
    helo_name: str = ""  # "" = hostname
    smarthost: str = ""  # "host:port" to send all outbound mail through; "" = MX delivery
    smarthost_tls: str = "starttls"  # starttls | tls | none
    smarthost_user: str = ""
    smarthost_password_file: str = ""  # file holding the password (first line)
    max_connections: int = 100  # outbound connections in use at once
    max_connections_per_destination: int = 20  # to one domain (or the smarthost)
    max_messages_per_minute_per_destination: int = 0  # 0 = no limit; per serving process
    connection_idle_seconds: float = 5.0  # an idle connection is kept this long for reuse
    connection_reuse_seconds: float = 300.0  # and reused for at most this long
    timeout_scale: float = 1.0  # multiplies RFC 5321's timeouts (tests shrink them)
    mta_sts: bool = True  # apply MTA-STS policies (RFC 8461)
    dane: bool = True  # apply DANE TLSA records the resolver validated (RFC 7672)
    tls_ca_file: str = ""  # a private CA trusted besides the system's, for verified TLS


@dataclass(frozen=True, slots=True)
class MailAuthConfig:
    """What port 25 does with SPF, DKIM and DMARC (``courriel.mail.auth.inbound``)."""

    check_inbound: bool = True  # check mail arriving on port 25 and add Authentication-Results
    reject_on_dmarc_reject: bool = True  # p=reject failures get 550 5.7.1; false: Junk
    quarantine_to_junk: bool = True  # p=quarantine failures go to Junk; false: INBOX
    # ARC sealers (domains, with their subdomains) whose dmarc=pass outweighs our DMARC failure
    # (RFC 8617 §7.2): mailing lists and forwarders you know to check mail before they change it.
    trusted_arc_sealers: tuple[str, ...] = ()
    # DMARC aggregate reports (RFC 7489 §7.2): record each evaluation of mail received, and
    # send each domain that asks (rua=mailto:) a daily report through the queue.
    dmarc_reports: bool = True


@dataclass(frozen=True, slots=True)
class JunkConfig:
    """Junk filtering on port 25 (``courriel.junk``): connection checks and content scoring."""

    scoring: bool = True  # score each message; above the threshold it goes to Junk
    threshold: float = 5.0  # the default score threshold (users may have their own)
    learn: bool = True  # learn from IMAP moves into and out of Junk and $Junk/$NotJunk
    dnsbl_zones: tuple[str, ...] = ()  # e.g. ["zen.spamhaus.org"]; a listed client is refused
    fcrdns: bool = False  # refuse clients without forward-confirmed reverse DNS
    helo_checks: bool = False  # refuse a HELO of our own name, a bare IP or no FQDN
    dns_timeout_seconds: float = 5.0  # each connection-time lookup
    greeting_delay_seconds: float = 0.0  # wait before 220; a client talking first is refused
    greylist: bool = False  # answer 451 4.7.1 to unknown (network, sender, recipient) triples
    greylist_delay_seconds: float = 300.0  # a retry after this passes
    greylist_retry_seconds: float = 86400.0  # ... if it comes within this of the first try
    greylist_pass_seconds: float = 36 * 86400.0  # then the triple passes this long
    rspamd_url: str = ""  # e.g. "http://127.0.0.1:11333": Rspamd scores instead of courriel


@dataclass(frozen=True, slots=True)
class MtaStsConfig:
    """The MTA-STS policy served for every hosted domain (RFC 8461 §3.2)."""

    mode: str = "auto"  # auto | testing | enforce | none; auto: testing while self-signed
    mx: tuple[str, ...] = ()  # host name patterns; () = the hostname
    max_age: int = 604800  # seconds senders cache the policy (one week)


@dataclass(frozen=True, slots=True)
class AcmeConfig:
    """Certificates from an ACME server (RFC 8555), kept in the store (``courriel.web.acme``)."""

    enabled: bool = False  # false: the [tls] files, or the self-signed certificate
    directory: str = "https://acme-v02.api.letsencrypt.org/directory"
    contact: str = ""  # e-mail address the ACME server may write to about expiry
    names: tuple[str, ...] = ()  # () = hostname, and autoconfig. and mta-sts. of each domain
    challenge: str = "http-01"  # http-01 (port 80) | tls-alpn-01 (port 443)
    renew_days: float = 30.0  # a certificate is renewed this long before it expires
    check_seconds: float = 3600.0  # how often each process looks at the stored certificate
    retry_seconds: float = 600.0  # after a failed order; doubles each failure up to a day
    ca_file: str = ""  # a CA to trust for the ACME server's own HTTPS besides the system's


@dataclass(frozen=True, slots=True)
class Config:
    path: Path  # the file this came from (it need not exist)
    data_dir: Path
    hostname: str
    store: StoreConfig = field(default_factory=StoreConfig)
    tls: TLSConfig = field(default_factory=TLSConfig)
    auth: AuthConfig = field(default_factory=AuthConfig)
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    queue: QueueConfig = field(default_factory=QueueConfig)
    log: LogConfig = field(default_factory=LogConfig)
    server: ServerConfig = field(default_factory=ServerConfig)
    dns: DnsConfig = field(default_factory=DnsConfig)
    relay: RelayConfig = field(default_factory=RelayConfig)
    mailauth: MailAuthConfig = field(default_factory=MailAuthConfig)
    mtasts: MtaStsConfig = field(default_factory=MtaStsConfig)
    acme: AcmeConfig = field(default_factory=AcmeConfig)
    junk: JunkConfig = field(default_factory=JunkConfig)
    listeners: tuple[ListenerConfig, ...] = ()

    def resolve(self, p: str) -> Path:
        """A path from the file, made absolute against the data directory."""
        path = Path(p).expanduser()
        return path if path.is_absolute() else self.data_dir / path

    def listener(self, name: str) -> ListenerConfig:
        for lc in self.listeners:
            if lc.name == name:
                return lc
        raise KeyError(name)


DEFAULT_TOML = """\
# courriel configuration. Every setting below shows its default; uncomment to change it.

# Where courriel keeps its database, message files, certificate and this file. A relative
# path is relative to the directory holding this file. COURRIEL_DATA says where this file is.
# data_dir = "."

# The name this server gives itself in greetings and Received headers (default: the machine's FQDN).
# hostname = "mail.example.org"

[store]
# "" keeps everything in SQLite under the data directory (the embedded default).
# For several machines: url = "postgresql://courriel@db.example.org/courriel"
# url = ""
# Directory for message files of the SQLite backend, relative to the data directory.
# blobs = "blobs"
# Connections to PostgreSQL per worker process (each also keeps one for change events), so
# courriel serve opens up to workers x (pool_size + 1) in all.
# pool_size = 10
# SQLite: message bodies up to this many bytes are kept in the database, written with the
# message in one fsync; larger ones are files under blobs. 0 keeps every body in a file.
# inline_max = 65536

[tls]
# PEM files. When both are empty, a self-signed certificate is made on first run in <data>/tls.
# The certificate is read again on SIGHUP, without dropping connections.
# cert = "/etc/letsencrypt/live/mail.example.org/fullchain.pem"
# key = "/etc/letsencrypt/live/mail.example.org/privkey.pem"

[auth]
# Seconds a successfully verified password is remembered (keyed hash, memory only); 0 disables.
# cache_seconds = 60
# argon2id cost for new password hashes.
# argon2_time_cost = 3
# argon2_memory_kib = 65536
# argon2_parallelism = 4
# A failed login is answered after this many seconds, and counted: past the limits below,
# logins from that address (or to that account) are refused until the window ends.
# failure_delay_seconds = 2
# failure_window_seconds = 300
# max_failures_per_ip = 10
# max_failures_per_account = 20

[limits]
# max_connections = 2000
# max_connections_per_ip = 50
# max_message_bytes = 52428800
# Seconds SIGTERM waits for transactions in flight before closing connections.
# shutdown_grace_seconds = 10

[queue]
# Mail for other domains waits in the queue until delivered. A temporary failure is retried
# after first_retry_seconds, then after twice as long each time up to max_retry_seconds; after
# give_up_seconds the message is returned to its sender. The sender is warned once when it is
# still undelivered after delay_warning_seconds (0: never).
# first_retry_seconds = 300
# max_retry_seconds = 4000
# give_up_seconds = 432000
# delay_warning_seconds = 14400
# Seconds between looks for mail queued by another process or released with `courriel queue`.
# poll_seconds = 10
# Seconds a message stays with the process delivering it (renewed while it works on it); after
# a crash, another process takes it over once this has passed.
# lease_seconds = 300
# Deliveries in progress at once, per process.
# concurrency = 20

[log]
# level = "info"     # debug | info | warning | error
# format = "text"    # text | json

[server]
# Worker processes sharing the listeners and the store; 0 means one per core.
# workers = 0
# A worker whose event loop is blocked longer than stall_log_seconds (one command hogging it)
# logs a line naming the command; one blocked longer than stall_kill_seconds is killed and
# replaced. 0 turns either off.
# stall_log_seconds = 0.25
# stall_kill_seconds = 10

[dns]
# DNS servers for MX, TLSA, MTA-STS, SPF, DKIM and DMARC lookups: "host" or "host:port".
# Empty: /etc/resolv.conf.
# DANE is applied only when these servers validate DNSSEC (a local unbound, for instance).
# nameservers = ["127.0.0.1:5353"]
# timeout_seconds = 10

[relay]
# Mail for other domains goes to their MX hosts, with STARTTLS when offered, MTA-STS and DANE.
# helo_name = ""           # the name said in EHLO; "" = hostname
# To send everything through your provider instead (when port 25 is blocked):
# smarthost = "smtp.example.net:587"
# smarthost_tls = "starttls"   # starttls | tls (port 465) | none
# smarthost_user = "me@example.net"
# smarthost_password_file = "/etc/courriel/smarthost-password"
# max_connections = 100
# max_connections_per_destination = 20
# max_messages_per_minute_per_destination = 0   # 0: no limit; counted in each process
# connection_idle_seconds = 5     # idle connections are kept this long for the next message
# connection_reuse_seconds = 300
# timeout_scale = 1               # multiplies the RFC 5321 timeouts
# mta_sts = true
# dane = true
# tls_ca_file = ""                # a private CA to trust besides the system's

[mailauth]
# Mail arriving on port 25 is checked (SPF, DKIM, DMARC) and gets an Authentication-Results
# field. A sender whose DMARC policy is p=reject and whose mail fails is refused (550 5.7.1,
# with the reason); p=quarantine failures go to the recipient's Junk mailbox. A DNS failure
# that could change the verdict is answered 451: the sender tries again later.
# check_inbound = true
# reject_on_dmarc_reject = true   # false: deliver such mail to Junk instead
# quarantine_to_junk = true       # false: deliver it to INBOX, marked only by the header
# ARC (RFC 8617): every chain is verified (arc= in Authentication-Results), and mail forwarded
# by an alias to another domain is sealed with the alias domain's RSA key. When DMARC fails but
# the chain passes and one of these sealers recorded dmarc=pass, the message is delivered as
# the sealer saw it (each domain can refuse that: courriel domain policy DOMAIN --arc-override).
# trusted_arc_sealers = []        # e.g. ["lists.example.org", "google.com"]
# Senders whose DMARC record asks for aggregate reports (rua=mailto:...) get one a day, sent
# through the queue from MAILER-DAEMON@hostname (RFC 7489 §7.2); false: nothing is recorded.
# dmarc_reports = true

[junk]
# Port 25 only. Each message is scored: its SPF/DKIM/DMARC results, well-known signs of junk
# (an HTML-only body, a subject in capitals, a From name holding another address, a date far
# off, no Message-ID) and each recipient's own Bayesian filter, which learns from what they
# do over IMAP (moving mail into or out of Junk, the $Junk and $NotJunk keywords). Mail
# scoring at or above the threshold goes to the recipient's Junk mailbox, never away; the
# X-Spam-Status field says why. `courriel user junk-threshold USER N` sets a user's own.
# scoring = true
# threshold = 5.0
# learn = true
# Connection-time checks, each refusing with a reply that says why (off by default):
# dnsbl_zones = []                 # e.g. ["zen.spamhaus.org"]: listed clients get 554
# fcrdns = false                   # refuse clients whose reverse DNS does not confirm
# helo_checks = false              # refuse a HELO of our name, a bare IP, or no FQDN
# dns_timeout_seconds = 5          # a lookup that fails or times out never refuses
# greeting_delay_seconds = 0       # e.g. 3: clients talking before the 220 are refused
# greylist = false                 # unknown (network, sender, recipient): 451, retry later
# greylist_delay_seconds = 300
# greylist_retry_seconds = 86400
# greylist_pass_seconds = 3110400
# rspamd_url = ""                  # e.g. "http://127.0.0.1:11333": let Rspamd score instead

[mtasts]
# The MTA-STS policy served at https://mta-sts.DOMAIN/.well-known/mta-sts.txt for each hosted
# domain, and announced by the records `courriel dns DOMAIN` prints. "auto" says testing while
# the certificate is self-signed (senders enforcing the policy would refuse it), else enforce.
# mode = "auto"       # auto | testing | enforce | none
# mx = []             # MX host names (or "*.example.org"); [] = hostname
# max_age = 604800

[acme]
# Certificates from an ACME server such as Let's Encrypt, renewed renew_days before they expire
# and loaded by every listener of every process without a restart. The server must reach this
# one by each name: on port 80 (challenge = "http-01") or 443 ("tls-alpn-01"). The certificate,
# its key and the account key are kept in the store. Off: [tls] files, else self-signed.
# enabled = false
# directory = "https://acme-v02.api.letsencrypt.org/directory"
# contact = "postmaster@example.org"
# names = []          # [] = hostname, and autoconfig.DOMAIN and mta-sts.DOMAIN of each domain
# challenge = "http-01"   # http-01 | tls-alpn-01
# renew_days = 30
# check_seconds = 3600    # how often each process looks at the stored certificate
# retry_seconds = 600     # after a failure; doubles with each failure, up to a day
# ca_file = ""            # a CA to trust for the ACME server's HTTPS besides the system's

# Listeners: imaps (993), imap (143), pop3s (995), pop3 (110), submissions (465), submission (587),
# smtp (25, inbound MX), sieve (4190, ManageSieve), https (443: mail client set-up, MTA-STS)
# and http (80: redirects to https). For each: enabled, address and port. address "" and port 0
# mean auto: the standard port on all addresses when the process may bind it, else 10000 + the
# standard port on 127.0.0.1.
# [listeners.imaps]
# enabled = true
# address = ""
# port = 0
"""

_SECTIONS: dict[str, type[Any]] = {
    "store": StoreConfig,
    "tls": TLSConfig,
    "auth": AuthConfig,
    "limits": LimitsConfig,
    "queue": QueueConfig,
    "log": LogConfig,
    "server": ServerConfig,
    "dns": DnsConfig,
    "relay": RelayConfig,
    "mailauth": MailAuthConfig,
    "mtasts": MtaStsConfig,
    "acme": AcmeConfig,
    "junk": JunkConfig,
}
_CHOICES = {
    ("log", "level"): {"debug", "info", "warning", "error"},
    ("log", "format"): {"text", "json"},
    ("relay", "smarthost_tls"): {"starttls", "tls", "none"},
    ("mtasts", "mode"): {"auto", "testing", "enforce", "none"},
    ("acme", "challenge"): {"http-01", "tls-alpn-01"},
}


def locate(explicit: str | os.PathLike[str] | None = None) -> Path:
    if explicit:
        return Path(explicit).expanduser().absolute()
    data = os.environ.get("COURRIEL_DATA")
    if data:
        return Path(data).expanduser().absolute() / CONFIG_NAME
    return Path("var").absolute() / CONFIG_NAME


def _default_hostname() -> str:
    name = socket.getfqdn() or socket.gethostname() or "localhost"
    return name.rstrip(".").lower()


def _typed(section: str, key: str, value: Any, default: Any) -> Any:
    where = f"[{section}] {key}" if section else key
    if isinstance(default, tuple):
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{where}: expected a list of strings, got {value!r}")
        return tuple(value)
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, float):
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
    else:
        ok = isinstance(value, str)
    if not ok:
        raise ConfigError(f"{where}: expected {type(default).__name__}, got {value!r}")
    if isinstance(value, int | float) and not isinstance(value, bool) and value < 0:
        raise ConfigError(f"{where}: must not be negative, got {value!r}")
    choices = _CHOICES.get((section, key))
    if choices and value not in choices:
        raise ConfigError(f"{where}: must be one of {', '.join(sorted(choices))}, got {value!r}")
    return value


def _section(name: str, cls: type[Any], raw: Any) -> Any:
    if not isinstance(raw, dict):
        raise ConfigError(f"[{name}] must be a table")
    default = cls()
    known = {f.name for f in fields(cls)}
    for key in raw:
        if key not in known:
            known_list = ", ".join(sorted(known))
            raise ConfigError(f"[{name}] {key}: unknown setting (known: {known_list})")
    values = {k: _typed(name, k, v, getattr(default, k)) for k, v in raw.items()}
    return replace(default, **values)


def _listeners(raw: Any) -> tuple[ListenerConfig, ...]:
    if not isinstance(raw, dict):
        raise ConfigError("[listeners] must be a table of tables")
    for name in raw:
        if name not in LISTENERS:
            known_list = ", ".join(LISTENERS)
            raise ConfigError(f"[listeners.{name}]: unknown listener (known: {known_list})")
    out = []
    for name, (protocol, port, implicit) in LISTENERS.items():
        lc = ListenerConfig(name, protocol, port, implicit)
        section = raw.get(name, {})
        if not isinstance(section, dict):
            raise ConfigError(f"[listeners.{name}] must be a table")
        for key, value in section.items():
            if key not in ("enabled", "address", "port"):
                raise ConfigError(
                    f"[listeners.{name}] {key}: unknown setting (enabled, address, port)"
                )
            value = _typed(f"listeners.{name}", key, value, getattr(lc, key))
            if key == "port" and value > 65535:
                raise ConfigError(f"[listeners.{name}] port: must be 0..65535, got {value}")
            lc = replace(lc, **{key: value})
        out.append(lc)
    return tuple(out)


MAX_WORKERS = 256


def _check_server(server: ServerConfig) -> None:
    if server.workers > MAX_WORKERS:
        raise ConfigError(f"[server] workers: at most {MAX_WORKERS}, got {server.workers}")
    if 0 < server.stall_kill_seconds <= server.stall_log_seconds:
        raise ConfigError("[server] stall_kill_seconds: must be above stall_log_seconds (or 0)")


def parse_nameserver(text: str) -> tuple[str, int]:
    """``"127.0.0.1"``, ``"127.0.0.1:5353"``, ``"::1"`` or ``"[::1]:5353"`` as (address, port).

    Raises ``ValueError`` when it is not an IP address with an optional port.
    """
    if text.startswith("["):
        host, _, port = text[1:].partition("]")
        port = port.removeprefix(":") if port.startswith(":") else ("x" if port else "")
    elif text.count(":") == 1:
        host, _, port = text.partition(":")
    else:
        host, port = text, ""
    ipaddress.ip_address(host)
    if port and not (port.isdigit() and 0 < int(port) < 65536):
        raise ValueError(f"bad port in {text!r}")
    return host, int(port) if port else 53


def _check_relay(relay: RelayConfig, dns: DnsConfig) -> None:
    for ns in dns.nameservers:
        try:
            parse_nameserver(ns)
        except ValueError:
            raise ConfigError(
                f"[dns] nameservers: {ns!r} is not an IP address with an optional :port"
            ) from None
    if relay.smarthost:
        host, _, port = relay.smarthost.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigError(f"[relay] smarthost: {relay.smarthost!r} is not host:port")
    if relay.smarthost_user and not relay.smarthost_password_file:
        raise ConfigError("[relay] smarthost_user needs smarthost_password_file")


def _check_queue(q: QueueConfig) -> None:
    for key in ("first_retry_seconds", "poll_seconds", "lease_seconds", "concurrency"):
        if getattr(q, key) <= 0:
            raise ConfigError(f"[queue] {key}: must be more than 0, got {getattr(q, key)!r}")
    if q.max_retry_seconds < q.first_retry_seconds:
        raise ConfigError("[queue] max_retry_seconds: must not be less than first_retry_seconds")


def _check_acme(acme: AcmeConfig) -> None:
    if acme.enabled and not acme.directory.startswith(("https://", "http://")):
        raise ConfigError(f"[acme] directory: not an http(s) URL: {acme.directory!r}")
    for key in ("check_seconds", "retry_seconds"):
        if getattr(acme, key) <= 0:
            raise ConfigError(f"[acme] {key}: must be more than 0, got {getattr(acme, key)!r}")


def _check_junk(junk: JunkConfig) -> None:
    if junk.threshold <= 0:
        raise ConfigError(f"[junk] threshold: must be more than 0, got {junk.threshold!r}")
    for zone in junk.dnsbl_zones:
        labels = zone.strip(".").split(".")
        if len(labels) < 2 or not all(0 < len(x) < 64 and x.isascii() for x in labels):
            raise ConfigError(f"[junk] dnsbl_zones: {zone!r} is not a DNS zone name")
    if junk.rspamd_url and not junk.rspamd_url.startswith(("http://", "https://")):
        raise ConfigError(f"[junk] rspamd_url: {junk.rspamd_url!r} is not an http:// URL")
    if junk.dns_timeout_seconds <= 0:
        raise ConfigError("[junk] dns_timeout_seconds: must be more than 0")


def load(explicit: str | os.PathLike[str] | None = None) -> Config:
    """Reads the configuration; raises ``ConfigError`` with a one-line reason."""
    path = locate(explicit)
    raw: dict[str, Any] = {}
    if path.exists():
        try:
            with path.open("rb") as f:
                raw = tomllib.load(f)
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"{path}: not valid TOML: {e}") from e
        except OSError as e:
            raise ConfigError(f"{path}: cannot read: {e.strerror}") from e
    elif explicit:
        raise ConfigError(f"{path}: no such configuration file")
    known = {"data_dir", "hostname", "listeners", *_SECTIONS}
    for key in raw:
        if key not in known:
            raise ConfigError(f"{key}: unknown setting (known: {', '.join(sorted(known))})")
    data_dir = Path(_typed("", "data_dir", raw.get("data_dir", "."), ""))
    data_dir = (data_dir if data_dir.is_absolute() else path.parent / data_dir).resolve()
    hostname = _typed("", "hostname", raw.get("hostname", ""), "") or _default_hostname()
    sections = {name: _section(name, cls, raw.get(name, {})) for name, cls in _SECTIONS.items()}
    _check_server(sections["server"])
    tls = sections["tls"]
    if bool(tls.cert) != bool(tls.key):
        raise ConfigError("[tls]: set both cert and key, or neither (self-signed certificate)")
    _check_relay(sections["relay"], sections["dns"])
    _check_queue(sections["queue"])
    _check_acme(sections["acme"])
    _check_junk(sections["junk"])
    if not 0 < sections["mtasts"].max_age <= 31557600:  # RFC 8461 §3.2: at most a year
        raise ConfigError("[mtasts] max_age: must be 1..31557600 seconds")
    return Config(
        path=path,
        data_dir=data_dir,
        hostname=hostname,
        listeners=_listeners(raw.get("listeners", {})),
        **sections,
    )


def to_toml(cfg: Config) -> str:
    """The effective settings as TOML (``courriel config show``)."""

    def q(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int | float):
            return repr(v)
        if isinstance(v, tuple):
            return "[" + ", ".join(q(x) for x in v) + "]"
        return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'

    lines = [f"# effective configuration from {cfg.path}", f"data_dir = {q(str(cfg.data_dir))}"]
    lines.append(f"hostname = {q(cfg.hostname)}")
    for name in _SECTIONS:
        section = getattr(cfg, name)
        lines.append(f"\n[{name}]")
        lines += [f"{f.name} = {q(getattr(section, f.name))}" for f in fields(section)]
    for lc in cfg.listeners:
        lines.append(f"\n[listeners.{lc.name}]")
        lines += [f"{k} = {q(getattr(lc, k))}" for k in ("enabled", "address", "port")]
    return "\n".join(lines) + "\n"
