"""Private PostgreSQL and Redis servers for the fault tests, and a gunicorn serving zerobot on
them. Never the shared servers: these are started on free ports in a temporary directory, broken
on purpose, and stopped (and deleted) at the end even when a test fails."""

from __future__ import annotations

import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_postgres(*args: str) -> list[str]:
    # PostgreSQL refuses to run as root (CI runs as root): run its tools as the postgres user.
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else list(args)


@dataclass
class PrivatePostgres:
    port: int = field(default_factory=free_port)
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="zb-faults-pg-")))

    @property
    def bin(self) -> Path:
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
        if not found:
            raise RuntimeError("PostgreSQL server binaries (/usr/lib/postgresql/*/bin) not found")
        return Path(found[-1]).parent

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/zerobot"

    def _ctl(self, *args: str) -> None:
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c max_connections=40"
        )
        subprocess.run(
            _as_postgres(str(self.bin / "pg_ctl"), "-D", str(self.root / "data"), "-l",
                         str(self.root / "log"), "-o", options, "-w", *args),
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip

    def start(self) -> None:
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres")
        subprocess.run(
            _as_postgres(str(self.bin / "initdb"), "-D", str(self.root / "data"), "-A", "trust",
                         "-U", "postgres", "--no-sync", "-E", "UTF8"),
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip
        self._ctl("start")
        subprocess.run(
            ["psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-qc",
             "CREATE DATABASE zerobot"],
            check=True, capture_output=True, timeout=30,
        )  # fmt: skip

    def restart_fast(self) -> None:
        self._ctl("-m", "fast", "restart")

    def stop(self) -> None:
        try:
            self._ctl("-m", "immediate", "stop")
        except Exception:  # already stopped, or never started
            pass
        shutil.rmtree(self.root, ignore_errors=True)

    def connect(self) -> Any:
        import psycopg

        return psycopg.connect(
            host="127.0.0.1", port=self.port, user="postgres", dbname="zerobot", autocommit=True
        )


@dataclass
class PrivateRedis:
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        # The same memory cap and eviction policy as .ci/run and DEVELOPERS.md.
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--maxmemory", "64mb", "--maxmemory-policy", "allkeys-lru"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("private Redis did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)  # a SIGSTOPped server cannot exit
            self.proc.kill()
            self.proc.wait(timeout=10)

    def pause(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)


def django_env(pg: PrivatePostgres, redis: PrivateRedis, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DB_", "REDIS_", "GUNICORN_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="zerobot.settings", DATABASE_URL=pg.url, REDIS_URL=redis.url,
        SECRET_KEY="faults-only-secret-key-0123456789abcdef0123456789", DEBUG="0",
        SECURE_SSL_REDIRECT="0", SILK_ENABLED="0", MONITORING_FLUSH_SECONDS="0",
        ALLOWED_HOSTS="127.0.0.1", PYTHONPATH=str(ROOT), WEB_CONCURRENCY="1",
        DB_POOL_MIN_SIZE="1", DB_POOL_MAX_SIZE="4", LOG_LEVEL="WARNING",
    )  # fmt: skip
    env.update(extra)
    return env


def manage(env: dict[str, str], *args: str, stdin: str | None = None) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, input=stdin,
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    if done.returncode:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return done.stdout


class Server:
    """gunicorn (one worker, threads) on the private servers; stopped by ``stop``."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = {**env, "GUNICORN_BIND": f"127.0.0.1:{self.port}"}
        self.log = log
        self.proc: subprocess.Popen | None = None

    def start(self) -> Server:
        with self.log.open("w") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "zerobot.wsgi"],
                cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        deadline = time.monotonic() + 30
        while True:
            try:
                if self.request("GET", "/healthz")[0] == 200:
                    return self
            except OSError:
                pass
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn did not start:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)

    def request(
        self, method: str, path: str, body: dict | None = None, headers: dict | None = None,
        timeout: float = 15.0,
    ) -> tuple[int, dict[str, str], bytes]:  # fmt: skip
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.base + path, data=data, method=method,
            headers={"Content-Type": "application/json", **(headers or {})},
        )  # fmt: skip
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, dict(exc.headers), exc.read()
