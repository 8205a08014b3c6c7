"""`courriel user add|passwd|quota|remove|list`, checked against what the store holds."""

from __future__ import annotations

import pytest

from courriel.accounts.passwords import PasswordHasher

CHEAP = PasswordHasher.for_tests()


@pytest.fixture
def domain(courriel) -> str:
    assert courriel("domain", "add", "example.org").status == 0
    return "example.org"


async def _mailboxes(store, address: str) -> tuple[dict[str, str | None], list[str]]:
    user = await store.get_user(address)
    assert user is not None
    boxes = {m.name: m.special_use for m in await store.list_mailboxes(user.id)}
    return boxes, sorted(await store.subscriptions(user.id))


def test_add_with_password_from_stdin(courriel, in_store, domain: str) -> None:
    r = courriel("user", "add", "alice@example.org", "--password-stdin", stdin="s3cret pass\nx\n")
    assert r.status == 0, r.err
    assert r.out == "added user alice@example.org\n"
    user = in_store(lambda s: s.get_user("alice@example.org"))
    assert user is not None
    assert user.quota_bytes is None
    # Only the first line is the password; its line ending is not part of it.
    assert CHEAP.verify(user.password_hash, "s3cret pass")
    assert not CHEAP.verify(user.password_hash, "s3cret pass\n")


def test_crlf_line_ending_is_not_part_of_the_password(courriel, in_store, domain: str) -> None:
    r = courriel("user", "add", "alice@example.org", "--password-stdin", stdin=b"pw-1234\r\n")
    assert r.status == 0, r.err
    user = in_store(lambda s: s.get_user("alice@example.org"))
    assert CHEAP.verify(user.password_hash, "pw-1234")


def test_new_user_gets_special_use_mailboxes_all_subscribed(courriel, in_store, domain) -> None:
    courriel("user", "add", "alice@example.org", "--password-argv", "pw-123456")
    boxes, subscribed = in_store(lambda s: _mailboxes(s, "alice@example.org"))
    assert boxes == {
        "INBOX": None,
        "Sent": "\\Sent",
        "Drafts": "\\Drafts",
        "Trash": "\\Trash",
        "Junk": "\\Junk",
        "Archive": "\\Archive",
    }
    assert subscribed == sorted(boxes)


def test_add_with_quota(courriel, in_store, domain: str) -> None:
    r = courriel("user", "add", "bob@example.org", "--quota", "2G", "--password-argv", "pw-12345")
    assert r.status == 0, r.err
    assert r.out == "added user bob@example.org (quota 2G)\n"
    user = in_store(lambda s: s.get_user("bob@example.org"))
    assert user.quota_bytes == 2 * 1024**3


@pytest.mark.parametrize("size", ["2X", "0", "-1G", "lots"])
def test_bad_quota_is_a_usage_error(courriel, in_store, domain: str, size: str) -> None:
    r = courriel("user", "add", "bob@example.org", f"--quota={size}", "--password-argv", "pw-1234")
    assert r.status == 2
    assert "--quota" in r.error()
    assert in_store(lambda s: s.get_user("bob@example.org")) is None


def test_unknown_domain_is_refused(courriel, in_store) -> None:
    r = courriel("user", "add", "alice@nowhere.example", "--password-argv", "pw-123456")
    assert r.status == 1
    assert r.error() == "unknown domain nowhere.example"
    assert in_store(lambda s: s.list_users()) == []


def test_duplicate_user_is_refused_whatever_the_case(courriel, in_store, domain: str) -> None:
    assert courriel("user", "add", "alice@example.org", "--password-argv", "first-pw").status == 0
    r = courriel("user", "add", "ALICE@Example.org", "--password-argv", "second-pw")
    assert r.status == 1
    assert "already exists" in r.error()
    user = in_store(lambda s: s.get_user("alice@example.org"))
    assert CHEAP.verify(user.password_hash, "first-pw")


@pytest.mark.parametrize(
    "bad", ["alice", "alice@", "@example.org", "a..b@example.org", "a%b@example.org"]
)
def test_malformed_address_is_a_usage_error(courriel, in_store, domain: str, bad: str) -> None:
    r = courriel("user", "add", bad, "--password-argv", "pw-123456")
    assert r.status == 2
    assert r.error().startswith(f"invalid address {bad!r}")
    assert in_store(lambda s: s.list_users()) == []


