"""Accounts: password hashing, the authentication cache, login, and where mail for an address goes.

Invariants:

* No password, and nothing that verifies one outside this process, is ever kept in memory
  beyond the call that received it; the authentication cache holds only keyed digests.
* Authentication takes one password verification whether or not the user exists, so timing
  does not tell which addresses exist.
* Recipient resolution reads only ``get_domain``, ``get_user`` and ``alias_targets`` and writes
  nothing; it always terminates (alias chains are followed to a fixed depth, loops are cut).
"""
