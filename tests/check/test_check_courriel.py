"""``courriel check ADDRESS`` against a running courriel: a working set-up passes every step,
and each fault made on purpose gets its own plain-words explanation, asserted word for word."""

from __future__ import annotations

import contextlib
import time

from courriel.check import explain
from courriel.check.tls import parse_certificate
from courriel.testing.check_site import (
    ALICE,
    BOB,
    BOB_PASSWORD,
    DOMAIN,
    HOST,
    PASSWORD,
    SiteFactory,
)


def test_a_working_setup_passes_every_check(make_site: SiteFactory) -> None:
    site = make_site()
    r = site.check(
        ALICE,
        "--password-stdin",
        "--to",
        BOB,
        "--to-password-stdin",
        "--json",
        stdin=f"{PASSWORD}\n{BOB_PASSWORD}\n",
    )
    assert r.status == 0, r.failures()
    assert r.report is not None and r.report["passed"] is True
    assert r.steps("fail") == [] and r.steps("warn") == []
    names = {(s["section"], s["name"]) for s in r.steps("ok")}
    # Discovery found the servers through autoconfig first, as Thunderbird would.
    found = [s for s in r.steps("ok") if s["section"] == "discovery"]
    assert found[0]["name"].startswith(f"https://autoconfig.{DOMAIN}") is False
    assert found[0]["name"].startswith(f"autoconfig https://autoconfig.{DOMAIN}:")
    assert f"imaps {HOST}:{site.port('imaps')}" in found[0]["detail"]
    # Every source a mail program asks answered the same servers: both autoconfig URLs, both
    # Autodiscover XML endpoints and the JSON one that points at XML, and the SRV records.
    sources = [s["name"].split(" ")[0] for s in found]
    assert sources == ["autoconfig"] * 2 + ["autodiscover"] * 3 + ["SRV"]
    assert len({frozenset(s["detail"].split(", ")) for s in found}) == 1
    assert "/autodiscover/autodiscover.json?" in found[4]["name"]
    for service in ("imaps", "imap", "pop3s", "pop3", "submissions", "submission"):
        protocol = "SMTP" if "sub" in service else service.rstrip("s").upper()
        section = f"{protocol} {HOST}:{site.port(service)} ({service})"
        assert (section, "login") in names, section
        assert (section, "TLS") in names
    for service in ("imap", "pop3", "submission"):
        section = next(s for s, n in names if s.endswith(f"({service})"))
        assert (section, "no password before TLS") in names
    assert (f"SMTP MX {HOST}:{site.port('smtp')} (smtp)", "TLS") in names
    round_trip = {s["name"]: s for s in r.steps() if s["section"] == "round trip"}
    assert round_trip[f"arrived in {ALICE}'s INBOX"]["detail"].startswith("pushed by IDLE after ")
    assert f"arrived in {BOB}'s INBOX" in round_trip
    assert any(n.startswith("listed over POP3") for n in round_trip)
    assert round_trip["clean up"]["status"] == "ok"
    # Cleaned up: neither mailbox keeps the test message.
    alice = site.server.call(site.server.store.get_user(ALICE))
    assert alice is not None
    for who in (ALICE, BOB):
        user = site.server.call(site.server.store.get_user(who))
        assert user is not None
        box = site.server.call(site.server.store.get_mailbox(user.id, "INBOX"))
        assert box is not None
        assert site.server.call(site.server.store.list_messages(box.id)) == []


def test_text_report_and_exit_status(make_site: SiteFactory) -> None:
    site = make_site()
    r = site.check(ALICE, "--password-stdin", "--no-round-trip")
    assert r.status == 0, r.out
    assert r.out.startswith(f"courriel check: {ALICE}\n")
    assert f"\nIMAP {HOST}:{site.port('imaps')} (imaps)\n" in r.out
    assert "  ok    login: logged in as alice@example.test" in r.out
    assert r.out.rstrip().endswith("checks passed")


def test_wrong_password(make_site: SiteFactory) -> None:
    site = make_site()
    r = site.check(ALICE, "--password-stdin", "--no-round-trip", "--json", stdin="wrong\n")
    assert r.status == 1
    assert r.err == "courriel: error: 6 check(s) failed (see above)\n"
    failures = r.failures()
    assert len(failures) == 6
    assert set(failures) == {("login", explain.LOGIN_REFUSED.cause)}
    assert explain.LOGIN_REFUSED.cause == (
        "The server refused the user name or password; its reply does not tell a wrong "
        "password from an unknown user."
    )
    imap = next(s for s in r.steps("fail") if s["section"].endswith("(imaps)"))
    assert "[AUTHENTICATIONFAILED]" in imap["detail"]


def test_locked_out_after_too_many_failures(make_site: SiteFactory) -> None:
    site = make_site()
    # Failures are counted in fixed windows (AuthConfig.failure_window_seconds, 300 s, from the
    # epoch): attempts on both sides of a window's end count apart. Start well inside one.
    left = 300 - time.time() % 300
    if left < 30:
        time.sleep(left + 1)
    for _ in range(2):  # 12 failed logins: over the 10 a client address may make
        site.check(ALICE, "--password-stdin", "--no-round-trip", stdin="wrong\n")
    r = site.check(ALICE, "--password-stdin", "--no-round-trip", "--json")
    causes = {cause for _, cause in r.failures()}
    assert causes == {explain.LOCKED_OUT.cause}, r.failures()
    assert r.status == 1


