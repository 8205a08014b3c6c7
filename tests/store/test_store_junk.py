"""Junk filtering in the store: token counts trained and untrained, thresholds, the greylist."""

from __future__ import annotations

from courriel.store.base import JunkSample, Store, User


def sample(digest: str, *tokens: str) -> JunkSample:
    return JunkSample(digest, tokens)


async def test_training_counts_tokens_per_class(store: Store, user: User) -> None:
    assert await store.junk_model(user.id, ["cheap"]) == (await store.junk_model(user.id, []))
    changed = await store.junk_train(
        user.id, [sample("m1", "cheap", "pills", "cheap"), sample("m2", "cheap")], spam=True
    )
    assert changed == 2
    await store.junk_train(user.id, [sample("m3", "meeting", "cheap")], spam=False)
    model = await store.junk_model(user.id, ["cheap", "pills", "meeting", "unknown"])
    assert (model.ham_messages, model.spam_messages) == (1, 2)
    assert model.tokens == {"cheap": (1, 2), "pills": (0, 1), "meeting": (1, 0)}
    assert model.threshold is None


async def test_same_class_twice_counts_once(store: Store, user: User) -> None:
    assert await store.junk_train(user.id, [sample("m1", "cheap")], spam=True) == 1
    assert await store.junk_train(user.id, [sample("m1", "cheap")], spam=True) == 0
    model = await store.junk_model(user.id, ["cheap"])
    assert (model.spam_messages, model.tokens) == (1, {"cheap": (0, 1)})
    assert await store.junk_trained_as(user.id, "m1") is True
    assert await store.junk_trained_as(user.id, "m9") is None


async def test_changing_class_unlearns_first(store: Store, user: User) -> None:
    await store.junk_train(user.id, [sample("m1", "cheap", "offer")], spam=True)
    await store.junk_train(user.id, [sample("m2", "offer")], spam=True)
    assert await store.junk_train(user.id, [sample("m1", "cheap", "offer")], spam=False) == 1
    model = await store.junk_model(user.id, ["cheap", "offer"])
    assert (model.ham_messages, model.spam_messages) == (1, 1)
    assert model.tokens == {"cheap": (1, 0), "offer": (1, 1)}
    assert await store.junk_trained_as(user.id, "m1") is False
    # and back again: nothing is counted twice, nothing goes below zero
    await store.junk_train(user.id, [sample("m1", "cheap", "offer")], spam=True)
    model = await store.junk_model(user.id, ["cheap", "offer"])
    assert (model.ham_messages, model.spam_messages) == (0, 2)
    assert model.tokens == {"cheap": (0, 1), "offer": (0, 2)}


async def test_models_are_per_user_and_go_with_the_user(store: Store, user: User) -> None:
    bob = await store.add_user("bob@example.org", "hash")
    await store.junk_train(user.id, [sample("m1", "cheap")], spam=True)
    assert (await store.junk_model(bob.id, ["cheap"])).tokens == {}
    many = [f"t{i:04d}" for i in range(1200)]  # more than one statement's worth of rows
    await store.junk_train(bob.id, [sample("big", *many)], spam=False)
    assert len((await store.junk_model(bob.id, many)).tokens) == 1200
    await store.remove_user("bob@example.org")
    bob2 = await store.add_user("bob@example.org", "hash")
    assert (await store.junk_model(bob2.id, many)).tokens == {}


async def test_threshold_is_per_user(store: Store, user: User) -> None:
    await store.set_junk_threshold(user.id, 7.5)
    assert (await store.junk_model(user.id, [])).threshold == 7.5
    await store.set_junk_threshold(user.id, None)
    assert (await store.junk_model(user.id, [])).threshold is None


async def test_greylist_waits_then_passes(store: Store) -> None:
    def check(triple: str, now: float) -> object:
        return store.greylist_check(triple, now, delay=300, retry_window=3600, pass_seconds=86400)

    assert await check("a", 1000.0) == 300.0
    assert await check("a", 1100.0) == 200.0  # the first sighting is kept, not moved
    assert await check("b", 1100.0) == 300.0  # another triple waits on its own
    assert await check("a", 1300.0) == 0.0
    assert await check("a", 50000.0) == 0.0  # passed triples keep passing
    assert await check("b", 1100.0 + 3601) == 300.0  # the retry window ran out: start again
    assert await check("a", 50000.0 + 86401) == 300.0  # the pass period ended


async def test_a_passing_triple_is_renewed_only_past_half_its_period(store: Store) -> None:
    def check(triple: str, now: float) -> object:
        return store.greylist_check(triple, now, delay=10, retry_window=100, pass_seconds=1000)

    await check("t", 0.0)
    assert await check("t", 20.0) == 0.0  # passes until 1020
    assert await check("t", 400.0) == 0.0  # more than half left: not renewed
    assert await check("t", 1021.0) == 10.0  # so it ended at 1020
    await check("u", 0.0)
    assert await check("u", 20.0) == 0.0
    assert await check("u", 600.0) == 0.0  # less than half left: renewed until 1600
    assert await check("u", 1500.0) == 0.0


async def test_concurrent_training_counts_each_message_once(store: Store, user: User) -> None:
    import asyncio

    words = [f"w{i}" for i in range(300)]
    same = sample("same", *words)  # taught by five sessions at once
    others = [sample(f"m{i}", *words[i : i + 100]) for i in range(10)]
    await asyncio.gather(
        *(store.junk_train(user.id, [same], spam=True) for _ in range(5)),
        *(store.junk_train(user.id, [s], spam=True) for s in others),
    )
    model = await store.junk_model(user.id, words)
    assert model.spam_messages == 11
    assert model.tokens["w0"] == (0, 2)  # "same" once, m0 once
    assert model.tokens["w150"] == (0, 1 + sum(1 for i in range(10) if i <= 150 < i + 100))
