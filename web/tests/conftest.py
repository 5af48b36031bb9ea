"""Fixtures of the page's tests: a real ASGI server (uvicorn, in a thread of the test process, so it
sees the test database like pytest-django's live_server), and credentials for websockets."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings
from django.test import Client
from rest_framework.test import APIClient

PASSWORD = "page-test-pass-123"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def asgi_server(transactional_db: Any) -> Iterator[str]:
    """http://127.0.0.1:PORT serving zerobot.asgi (HTTP and websocket)."""
    import uvicorn

    from zerobot.asgi import application

    port = _free_port()
    config = uvicorn.Config(
        application, host="127.0.0.1", port=port, lifespan="off", log_level="warning",
        ws="websockets-sansio",
    )  # fmt: skip
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(autouse=True)
def _fresh_channel_layer() -> Iterator[None]:
    """Each test runs its consumers on an event loop of its own (async_to_sync), and a Redis
    channel layer's locks belong to the loop that first used them: a fresh layer per test, as a
    server process has one for its one loop."""
    from channels.layers import channel_layers

    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()


@pytest.fixture(autouse=True)
def _close_the_pool_after_each_test() -> Iterator[None]:
    """Consumers and the server use connections from other threads; they return them to the
    process's pool, which keeps them open. Closing it lets the test database be dropped at the
    end (the next query opens a new pool)."""
    yield
    from django.db import connection

    if connection.vendor == "postgresql" and hasattr(connection, "close_pool"):
        connection.close()
        connection.close_pool()


def session_headers(user: Any, *, origin: str | None = "http://testserver") -> list:
    """Handshake headers of a browser logged in as ``user`` (a real session row)."""
    client = Client()
    client.force_login(user)
    cookie = f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"
    headers = [(b"host", b"testserver"), (b"cookie", cookie.encode())]
    if origin is not None:
        headers.append((b"origin", origin.encode()))
    return headers


def session_key_of(headers: list) -> str:
    cookie = dict(headers)[b"cookie"].decode()
    return cookie.split("=", 1)[1]


def api_token(user: Any) -> str:
    """A token from the API's own login (whatever token model the API uses)."""
    response = APIClient().post(
        "/api/auth/login", {"username": user.username, "password": PASSWORD}, format="json"
    )
    assert response.status_code == 200, response.content
    return response.json()["token"]
