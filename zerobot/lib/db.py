"""Database adaptation shared by every connection (installed by ``zerobot.apps``)."""

from __future__ import annotations

from datetime import UTC, datetime


def install_utc_datetime_dumper() -> None:
    """Send aware datetimes to PostgreSQL in UTC.

    Python accepts UTC offsets up to +/-23:59, PostgreSQL only up to +/-15:59: a cursor, filter
    or admin lookup carrying ``+23:59`` failed the whole query ("time zone displacement out of
    range", a 500). In UTC the instant is the same and always representable. Registered on
    psycopg's global adapters before the first connection (Django's connections copy them).
    """
    try:
        from psycopg import adapters
        from psycopg.types.datetime import DatetimeDumper
    except ImportError:  # SQLite-only installs
        return

    class UTCDatetimeDumper(DatetimeDumper):
        def dump(self, obj: datetime) -> bytes:
            if obj.tzinfo is not None and obj.utcoffset():
                try:
                    obj = obj.astimezone(UTC)
                except OverflowError:  # year 1 / 9999 edges: PostgreSQL judges the original
                    pass
            return str(obj).encode()

    adapters.register_dumper(datetime, UTCDatetimeDumper)
