"""Log output: plain text (the default) or one JSON object per line, with the request id.

`CONTESTO_LOG_FORMAT=json` gives log collectors (Loki, Elasticsearch, Cloud Logging) lines
they parse without a pattern: time, level, logger, message, the request id of the request
being answered (null outside one) and the exception, when there is one.
"""

from __future__ import annotations

import logging
import logging.config
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, Literal

import orjson

__all__ = ["REQUEST_ID", "JsonLogFormatter", "LogFormat", "json_logging", "json_logging_config"]

LogFormat = Literal["text", "json"]

REQUEST_ID: ContextVar[str | None] = ContextVar("contesto_request_id", default=None)
"""The id of the request this task answers, set by the request telemetry middleware."""


class JsonLogFormatter(logging.Formatter):
    """One JSON object per record, on one line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "requestId": REQUEST_ID.get(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


def json_logging_config(level: str = "info") -> dict[str, Any]:
    """A `logging.config.dictConfig` (also uvicorn's `log_config`) that writes every
    record of the process, uvicorn's included, as JSON lines to standard error."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonLogFormatter}},
        "handlers": {
            "json": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"handlers": ["json"], "level": level.upper()},
        "loggers": {
            name: {"handlers": [], "propagate": True}
            for name in ("uvicorn", "uvicorn.error", "uvicorn.access")
        },
    }


def json_logging(level: str = "info") -> None:
    """Apply `json_logging_config` to this process."""
    logging.config.dictConfig(json_logging_config(level))
