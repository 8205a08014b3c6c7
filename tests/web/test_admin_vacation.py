"""The vacation reply on the user's own page: the Sieve script it writes, delivery through it,
living with the user's own script, turning it off, CSRF, and the script shown escaped."""

from __future__ import annotations

from datetime import UTC, datetime
from email.header import decode_header, make_header

from courriel import sieve
from courriel.admin_vacation import SCRIPT
from courriel.queue.filtering import Filters, LocalRecipient
from courriel.queue.outbound import StoreQueue
from courriel.sieve import vacation_script
from courriel.store.base import Store
from courriel.testing.webadmin import PASSWORD, USER, Browser

T0 = datetime(2026, 12, 6, 9, 0, 0, tzinfo=UTC)
# Quotes, backslashes, a line with a lone dot, one starting with dots, non-ASCII, "${" and a
# line that looks like the end of a Sieve multi-line string.
TRICKY = 'Je suis "absent" \\ jusqu\'au 3 janvier.\r\n.\r\n..x\r\n${hex:41} ça va ☃\r\n;\r\n\r\nA.'
SUBJECT = 'Absent: "loin" \\ très'
MESSAGE = (
    f"From: Bob <bob@example.net>\r\nTo: {USER}\r\nSubject: Hello\r\n"
    "Message-ID: <m1@example.net>\r\n\r\nHi.\r\n"
).encode()


async def _user(browser) -> Browser:  # type: ignore[no-untyped-def]
    b: Browser = await browser()
    await b.sign_in(USER, PASSWORD)
    await b.get("/me")
    return b


async def _deliver(store: Store, sender: str = "bob@example.net") -> list[bytes]:
    """Delivers MESSAGE to the user through the filtering layer; the queued answers."""
    user = await store.get_user(USER)
    assert user is not None
    filters = Filters(store, StoreQueue(store.queue), "mail.example.org")
    await filters.deliver([LocalRecipient(user.id, USER)], MESSAGE, sender, T0)
    return [(await store.queue.get(e.id)).message for e in await store.queue.list_entries()]


async def test_vacation_with_tricky_text_answers_once(browser, admin_store: Store) -> None:
    b = await _user(browser)
    r = await b.post(
        "/me/vacation",
        {
            "enabled": "on",
            "subject": SUBJECT,
            "message": TRICKY,
            "days": "3",
            "addresses": "alias@example.org, Other@Example.ORG",
        },
    )
    assert r.location == "/me"
    page = await b.get("/me")
    assert "Vacation reply on." in page.text and "<strong>on</strong>" in page.text
    user = await admin_store.get_user(USER)
    assert user is not None
    active = await admin_store.active_sieve_script(user.id)
    assert active is not None and active.name == SCRIPT
    compiled = sieve.compile_script(active.content.encode("utf-8"))  # it compiles as stored
    assert compiled.requires == frozenset({"vacation"})
    [op] = compiled.commands
    assert op.text(0) == TRICKY + "\r\n"  # the text: form always ends with its line break
    assert op.tags == {
        ":days": 3,
        ":subject": SUBJECT,
        ":addresses": ("alias@example.org", "Other@example.org"),
    }
    # The form shows what was saved, exactly.
    saved = vacation_script.read(active.content)
    assert saved is not None and saved[0].message == TRICKY and saved[1] is None
    assert TRICKY.replace("&", "&amp;").replace('"', "&#34;").replace("'", "&#39;") in page.text

    [answer] = await _deliver(admin_store)
    text = answer.decode("utf-8")
    head, _, body = text.partition("\r\n\r\n")
    assert "\r\nTo: <bob@example.net>\r\n" in head
    assert "Subject: =?utf-8?" in head  # non-ASCII subject, RFC 2047 encoded
    assert body == TRICKY + "\r\n"
    subject = next(h for h in head.split("\r\n") if h.startswith("Subject: "))[9:]
    assert str(make_header(decode_header(subject))) == SUBJECT
    assert len(await _deliver(admin_store)) == 1  # once per sender per :days
    entries = [(e.action, e.detail) for e in await admin_store.list_audit(5)]
    assert ("vacation on", f"{USER} days=3") in entries


