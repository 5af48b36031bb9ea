"""Log filters. ``CacheOutageFilter`` keeps a Redis outage from flooding the logs.

django-redis, with ``IGNORE_EXCEPTIONS`` and ``DJANGO_REDIS_LOG_IGNORED_EXCEPTIONS``, logs every
failed cache call as ``logger.exception("Exception ignored")``: a full traceback at ERROR per call
(hundreds a second under load while Redis is down). This filter, on the ``zerobot.cache`` logger,
lets the first failure of an outage through as one WARNING line naming the error, then at most
one line per ``interval`` seconds saying how many failures it held back. Our own code's records
about a failed Redis call (``extra={"cache_outage": True}``, e.g. ``trading.dataversion``) are
held back in the same outage. Any other record passes unchanged.
"""

from __future__ import annotations

import logging
import threading
import time


class CacheOutageFilter(logging.Filter):
    def __init__(self, interval: float = 60.0) -> None:
        super().__init__()
        self.interval = interval
        self._lock = threading.Lock()
        self._last = float("-inf")
        self._held = 0

    def reset(self) -> None:
        """Forget the current outage (the next failure is logged at once)."""
        with self._lock:
            self._last, self._held = float("-inf"), 0

    @classmethod
    def reset_all(cls, logger: str = "zerobot.cache") -> None:
        for f in logging.getLogger(logger).filters:
            if isinstance(f, cls):
                f.reset()

    def filter(self, record: logging.LogRecord) -> bool:
        ignored = bool(record.exc_info) and record.msg == "Exception ignored"  # django-redis
        if not ignored and not getattr(record, "cache_outage", False):
            return True
        now = time.monotonic()
        with self._lock:
            if now - self._last < self.interval:
                self._held += 1
                return False
            held, self._held, self._last = self._held, 0, now
        note = (
            f" ({held} more failure(s) in the last {self.interval:g} s not logged)" if held else ""
        )
        if ignored:
            error = record.exc_info[1]
            record.msg = "cache call failed, served as a miss: %s: %s%s"
            record.args = (type(error).__name__, error, note)
        else:
            record.msg, record.args = record.getMessage() + note, ()
        record.levelno, record.levelname = logging.WARNING, "WARNING"
        record.exc_info = record.exc_text = None
        return True
