"""The benchmark's HTTP clients: one GET, its status and headers (names lower-case), the body
read in full and checked against Content-Length.

``raw`` (the default) writes a prebuilt HTTP/1.1 request (``Connection: close``) on a plain
socket, reads the headers and Content-Length bytes and closes: a fraction of the client CPU of ``urllib`` (http.client parses the headers
through the email package), which matters because the client's threads share the machine's
cores with the server they measure. ``urllib`` is the standard library's, kept to compare.
"""

from __future__ import annotations

import functools
import socket
import urllib.error
import urllib.request
from collections.abc import Callable
from urllib.parse import urlsplit

Get = Callable[[str, dict[str, str]], tuple[int, dict[str, str]]]
TIMEOUT = 30.0


@functools.cache
def _split(url: str) -> tuple[str, int, bytes]:
    parts = urlsplit(url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return parts.hostname or "127.0.0.1", parts.port or 80, target.encode("ascii")


def raw_get(url: str, headers: dict[str, str]) -> tuple[int, dict[str, str]]:
    host, port, target = _split(url)
    lines = [b"GET " + target + b" HTTP/1.1", f"Host: {host}:{port}".encode(), b"Connection: close"]
    lines += [f"{name}: {value}".encode("latin-1") for name, value in headers.items()]
    request = b"\r\n".join(lines) + b"\r\n\r\n"
    with socket.create_connection((host, port), timeout=TIMEOUT) as sock:
        sock.sendall(request)
        data = b""
        while (end := data.find(b"\r\n\r\n")) < 0:
            chunk = sock.recv(65536)
            if not chunk:
                raise OSError(f"not an HTTP response: {data[:60]!r}")
            data += chunk
        head, body = data[:end], data[end + 4 :]
        if not head.startswith(b"HTTP/1."):
            raise OSError(f"not an HTTP response: {data[:60]!r}")
        status_line, *header_lines = head.split(b"\r\n")
        status = int(status_line[9:12])
        got = {}
        for line in header_lines:
            name, _, value = line.partition(b":")
            got[name.decode("latin-1").lower()] = value.strip().decode("latin-1")
        length = got.get("content-length")
        # Read what Content-Length says and close at once, as urllib does: gunicorn's sync
        # worker lingers after its response until the client closes (gunicorn.util.
        # close_graceful), so a client that waits for the server's EOF holds the worker.
        wanted = 0 if status in (204, 304) else int(length) if length is not None else None
        chunks = [body]
        received = len(body)
        while wanted is None or received < wanted:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
            received += len(chunk)
    if wanted is not None and received != wanted:
        raise OSError(f"body of {received} bytes, Content-Length {length}")
    return status, got


def urllib_get(url: str, headers: dict[str, str]) -> tuple[int, dict[str, str]]:
    request = urllib.request.Request(url, headers=headers)  # noqa: S310 - loopback, built here
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:  # noqa: S310
            response.read()
            return response.status, {k.lower(): v for k, v in response.headers.items()}
    except urllib.error.HTTPError as exc:
        exc.read()
        return exc.code, {k.lower(): v for k, v in exc.headers.items()}


CLIENTS: dict[str, Get] = {"raw": raw_get, "urllib": urllib_get}