async def test_vacation_wraps_the_users_own_script_and_off_restores_it(
    browser, admin_store: Store
) -> None:
    user = await admin_store.get_user(USER)
    assert user is not None
    own = 'require "fileinto"; fileinto "Work"; # <script>alert(1)</script>\r\n'
    await admin_store.put_sieve_script(user.id, "mine", own)
    await admin_store.activate_sieve_script(user.id, "mine")
    await admin_store.create_mailbox(user.id, "Work")
    b = await _user(browser)
    page = await b.get("/me")
    # The active script is shown as text, never as markup.
    assert "<script>" not in page.text
    assert "# &lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert "Turning the reply on makes the" in page.text

    await b.post("/me/vacation", {"enabled": "on", "message": "Away.", "days": ""})
    active = await admin_store.active_sieve_script(user.id)
    assert active is not None and active.name == SCRIPT
    assert 'include :personal :optional "mine";' in active.content
    assert "Your own script <code>mine</code> still runs" in (await b.get("/me")).text
    [answer] = await _deliver(admin_store)
    assert answer.endswith(b"\r\n\r\nAway.\r\n")
    box = await admin_store.get_mailbox(user.id, "Work")
    assert box is not None and len(await admin_store.list_messages(box.id)) == 1  # still filed

    r = await b.post("/me/vacation", {"message": "Away.", "days": "7"})
    page = await b.get(r.location)
    assert "Vacation reply off; your script &#39;mine&#39; is active." in page.text
    active = await admin_store.active_sieve_script(user.id)
    assert active is not None and active.name == "mine" and active.content == own
    stored = await admin_store.sieve_script(user.id, SCRIPT)
    assert stored is not None and not stored.active  # kept for next time, inactive
    await _deliver(admin_store, "carol@example.net")
    assert len(await admin_store.queue.list_entries()) == 1  # no answer any more
    assert [e.action for e in await admin_store.list_audit(5)][:2] == [
        "vacation off",
        "vacation on",
    ]


async def test_off_without_a_script_of_ones_own_leaves_none_active(
    browser, admin_store: Store
) -> None:
    b = await _user(browser)
    await b.post("/me/vacation", {"enabled": "on", "message": "Away."})
    await b.post("/me/vacation", {"message": ""})
    user = await admin_store.get_user(USER)
    assert user is not None
    assert await admin_store.active_sieve_script(user.id) is None
    page = await b.get("/me")
    assert "No script is active" in page.text and "<strong>off</strong>" in page.text
    assert "Away." in page.text  # the last text stays in the form
    assert await _deliver(admin_store) == []


async def test_refusals(browser, admin_store: Store) -> None:
    b = await _user(browser)
    user = await admin_store.get_user(USER)
    assert user is not None
    cases = {
        "the vacation message is empty": {"enabled": "on", "message": " \r\n"},
        "days must be a whole number from 1 to 90": {"enabled": "on", "message": "x", "days": "0"},
        "invalid address 'not an address'": {
            "enabled": "on",
            "message": "x",
            "addresses": "not@an address",
        },
        "the message contains a control character": {"enabled": "on", "message": "a\x00b"},
    }
    for why, fields in cases.items():
        r = await b.post("/me/vacation", fields)
        assert why.split("'")[0] in (await b.get(r.location)).text, why
    # A script that answers with vacation itself cannot be wrapped (RFC 5230 §4.7).
    await admin_store.put_sieve_script(user.id, "mine", 'require "vacation"; vacation "No.";')
    await admin_store.activate_sieve_script(user.id, "mine")
    r = await b.post("/me/vacation", {"enabled": "on", "message": "x"})
    assert "sends vacation replies itself" in (await b.get(r.location)).text
    assert (await admin_store.active_sieve_script(user.id)).name == "mine"  # type: ignore[union-attr]
    # No more scripts than ManageSieve allows a user.
    for n in range(19):
        await admin_store.put_sieve_script(user.id, f"s{n}", "keep;")
    r = await b.post("/me/vacation", {"enabled": "on", "message": "x"})
    assert "Sieve scripts already" in (await b.get(r.location)).text
    await admin_store.delete_sieve_script(user.id, "s0")
    await admin_store.put_sieve_script(user.id, "mine", "keep;")
    r = await b.post("/me/vacation", {"enabled": "on", "message": "x"})
    assert (
        "Vacation reply on; your script &#39;mine&#39; still runs."
        in (await b.get(r.location)).text
    )
    await b.post("/me/vacation", {"message": "x"})
    await admin_store.delete_sieve_script(user.id, SCRIPT)
    # Without the CSRF token nothing happens.
    r = await b.post("/me/vacation", {"enabled": "on", "message": "x"}, csrf=False)
    assert r.status == 403
    assert await admin_store.sieve_script(user.id, SCRIPT) is None
