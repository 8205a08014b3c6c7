"""The vacation script the web page writes: any text round-trips through Sieve's quoting."""

from __future__ import annotations

import random

import pytest

from courriel import sieve
from courriel.sieve import vacation_script
from courriel.sieve.vacation_script import VacationForm

TEXTS = [
    "Away.",
    "",
    ".",
    "\r\n.\r\n",
    "..\r\n...\r\n.x",
    'quote " and backslash \\ and \\" both',
    "text:\r\n.\r\n;",
    "${hex:41} ${unicode:263a} ${x}",
    "日本語 ça ☃ 😀\r\n\r\n",
    "\ttab\r\n  indent",
]


@pytest.mark.parametrize("text", TEXTS)
def test_text_round_trips(text: str) -> None:
    form = VacationForm(text, subject='s "\\ é ${x}', days=9, addresses=('a"b@example.org',))
    script = vacation_script.build(form, 'my "own" \\ script')
    [vacation, include] = sieve.compile_script(script.encode("utf-8")).commands
    assert vacation.text(0) == text + "\r\n"
    assert include.text(0) == 'my "own" \\ script'
    assert vacation_script.read(script) == (form, 'my "own" \\ script')


def test_random_text_round_trips() -> None:
    rng = random.Random(5230)
    alphabet = ['"', "\\", ".", "\r\n", " ", "a", "é", "{", "}", ";", "#", "/*", "*/", "$"]
    for _ in range(200):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randrange(40)))
        form = VacationForm(text, subject=text.replace("\r\n", " "))
        assert vacation_script.read(vacation_script.build(form, None)) == (form, None)


def test_read_refuses_scripts_it_did_not_write() -> None:
    assert vacation_script.read('require "vacation"; vacation "x";') is None
    mark = vacation_script.MARK + "\r\n"
    assert vacation_script.read(mark + 'require "vacation"; vacation "x"; keep;') is None
    assert vacation_script.read(mark + "keep;") is None
    assert vacation_script.read(mark + "this is no script") is None


def test_answers_finds_vacation_inside_blocks() -> None:
    nested = 'require "vacation"; if true { if false { stop; } else { vacation "x"; } }'
    assert vacation_script.answers(sieve.compile_script(nested.encode()))
    assert not vacation_script.answers(sieve.compile_script(b"if true { keep; }"))
