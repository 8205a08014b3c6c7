"""The transcript runner itself: its file format, and that a transcript can fail."""

from __future__ import annotations

from pathlib import Path

import pytest

from courriel.net.listener import ConnectionContext, ProtocolHandlers, Refusal
from courriel.net.stream import Stream
from courriel.testing import transcript as tr


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "t.txt"
    p.write_text(text)
    return p


def test_format_is_read(tmp_path: Path) -> None:
    t = tr.parse_transcript(
        write(
            tmp_path,
            "# RFC 5321 §4.1.1.1\n@listener submission\n@user a@example.test pw\n"
            "@alias b@example.test a@example.test\n@deliver a@example.test INBOX m.eml \\Seen\n"
            "\nC: EHLO x\nS: 250 ok\nS~ 250 .*\n!starttls\n!closed\n",
        )
    )
    assert t.listener == "submission"
    assert t.users == [("a@example.test", "pw")]
    assert t.aliases == [("b@example.test", "a@example.test")]
    assert t.deliveries[0].flags == frozenset({"\\Seen"})
    assert [(s.line, s.kind, s.text) for s in t.steps] == [
        (7, "send", "EHLO x"),
        (8, "expect", "250 ok"),
        (9, "match", "250 .*"),
        (10, "starttls", ""),
        (11, "closed", ""),
    ]


def test_include_puts_its_steps_in_place_with_their_parameters(tmp_path: Path) -> None:
    (tmp_path / "include").mkdir()
    (tmp_path / "include" / "login.txt").write_text(
        "# a comment\n\nS: {tag} OK [X] {hostname} welcomes {who}\nS~ {tag} .*\n"
    )
    proto = tmp_path / "proto"
    proto.mkdir()
    t = tr.parse_transcript(
        write(proto, "@listener imaps\nC: a1 LOGIN\n@include login tag=a1 who=alice\nC: a2\n")
    )
    assert [(s.line, s.kind, s.text, s.origin) for s in t.steps] == [
        (2, "send", "a1 LOGIN", ""),
        (3, "expect", "a1 OK [X] {hostname} welcomes alice", "include/login.txt:3"),
        (3, "match", "a1 .*", "include/login.txt:4"),
        (4, "send", "a2", ""),
    ]


@pytest.mark.parametrize(
    ("included", "line", "message"),
    [
        ("S: a\n", "@include nothing", "no file include/nothing.txt"),
        ("S: {tag}\n", "@include block", r"takes \['tag'\], not none"),
        ("S: {tag}\n", "@include block tag=a1 who=b", r"takes \['tag'\], not \['tag', 'who'\]"),
        ("S: a\n", "@include block a1", "parameters are name=value"),
        ("@user a b\n", "@include block", "holds steps only"),
    ],
)
def test_bad_includes_name_the_problem(
    tmp_path: Path, included: str, line: str, message: str
) -> None:
    (tmp_path / "include").mkdir()
    (tmp_path / "include" / "block.txt").write_text(included)
    proto = tmp_path / "proto"
    proto.mkdir()
    with pytest.raises(tr.TranscriptError, match=message):
        tr.parse_transcript(write(proto, f"@listener imaps\n{line}\n"))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("C: x\n", "no @listener"),
        ("@listener smtps\n", "unknown listener"),
        ("@listener smtp\n@user a\n", "takes 2 argument"),
        ("@listener smtp\n@nope\n", "unknown directive"),
        ("@listener smtp\nX: y\n", "cannot read this line"),
    ],
)
def test_bad_files_name_the_problem(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(tr.TranscriptError, match=message):
        tr.parse_transcript(write(tmp_path, text))


def _echo(app: object) -> ProtocolHandlers:
    """A line echo protocol with a greeting, so the runner can be checked on its own."""

    async def serve(stream: Stream, ctx: ConnectionContext) -> None:
        stream.write(b"HELLO\r\n")
        buf = b""
        while True:
            data = await stream.read(4096, timeout=5)
            if not data:
                return
            buf += data
            while b"\r\n" in buf:
                line, buf = buf.split(b"\r\n", 1)
                if line == b"BYE":
                    await stream.send(b"GOODBYE\r\n")
                    return
                stream.write(b"ECHO " + line + b"\r\n")
            await stream.drain()

    async def refuse(stream: Stream, refusal: Refusal) -> None:
        await stream.send(b"NO\r\n")

    return ProtocolHandlers(serve=serve, refuse=refuse)


async def _play(tmp_path: Path, text: str) -> None:
    t = tr.parse_transcript(write(tmp_path, text))
    cfg = tr.make_test_config(tmp_path / "data", tmp_path / "tls", [t.listener])
    import asyncio

    from courriel.app import serve

    ready: asyncio.Future = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(
        serve(cfg, ready=ready.set_result, factories={"pop3": _echo})  # type: ignore[dict-item]
    )
    running = await ready
    try:
        await tr.play(t, running, tmp_path / "tls")
    finally:
        running.stop()
        await task


async def test_a_true_transcript_passes(tmp_path: Path) -> None:
    await _play(
        tmp_path,
        "@listener pop3s\nS: HELLO\nC: one\nC: two\nS: ECHO one\nS~ ECHO t.o\n"
        "C: BYE\nS: GOODBYE\n!closed\n",
    )


async def test_a_false_included_step_names_both_lines(tmp_path: Path) -> None:
    (tmp_path / "include").mkdir()
    (tmp_path / "include" / "greeting.txt").write_text("# the greeting\nS: HELO\n")
    work = tmp_path / "proto"
    work.mkdir()
    with pytest.raises(tr.TranscriptError) as e:
        await _play(work, "@listener pop3s\n@include greeting\n")
    assert "t.txt:2 (include/greeting.txt:2): expected 'HELO', got 'HELLO'" in str(e.value)


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        ("S: HELO\n", "expected 'HELO', got 'HELLO'"),
        ("S: HELLO\nS~ X+\n", "nothing within the timeout"),
        ("S: HELLO\n!closed\n", "did not close"),
        ("S: HELLO\nC: x\n!closed\n", "expected the connection closed, got"),
        ("S: HELLO\nC: BYE\nS: GOODBYE\nS: more\n", "closed the connection"),
    ],
)
async def test_a_false_transcript_fails_at_its_line(
    tmp_path: Path, steps: str, message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tr, "STEP_TIMEOUT", 0.5)
    with pytest.raises(tr.TranscriptError, match=message) as e:
        await _play(tmp_path, "@listener pop3s\n" + steps)
    assert ":" in str(e.value) and "t.txt:" in str(e.value)
