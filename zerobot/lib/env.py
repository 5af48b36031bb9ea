"""Typed readers for environment variables.

Every reader raises ``ImproperlyConfigured`` naming the variable when its value is malformed, so a
typo in a deployment fails at start-up with a message that says what to fix.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _raw(name: str, environ: Mapping[str, str] | None) -> str | None:
    value = (os.environ if environ is None else environ).get(name)
    return None if value is None else value.strip()


def env_str(
    name: str, default: str | None = None, *, environ: Mapping[str, str] | None = None
) -> str | None:
    value = _raw(name, environ)
    return default if value is None or value == "" else value


def env_bool(name: str, default: bool, *, environ: Mapping[str, str] | None = None) -> bool:
    value = _raw(name, environ)
    if value is None:
        return default
    lowered = value.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ImproperlyConfigured(
        f"{name}={value!r} is not a boolean: use one of 1/0, true/false, yes/no, on/off."
    )


def env_int(
    name: str,
    default: int,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
    environ: Mapping[str, str] | None = None,
) -> int:
    value = _raw(name, environ)
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not an integer.") from None
    _check_bounds(name, number, minimum, maximum)
    return number


def env_float(
    name: str,
    default: float,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    environ: Mapping[str, str] | None = None,
) -> float:
    value = _raw(name, environ)
    if value is None or value == "":
        return default
    try:
        number = float(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not a number.") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise ImproperlyConfigured(f"{name}={value!r} must be a finite number.")
    _check_bounds(name, number, minimum, maximum)
    return number


def _check_bounds(name: str, number: Any, minimum: Any, maximum: Any) -> None:
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"{name}={number} is below the minimum of {minimum}.")
    if maximum is not None and number > maximum:
        raise ImproperlyConfigured(f"{name}={number} is above the maximum of {maximum}.")


def env_list(
    name: str, default: list[str], *, environ: Mapping[str, str] | None = None
) -> list[str]:
    """A comma-separated list; blank items (``a,,b``) are an error rather than silently dropped."""
    value = _raw(name, environ)
    if value is None or value == "":
        return list(default)
    items = [item.strip() for item in value.split(",")]
    if any(not item for item in items):
        raise ImproperlyConfigured(
            f"{name}={value!r} has an empty item; separate items with single commas."
        )
    return items


def env_hosts(
    name: str, default: list[str], *, environ: Mapping[str, str] | None = None
) -> list[str]:
    """ALLOWED_HOSTS-style list: host names, IPs, ``.suffix`` wildcards or ``*``; no schemes, paths, spaces."""
    hosts = env_list(name, default, environ=environ)
    for host in hosts:
        if any(ch in host for ch in " /\\@?#") or "://" in host:
            raise ImproperlyConfigured(
                f"{name} item {host!r} is not a host name: give bare names such as "
                "'api.example.com', '.example.com' or '127.0.0.1'."
            )
    return hosts


def env_url(
    name: str, *, schemes: tuple[str, ...], environ: Mapping[str, str] | None = None
) -> str | None:
    """A URL whose scheme must be one of ``schemes``; ``None`` when unset or empty."""
    value = env_str(name, environ=environ)
    if value is None:
        return None
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError on a non-numeric port
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} is not a valid URL: {exc}.") from None
    if parts.scheme not in schemes:
        raise ImproperlyConfigured(
            f"{name} must start with one of {', '.join(s + '://' for s in schemes)} "
            f"(got scheme {parts.scheme or 'none'!r})."
        )
    if not parts.hostname and not parts.path.strip("/") and not parts.query:
        raise ImproperlyConfigured(f"{name} has no host.")
    return value


def env_networks(
    name: str, default: list[str], *, environ: Mapping[str, str] | None = None
) -> list[str]:
    """Comma-separated IP networks in CIDR notation (a bare address is a /32 or /128)."""
    networks = env_list(name, default, environ=environ)
    for network in networks:
        try:
            ipaddress.ip_network(network)
        except ValueError as exc:
            raise ImproperlyConfigured(
                f"{name} item {network!r} is not an IP network ({exc}): give CIDRs such as "
                "'10.0.0.0/8' or addresses such as '127.0.0.1'."
            ) from None
    return networks
