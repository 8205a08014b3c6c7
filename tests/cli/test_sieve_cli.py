"""`courriel sieve list|show|put|activate|deactivate|remove|global`, checked in the store."""

from __future__ import annotations

from pathlib import Path

import pytest

SCRIPT = 'require "fileinto";\nfileinto "Archive";\n'


@pytest.fixture
def user(courriel) -> str:
    assert courriel("domain", "add", "example.org").status == 0
    assert courriel("user", "add", "ann@example.org", "--password-stdin", stdin="pw\n").status == 0
    return "ann@example.org"


def test_put_list_show_activate_remove(courriel, in_store, user: str, tmp_path: Path) -> None:
    path = tmp_path / "s.sieve"
    path.write_text(SCRIPT)
    r = courriel("sieve", "put", user, "main", str(path), "--activate")
    assert r.status == 0, r.err
    assert r.out == "stored script 'main' for ann@example.org (active)\n"
    assert courriel("sieve", "put", user, "other", stdin="keep;\n").status == 0
    assert courriel("sieve", "list", user).out == "main  (active)\nother\n"
    assert courriel("sieve", "show", user, "main").out == SCRIPT
    r = courriel("sieve", "remove", user, "main")
    assert r.status == 1 and "'main' is active; deactivate it first" in r.err
    assert courriel("sieve", "deactivate", user).out == "ann@example.org: no active script\n"
    assert courriel("sieve", "remove", user, "main").status == 0
    assert (
        courriel("sieve", "activate", user, "other").out == "ann@example.org: 'other' is active\n"
    )
    uid = in_store(lambda s: s.get_user(user)).id
    active = in_store(lambda s: s.active_sieve_script(uid))
    assert active is not None and active.name == "other" and active.content == "keep;\n"


def test_bad_scripts_are_refused_with_the_compilers_sentence(courriel, user: str) -> None:
    r = courriel("sieve", "put", user, "bad", stdin='fileinto "x";\n')
    assert r.status == 1
    assert 'the script is refused: line 1: the command "fileinto" needs require "fileinto"' in r.err
    assert courriel("sieve", "list", user).out == ""
    r = courriel("sieve", "list", "nobody@example.org")
    assert r.status == 1 and "unknown user nobody@example.org" in r.err


def test_global_scripts(courriel, in_store) -> None:
    assert courriel("sieve", "global", "spam", "-", stdin="discard;\n").out == (
        "stored global script 'spam'\n"
    )
    assert courriel("sieve", "global", "spam").out == "discard;\n"
    assert in_store(lambda s: s.global_sieve_script("spam")) == "discard;\n"
    assert courriel("sieve", "global", "spam", "--remove").status == 0
    r = courriel("sieve", "global", "spam")
    assert r.status == 1 and "no global script 'spam'" in r.err
