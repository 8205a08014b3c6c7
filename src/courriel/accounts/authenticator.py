"""Login: a username and a password in, the ``User`` or nothing out.

Theory of operation
-------------------
The username is a mail address; it is parsed and normalised (``courriel.mail.address``) and
looked up with ``Store.get_user``, which matches it case-insensitively. Then:

1. unknown user, or a username that is no address: one verification against the hasher's
   dummy hash (same argon2 costs as a real one), then ``None``. Every failed attempt costs one
   argon2 run, so response time does not tell a guesser which addresses exist;
2. an app password of the user (``courriel.admin_access``): one indexed lookup of its SHA-256,
   no argon2, since app passwords are long random strings the server made. The web admin's
   sign-in passes ``app_passwords=False``: an app password opens mail, not the account;
3. the auth cache knows this (address, password, current hash): the user, without hashing;
4. otherwise one argon2id verification off the event loop; on success the cache remembers it.

Every kind of failure returns ``None``, never an exception, so sessions cannot leak the reason
to the client by accident. The exception is the store itself failing (``store.Unavailable``):
that propagates, so the session can answer "temporary failure, try again" (SMTP 454 4.7.0,
IMAP NO [UNAVAILABLE]) instead of "wrong password".

Hashes made with older costs are not rewritten at login: the ``Store`` offers no
compare-and-set on the password hash, and a rewrite racing an administrator's password change
would bring the old password back. ``PasswordHasher.needs_rehash`` lets an administrative task
find them.
"""

from __future__ import annotations

from typing import Protocol

from courriel.accounts.authcache import AuthCache
from courriel.accounts.passwords import Hasher
from courriel.mail.address import AddressError, normalize_address
from courriel.store.access import secret_digest
from courriel.store.base import User


class UserLookup(Protocol):
    """The part of ``courriel.store.base.Store`` that login needs."""

    async def get_user(self, address: str) -> User | None: ...

    async def has_app_password(self, user_id: int, digest: str) -> bool: ...


class Authenticator:
    __slots__ = ("_cache", "_hasher", "_store")

    def __init__(self, store: UserLookup, hasher: Hasher, cache: AuthCache) -> None:
        self._store = store
        self._hasher = hasher
        self._cache = cache

    async def authenticate(
        self, username: str, password: str, *, app_passwords: bool = True
    ) -> User | None:
        """The user when ``password`` (or, with ``app_passwords``, one of their app passwords)
        is theirs; ``None`` for any kind of failure."""
        try:
            address = normalize_address(username)
        except AddressError:
            address = None
        user = await self._store.get_user(address) if address is not None else None
        if user is None:
            # Same cost as a real verification, so unknown addresses do not answer faster.
            await self._hasher.verify_async(self._hasher.dummy_hash, password)
            return None
        if app_passwords and await self._store.has_app_password(user.id, secret_digest(password)):
            return user
        if self._cache.hit(user.address, password, user.password_hash):
            return user
        if not await self._hasher.verify_async(user.password_hash, password):
            return None
        self._cache.remember(user.address, password, user.password_hash)
        return user
