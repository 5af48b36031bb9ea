"""Every route of the project, from Django's URL resolver: a new route is in the hostile-input
table and the isolation matrix without anyone adding it."""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.urls import URLPattern, URLResolver, get_resolver
from django.urls.resolvers import RoutePattern

_PARAM = re.compile(r"<(?:(?P<converter>\w+):)?(?P<name>\w+)>")


@dataclass(frozen=True)
class Route:
    template: str  # "/api/bots/<int:pk>/start/"
    name: str

    @property
    def params(self) -> list[str]:
        return [m.group("name") for m in _PARAM.finditer(self.template)]

    def path(self, values: dict[str, str]) -> str:
        return _PARAM.sub(lambda m: values[m.group("name")], self.template)

    @property
    def kind(self) -> str:
        """What an id in this route names: bot, position, trade, or other."""
        for word in ("position", "trade", "bot"):
            if word in self.template or word in self.name:
                return word
        return "other"


def _walk(patterns: list, prefix: str, names: str) -> list[Route]:
    routes: list[Route] = []
    for entry in patterns:
        if not isinstance(entry.pattern, RoutePattern):
            continue  # the admin's regex routes (app index) are reached through their pages
        route = str(entry.pattern)
        if isinstance(entry, URLResolver):
            namespace = f"{names}{entry.namespace}:" if entry.namespace else names
            routes += _walk(entry.url_patterns, prefix + route, namespace)
        elif isinstance(entry, URLPattern):
            routes.append(Route("/" + prefix + route, f"{names}{entry.name or ''}"))
    return routes


def all_routes() -> list[Route]:
    seen: dict[str, Route] = {}
    for route in _walk(get_resolver().url_patterns, "", ""):
        seen.setdefault(route.template, route)
    return sorted(seen.values(), key=lambda r: r.template)
