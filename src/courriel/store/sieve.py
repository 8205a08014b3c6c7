"""The store's interface for Sieve (RFC 5228): each user's scripts, the global ones, and the
delivery option of plus-address folders.

Theory of operation
-------------------
ManageSieve and the web vacation page write the scripts, local delivery reads the active one for
every message it files, all through this one protocol; a user has at most one active script.
The SQL backends implement it in ``courriel.store.sql.sieve``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class SieveScript:
    name: str  # exact, case-sensitive (RFC 5804 §1.6)
    content: str
    active: bool = False


@dataclass(frozen=True, slots=True)
class DeliveryLookup:
    """What filing a message for one user reads first (``SieveStore.delivery_lookup``)."""

    script: SieveScript | None  # the active script, None without one
    inbox_id: int | None  # the user's INBOX, None once the user is gone


class SieveStore(Protocol):
    async def sieve_scripts(self, user_id: int) -> list[SieveScript]:
        """Every script of the user, by name."""

    async def sieve_script(self, user_id: int, name: str) -> SieveScript | None: ...

    async def active_sieve_script(self, user_id: int) -> SieveScript | None: ...

    async def delivery_lookup(self, user_id: int) -> DeliveryLookup:
        """The active script and the INBOX, in one read: all that filing a message for a user
        without a script needs (local delivery does it for every message)."""

    async def put_sieve_script(self, user_id: int, name: str, content: str) -> None:
        """Creates or replaces a script, keeping whether it is active; ``NotFound`` without
        the user."""

    async def delete_sieve_script(self, user_id: int, name: str) -> None:
        """``NotFound`` without the script, ``InUse`` while it is active (RFC 5804 §2.10)."""

    async def rename_sieve_script(self, user_id: int, old: str, new: str) -> None:
        """``NotFound`` without ``old``, ``AlreadyExists`` when ``new`` exists."""

    async def activate_sieve_script(self, user_id: int, name: str | None) -> None:
        """Makes ``name`` the one active script (None: none); ``NotFound`` without it."""

    async def global_sieve_script(self, name: str) -> str | None:
        """A global script (``include :global``, RFC 6609), or None."""

    async def put_global_sieve_script(self, name: str, content: str | None) -> None:
        """Creates, replaces or (``None``) removes a global script."""

    async def tag_folders(self, user_id: int) -> bool:
        """Whether ``user+tag@domain`` goes into the folder ``tag`` (off unless set)."""

    async def set_tag_folders(self, address: str, on: bool) -> None:
        """``NotFound`` without the user."""
