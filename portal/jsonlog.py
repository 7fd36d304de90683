"""JSON logs (``PT_LOG_FORMAT=json``): one JSON object per line, for a log shipper to index.

Each line has ``time`` (UTC, ISO 8601), ``level``, ``logger``, ``message``, ``process`` and, when there is one,
``exception`` (the formatted traceback); anything passed as ``extra=`` that is JSON-serialisable is kept too.
"""

import json
import logging
from datetime import UTC, datetime

# Attributes every LogRecord has: not "extra" fields.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "process": record.process,
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in line:
                try:
                    json.dumps(value)
                except (TypeError, ValueError):
                    value = repr(value)
                line[key] = value
        return json.dumps(line, ensure_ascii=False)
