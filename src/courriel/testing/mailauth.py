"""The DNS of the mail-authentication tests: two signing domains and a few broken ones.

Theory of operation
-------------------
``AuthKeys`` makes one Ed25519 and one RSA-2048 key for ``example.org`` and one RSA key for
``example.net`` (key generation is the slow part, so a test session makes them once).
``auth_zone`` publishes, for a ``DnsServer``:

* ``example.org``: SPF allowing only ``ORG_IP``, ``-all``; DMARC ``p=reject``; both DKIM keys.
* ``example.net``: SPF allowing ``NET_IP``, ``~all``; DMARC ``p=quarantine``; its RSA key.
* ``bounces.example.com``: SPF allowing ``ORG_IP`` (an envelope domain that passes SPF but is
  not aligned with example.org).
* ``permerror.example``: SPF with an unknown mechanism; ``loop.example``: an include loop;
  ``many.example``: 11 includes (past the limit of 10); ``void.example``: 3 void lookups;
  ``huge.example``: a 4000-octet TXT record; ``baddmarc.example``: a DMARC record with
  ``p=bogus`` and no rua; ``nodmarc.example``: SPF only.
* ``reports.example`` accepts DMARC reports for example.org (RFC 7489 §7.1).

``mail_dkim_arc_verify`` runs Mail::DKIM's ARC verifier, an implementation independent of ours
and of dkimpy, against a test DNS server.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field

from courriel.mail.auth.dkim import Algorithm, SigningKey, generate_key, public_record
from courriel.testing.dns import Zone

ORG_IP = "192.0.2.10"
NET_IP = "192.0.2.20"
FORGER_IP = "203.0.113.9"
SELECTOR_E = "c202612e"
SELECTOR_R = "c202612r"


def _key(domain: str, selector: str, algorithm: Algorithm) -> SigningKey:
    return SigningKey(domain, selector, algorithm, generate_key(algorithm))


@dataclass
class AuthKeys:
    org: list[SigningKey] = field(
        default_factory=lambda: [
            _key("example.org", SELECTOR_E, Algorithm.ED25519),
            _key("example.org", SELECTOR_R, Algorithm.RSA),
        ]
    )
    net: list[SigningKey] = field(
        default_factory=lambda: [_key("example.net", SELECTOR_R, Algorithm.RSA)]
    )

    def all(self) -> list[SigningKey]:
        return [*self.org, *self.net]


def auth_zone(keys: AuthKeys) -> Zone:
    z = Zone()
    z.add_txt("example.org", f"v=spf1 ip4:{ORG_IP} -all")
    z.add_txt("_dmarc.example.org", "v=DMARC1; p=reject; rua=mailto:dmarc@example.org")
    z.add_txt("example.net", f"v=spf1 ip4:{NET_IP} ~all")
    z.add_txt("_dmarc.example.net", "v=DMARC1; p=quarantine")
    z.add_txt("bounces.example.com", f"v=spf1 ip4:{ORG_IP} -all")
    for key in keys.all():
        z.add_txt(
            f"{key.selector}._domainkey.{key.domain}",
            public_record(key.algorithm, key.private_pem),
        )
    z.a["mail.example.org"] = ORG_IP
    z.add_txt("mail.example.org", "v=spf1 a -all")
    z.add_txt("permerror.example", "v=spf1 ip4:192.0.2.1 frobnicate:x -all")
    z.add_txt("loop.example", "v=spf1 include:loop2.example -all")
    z.add_txt("loop2.example", "v=spf1 include:loop.example -all")
    z.add_txt("many.example", "v=spf1 " + " ".join(f"a:h{i}.many.example" for i in range(11)))
    for i in range(11):
        z.a[f"h{i}.many.example"] = "192.0.2.99"
    z.add_txt("void.example", "v=spf1 a:n1.void.example a:n2.void.example a:n3.void.example -all")
    z.add_txt("huge.example", "v=spf1 " + "ip4:198.51.100.1 " * 235 + "-all")
    z.add_txt("baddmarc.example", "v=spf1 -all")
    z.add_txt("_dmarc.baddmarc.example", "v=DMARC1; p=bogus")
    z.add_txt("nodmarc.example", f"v=spf1 ip4:{ORG_IP} -all")
    # RFC 7489 §7.1: reports.example accepts example.org's aggregate reports.
    z.add_txt("example.org._report._dmarc.reports.example", "v=DMARC1")
    return z


def message(
    from_addr: str = "alice@example.org",
    body: bytes = b"Hello, this is a test.\r\n",
    extra: bytes = b"",
) -> bytes:
    return (
        b"From: Alice <" + from_addr.encode() + b">\r\n"
        b"To: bob@example.com\r\n"
        b"Subject: Authentication test\r\n"
        b"Date: Sun, 06 Dec 2026 00:00:00 +0000\r\n"
        b"Message-ID: <test-1@example.org>\r\n"
        b"MIME-Version: 1.0\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\n" + extra + b"\r\n" + body
    )


# Mail::DKIM's ARC verifier (Debian's libmail-dkim-perl), asking the test's DNS server: Net::DNS
# takes a port, which the C library's resolver does not.
_ARC_VERIFY = r"""
use strict; use warnings;
use Mail::DKIM::ARC::Verifier; use Mail::DKIM::DNS; use Net::DNS::Resolver;
Mail::DKIM::DNS::resolver(Net::DNS::Resolver->new(nameservers => [$ARGV[0]], port => $ARGV[1]));
my $v = Mail::DKIM::ARC::Verifier->new(Strict => 1);
binmode STDIN; local $/; $v->PRINT(<STDIN>); $v->CLOSE;
print $v->result, "\n", ($v->result_detail // ""), "\n";
"""


# Mail::DKIM's ARC sealer: the ARC set for a message that carries our Authentication-Results.
_ARC_SEAL = r"""
use strict; use warnings;
use Mail::DKIM::ARC::Signer;
my ($domain, $selector, $keyfile, $srvid, $chain) = @ARGV;
my $s = Mail::DKIM::ARC::Signer->new(Algorithm => 'rsa-sha256', Chain => $chain,
    Domain => $domain, SrvId => $srvid, Selector => $selector, KeyFile => $keyfile);
binmode STDIN; local $/; $s->PRINT(<STDIN>); $s->CLOSE;
die $s->result_detail unless $s->result eq 'sealed';
print $s->as_string;
"""


def mail_dkim_arc_available() -> bool:
    found = subprocess.run(
        ["perl", "-MMail::DKIM::ARC::Verifier", "-e", "1"], capture_output=True, check=False
    )
    return found.returncode == 0


def mail_dkim_arc_verify(address: str, port: int, message: bytes) -> tuple[str, str]:
    """(result, detail) of Mail::DKIM::ARC::Verifier for ``message``: "pass", "fail", "none"."""
    done = subprocess.run(
        ["perl", "-e", _ARC_VERIFY, address, str(port)],
        input=message,
        capture_output=True,
        check=True,
        timeout=60,
    )
    result, detail = [*done.stdout.decode().splitlines(), "", ""][:2]
    return result, detail


def mail_dkim_arc_seal(
    message: bytes, key: SigningKey, key_file: str, srv_id: str, chain: str = "none"
) -> bytes:
    """The ARC set Mail::DKIM's sealer makes for ``message`` with ``key`` (RSA, as a PEM file)."""
    done = subprocess.run(
        ["perl", "-e", _ARC_SEAL, key.domain, key.selector, key_file, srv_id, chain],
        input=message,
        capture_output=True,
        check=True,
        timeout=60,
    )
    return done.stdout.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