def test_closed_port(make_site: SiteFactory) -> None:
    from courriel.testing.net import free_port

    site = make_site()
    closed = free_port()
    r = site.check(
        ALICE, "--password-stdin", "--no-round-trip", "--json", "--port", f"imaps={closed}"
    )
    assert r.status == 1
    assert r.failures() == [("connect", explain.REFUSED.cause)]
    step = r.steps("fail")[0]
    assert step["section"] == f"IMAP {HOST}:{closed} (imaps)"
    assert step["fix"] == "Start the mail server, or enable this port in its configuration."
    assert step["problem"] == "connection-refused"


def test_expired_certificate(make_site: SiteFactory) -> None:
    site = make_site(cert_days=-1)
    r = site.check(ALICE, "--password-stdin", "--no-round-trip", "--json")
    assert r.status == 1
    assert {c for _, c in r.failures()} == {explain.TLS_EXPIRED.cause}
    assert {n for n, _ in r.failures()} == {"TLS"}
    assert explain.TLS_EXPIRED.cause == "The server's certificate has expired."
    # --insecure goes on, and still says what is wrong, as a warning.
    r = site.check(ALICE, "--password-stdin", "--json", "--insecure")
    assert r.status == 0, r.failures()
    assert [s["status"] for s in r.steps() if s["name"] == "clean up"] == ["ok"]
    warned = {s["cause"] for s in r.steps("warn") if s["name"] == "TLS"}
    assert warned == {explain.TLS_EXPIRED.cause}
    assert len(r.steps("warn")) == 7  # six mail services and the MX, each said once
    assert all(s["name"] != "login" for s in r.steps("fail"))


def test_certificate_for_another_name(make_site: SiteFactory) -> None:
    site = make_site(cert_names=["other.example.net", f"autoconfig.{DOMAIN}"])
    r = site.check(ALICE, "--password-stdin", "--no-round-trip", "--json")
    assert r.status == 1
    tls = [s for s in r.steps("fail") if s["name"] == "TLS"]
    assert len(tls) == 6
    assert {s["cause"] for s in tls} == {
        "The certificate is for another name than the server connected to."
    }
    # The MX is reached by opportunistic TLS: a warning there, not a failure.
    mx = next(s for s in r.steps("warn") if s["section"].startswith("SMTP MX"))
    assert mx["cause"] == explain.TLS_NAME_MISMATCH.cause


def test_self_signed_certificate(make_site: SiteFactory) -> None:
    site = make_site(cert_names=None)  # courriel's own self-signed certificate
    r = site.check(ALICE, "--password-stdin", "--no-round-trip", "--json", cafile=False)
    assert r.status == 1
    tls = [s for s in r.steps("fail") if s["name"] == "TLS"]
    assert {s["cause"] for s in tls} == {explain.TLS_SELF_SIGNED.cause}
    assert len(tls) == 6
    der = site.server.cert_path.read_bytes()
    assert b"BEGIN CERTIFICATE" in der


def test_mailbox_full(make_site: SiteFactory) -> None:
    from courriel import admin

    site = make_site()
    site.server.call(admin.set_quota(site.server.store, ALICE, 10))
    r = site.check(ALICE, "--password-stdin", "--json")
    assert r.status == 1
    assert r.failures() == [
        (f"send via submissions {HOST}:{site.port('submissions')}", explain.MAILBOX_FULL.cause)
    ]
    # a message larger than the whole quota: 552 5.2.2 (a full mailbox alone: 452 4.2.2)
    assert "552 5.2.2" in r.steps("fail")[0]["detail"]
    assert explain.MAILBOX_FULL.cause == "The recipient's mailbox is full."


def test_parse_certificate_names_and_self_signed(make_site: SiteFactory) -> None:
    site = make_site(cert_names=None)
    from courriel.testing.certs import leaf_der

    cert = parse_certificate(leaf_der(site.server.cert_path))
    assert HOST in cert.names and cert.self_signed


def test_port_25_that_never_answers(make_site: SiteFactory) -> None:
    """A listening socket whose backlog is full drops new SYNs, as a firewall would."""
    import socket

    site = make_site()
    with socket.socket() as hole:
        hole.bind(("127.0.0.1", 0))
        hole.listen(0)
        port = hole.getsockname()[1]
        held = []
        for _ in range(4):
            c = socket.socket()
            c.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                c.connect(("127.0.0.1", port))
            held.append(c)
        try:
            r = site.check(
                ALICE,
                "--password-stdin",
                "--no-round-trip",
                "--json",
                "--port",
                f"smtp={port}",
                "--timeout",
                "0.5",
            )
        finally:
            for c in held:
                c.close()
    assert r.status == 1
    assert r.failures() == [("connect", explain.PORT25_TIMED_OUT.cause)]
    assert r.steps("fail")[0]["detail"] == f"{HOST}:{port}: timed out"
    assert explain.PORT25_TIMED_OUT.cause.startswith("Port 25 did not answer: many internet")


def test_command_line_mistakes(make_site: SiteFactory) -> None:
    site = make_site()
    r = site.check("--password-stdin")
    assert (r.status, r.err) == (
        2,
        "courriel: error: check: give an ADDRESS, or --server to check this server\n",
    )
    r = site.check("--server", "mail.example.test", "--password-stdin")
    assert r.status == 2 and "--server HOST needs the ADDRESS" in r.err
    r = site.check(ALICE, "--password-stdin", "--port", "imapx=1")
    assert r.status == 2 and "unknown service 'imapx'" in r.err
    r = site.check(ALICE, "--password-stdin", stdin="")
    assert r.status == 1 and "not enough passwords on standard input" in r.err
