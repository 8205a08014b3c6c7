"""A user's vacation reply, as the web page sets it: one Sieve script, and which script is active.

Theory of operation
-------------------
The page manages the script named ``SCRIPT`` (a name reserved for it) and nothing else. Turning
the reply on writes that script (``sieve.vacation_script.build``), compiles it with the same
compiler and limits as a ManageSieve upload, and makes it the active one. When the user had
another script active (their own rules, uploaded over ManageSieve), the new script ends with
``include :personal :optional`` of it, so those rules keep running under the vacation rule and
the page never edits them; ``:optional`` keeps the vacation working should that script be
deleted later. A script that answers with ``vacation`` itself (or includes one that does, or
includes ours) cannot be wrapped, since two vacation actions in one run are an error
(RFC 5230 §4.7); turning the reply on is then refused with a sentence saying so. Turning it off
makes the wrapped script active again (none if there was none, or it is gone) and leaves ours
stored but inactive, so the form shows the last text next time.

Whether the reply is on is read from the store, not remembered apart: it is on exactly while
``SCRIPT`` is the active script, so a user who activates another script over ManageSieve has
turned it off, and the page says so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from courriel import admin, sieve
from courriel.admin import AdminError, InputError
from courriel.session.managesieve import ScriptQuota
from courriel.sieve import vacation_script
from courriel.sieve.vacation_script import VacationForm
from courriel.store.base import SieveScript, Store, User

SCRIPT = "courriel-vacation"
MAX_DAYS = 90  # the interpreter's upper bound for :days (RFC 5230 §4.1 lets a site set one)
MAX_LINE = 998  # RFC 5322 §2.1.1: a line of the reply, without its CRLF
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


@dataclass(frozen=True, slots=True)
class VacationState:
    on: bool
    form: VacationForm  # the last saved text, or an empty form
    active: SieveScript | None  # the active script, whoever wrote it
    wrapped: SieveScript | None  # the user's own script ours includes, while on


def parse_form(fields: dict[str, str]) -> tuple[bool, VacationForm]:
    """Whether to turn the reply on, and its text, from the page's fields."""
    on = fields.get("enabled", "") == "on"
    message = fields.get("message", "").replace("\r\n", "\n").replace("\r", "\n")
    message = message.replace("\n", "\r\n")  # as the reply is sent (RFC 5322 §2.3)
    if _CONTROL.search(message.replace("\r\n", "")):
        raise InputError("the message contains a control character")
    if any(len(line.encode("utf-8")) > MAX_LINE for line in message.split("\r\n")):
        raise InputError(f"a line of the message is longer than {MAX_LINE} bytes")
    if on and not message.strip():
        raise InputError("the vacation message is empty")
    subject = fields.get("subject", "").strip()
    if _CONTROL.search(subject) or "\r" in subject or "\n" in subject:
        raise InputError("the subject contains a control character")
    if len(subject) > 200:
        raise InputError("the subject is longer than 200 characters")
    text = fields.get("days", "").strip() or "7"
    if not text.isdigit() or not 1 <= int(text) <= MAX_DAYS:
        raise InputError(f"days must be a whole number from 1 to {MAX_DAYS}")
    words = fields.get("addresses", "").replace(",", " ").split()
    addresses = tuple(dict.fromkeys(admin.address(w) for w in words))
    return on, VacationForm(message, subject, int(text), addresses)


async def state(store: Store, user: User) -> VacationState:
    active = await store.active_sieve_script(user.id)
    ours = active if active is not None and active.name == SCRIPT else None
    if ours is None:
        ours = await store.sieve_script(user.id, SCRIPT)
    saved = None if ours is None else vacation_script.read(ours.content)
    form, include = saved if saved is not None else (VacationForm(""), None)
    on = active is not None and active.name == SCRIPT
    wrapped = None
    if on and include is not None:
        wrapped = await store.sieve_script(user.id, include)
    return VacationState(on, form, active, wrapped)


async def _check_wrappable(store: Store, user: User, name: str) -> None:
    """Refuses a script ours cannot include: one answering itself, or one including ours."""
    pending = [(":personal", name)]
    seen: set[tuple[str, str]] = set()
    while pending and len(seen) < sieve.DEFAULT_LIMITS.includes:
        key = pending.pop()
        if key in seen:
            continue
        seen.add(key)
        where, current = key
        if where == ":personal" and current == SCRIPT:
            raise AdminError(f"your script {name!r} includes {SCRIPT!r}, which would be a loop")
        if where == ":global":
            text = await store.global_sieve_script(current)
        else:
            stored = await store.sieve_script(user.id, current)
            text = None if stored is None else stored.content
        if text is None:
            continue
        try:
            script = sieve.compile_script(text.encode("utf-8"))
        except sieve.SieveError:
            continue  # it fails at delivery whatever ours does; nothing more to learn from it
        if vacation_script.answers(script):
            raise AdminError(
                f"your active script {name!r} sends vacation replies itself, and a message can"
                " get only one (RFC 5230 §4.7); remove that rule from it first"
            )
        pending.extend(script.includes)


async def _turn_off(store: Store, user: User) -> str | None:
    """Makes the script ours wrapped active again; returns its name (None: no script)."""
    active = await store.active_sieve_script(user.id)
    if active is None or active.name != SCRIPT:
        return active.name if active is not None else None
    saved = vacation_script.read(active.content)
    restore = saved[1] if saved is not None else None
    if restore is not None and await store.sieve_script(user.id, restore) is None:
        restore = None
    await store.activate_sieve_script(user.id, restore)
    return restore


def _checked(form: VacationForm, include: str | None) -> str:
    text = vacation_script.build(form, include)
    try:
        sieve.compile_script(text.encode("utf-8"))  # the same check as a ManageSieve upload
    except sieve.SieveError as e:
        raise AdminError(f"the vacation script is refused: {e}") from None
    return text


async def _check_room(store: Store, user: User) -> None:
    names = {s.name for s in await store.sieve_scripts(user.id)}
    limit = ScriptQuota().max_scripts  # the same number as ManageSieve's quota (RFC 5804 §1.3)
    if SCRIPT not in names and len(names) >= limit:
        raise AdminError(f"you have {limit} Sieve scripts already, the most a user may keep")


async def set_vacation(store: Store, user: User, on: bool, form: VacationForm) -> str | None:
    """Turns the reply on or off with ``form``'s text; returns the name of the user's own
    script that runs too (on: the wrapped one; off: the one active again), if any."""
    if on or form.message.strip():
        await _check_room(store, user)  # before anything changes
    if not on:
        text = _checked(form, None) if form.message.strip() else None
        restored = await _turn_off(store, user)
        if text is not None:
            await store.put_sieve_script(user.id, SCRIPT, text)
        return restored
    active = await store.active_sieve_script(user.id)
    if active is not None and active.name == SCRIPT:
        saved = vacation_script.read(active.content)
        include = saved[1] if saved is not None else None
    else:
        include = active.name if active is not None else None
    if include is not None:
        await _check_wrappable(store, user, include)
    await store.put_sieve_script(user.id, SCRIPT, _checked(form, include))
    await store.activate_sieve_script(user.id, SCRIPT)
    return include
