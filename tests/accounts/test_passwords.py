"""argon2id hashing, verification, rehash checks and password preparation (RFC 8265 §4.2)."""

from __future__ import annotations

import asyncio
import threading

import pytest

from courriel.accounts.passwords import (
    MAX_PASSWORD_OCTETS,
    PasswordError,
    PasswordHasher,
    prepare_password,
)
from courriel.config import AuthConfig


def test_hash_is_argon2id_with_the_configured_costs(hasher: PasswordHasher) -> None:
    encoded = hasher.hash("correct horse")
    assert encoded.startswith("$argon2id$v=19$m=8,t=1,p=1$")
    assert "correct horse" not in encoded


def test_each_hash_has_its_own_salt(hasher: PasswordHasher) -> None:
    assert hasher.hash("same") != hasher.hash("same")


def test_verify(hasher: PasswordHasher) -> None:
    encoded = hasher.hash("correct horse")
    assert hasher.verify(encoded, "correct horse")
    assert not hasher.verify(encoded, "correct horsE")
    assert not hasher.verify(encoded, "correct horse ")
    assert not hasher.verify(encoded, "")


@pytest.mark.parametrize("bad", ["", "plain-text", "$argon2id$v=19$m=8,t=1,p=1$broken", "$1$x$y"])
def test_verify_against_a_malformed_hash_is_false(hasher: PasswordHasher, bad: str) -> None:
    assert not hasher.verify(bad, "anything")


def test_hash_made_with_other_costs_still_verifies_but_needs_rehash() -> None:
    old, new = PasswordHasher.for_tests(time_cost=2), PasswordHasher.for_tests(time_cost=1)
    encoded = old.hash("pw")
    assert new.verify(encoded, "pw")
    assert new.needs_rehash(encoded)
    assert not old.needs_rehash(encoded)
    assert new.needs_rehash("not a hash")


def test_from_config_uses_the_auth_section() -> None:
    h = PasswordHasher.from_config(
        AuthConfig(argon2_time_cost=2, argon2_memory_kib=16, argon2_parallelism=2)
    )
    assert h.hash("pw").startswith("$argon2id$v=19$m=16,t=2,p=2$")


@pytest.mark.parametrize(
    ("time_cost", "memory_kib", "parallelism"), [(0, 8, 1), (1, 8, 0), (1, 15, 2)]
)
def test_impossible_costs_are_refused(time_cost: int, memory_kib: int, parallelism: int) -> None:
    with pytest.raises(ValueError, match="argon2 needs"):
        PasswordHasher(time_cost=time_cost, memory_kib=memory_kib, parallelism=parallelism)


def test_composed_and_decomposed_accents_are_one_password(hasher: PasswordHasher) -> None:
    encoded = hasher.hash("caf\u00e9")  # é precomposed
    assert hasher.verify(encoded, "cafe\u0301")  # e + combining acute accent
    assert hasher.verify(hasher.hash("a\u00a0b"), "a b")  # no-break space is a space


@pytest.mark.parametrize(
    ("given", "complaint"),
    [("", "empty"), ("a\tb", "control"), ("a\x00b", "control"), ("x" * 1025, "longer")],
)
def test_unusable_passwords_are_refused(hasher: PasswordHasher, given: str, complaint: str) -> None:
    with pytest.raises(PasswordError, match=complaint):
        hasher.hash(given)
    assert not hasher.verify(hasher.dummy_hash, given)


def test_prepare_password_keeps_what_it_need_not_change() -> None:
    assert prepare_password("Tr0ub4dor&3 ü") == "Tr0ub4dor&3 ü"
    assert len(prepare_password("é" * (MAX_PASSWORD_OCTETS // 2)).encode()) == MAX_PASSWORD_OCTETS


def test_dummy_hash_has_the_same_costs_and_matches_nothing_obvious(
    hasher: PasswordHasher,
) -> None:
    dummy = hasher.dummy_hash
    assert dummy is hasher.dummy_hash  # made once
    assert not hasher.needs_rehash(dummy)
    assert not hasher.verify(dummy, "")
    assert not hasher.verify(dummy, "password")


class _ThreadRecordingHasher(PasswordHasher):
    """Notes which thread each synchronous call ran on."""

    threads: list[int]

    def hash(self, password: str) -> str:
        self.threads.append(threading.get_ident())
        return super().hash(password)

    def verify(self, password_hash: str, password: str) -> bool:
        self.threads.append(threading.get_ident())
        return super().verify(password_hash, password)


async def test_async_methods_run_off_the_event_loop_thread() -> None:
    hasher = _ThreadRecordingHasher.for_tests()
    hasher.threads = []
    try:
        encoded = await hasher.hash_async("pw")
        results = await asyncio.gather(
            hasher.verify_async(encoded, "pw"), hasher.verify_async(encoded, "nope")
        )
    finally:
        hasher.close()
    assert results == [True, False]
    assert len(hasher.threads) == 3
    assert threading.get_ident() not in hasher.threads


async def test_close_then_use_again() -> None:
    hasher = PasswordHasher.for_tests()
    encoded = await hasher.hash_async("pw")
    hasher.close()
    assert await hasher.verify_async(encoded, "pw")
    hasher.close()
