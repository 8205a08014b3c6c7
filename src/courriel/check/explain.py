"""Plain-words causes and fixes: one fixed sentence each, and the rules that pick one.

Theory of operation
-------------------
Each ``Explanation`` is a key (stable, for scripts), the likely cause and the fix, written for
the person who set up the mail server, not for a protocol engineer. The sentences are fixed:
what varies (a host name, a port, the server's reply) goes in the step's detail, so a test can
assert on the exact sentence and a translation could one day replace them whole.

The ``from_*`` functions read what a server said and choose the explanation:

* ``from_os_error``: refused (nothing listens) vs. timed out (something drops the packets; on
  port 25 most often the internet provider) vs. a name that does not resolve;
* ``from_certificate_error``: OpenSSL's verify code names expiry, self-signed certificates,
  unknown authorities and name mismatches exactly (``X509_V_ERR_*``);
* ``from_login_reply``: servers rarely say why a login failed (RFC 4954 §6 and RFC 5530 let them
  stay vague on purpose, and courriel does); response codes and a few common phrasings tell a
  lock-out or a busy mailbox from a refused password, and where nothing tells the wrong password
  from the unknown user the sentence says so;
* ``from_smtp_reply``: enhanced status codes (RFC 3463) first -- 5.2.2 mailbox full, 5.1.1 no such
  user, 5.7.1 policy -- and for 5.7.x the reply text, which names SPF, DKIM, DMARC or relaying in
  the words every common server uses.
"""

from __future__ import annotations

import errno
import re
import socket
import ssl
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Explanation:
    key: str
    cause: str
    fix: str


def _e(key: str, cause: str, fix: str) -> Explanation:
    return Explanation(key, cause, fix)


# --- connecting -----------------------------------------------------------------------------------

NO_ADDRESS = _e(
    "no-address",
    "The server's host name does not resolve to an address.",
    "Publish an A (and AAAA) record for the host name, or check its spelling.",
)
REFUSED = _e(
    "connection-refused",
    "Nothing listens on this port: the mail service is not running or this port is not enabled.",
    "Start the mail server, or enable this port in its configuration.",
)
TIMED_OUT = _e(
    "connection-timed-out",
    "The port did not answer at all: a firewall drops the connection, or the host is down.",
    "Open the port in the firewall of the host and of the hosting provider, and check that "
    "the host is up.",
)
PORT25_TIMED_OUT = _e(
    "port-25-blocked",
    "Port 25 did not answer: many internet providers block outgoing port 25 on home "
    "connections, or a firewall drops it.",
    "Run this check from another network, or ask your provider to unblock port 25; if it "
    "times out from everywhere, open port 25 in the server's firewall.",
)
UNREACHABLE = _e(
    "network-unreachable",
    "There is no network route to the server's address.",
    "Check this computer's network connection and the address the host name resolves to.",
)
CLOSED_EARLY = _e(
    "connection-closed",
    "The server closed the connection before it finished answering.",
    "Look at the mail server's log for the reason; it may be overloaded or refusing this address.",
)
# --- TLS ------------------------------------------------------------------------------------------

TLS_NAME_MISMATCH = _e(
    "tls-name-mismatch",
    "The certificate is for another name than the server connected to.",
    "Get a certificate that lists this host name (Let's Encrypt, for example), or use a host "
    "name the certificate lists.",
)
TLS_EXPIRED = _e(
    "tls-expired",
    "The server's certificate has expired.",
    "Renew the certificate and restart or reload the mail server.",
)
TLS_NOT_YET_VALID = _e(
    "tls-not-yet-valid",
    "The server's certificate is not valid yet, or this computer's clock is wrong.",
    "Check the clocks of this computer and of the server.",
)
TLS_SELF_SIGNED = _e(
    "tls-self-signed",
    "The certificate is self-signed: no certificate authority vouches for it, so mail "
    "programs warn or refuse to connect.",
    "Get a certificate from a certificate authority (Let's Encrypt, for example); until then "
    "each user must accept this certificate after checking its fingerprint.",
)
TLS_UNTRUSTED = _e(
    "tls-untrusted",
    "The certificate was issued by an authority this computer does not trust, or the server "
    "does not send the intermediate certificates.",
    "Configure the server with the full certificate chain (the fullchain file), from a "
    "well-known certificate authority.",
)
TLS_FAILED = _e(
    "tls-failed",
    "The TLS handshake failed: the server and this computer share no TLS version or cipher, "
    "or the server's TLS set-up is broken.",
    "Enable TLS 1.2 and 1.3 on the server and check its certificate and key files.",
)
TLS_OLD_VERSION = _e(
    "tls-old-version",
    "The server negotiated an old TLS version that current mail programs refuse.",
    "Enable TLS 1.2 and 1.3 on the server.",
)
TLS_EXPIRES_SOON = _e(
    "tls-expires-soon",
    "The certificate expires within 14 days.",
    "Renew the certificate now; check that automatic renewal runs.",
)
NO_STARTTLS = _e(
    "no-starttls",
    "The server does not offer STARTTLS on this port, so passwords and mail would travel "
    "unencrypted.",
    "Enable STARTTLS with a certificate on this port, or use the implicit-TLS port instead.",
)
PLAINTEXT_LOGIN = _e(
    "password-before-tls",
    "The server accepts passwords before TLS is started, so they can be read on the network.",
    "Configure the server to refuse logins until STARTTLS (LOGINDISABLED for IMAP, no AUTH "
    "or USER before STARTTLS for SMTP and POP3).",
)

