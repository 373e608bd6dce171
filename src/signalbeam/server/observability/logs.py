"""The server's log: human text (the default) or one JSON object per line for log shippers.

Both carry the request being served: JSON lines as `request_id` and `device_id` fields (with
`trace_id` and `span_id` when tracing is on), text lines as a `[request ...]` suffix.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import Any, Literal

import orjson

from signalbeam.server.observability import request_context, tracing

LogFormat = Literal["text", "json"]
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Attributes every LogRecord has; anything else on a record came from `extra=` (uvicorn's
# `color_message` is its message again, with terminal colour codes).
_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {
    "message",
    "asctime",
    "taskName",
    "color_message",
}
# Loggers whose debug lines quote every statement with the values bound to it.
_VERBATIM = ("aiosqlite",)


def context_fields() -> dict[str, str]:
    """The current request's id and device, and the current span, as log fields."""
    fields: dict[str, str] = {}
    info = request_context.current.get()
    if info is not None:
        fields["request_id"] = info.request_id
        if info.device_id is not None:
            fields["device_id"] = info.device_id
    ids = tracing.current_ids()
    if ids is not None:
        fields["trace_id"], fields["span_id"] = ids
    return fields


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, the request's context."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            **context_fields(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and key not in line:
                line[key] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()


class TextFormatter(logging.Formatter):
    """The usual text line, with `[request ID device ID]` while a request is being served."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        info = request_context.current.get()
        if info is None:
            return text
        device = f" device {info.device_id}" if info.device_id else ""
        head, newline, rest = text.partition("\n")
        return f"{head} [request {info.request_id}{device}]{newline}{rest}"


def configure(log_format: LogFormat, level: str) -> None:
    """Send every logger's records (uvicorn's too, see `uvicorn_log_config`) to stderr."""
    handler = logging.StreamHandler(sys.stderr)
    formatter = JsonFormatter() if log_format == "json" else TextFormatter(TEXT_FORMAT)
    handler.setFormatter(formatter)
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
    for name in _VERBATIM:
        logging.getLogger(name).setLevel(max(logging.INFO, logging.getLogger().level))
    # Warnings (deprecations from libraries) would otherwise be raw text on stderr.
    logging.captureWarnings(log_format == "json")


def uvicorn_log_config(log_format: LogFormat) -> dict[str, Any] | None:
    """uvicorn's logging: its own coloured text, or (None) its records through ours as JSON."""
    if log_format == "text":
        from uvicorn.config import LOGGING_CONFIG

        return LOGGING_CONFIG
    return None
