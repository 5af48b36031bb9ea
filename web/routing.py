"""Websocket routes (the HTTP routes are in web/urls.py); mounted by zerobot/asgi.py."""

from __future__ import annotations

from typing import Any

from channels.routing import URLRouter
from django.urls import path

from web.auth import websocket_auth
from web.consumers import EventsConsumer

websocket_urlpatterns = [path("ws/events", EventsConsumer.as_asgi(), name="ws_events")]


def websocket_application() -> Any:
    return websocket_auth(URLRouter(websocket_urlpatterns))
