"""Structured logging: JSON lines, a request id on every line, personal data masked.

Levels come from the environment's settings (DEBUG in dev, INFO in staging, WARNING
in prod). Lines go to stderr and, when ``logging.file`` is set, to a file rotated
by size that keeps ``backup_count`` old files.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import re
import sys
from contextvars import ContextVar
from datetime import UTC, datetime

from opentelemetry import trace

from resilia.config import Settings

REQUEST_ID: ContextVar[str] = ContextVar("request_id", default="-")

SENSITIVE_FIELDS = frozenset(
    {"first_name", "last_name", "email", "birth_date", "postcode", "phone", "address"}
)
# Any letters (accents included) in the local part: "élodie.durand@x.fr" is masked
# whole, not from its first ASCII letter on.
EMAIL = re.compile(r"([^\W_])[\w.%+'-]*@([\w-]+(?:\.[\w-]+)*\.[A-Za-z]{2,})")
# A sensitive field written as text: a dict or repr in a message or an exception
# ("'email': 'x'", "birth_date=datetime.date(1990, 1, 1)", "postcode=69003").
FIELD_IN_TEXT = re.compile(
    r"(?i)(\b(?:" + "|".join(sorted(SENSITIVE_FIELDS)) + r")\b['\"]?\s*[:=]\s*)"
    r"(?:'[^']*'|\"[^\"]*\"|[\w.]+\([^)]*\)|[^\s,;&)}\]]+)"
)
MASK = "***"

# Attributes every LogRecord has; anything else was passed with `extra=`.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
}


def mask_text(text: str) -> str:
    """Hide personal data written in free text.

    The local part of e-mail addresses (jane.doe@x.org -> j***@x.org) and the value
    of any sensitive field written as ``field: value`` or ``field=value``.
    """
    text = FIELD_IN_TEXT.sub(lambda m: f"{m.group(1)}{MASK}", text)
    return EMAIL.sub(lambda m: f"{m.group(1)}{MASK}@{m.group(2)}", text)


def mask_value(key: str, value: object) -> object:
    """Mask ``value`` logged under ``key``, looking inside dicts, lists and tuples."""
    if isinstance(key, str) and key.lower() in SENSITIVE_FIELDS:
        return MASK
    if isinstance(value, dict):
        return {k: mask_value(k, v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [mask_value(key, v) for v in value]
    if value is None or isinstance(value, bool | int | float):
        return value
    return mask_text(str(value))  # dates, objects: their text, masked


class RequestContextFilter(logging.Filter):
    """Adds the request id and the current trace and span ids to each record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = REQUEST_ID.get()
        context = trace.get_current_span().get_span_context()
        record.trace_id = f"{context.trace_id:032x}" if context.is_valid else None
        record.span_id = f"{context.span_id:016x}" if context.is_valid else None
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line, personal data masked."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        payload = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "service": self.service,
            "logger": record.name,
            "message": mask_text(record.getMessage()),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and value is not None:
                payload[key] = mask_value(key, value)
        if record.exc_info:
            payload["exception"] = mask_text(self.formatException(record.exc_info))
        return json.dumps(payload, ensure_ascii=False)  # mask_value made it JSON


class TextFormatter(logging.Formatter):
    """Human-readable lines for development, personal data masked."""

    def __init__(self) -> None:
        super().__init__(
            "%(asctime)s %(levelname)-7s [%(request_id)s] %(name)s: %(message)s"
        )

    def format(self, record: logging.LogRecord) -> str:
        return mask_text(super().format(record))


def configure_logging(settings: Settings, service: str) -> logging.Logger:
    """Configure the ``resilia`` logger tree for ``service`` and return it."""
    logger = logging.getLogger("resilia")
    logger.setLevel(settings.log_level)
    logger.propagate = False
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    formatter = (
        JsonFormatter(service) if settings.logging.format == "json" else TextFormatter()
    )
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if settings.logging.file is not None:
        settings.logging.file.parent.mkdir(parents=True, exist_ok=True)
        handlers.append(
            logging.handlers.RotatingFileHandler(
                settings.logging.file,
                maxBytes=settings.logging.max_bytes,
                backupCount=settings.logging.backup_count,
                encoding="utf-8",
            )
        )
    for handler in handlers:
        handler.setFormatter(formatter)
        handler.addFilter(RequestContextFilter())
        logger.addHandler(handler)
    return logger


# exercise: tests-detector
PHONE = re.compile(r"(?<![0-9])(?:\+33[ .-]?|0)[1-9](?:[ .-]?[0-9]{2}){4}(?![0-9])")


def contains_personal_data(text: str) -> bool:
    """True when ``text`` holds an unmasked e-mail address or a French phone number.

    What the tests run over every log line and exported span the service writes.
    """
    # A masked address (j***@x.org) no longer matches EMAIL: "*" is not in it.
    return EMAIL.search(text) is not None or PHONE.search(text) is not None


# end of exercise