def test_an_alias_cannot_become_a_user(courriel, in_store, domain: str) -> None:
    courriel("user", "add", "alice@example.org", "--password-argv", "pw-123456")
    courriel("alias", "add", "info@example.org", "alice@example.org")
    r = courriel("user", "add", "info@example.org", "--password-argv", "pw-123456")
    assert r.status == 1
    assert "is an alias" in r.error()
    assert in_store(lambda s: s.get_user("info@example.org")) is None


def test_without_a_terminal_the_password_must_be_piped(courriel, in_store, domain) -> None:
    r = courriel("user", "add", "alice@example.org", stdin="")  # stdin is not a terminal
    assert r.status == 2
    assert "--password-stdin" in r.error()
    assert in_store(lambda s: s.list_users()) == []


def test_empty_stdin_gives_no_password(courriel, in_store, domain: str) -> None:
    r = courriel("user", "add", "alice@example.org", "--password-stdin", stdin="")
    assert r.status == 1
    assert "no password on standard input" in r.error()
    assert in_store(lambda s: s.list_users()) == []


@pytest.mark.parametrize("line", [b"\n", b"tab\there\n", b"\xff\xfe\n"])
def test_unusable_password_is_refused(courriel, in_store, domain: str, line: bytes) -> None:
    r = courriel("user", "add", "alice@example.org", "--password-stdin", stdin=line)
    assert r.status == 2
    assert "password" in r.error()
    assert in_store(lambda s: s.list_users()) == []


def test_both_password_options_at_once_is_a_usage_error(courriel, domain: str) -> None:
    r = courriel("user", "add", "a@example.org", "--password-stdin", "--password-argv", "x")
    assert r.status == 2
    assert "not allowed with argument" in r.error()


def test_passwd_replaces_the_hash(courriel, in_store, domain: str) -> None:
    courriel("user", "add", "alice@example.org", "--password-argv", "old-password")
    r = courriel("user", "passwd", "Alice@example.org", "--password-stdin", stdin="new-password\n")
    assert r.status == 0, r.err
    user = in_store(lambda s: s.get_user("alice@example.org"))
    assert CHEAP.verify(user.password_hash, "new-password")
    assert not CHEAP.verify(user.password_hash, "old-password")


def test_passwd_of_an_unknown_user_fails(courriel, domain: str) -> None:
    r = courriel("user", "passwd", "nobody@example.org", "--password-argv", "pw-123456")
    assert r.status == 1
    assert r.error() == "unknown user nobody@example.org"


def test_quota_can_be_changed_and_lifted(courriel, in_store, domain: str) -> None:
    courriel("user", "add", "alice@example.org", "--password-argv", "pw-123456")
    assert courriel("user", "quota", "alice@example.org", "500M").status == 0
    assert in_store(lambda s: s.get_user("alice@example.org")).quota_bytes == 500 * 1024**2
    assert courriel("user", "quota", "alice@example.org", "none").status == 0
    assert in_store(lambda s: s.get_user("alice@example.org")).quota_bytes is None


def test_message_and_mailbox_limits(courriel, in_store, domain: str) -> None:
    courriel("user", "add", "alice@example.org", "--password-argv", "pw-123456")
    r = courriel("user", "quota", "alice@example.org", "1G", "--messages", "1000")
    assert r.status == 0, r.err
    user = in_store(lambda s: s.get_user("alice@example.org"))
    usage = in_store(lambda s: s.quota_usage(user.id))
    assert (usage.limit_bytes, usage.limit_messages, usage.limit_mailboxes) == (1024**3, 1000, None)
    assert courriel("user", "quota", "alice@example.org", "1G", "--mailboxes", "20").status == 0
    usage = in_store(lambda s: s.quota_usage(user.id))
    assert (usage.limit_messages, usage.limit_mailboxes) == (1000, 20)  # the other one kept
    assert courriel("user", "quota", "alice@example.org", "none", "--messages", "none").status == 0
    usage = in_store(lambda s: s.quota_usage(user.id))
    assert (usage.limit_bytes, usage.limit_messages, usage.limit_mailboxes) == (None, None, 20)
    assert courriel("user", "quota", "alice@example.org", "1G", "--messages", "-3").status != 0


def test_remove_takes_the_user_away(courriel, in_store, domain: str) -> None:
    courriel("user", "add", "alice@example.org", "--password-argv", "pw-123456")
    r = courriel("user", "remove", "alice@example.org")
    assert r.status == 0, r.err
    assert in_store(lambda s: s.get_user("alice@example.org")) is None
    # The domain is free to go now.
    assert courriel("domain", "remove", "example.org").status == 0


