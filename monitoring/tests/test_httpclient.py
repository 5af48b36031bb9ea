"""The benchmark's raw HTTP clients (monitoring/bench/httpclient.py) against a real HTTP/1.1
server on 127.0.0.1: status, headers, Content-Length and chunked bodies, bodiless answers, a
short body refused, and the keep-alive client reusing its connection."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from monitoring.bench import httpclient

BODY = b'{"ok": true, "text": "' + b"x" * 70_000 + b'"}'  # more than one recv


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive unless a response says otherwise

    def setup(self) -> None:
        super().setup()
        self.server.connections += 1  # type: ignore[attr-defined]

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.server.seen.append(dict(self.headers))  # type: ignore[attr-defined]
        if self.path == "/length":
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("X-Custom", " spaced value ")
            self.send_header("Content-Length", str(len(BODY)))
            self.end_headers()
            self.wfile.write(BODY)
        elif self.path == "/chunked":
            self.send_response(201)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for start in range(0, len(BODY), 30_000):
                part = BODY[start : start + 30_000]
                self.wfile.write(f"{len(part):x};ext=1\r\n".encode() + part + b"\r\n")
            self.wfile.write(b"0\r\nX-Trailer: t\r\n\r\n")
        elif self.path == "/not-modified":
            self.send_response(304)
            self.send_header("ETag", '"abc"')
            self.end_headers()
        elif self.path == "/short":
            self.send_response(200)
            self.send_header("Content-Length", "100")
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(b"only 18 bytes here")
            self.close_connection = True
        elif self.path == "/close":
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(b"ok")
            self.close_connection = True
        else:
            self.send_error(404)


@pytest.fixture
def server() -> Iterator[ThreadingHTTPServer]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.connections, httpd.seen = 0, []  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def url(server: ThreadingHTTPServer, path: str) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}{path}"


@pytest.mark.parametrize("request_", ["raw", "keepalive"])
def test_status_headers_and_bodies(server: ThreadingHTTPServer, request_: str) -> None:
    send = httpclient.raw_request if request_ == "raw" else httpclient.KeepAlive().request
    status, headers, body = send(url(server, "/length"), {"Authorization": "Token k"})
    assert status == 200 and body == BODY
    assert headers["content-type"] == "application/json"
    assert headers["x-custom"] == "spaced value"  # names lower-case, values stripped
    assert server.seen[-1]["Authorization"] == "Token k"  # type: ignore[attr-defined]

    status, headers, body = send(url(server, "/chunked"), {})
    assert status == 201 and body == BODY  # chunks joined, extension and trailer skipped

    status, headers, body = send(url(server, "/not-modified"), {})
    assert status == 304 and body == b"" and headers["etag"] == '"abc"'

    status, _, _ = send(url(server, "/missing"), {})
    assert status == 404


def test_a_body_shorter_than_its_content_length_is_an_error(server: ThreadingHTTPServer) -> None:
    with pytest.raises(OSError, match="Content-Length 100"):
        httpclient.raw_get(url(server, "/short"), {})
    with pytest.raises(OSError, match="Content-Length 100"):
        httpclient.KeepAlive().get(url(server, "/short"), {})


def test_raw_opens_a_connection_per_request_and_says_close(server: ThreadingHTTPServer) -> None:
    for _ in range(3):
        assert httpclient.raw_get(url(server, "/length"), {})[0] == 200
    assert server.connections == 3  # type: ignore[attr-defined]
    assert server.seen[-1]["Connection"] == "close"  # type: ignore[attr-defined]


def test_keepalive_reuses_its_connection_until_the_server_closes(
    server: ThreadingHTTPServer,
) -> None:
    client = httpclient.KeepAlive()
    for path in ("/length", "/chunked", "/not-modified", "/length"):
        assert client.get(url(server, path), {})[0] in (200, 201, 304)
    assert server.connections == client.connections == 1  # type: ignore[attr-defined]
    assert "Connection" not in server.seen[-1]  # type: ignore[attr-defined]
    assert client.get(url(server, "/close"), {})[0] == 200  # the server closes after it
    assert client.get(url(server, "/length"), {})[0] == 200
    assert server.connections == client.connections == 2  # type: ignore[attr-defined]


def test_keepalive_retries_once_on_a_connection_closed_while_idle(
    server: ThreadingHTTPServer,
) -> None:
    client = httpclient.KeepAlive()
    assert client.get(url(server, "/length"), {})[0] == 200
    for reader in client.local.readers.values():
        reader.sock.shutdown(2)  # as a server's idle timeout would leave it: dead
    assert client.get(url(server, "/length"), {})[0] == 200
    assert client.connections == 2
