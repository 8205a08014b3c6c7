"""Log lines: text and JSON formats, context fields bound per task."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re

from runtime_support import logging_to

from courriel import logs
from courriel.config import LogConfig


def test_text_line_has_timestamp_level_context_message_and_fields() -> None:
    out = io.StringIO()
    with logging_to(out, LogConfig(level="info", format="text")):
        with logs.bound(conn="ab12cd", listener="imaps", peer="127.0.0.1"):
            logging.getLogger("courriel.test").info(
                "login failed", extra=logs.kv(user="x y@example.org", attempts=3)
            )
        logging.getLogger("courriel.test").info("outside")
    first, second = out.getvalue().splitlines()
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z INFO conn=ab12cd listener=imaps "
        r'peer=127\.0\.0\.1 login failed user="x y@example\.org" attempts=3',
        first,
    )
    assert second.endswith(" INFO outside")


def test_json_lines_and_level_filter() -> None:
    out = io.StringIO()
    with logging_to(out, LogConfig(level="warning", format="json")):
        log = logging.getLogger("courriel.test")
        with logs.bound(conn="ff00aa"):
            log.info("not shown")
            try:
                raise ValueError("boom")
            except ValueError:
                log.exception("failed", extra=logs.kv(size=10))
    (line,) = out.getvalue().splitlines()
    obj = json.loads(line)
    assert obj["level"] == "ERROR" and obj["conn"] == "ff00aa"
    assert obj["msg"] == "failed" and obj["size"] == 10
    assert "ValueError: boom" in obj["exc"]
    assert obj["ts"].endswith("Z")


async def test_context_is_per_task() -> None:
    seen: dict[str, dict[str, str]] = {}

    async def connection(name: str) -> None:
        logs.bind(conn=name)
        await asyncio.sleep(0)
        seen[name] = logs.context()

    await asyncio.gather(connection("aaaaaa"), connection("bbbbbb"))
    assert seen == {"aaaaaa": {"conn": "aaaaaa"}, "bbbbbb": {"conn": "bbbbbb"}}
    assert logs.context() == {}


def test_setup_twice_replaces_its_own_handler_only() -> None:
    root = logging.getLogger()
    before = list(root.handlers)
    with (
        logging_to(io.StringIO(), LogConfig()) as first,
        logging_to(io.StringIO(), LogConfig()) as second,
    ):
        assert first not in root.handlers
        assert root.handlers == [*before, second]
    assert root.handlers == before
