"""The benchmark database: created, seeded and dropped by ``manage.py bench``, never the user's.

The command runs in two processes. The first (the one you start) creates a fresh database next to
the one of ``DATABASE_URL`` on the same server (``<name>_bench`` unless ``--database``), marks it
with a comment, and starts the second process with ``DATABASE_URL`` pointing at it and its own
cache key prefix; that process migrates, seeds (``seed_demo --profile P``) and measures, and
refuses to run anywhere that does not carry the mark (it drops indexes and truncates tables).
The first drops the database at the end unless ``--keep``. So the user's database is never
opened, let alone written: only the server's ``postgres`` maintenance database is, to create and
drop the benchmark one.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from django.conf import settings
from django.core.management.base import CommandError
from django.db import connection

MARK = "zerobot benchmark database: created and dropped by manage.py bench"


def _server_params() -> dict[str, Any]:
    db = settings.DATABASES["default"]
    if db["ENGINE"] not in ("zerobot.lib.postgresql", "django.db.backends.postgresql"):
        raise CommandError("manage.py bench needs PostgreSQL: set DATABASE_URL=postgres://...")
    params = {"dbname": "postgres", "autocommit": True, "connect_timeout": 10}
    for key, name in (("host", "HOST"), ("port", "PORT"), ("user", "USER"),
                      ("password", "PASSWORD")):  # fmt: skip
        if db.get(name):
            params[key] = db[name]
    return params


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def default_name() -> str:
    return f"{settings.DATABASES['default']['NAME']}_bench"


def url_for(name: str) -> str:
    """``DATABASE_URL`` with its database name replaced by ``name``."""
    parts = urlsplit(settings.DATABASE_URL)
    return urlunsplit(parts._replace(path="/" + quote(name)))


def create(name: str) -> None:
    """A new, empty, marked database ``name``. An existing one is dropped first only if it
    carries the mark (an earlier ``--keep`` or an interrupted run); anything else is refused."""
    import psycopg

    if name == settings.DATABASES["default"]["NAME"]:
        raise CommandError(f"--database {name!r} is DATABASE_URL's database: choose another name.")
    if len(name.encode()) > 63:
        raise CommandError(f"--database {name!r}: PostgreSQL names are at most 63 bytes.")
    with psycopg.connect(**_server_params()) as conn:
        row = conn.execute(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s",
            [name],
        ).fetchone()
        if row is not None:
            if row[0] != MARK:
                raise CommandError(
                    f"Database {name!r} exists and was not made by manage.py bench: not touching "
                    "it. Pass another --database name."
                )
            conn.execute(f"DROP DATABASE {_quoted(name)} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {_quoted(name)}")
        conn.execute(f"COMMENT ON DATABASE {_quoted(name)} IS {_literal(MARK)}")


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def drop(name: str) -> None:
    import psycopg

    with psycopg.connect(**_server_params()) as conn:
        row = conn.execute(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s",
            [name],
        ).fetchone()
        if row is not None and row[0] == MARK:
            conn.execute(f"DROP DATABASE {_quoted(name)} WITH (FORCE)")


def require_marked() -> str:
    """The current database's name, if it is a benchmark database; CommandError otherwise."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT current_database(), shobj_description(oid, 'pg_database') FROM pg_database "
            "WHERE datname = current_database()"
        )
        name, comment = cursor.fetchone()
    if comment != MARK:
        raise CommandError(f"{name!r} is not a benchmark database made by manage.py bench.")
    return name
