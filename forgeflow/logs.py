"""Logging for the long-running processes: one JSON object per line (or plain text), with
the request id, project, workflow and run when known, and no secret ever written.

Secrets are scrubbed twice: ``RedactFilter`` rewrites each record's message on the handler
(so any other formatter sees the clean text too), and both formatters scrub what they
print, extras and tracebacks included."""

from __future__ import annotations

import json
import logging
import logging.config
import re
from datetime import UTC, datetime
from typing import Any

from temporalio import activity, workflow

REDACTED = "[REDACTED]"
_SCHEMES = r"(?:bearer|api-key|apikey|token)"
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # Header forms: "Authorization: Bearer k", "x-api-key=k", ('x-api-key', 'k').
    (
        re.compile(
            rf"(?i)(\b(?:x-api-key|authorization)\b['\"]?\s*[:=,]\s*(?:b?['\"])?\s*(?:{_SCHEMES}\s+)?)"
            r"[^\s'\"&,;)]+"
        ),
        rf"\1{REDACTED}",
    ),
    # Query and assignment forms: ?api_key=k, api-key: k, "api_key": "k".
    (re.compile(r"(?i)(\bapi[_-]?key['\"]?\s*[=:]\s*['\"]?)[^\s'\"&,;)]+"), rf"\1{REDACTED}"),
    # Anything that looks like a forgeflow key or a webhook secret, wherever it stands.
    (re.compile(r"(?<![A-Za-z0-9])ff_[A-Za-z0-9_-]{20,}"), f"ff_{REDACTED}"),
    (re.compile(r"(?<![A-Za-z0-9])whsec_[A-Za-z0-9+/=_-]+"), f"whsec_{REDACTED}"),
)

# Attributes every LogRecord has; anything else on a record is an ``extra``.
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "color_message", "taskName"}
_CONTEXT = ("request_id", "project_id", "workflow_id", "run_id")


def redact(text: str) -> str:
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class RedactFilter(logging.Filter):
    """Merges the arguments into the message and scrubs it (put it on handlers)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: keep what was given, scrubbed
            message = f"{record.msg!s} {record.args!r}"
        record.msg, record.args = redact(message), None
        return True


def _project_id(workflow_id: str | None) -> int | None:
    if workflow_id and workflow_id.startswith("project-"):
        number = workflow_id.removeprefix("project-")
        return int(number) if number.isdigit() else None
    return None


def log_context(record: logging.LogRecord) -> dict[str, Any]:
    """request_id, project_id, workflow_id, run_id (and the activity's type and attempt)."""
    from api.request_context import current_request_id

    context: dict[str, Any] = {"request_id": current_request_id()}
    record_id = getattr(record, "request_id", None)
    if record_id and record_id != "-":
        context["request_id"] = record_id
    details: dict[str, Any] = getattr(record, "temporal_workflow", None) or {}
    if details:
        context.update(workflow_id=details.get("workflow_id"), run_id=details.get("run_id"))
    if activity.in_activity():
        info = activity.info()
        context.update(
            workflow_id=info.workflow_id,
            run_id=info.workflow_run_id,
            activity=info.activity_type,
            attempt=info.attempt,
        )
    else:
        details = getattr(record, "temporal_activity", None) or {}
        if details:
            context.update(workflow_id=details.get("workflow_id"), run_id=details.get("workflow_run_id"))
            context.update(activity=details.get("activity_type"), attempt=details.get("attempt"))
    explicit = getattr(record, "project_id", None)
    context["project_id"] = explicit if explicit is not None else _project_id(context.get("workflow_id"))
    return {k: v for k, v in context.items() if v is not None}


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, int | float | bool) or value is None:
        return value
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return redact(str(value))


class JsonFormatter(logging.Formatter):
    """One JSON object per line: timestamp, level, logger, message, the context, extras."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        entry.update(log_context(record))
        for key, value in record.__dict__.items():
            if key in _STANDARD or key in entry or key in _CONTEXT or key.startswith(("temporal_", "_")):
                continue
            entry[key] = _clean(value)
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        if record.stack_info:
            entry["stack"] = redact(self.formatStack(record.stack_info))
        return json.dumps(entry, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """``time level logger [request project] message``, scrubbed like the JSON form."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        context = log_context(record)
        tags = " ".join(f"{k}={context[k]}" for k in _CONTEXT if k in context)
        line = super().format(record)
        if tags:
            line = f"{line} [{tags}]"
        return redact(line)


def logging_config(level: str = "INFO", fmt: str = "json") -> dict[str, Any]:
    """A ``dictConfig`` for a forgeflow process; uvicorn applies it in every worker process."""
    formatter = "forgeflow.logs.JsonFormatter" if fmt == "json" else "forgeflow.logs.TextFormatter"
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"redact": {"()": "forgeflow.logs.RedactFilter"}},
        "formatters": {"forgeflow": {"()": formatter}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "forgeflow",
                "filters": ["redact"],
            }
        },
        "root": {"level": level.upper(), "handlers": ["stderr"]},
        "loggers": {
            # uvicorn's own records go through the same handler; its access log stays off
            # (forgeflow.access logs every request, path without the query string).
            "uvicorn": {"level": level.upper(), "handlers": [], "propagate": True},
            "uvicorn.error": {"level": level.upper(), "handlers": [], "propagate": True},
            "uvicorn.access": {"level": "WARNING", "handlers": [], "propagate": True},
        },
    }


def configure_logging(level: str = "INFO", fmt: str = "json") -> dict[str, Any]:
    config = logging_config(level, fmt)
    logging.config.dictConfig(config)
    if fmt == "json":
        # The context is in its own fields; the SDK need not append it to the message too.
        activity.logger.activity_info_on_message = False
        workflow.logger.workflow_info_on_message = False
    return config