# --- logging in -----------------------------------------------------------------------------------

LOGIN_REFUSED = _e(
    "login-refused",
    "The server refused the user name or password; its reply does not tell a wrong password "
    "from an unknown user.",
    "Check the password and that the user name is the full e-mail address; reset the "
    "password if unsure.",
)
UNKNOWN_USER = _e(
    "unknown-user",
    "The server says this user does not exist.",
    "Check the spelling of the address, and that the account was created on the server.",
)
WRONG_PASSWORD = _e(
    "wrong-password",
    "The server says the password is wrong.",
    "Type the password again, or reset it (courriel user passwd ADDRESS on a courriel server).",
)
LOCKED_OUT = _e(
    "locked-out",
    "The server refuses logins for now: too many failed attempts locked the account or this "
    "address out for a while.",
    "Wait a few minutes before trying again, and correct the password in every mail program "
    "that keeps retrying it.",
)
MAILBOX_IN_USE = _e(
    "mailbox-in-use",
    "Another POP3 session holds the mailbox open, so the server refused this one.",
    "Close the other mail program that is connected by POP3, or wait until it finishes.",
)
LOGIN_TEMPORARY = _e(
    "login-temporary-failure",
    "The server could not check the password right now (a temporary failure on its side).",
    "Try again in a few minutes; if it persists, look at the server's log.",
)
NO_LOGIN_METHOD = _e(
    "no-login-method",
    "The server offers no password login this check can use on this port.",
    "Enable PLAIN or LOGIN authentication inside TLS on the server.",
)

# --- sending and delivery -------------------------------------------------------------------------

SPF_FAILED = _e(
    "spf-failed",
    "The receiving server refused the message because the sender domain's SPF record does not "
    "list the server that sent it.",
    "Add the sending server to the domain's SPF record (courriel dns DOMAIN shows the record "
    "to publish).",
)
DKIM_FAILED = _e(
    "dkim-failed",
    "The receiving server refused the message because its DKIM signature did not verify: the "
    "key is missing from DNS or does not match.",
    "Publish the DKIM key records that courriel dns DOMAIN shows, then run courriel check "
    "--server.",
)
DMARC_FAILED = _e(
    "dmarc-failed",
    "The receiving server refused the message under the sender domain's DMARC policy: neither "
    "SPF nor DKIM passed for the From domain.",
    "Fix SPF and DKIM for the domain (courriel dns DOMAIN --check shows which records are wrong).",
)
RELAY_DENIED = _e(
    "relay-denied",
    "The server refused to pass the message on to another domain: it relays only for users "
    "who logged in.",
    "Send through the submission port (465 or 587) with a login, not through port 25.",
)
POLICY_REFUSED = _e(
    "policy-refused",
    "The receiving server refused the message for a policy reason its reply does not name.",
    "Read the server's reply below; it often links to the receiver's help page.",
)
SENDER_NOT_OWNED = _e(
    "sender-not-owned",
    "The server refused the sender address: this login may not send as that address.",
    "Send from the address you log in with, or ask the administrator for an alias.",
)
RECIPIENT_UNKNOWN = _e(
    "recipient-unknown",
    "The receiving server says the recipient address does not exist.",
    "Check the spelling of the address, and that the mailbox exists on its server.",
)
MAILBOX_FULL = _e(
    "mailbox-full",
    "The recipient's mailbox is full.",
    "Delete or archive old mail, or raise the mailbox quota (courriel user quota ADDRESS SIZE).",
)
MESSAGE_TOO_BIG = _e(
    "message-too-big",
    "The message is larger than the receiving server accepts.",
    "Send a smaller message, or raise the server's size limit.",
)
TEMPORARY_REFUSAL = _e(
    "temporary-refusal",
    "The receiving server refused the message for now (a temporary failure); a server would "
    "retry later.",
    "Wait and check again; if it persists, read the reply below and the server's log.",
)
SEND_REFUSED = _e(
    "send-refused",
    "The server refused the message permanently for a reason its reply does not make clear.",
    "Read the server's reply below and the server's log.",
)
NOT_DELIVERED = _e(
    "not-delivered",
    "The server accepted the message, but it did not arrive in the mailbox before the time limit.",
    "Look at the server's outbound queue and log (courriel queue list) for the message: it "
    "may be waiting for a retry, or filtered to another folder.",
)
BOUNCED = _e(
    "bounced",
    "The server accepted the message, but delivery failed and a bounce came back.",
    "Read the bounce's reason below.",
)
PROTOCOL_ERROR = _e(
    "protocol-error",
    "The server answered something this check did not expect.",
    "Read the server's reply below and the server's log.",
)
NO_PUSH = _e(
    "no-idle",
    "The server does not offer IMAP IDLE, so mail programs learn of new mail only when they poll.",
    "Enable IDLE on the IMAP server.",
)


