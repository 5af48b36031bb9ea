"""The benchmark's HTTP clients: one GET, its status and headers (names lower-case), the body
read in full (Content-Length or chunked) and checked.

``raw`` (the default) writes a prebuilt HTTP/1.1 request (``Connection: close``) on a plain
socket, reads the headers and the body and closes: a fraction of the client CPU of ``urllib``
(http.client parses the headers through the email package), which matters because the client's
threads share the machine's cores with the server they measure. ``keepalive`` is the same on
one persistent connection per thread and server, reused while the server keeps it open (a
gunicorn sync worker closes after every response: then it costs what ``raw`` costs).
``urllib`` is the standard library's, kept to compare.
"""

from __future__ import annotations

import functools
import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from urllib.parse import urlsplit

Get = Callable[[str, dict[str, str]], tuple[int, dict[str, str]]]
TIMEOUT = 30.0
NO_BODY = (204, 304)


@functools.cache
def _split(url: str) -> tuple[str, int, bytes]:
    parts = urlsplit(url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return parts.hostname or "127.0.0.1", parts.port or 80, target.encode("ascii")


def _request(url: str, headers: dict[str, str], close: bool) -> tuple[str, int, bytes]:
    host, port, target = _split(url)
    lines = [b"GET " + target + b" HTTP/1.1", f"Host: {host}:{port}".encode()]
    if close:
        lines.append(b"Connection: close")
    lines += [f"{name}: {value}".encode("latin-1") for name, value in headers.items()]
    return host, port, b"\r\n".join(lines) + b"\r\n\r\n"


class _Reader:
    """Bytes of one socket, buffered: a response's head, then exactly its body."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock, self.data = sock, b""

    def _more(self) -> bool:
        chunk = self.sock.recv(65536)
        self.data += chunk
        return bool(chunk)

    def until(self, mark: bytes) -> bytes:
        while (end := self.data.find(mark)) < 0:
            if not self._more():
                raise OSError(f"connection closed before {mark!r}: {self.data[:60]!r}")
        out, self.data = self.data[:end], self.data[end + len(mark) :]
        return out

    def exactly(self, n: int) -> bytes:
        while len(self.data) < n:
            if not self._more():
                raise OSError(f"body of {len(self.data)} bytes, Content-Length {n}")
        out, self.data = self.data[:n], self.data[n:]
        return out

    def rest(self) -> bytes:
        while self._more():
            pass
        out, self.data = self.data, b""
        return out


def read_response(reader: _Reader) -> tuple[int, dict[str, str], bytes]:
    """Status, headers (names lower-case) and body of the next response on ``reader``."""
    head = reader.until(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1."):
        raise OSError(f"not an HTTP response: {head[:60]!r}")
    status_line, *header_lines = head.split(b"\r\n")
    status = int(status_line[9:12])
    got = {}
    for line in header_lines:
        name, _, value = line.partition(b":")
        got[name.decode("latin-1").lower()] = value.strip().decode("latin-1")
    if status in NO_BODY or 100 <= status < 200:
        return status, got, b""
    if "chunked" in got.get("transfer-encoding", "").lower():
        chunks = []
        while size := int(reader.until(b"\r\n").split(b";")[0], 16):
            chunks.append(reader.exactly(size))
            reader.exactly(2)  # the chunk's CRLF
        while reader.until(b"\r\n"):  # trailers, up to the empty line
            pass
        return status, got, b"".join(chunks)
    length = got.get("content-length")
    # Read what Content-Length says and stop at once, as urllib does: gunicorn's sync worker
    # lingers after its response until the client closes (gunicorn.util.close_graceful), so a
    # client that waits for the server's EOF holds the worker.
    if length is not None:
        return status, got, reader.exactly(int(length))
    return status, got, reader.rest()


def raw_request(url: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    host, port, request = _request(url, headers, close=True)
    with socket.create_connection((host, port), timeout=TIMEOUT) as sock:
        sock.sendall(request)
        return read_response(_Reader(sock))


def raw_get(url: str, headers: dict[str, str]) -> tuple[int, dict[str, str]]:
    status, got, _ = raw_request(url, headers)
    return status, got


class KeepAlive:
    """One connection per thread and server, reused until the server closes it (``Connection:
    close``, or a dead idle connection: then the request goes once more on a new one)."""

    def __init__(self) -> None:
        self.local = threading.local()
        self.connections = 0  # opened so far, all threads

    def _reader(self, host: str, port: int) -> tuple[_Reader, bool]:
        readers = self.local.__dict__.setdefault("readers", {})
        reader = readers.get((host, port))
        if reader is not None:
            return reader, True
        reader = readers[(host, port)] = _Reader(
            socket.create_connection((host, port), timeout=TIMEOUT)
        )
        self.connections += 1
        return reader, False

    def _drop(self, host: str, port: int) -> None:
        reader = self.local.__dict__.get("readers", {}).pop((host, port), None)
        if reader is not None:
            reader.sock.close()

    def request(self, url: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        host, port, request = _request(url, headers, close=False)
        while True:
            reader, reused = self._reader(host, port)
            try:
                reader.sock.sendall(request)
                status, got, body = read_response(reader)
            except OSError:
                self._drop(host, port)
                if reused:  # the server closed it while idle: once more, on a new one
                    continue
                raise
            if got.get("connection", "").lower() == "close":
                self._drop(host, port)
            return status, got, body

    def get(self, url: str, headers: dict[str, str]) -> tuple[int, dict[str, str]]:
        status, got, _ = self.request(url, headers)
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


CLIENTS: dict[str, Get] = {"raw": raw_get, "keepalive": KeepAlive().get, "urllib": urllib_get}
