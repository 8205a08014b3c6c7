"""`courriel user add --admin`, `courriel user admin`, `courriel token`: store and audit log."""

from __future__ import annotations

from courriel.store.access import secret_digest


def test_admin_rights_are_given_and_taken_and_audited(courriel, in_store) -> None:
    assert courriel("domain", "add", "example.org").status == 0
    r = courriel("user", "add", "root@example.org", "--admin", "--password-stdin", stdin="pw\n")
    assert r.status == 0 and "administrator" in r.out
    assert courriel("user", "add", "bob@example.org", "--password-stdin", stdin="pw\n").status == 0
    assert in_store(lambda s: s.get_user("root@example.org")).admin
    assert not in_store(lambda s: s.get_user("bob@example.org")).admin

    assert courriel("user", "admin", "bob@example.org", "on").status == 0
    assert in_store(lambda s: s.get_user("bob@example.org")).admin
    assert courriel("user", "admin", "Bob@Example.org", "off").status == 0
    assert not in_store(lambda s: s.get_user("bob@example.org")).admin
    assert courriel("user", "admin", "nobody@example.org", "on").error() == (
        "unknown user nobody@example.org"
    )
    assert courriel("user", "admin", "bob@example.org", "maybe").status == 2

    actions = [(e.action, e.detail) for e in reversed(in_store(lambda s: s.list_audit(20)))]
    assert actions == [
        ("domain add", "example.org"),
        ("user add", "root@example.org"),
        ("user admin", "root@example.org on"),
        ("user add", "bob@example.org"),
        ("user admin", "bob@example.org on"),
        ("user admin", "bob@example.org off"),
    ]
    assert all(e.actor.startswith("cli") for e in in_store(lambda s: s.list_audit(10)))


def test_a_token_is_printed_once_and_kept_as_a_digest(courriel, in_store) -> None:
    r = courriel("token", "add", "backup")
    token = r.out.strip()
    assert r.status == 0 and token.startswith("courriel_") and len(token) > 40
    assert in_store(lambda s: s.api_token_name(secret_digest(token))) == "backup"
    assert (
        courriel("token", "add", "backup").error() == "an API token named 'backup' already exists"
    )
    assert "backup" in courriel("token", "list").out
    assert token not in courriel("token", "list").out
    assert courriel("token", "remove", "backup").status == 0
    assert in_store(lambda s: s.api_token_name(secret_digest(token))) is None
    assert courriel("token", "remove", "backup").error() == "unknown API token 'backup'"
    actions = [e.action for e in in_store(lambda s: s.list_audit(10))]
    assert actions == ["token remove", "token add"]


def test_account_and_queue_commands_are_audited_without_passwords(courriel, in_store) -> None:
    courriel("domain", "add", "example.org")
    courriel("user", "add", "ann@example.org", "--password-stdin", stdin="secret-1\n")
    courriel("user", "passwd", "ann@example.org", "--password-stdin", stdin="secret-2\n")
    courriel("user", "quota", "ann@example.org", "1G")
    courriel("alias", "add", "info@example.org", "ann@example.org")
    courriel("alias", "remove", "info@example.org")
    courriel("domain", "catchall", "example.org", "ann@example.org")
    assert courriel("queue", "retry", "NOSUCHID").status == 1  # refused: not audited
    courriel("queue", "flush")
    courriel("user", "remove", "ann@example.org")
    entries = list(reversed(in_store(lambda s: s.list_audit(20))))
    assert [(e.action, e.detail) for e in entries] == [
        ("domain add", "example.org"),
        ("user add", "ann@example.org"),
        ("user passwd", "ann@example.org"),
        ("user quota", "ann@example.org"),
        ("alias add", "info@example.org"),
        ("alias remove", "info@example.org"),
        ("domain catchall", "example.org"),
        ("queue flush", "all"),
        ("user remove", "ann@example.org"),
    ]
    assert not any("secret" in e.detail for e in entries)


def test_the_only_administrator_keeps_their_rights(courriel, in_store) -> None:
    courriel("domain", "add", "example.org")
    courriel("user", "add", "root@example.org", "--admin", "--password-stdin", stdin="pw\n")
    courriel("user", "add", "bob@example.org", "--password-stdin", stdin="pw\n")
    refused = courriel("user", "admin", "root@example.org", "off")
    assert refused.error() == (
        "root@example.org is the only administrator; make another one before taking their rights"
    )
    assert courriel("user", "remove", "root@example.org").status == 1
    assert in_store(lambda s: s.get_user("root@example.org")).admin
    assert courriel("user", "admin", "bob@example.org", "on").status == 0
    assert courriel("user", "remove", "root@example.org").status == 0
    assert (
        courriel("user", "remove", "bob@example.org")
        .error()
        .startswith("bob@example.org is the only administrator")
    )
