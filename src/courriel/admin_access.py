"""Who may do what: administrators, app passwords, API tokens, and the audit log.

Theory of operation
-------------------
The operations behind ``courriel user admin``, ``courriel token ...``, the web admin and the JSON
API, shared by all of them like those of ``courriel.admin``.

App passwords and API tokens are random strings made here (``APP_PASSWORD_BITS`` and 256 bits),
shown to the person once, and kept only as their SHA-256 (``store.access.secret_digest``).
A fast hash is right for them, unlike for passwords people choose: nobody can guess 100 random
bits, however fast the guesses. An app password logs in to IMAP, POP3 and SMTP (the
authenticator looks it up before trying the account password), never to the web admin, so a
lost phone cannot change the account's password; revoking it is one row deleted.

``audit`` writes one audit-log row and one log line for each administrative action; ``detail``
names what was acted on, never a password or a token.
"""

from __future__ import annotations

import logging
import secrets
import time

from courriel.admin import AdminError, InputError, require_user
from courriel.admin import remove_user as remove_account
from courriel.logs import kv
from courriel.store.access import ApiToken, AppPassword, AuditEntry, secret_digest
from courriel.store.base import AlreadyExists, LastAdmin, NotFound, Store, User

log = logging.getLogger("courriel.audit")

APP_PASSWORD_BITS = 100  # 20 characters of a 32-letter alphabet
_ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789"  # no l, o, 0, 1: read off a screen, typed on a phone
MAX_NAME = 64


def _name(text: str, what: str) -> str:
    name = " ".join(text.split())
    if not name or len(name) > MAX_NAME or not name.isprintable():
        raise InputError(f"a {what} name needs 1 to {MAX_NAME} printable characters")
    return name


def new_app_password() -> str:
    """Twenty random letters and digits in groups of five: "abcde-fghij-kmnpq-rstuv"."""
    chars = "".join(secrets.choice(_ALPHABET) for _ in range(APP_PASSWORD_BITS // 5))
    return "-".join(chars[i : i + 5] for i in range(0, len(chars), 5))


# --- administrators -----------------------------------------------------------------------------


def _last_admin(user: User, doing: str) -> AdminError:
    """Taking the rights of the only administrator would lock everyone out of the web admin;
    the store refuses it in the transaction that would do it (``keep_an_admin``)."""
    return AdminError(f"{user.address} is the only administrator; make another one before {doing}")


async def set_admin(store: Store, addr: str, admin: bool) -> User:
    user = await require_user(store, addr)
    try:
        await store.set_admin(user.address, admin, keep_an_admin=True)
    except NotFound:
        raise AdminError(f"unknown user {user.address}") from None
    except LastAdmin:
        raise _last_admin(user, "taking their rights") from None
    return user


async def remove_user(store: Store, addr: str) -> None:
    """``admin.remove_user``, unless the user is the only administrator."""
    user = await require_user(store, addr)
    try:
        await remove_account(store, addr, keep_an_admin=True)
    except LastAdmin:
        raise _last_admin(user, "removing them") from None


# --- app passwords ------------------------------------------------------------------------------


async def add_app_password(store: Store, user: User, name: str) -> tuple[AppPassword, str]:
    """A new app password for ``user``: the record and the password, to be shown once."""
    label = _name(name, "device")
    password = new_app_password()
    try:
        made = await store.add_app_password(
            user.id, label, secret_digest(password), int(time.time())
        )
    except AlreadyExists:
        raise AdminError(f"{user.address} already has an app password named {label!r}") from None
    except NotFound:
        raise AdminError(f"unknown user {user.address}") from None
    return made, password


async def list_app_passwords(store: Store, user: User) -> list[AppPassword]:
    return await store.list_app_passwords(user.id)


async def remove_app_password(store: Store, user: User, name: str) -> None:
    try:
        await store.remove_app_password(user.id, name)
    except NotFound:
        raise AdminError(f"{user.address} has no app password named {name!r}") from None


# --- API tokens ---------------------------------------------------------------------------------


async def add_api_token(store: Store, name: str) -> tuple[ApiToken, str]:
    """A new API token: the record and the token, to be shown once."""
    label = _name(name, "token")
    token = "courriel_" + secrets.token_urlsafe(32)
    try:
        made = await store.add_api_token(label, secret_digest(token), int(time.time()))
    except AlreadyExists:
        raise AdminError(f"an API token named {label!r} already exists") from None
    return made, token


async def list_api_tokens(store: Store) -> list[ApiToken]:
    return await store.list_api_tokens()


async def remove_api_token(store: Store, name: str) -> None:
    try:
        await store.remove_api_token(name)
    except NotFound:
        raise AdminError(f"unknown API token {name!r}") from None


async def api_token_name(store: Store, token: str) -> str | None:
    """The name of the token, or None when it is no (longer a) token."""
    if not token.startswith("courriel_") or len(token) > 200:
        return None
    return await store.api_token_name(secret_digest(token))


# --- the audit log ------------------------------------------------------------------------------


async def audit(store: Store, actor: str, action: str, detail: str) -> None:
    """Records one administrative action: a row in the audit log and a log line."""
    log.info("admin action", extra=kv(actor=actor, action=action, detail=detail))
    await store.add_audit(int(time.time()), actor, action, detail)


async def audit_entries(store: Store, limit: int = 200) -> list[AuditEntry]:
    return await store.list_audit(limit)
