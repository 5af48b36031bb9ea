"""One JSON object per log line, for the monitoring loggers (``settings.MONITORING_JSON_LOGGERS``).

Callers log a dict (``logger.info({"event": "request", ...})``): this formatter writes it with the
time, level and logger name added; a plain formatter would still print it readably. Any other
message becomes ``{"message": "..."}``.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import orjson


def _default(value: Any) -> Any:
    return str(value)


class JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        body: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
        }
        if isinstance(record.msg, dict):
            body.update(record.msg)
        else:
            body["message"] = record.getMessage()
        if record.exc_info:
            body["exc_info"] = self.formatException(record.exc_info)
        return orjson.dumps(body, default=_default).decode()