# --- choosing -------------------------------------------------------------------------------------


def from_os_error(e: BaseException, port: int) -> Explanation:
    """Why a connection failed."""
    if isinstance(e, socket.gaierror):
        return NO_ADDRESS
    if isinstance(e, ConnectionRefusedError):
        return REFUSED
    if isinstance(e, TimeoutError | socket.timeout):
        return PORT25_TIMED_OUT if port == 25 else TIMED_OUT
    if isinstance(e, OSError) and e.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH):
        return UNREACHABLE
    if isinstance(e, ssl.SSLCertVerificationError):
        return from_certificate_error(e)
    if isinstance(e, ssl.SSLError):
        return TLS_FAILED
    if isinstance(e, ConnectionError | EOFError):
        return CLOSED_EARLY
    return CLOSED_EARLY


# OpenSSL's X509_V_ERR_* numbers (x509_vfy.h); the message text varies between versions.
_CERT_NOT_YET_VALID = 9
_CERT_HAS_EXPIRED = 10
_DEPTH_ZERO_SELF_SIGNED = 18
_SELF_SIGNED_IN_CHAIN = 19
_HOSTNAME_MISMATCH = 62
_IP_ADDRESS_MISMATCH = 64


def from_certificate_error(e: ssl.SSLCertVerificationError) -> Explanation:
    code = e.verify_code
    if code in (_HOSTNAME_MISMATCH, _IP_ADDRESS_MISMATCH):
        return TLS_NAME_MISMATCH
    if code == _CERT_HAS_EXPIRED:
        return TLS_EXPIRED
    if code == _CERT_NOT_YET_VALID:
        return TLS_NOT_YET_VALID
    if code in (_DEPTH_ZERO_SELF_SIGNED, _SELF_SIGNED_IN_CHAIN):
        return TLS_SELF_SIGNED
    return TLS_UNTRUSTED


def _has(text: str, *words: str) -> bool:
    return any(re.search(rf"\b{w}", text) for w in words)


def from_login_reply(reply: str) -> Explanation:
    """Why a login was refused, from the server's reply (IMAP, POP3 or SMTP)."""
    text = reply.lower()
    if "[in-use]" in text:  # RFC 2449 §8.1.1
        return MAILBOX_IN_USE
    if "[unavailable]" in text or "[login-delay]" in text or _has(text, "too many", "locked"):
        return LOCKED_OUT  # RFC 5530 §3, RFC 2449 §8.1.2, courriel's limiter sentences
    if text.startswith("454") or "[sys/temp]" in text or "4.7.0" in text:
        return LOGIN_TEMPORARY  # RFC 4954 §6, RFC 3206 §4
    if "auth not offered" in text:
        return NO_LOGIN_METHOD
    if _has(text, "no such user", "unknown user", "user unknown", "user not found"):
        return UNKNOWN_USER
    if _has(text, "wrong password", "invalid password", "incorrect password", "bad password"):
        return WRONG_PASSWORD
    return LOGIN_REFUSED


_ENHANCED = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")


def from_smtp_reply(code: int, text: str) -> Explanation:
    """Why an SMTP server refused a command (MAIL, RCPT, DATA), from its reply."""
    lowered = text.lower()
    m = _ENHANCED.search(text)
    enhanced = m.group(0) if m else ""
    if (
        enhanced == "5.2.2"
        or enhanced == "4.2.2"
        or "quota" in lowered
        or "mailbox full" in lowered
    ):
        return MAILBOX_FULL  # RFC 3463 §3.3: X.2.2 mailbox full
    if enhanced in ("5.3.4", "5.2.3") or (code == 552 and "size" in lowered):
        return MESSAGE_TOO_BIG
    if enhanced in ("5.1.1", "5.1.10") or _has(lowered, "user unknown", "no such user"):
        return RECIPIENT_UNKNOWN
    if enhanced.startswith(("5.7", "4.7")) or code in (550, 554):
        policy = _policy(lowered)
        if policy is not None:
            return policy
    if code // 100 == 4:
        return TEMPORARY_REFUSAL
    if enhanced.startswith("5.7"):
        return POLICY_REFUSED
    return SEND_REFUSED


