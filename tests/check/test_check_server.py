"""``courriel check --server``: DNS compared with what ``courriel dns`` asks for, the certificate,
the listeners, the relay test, the queue and the disk, on a running courriel."""

from __future__ import annotations

from courriel.check import explain
from courriel.dnsrecords import Record
from courriel.testing.check_site import ALICE, DOMAIN, HOST, PASSWORD, SiteFactory


def test_a_working_server_passes(make_site: SiteFactory) -> None:
    site = make_site()
    r = site.server_check("--json")
    assert r.status == 0, r.failures()
    assert r.steps("fail") == [] and r.steps("warn") == []
    names = {(s["section"], s["name"]) for s in r.steps("ok")}
    assert (f"DNS of {DOMAIN}", f"MX {DOMAIN}") in names
    assert (f"DNS of {DOMAIN}", f"TXT _dmarc.{DOMAIN}") in names
    assert any(n.startswith("TXT ") and "._domainkey." in n for _, n in names)
    assert (f"reverse DNS of {HOST}", "PTR") in names
    listeners = {n for s, n in names if s == "listeners"}
    assert listeners == {
        "imaps",
        "imap",
        "pop3s",
        "pop3",
        "submissions",
        "submission",
        "smtp",
        "sieve",
        "https",
        "http",
    }
    relay = next(s for s in r.steps() if s["section"] == "open relay")
    assert relay["detail"].startswith("refused: RCPT TO:<courriel-check@relay-test.example.com>")
    assert "554 5.7.1" in relay["detail"]
    assert ("queue", "oldest entry") in names and ("disk", "free space") in names
    # The same set-up passes the client-side check too, discovered through its DNS.
    assert site.check(ALICE, "--password-stdin", "--no-round-trip").status == 0


def _spf_excludes_us(records: list[Record]) -> list[Record]:
    return [
        Record(r.name, r.type, "v=spf1 ip4:192.0.2.1 -all", r.purpose)
        if r.name == DOMAIN and r.value.startswith("v=spf1")
        else r
        for r in records
    ]


def test_spf_that_excludes_the_sender(make_site: SiteFactory) -> None:
    site = make_site(dns_edit=_spf_excludes_us)
    r = site.server_check("--json")
    assert r.status == 1
    assert r.failures() == [(f"TXT {DOMAIN}", explain.DNS_SPF.cause)]
    assert explain.DNS_SPF.cause == (
        "The SPF record does not list this server, so receivers treat mail it sends as forged "
        "and refuse or junk it."
    )
    assert r.steps("fail")[0]["detail"] == (
        "WRONG: found 'v=spf1 ip4:192.0.2.1 -all'; change it to \"v=spf1 mx -all\""
    )


def _without_rsa_dkim(records: list[Record]) -> list[Record]:
    return [
        r for r in records if not ("._domainkey." in r.name and r.name.split(".")[0].endswith("r"))
    ]


def test_dkim_key_removed_from_dns(make_site: SiteFactory) -> None:
    site = make_site(dns_edit=_without_rsa_dkim)
    r = site.server_check("--json")
    assert r.status == 1
    [(name, cause)] = r.failures()
    assert name.startswith("TXT ") and name.endswith(f"._domainkey.{DOMAIN}")
    assert cause == explain.DNS_DKIM.cause
    assert r.steps("fail")[0]["detail"].startswith('MISSING: publish TXT "v=DKIM1; k=rsa; p=')


def test_text_report(make_site: SiteFactory) -> None:
    site = make_site(dns_edit=_spf_excludes_us)
    r = site.server_check()
    assert r.status == 1
    assert r.err == "courriel: error: 1 check(s) failed (see above)\n"
    assert f"\nDNS of {DOMAIN}\n" in r.out
    assert f"  FAIL  TXT {DOMAIN}: WRONG:" in r.out
    assert f"        cause: {explain.DNS_SPF.cause}\n" in r.out
    assert f"        fix:   {explain.DNS_SPF.fix}\n" in r.out
    assert PASSWORD not in r.out


def test_expired_certificate_and_a_listener_that_does_not_answer(make_site: SiteFactory) -> None:
    from courriel.testing.net import free_port

    site = make_site(cert_days=-1)
    # The same data directory, with the imaps listener moved to a port nothing listens on.
    text = site.server.cfg.path.read_text()
    imaps = site.port("imaps")
    closed = free_port()
    moved = site.server.cfg.path.with_name("moved.toml")
    moved.write_text(text.replace(f"port = {imaps}\n", f"port = {closed}\n"))
    r = site.server_check("--json", config=moved)
    assert r.status == 1
    # The imaps SRV record published for the old port is now wrong, too.
    assert sorted(r.failures()) == [
        (f"SRV _imaps._tcp.{DOMAIN}", explain.DNS_CLIENT_SETUP.cause),
        ("expiry", explain.TLS_EXPIRED.cause),
        ("imaps", explain.REFUSED.cause),
    ]
    imaps_step = next(s for s in r.steps("fail") if s["name"] == "imaps")
    assert imaps_step["section"] == "listeners"
    assert imaps_step["detail"] == "imaps: Connection refused"


def test_a_message_stuck_in_the_queue(make_site: SiteFactory) -> None:
    import time

    from courriel.store.queue import NewEntry, NewRecipient

    site = make_site()  # no transport: nothing takes the entry out of the queue
    entry = NewEntry(
        id="STUCK0001",
        sender=ALICE,
        recipients=(NewRecipient("bob@example.net", "example.net"),),
        message=b"From: alice@example.test\r\nSubject: stuck\r\n\r\nx\r\n",
    )
    site.server.call(site.server.store.queue.enqueue(entry, time.time() - 7200))
    r = site.server_check("--json")
    assert r.status == 0  # a warning, not a failure
    [warned] = r.steps("warn")
    assert (warned["name"], warned["cause"]) == ("oldest entry", explain.QUEUE_STUCK.cause)
    assert warned["detail"] == "1 message(s); the oldest, STUCK0001, waits for 120 minutes"
