"""ASGI entry point: HTTP (the API, the page, the admin) and the websocket ``/ws/events``.

Served by uvicorn workers under gunicorn (``make serve``), or by uvicorn alone (``make run``).
``zerobot.wsgi`` still serves HTTP alone under plain gunicorn workers (no websocket).
"""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "zerobot.settings")
http_application = get_asgi_application()  # sets Django up before the consumers are imported

from channels.routing import ProtocolTypeRouter  # noqa: E402

from web.routing import websocket_application  # noqa: E402

application = ProtocolTypeRouter({"http": http_application, "websocket": websocket_application()})
