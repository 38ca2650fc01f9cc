"""Logging: plain text for people, JSON lines (ABR_LOG_JSON=1) for machines.

A request id lives in a context variable so every line logged while serving
a request (or running a job) carries it without passing it around. Every
line is passed through `core.redact.redact` as it is formatted, so access
logs (uvicorn's, Granian's) and anything else logged never carry a token,
a callback secret or a URL password.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
from datetime import UTC, datetime

from core.redact import redact

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if getattr(record, "request_id", None):
            entry["request_id"] = record.request_id
        for key in ("asset_id", "job_id", "argv", "duration_ms", "status", "path", "method"):
            if hasattr(record, key):
                entry[key] = getattr(record, key)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return redact(json.dumps(entry, default=str))


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        rid = getattr(record, "request_id", None)
        base = redact(super().format(record))
        return f"{base} [rid={rid}]" if rid else base


class _GranianAccessQuery(logging.Filter):
    """Granian's access record has the path and the query apart; log them as one request target."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, dict) and args.get("query_string"):
            record.args = {**args, "path": f"{args['path']}?{args['query_string']}"}
        return True


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def granian_log_config(*, json_lines: bool = False) -> dict:
    """A `logging.config.dictConfig` for Granian's own loggers: our formatters (so: redacted), on stderr.

    Granian configures its loggers in every worker process with handlers of its
    own that do not propagate to the root logger, so `configure_logging` alone
    would leave its access log unredacted.
    """
    formatter = {"()": "core.logging.JsonFormatter"} if json_lines else \
        {"()": "core.logging.TextFormatter", "fmt": TEXT_FORMAT}
    handler = {"class": "logging.StreamHandler", "stream": "ext://sys.stderr", "formatter": "abr",
               "filters": ["request_id"]}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": "core.logging._RequestIdFilter"},
                    "access_query": {"()": "core.logging._GranianAccessQuery"}},
        "formatters": {"abr": formatter},
        "handlers": {"console": handler, "access": {**handler, "filters": ["request_id", "access_query"]}},
        "loggers": {"_granian": {"handlers": ["console"], "level": "INFO", "propagate": False},
                    "granian.access": {"handlers": ["access"], "level": "INFO", "propagate": False}},
    }


def configure_logging(*, json_lines: bool = False, level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_RequestIdFilter())
    handler.setFormatter(JsonFormatter() if json_lines else TextFormatter(TEXT_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
