from __future__ import annotations

from django.apps import AppConfig


class WebConfig(AppConfig):
    """The dashboard page (/), its login, and the websocket that pushes each user's events."""

    name = "web"
    verbose_name = "Dashboard page"

    def ready(self) -> None:
        from web import signals  # noqa: F401  (connects the logout receiver)
