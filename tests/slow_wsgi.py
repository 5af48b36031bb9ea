"""zerobot's WSGI application plus one test route, ``/__test/sleep?s=N``, that holds a worker
thread for N seconds: what the gunicorn request watchdog test (monitoring/tests) needs a request
to do. Never used outside tests."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import parse_qs

from zerobot.wsgi import application as zerobot_application


def application(environ: dict[str, Any], start_response: Any) -> Any:
    if environ.get("PATH_INFO") == "/__test/sleep":
        seconds = float(parse_qs(environ.get("QUERY_STRING", "")).get("s", ["1"])[0])
        time.sleep(seconds)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"slept"]
    return zerobot_application(environ, start_response)
