"""Structured logging on stderr: one line per event, as text or as JSON.

Theory of operation
-------------------
Every line carries a UTC timestamp with milliseconds, the level, the fields of the context it was
logged in, the message and the event's own fields::

    2026-11-27T17:00:00.123Z INFO conn=ab12cd listener=imaps peer=127.0.0.1 login ok user=a@b.c

The context fields (connection id, listener, peer) live in a ``contextvars.ContextVar``. The
listener binds them once at the start of a connection's task; asyncio copies the context into
every task, so each line logged while serving that connection carries them without any code
passing a logger around. Event fields are given with ``extra=kv(...)``::

    log.info("login ok", extra=kv(user=address))

In JSON mode each line is one object: ``ts``, ``level``, the context fields, ``msg``, the event
fields and, for exceptions, ``exc``. Importing this module changes nothing; ``setup`` installs the
handler (``courriel.app.run`` calls it) and can be called again to change the settings.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import sys
import time
from collections.abc import Iterator, Mapping
from typing import Any, TextIO

from courriel.config import LogConfig

# The fields bound to the running task (and the tasks it starts).
_Fields = tuple[tuple[str, str], ...]
_context: contextvars.ContextVar[_Fields] = contextvars.ContextVar("courriel_log", default=())
_FIELDS_ATTR = "courriel_fields"
_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}


def kv(**fields: object) -> dict[str, object]:
    """The ``extra`` argument that attaches key=value fields to one log call."""
    return {_FIELDS_ATTR: fields}


def bind(**fields: object) -> contextvars.Token[_Fields]:
    """Adds fields to every later line logged in this task; ``unbind`` with the token."""
    merged = {**dict(_context.get()), **{k: str(v) for k, v in fields.items()}}
    return _context.set(tuple(merged.items()))


def unbind(token: contextvars.Token[_Fields]) -> None:
    _context.reset(token)


@contextlib.contextmanager
def bound(**fields: object) -> Iterator[None]:
    """``bind`` for the duration of a ``with`` block."""
    token = bind(**fields)
    try:
        yield
    finally:
        unbind(token)


def context() -> dict[str, str]:
    """The fields currently bound (the connection id, listener and peer inside a connection)."""
    return dict(_context.get())


def _timestamp(created: float) -> str:
    seconds = int(created)
    millis = int((created - seconds) * 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"


def _text_value(value: object) -> str:
    text = str(value)
    # Quote what would otherwise split into two fields or be mistaken for one.
    if text == "" or any(c in text for c in ' "=\n\r\t\\'):
        return json.dumps(text, ensure_ascii=False)
    return text


def _event_fields(record: logging.LogRecord) -> Mapping[str, object]:
    fields = getattr(record, _FIELDS_ATTR, None)
    return fields if isinstance(fields, Mapping) else {}


def _record_context(record: logging.LogRecord) -> _Fields:
    fields = getattr(record, "courriel_context", None)
    return fields if isinstance(fields, tuple) else _context.get()


class ContextFilter(logging.Filter):
    """Copies the bound context into the record when it is made, in the logging task.

    A handler could run later or elsewhere (a queue handler), so the context is captured here,
    where ``_context`` still holds the task's values.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "courriel_context"):
            record.courriel_context = _context.get()
        return True


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        ctx = _record_context(record)
        parts = [_timestamp(record.created), record.levelname]
        parts += [f"{k}={_text_value(v)}" for k, v in ctx]
        if not record.name.startswith("courriel"):
            parts.append(f"logger={record.name}")
        parts.append(record.getMessage().replace("\n", " "))
        parts += [f"{k}={_text_value(v)}" for k, v in _event_fields(record).items()]
        line = " ".join(parts)
        if record.exc_info:
            trace = self.formatException(record.exc_info)
            line += "\n" + "\n".join("    " + t for t in trace.splitlines())
        return line


class JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        ctx = _record_context(record)
        obj: dict[str, Any] = {"ts": _timestamp(record.created), "level": record.levelname}
        obj.update(ctx)
        if not record.name.startswith("courriel"):
            obj["logger"] = record.name
        obj["msg"] = record.getMessage()
        for key, value in _event_fields(record).items():
            obj[key] = value if isinstance(value, int | float | bool | None) else str(value)
        if record.exc_info:
            obj["exc"] = self.formatException(record.exc_info)
        return json.dumps(obj, ensure_ascii=False)


class _Handler(logging.StreamHandler[TextIO]):
    """Marks the handler ``setup`` installed, so a second call replaces it and nothing else."""


def setup(cfg: LogConfig, stream: TextIO | None = None) -> logging.Handler:
    """Sends every log line to ``stream`` (stderr) in the configured format and level."""
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _Handler)]:
        root.removeHandler(old)
        old.close()
    handler = _Handler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JSONFormatter() if cfg.format == "json" else TextFormatter())
    handler.addFilter(ContextFilter())
    root.addHandler(handler)
    level = _LEVELS[cfg.level]
    logging.getLogger("courriel").setLevel(level)
    # Libraries (asyncio, asyncpg) speak only when something is wrong, unless debugging.
    root.setLevel(min(level, logging.WARNING))
    return handler