def test_removing_an_unknown_user_fails(courriel, domain: str) -> None:
    r = courriel("user", "remove", "nobody@example.org")
    assert r.status == 1
    assert r.error() == "unknown user nobody@example.org"


def test_list_shows_addresses_and_quota_usage(courriel, domain: str) -> None:
    courriel("domain", "add", "other.example")
    courriel("user", "add", "bob@example.org", "--quota", "2G", "--password-argv", "pw-123456")
    courriel("user", "add", "alice@example.org", "--password-argv", "pw-123456")
    courriel("user", "add", "carol@other.example", "--password-argv", "pw-123456")
    r = courriel("user", "list")
    assert r.status == 0, r.err
    rows = [line.split() for line in r.out.splitlines()]
    assert rows == [
        ["ADDRESS", "MESSAGES", "USED", "QUOTA", "USE%"],
        ["alice@example.org", "0", "0", "unlimited", "-"],
        ["bob@example.org", "0", "0", "2G", "0%"],
        ["carol@other.example", "0", "0", "unlimited", "-"],
    ]
    only = courriel("user", "list", "other.example")
    assert [line.split()[0] for line in only.out.splitlines()] == ["ADDRESS", "carol@other.example"]


def test_list_of_an_unknown_domain_fails(courriel) -> None:
    r = courriel("user", "list", "nowhere.example")
    assert r.status == 1
    assert r.error() == "unknown domain nowhere.example"


def test_list_counts_the_mail_stored(courriel, in_store, domain: str) -> None:
    from datetime import UTC, datetime

    from courriel.store.base import NewMessage

    courriel("user", "add", "alice@example.org", "--quota", "1M", "--password-argv", "pw-123456")
    body = b"Subject: hello\r\n\r\n" + b"x" * (100 * 1024 - 18)

    async def deliver(store) -> None:
        user = await store.get_user("alice@example.org")
        inbox = await store.get_mailbox(user.id, "INBOX")
        now = datetime.now(UTC)
        await store.append([(inbox.id, NewMessage(body, now)), (inbox.id, NewMessage(body, now))])

    in_store(deliver)
    r = courriel("user", "list")
    assert r.out.splitlines()[1].split() == ["alice@example.org", "2", "200K", "1M", "19%"]


def test_unknown_domain_is_reported_before_a_password_is_asked(courriel) -> None:
    # Without a terminal, asking would fail with "no terminal"; the domain check comes first.
    r = courriel("user", "add", "alice@nowhere.example", stdin="")
    assert r.status == 1
    assert r.error() == "unknown domain nowhere.example"
    r = courriel("user", "passwd", "nobody@nowhere.example", stdin="")
    assert r.status == 1
    assert r.error() == "unknown user nobody@nowhere.example"


def test_tag_folders_switch(courriel, in_store, domain: str) -> None:
    assert (
        courriel("user", "add", "alice@example.org", "--password-stdin", stdin="pw\n").status == 0
    )
    user = in_store(lambda s: s.get_user("alice@example.org"))
    assert in_store(lambda s: s.tag_folders(user.id)) is False  # off by default
    r = courriel("user", "tag-folders", "alice@example.org", "on")
    assert r.status == 0, r.err
    assert r.out == "mail for alice@example.org with a +tag goes into the folder named by the tag\n"
    assert in_store(lambda s: s.tag_folders(user.id)) is True
    assert courriel("user", "tag-folders", "Alice@Example.org", "off").status == 0
    assert in_store(lambda s: s.tag_folders(user.id)) is False
    r = courriel("user", "tag-folders", "nobody@example.org", "on")
    assert r.status != 0 and "unknown user nobody@example.org" in r.err


def test_junk_threshold_is_set_per_user(courriel, in_store, domain: str) -> None:
    courriel("user", "add", "alice@example.org", "--password-argv", "pw-123456")
    user = in_store(lambda s: s.get_user("alice@example.org"))
    r = courriel("user", "junk-threshold", "alice@example.org", "7.5")
    assert r.status == 0, r.err
    assert in_store(lambda s: s.junk_model(user.id, [])).threshold == 7.5
    assert courriel("user", "junk-threshold", "alice@example.org", "default").status == 0
    assert in_store(lambda s: s.junk_model(user.id, [])).threshold is None
    assert courriel("user", "junk-threshold", "alice@example.org", "-1").status != 0
    r = courriel("user", "junk-threshold", "nobody@example.org", "5")
    assert r.status == 1 and r.error() == "unknown user nobody@example.org"