def _policy(text: str) -> Explanation | None:
    # DMARC first: its refusals mention SPF and DKIM too ("SPF and DKIM did not align").
    if "dmarc" in text:
        return DMARC_FAILED
    if "relay" in text:
        return RELAY_DENIED
    if "addresses you own" in text or "not owned" in text or "sender address rejected" in text:
        return SENDER_NOT_OWNED
    if re.search(r"\bspf\b", text):
        return SPF_FAILED
    if "dkim" in text:
        return DKIM_FAILED
    return None


NO_MX = _e(
    "no-mx",
    "The domain has no MX record, so other servers do not know where to deliver its mail.",
    "Publish the MX record that courriel dns DOMAIN shows.",
)
NO_INCOMING = _e(
    "no-incoming",
    "No IMAP or POP3 server answered, so no mail program can read this mailbox.",
    "Enable IMAP (port 993) on the server and publish its SRV or autoconfig records.",
)
NO_OUTGOING = _e(
    "no-outgoing",
    "No submission server answered, so no mail program can send from this address.",
    "Enable submission (port 465 or 587) on the server and publish its SRV or autoconfig records.",
)
CLEANUP_FAILED = _e(
    "cleanup-failed",
    "The test message could not be deleted afterwards.",
    "Delete the message whose subject starts with 'courriel check' by hand.",
)


# --- the server side ------------------------------------------------------------------------------

DNS_MX = _e(
    "dns-mx",
    "The domain's MX record does not point at this server, so mail for it goes elsewhere or "
    "nowhere.",
    "Publish the MX record shown (courriel dns DOMAIN lists every record).",
)
DNS_SPF = _e(
    "dns-spf",
    "The SPF record does not list this server, so receivers treat mail it sends as forged "
    "and refuse or junk it.",
    "Publish the SPF record shown in place of the current one.",
)
DNS_DKIM = _e(
    "dns-dkim",
    "A DKIM key courriel signs with is not published as it must be, so receivers cannot "
    "verify the signatures and DMARC fails.",
    "Publish the DKIM record shown, exactly as courriel dns DOMAIN prints it.",
)
DNS_DMARC = _e(
    "dns-dmarc",
    "The domain has no valid DMARC policy, so receivers may junk its mail and others can "
    "send in its name unchecked.",
    "Publish the DMARC record shown.",
)
DNS_MTA_STS = _e(
    "dns-mta-sts",
    "The MTA-STS records are missing or outdated, so senders cannot insist on TLS when "
    "they deliver to this domain.",
    "Publish the MTA-STS records shown.",
)
DNS_TLS_RPT = _e(
    "dns-tls-rpt",
    "The TLS-RPT record is missing, so senders cannot report TLS failures to you.",
    "Publish the TLS-RPT record shown.",
)
DNS_CLIENT_SETUP = _e(
    "dns-client-setup",
    "A record mail programs use to find the servers (SRV, autoconfig, autodiscover) is "
    "missing or wrong, so users must type the settings by hand.",
    "Publish the record shown.",
)
DNS_NO_ANSWER = _e(
    "dns-no-answer",
    "DNS did not answer for this record, so it could not be checked.",
    "Check the resolver (the [dns] nameservers setting or /etc/resolv.conf) and try again.",
)
DNS_PTR = _e(
    "dns-ptr",
    "This server's address does not have a reverse DNS name (PTR) that points back to its "
    "host name; many receivers refuse mail from such hosts.",
    "Ask whoever gives you the address (the hosting provider) to set its PTR record to the "
    "host name.",
)
OPEN_RELAY = _e(
    "open-relay",
    "The server accepted mail for an outside domain without a login: it is an open relay, "
    "and spammers will use it.",
    "Allow relaying only for users who logged in; report this as a bug if the server is courriel.",
)
QUEUE_STUCK = _e(
    "queue-stuck",
    "A message has been waiting in the outbound queue for more than an hour: the receiving "
    "server refuses it for now or cannot be reached.",
    "Read the reason with courriel queue list; check outgoing port 25 and the DNS of the "
    "receiving domain.",
)
DISK_LOW = _e(
    "disk-low",
    "The disk holding the data directory is almost full; when it fills, mail is refused.",
    "Free disk space or move the data directory to a larger disk.",
)
CERT_UNREADABLE = _e(
    "certificate-unreadable",
    "The configured certificate cannot be read.",
    "Check the [tls] cert and key settings and the files' permissions.",
)
