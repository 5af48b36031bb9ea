"""Dependencies point one way (zerobot/lib <- marketdata <- trading; monitoring observes), and
the figures two modules must agree on have one definition."""

from __future__ import annotations

import functools
import json
import runpy
import subprocess
import sys
from pathlib import Path

from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]
APPS = ("accounts", "trading", "marketdata", "monitoring", "web")


_PARSE = """
import ast, json, sys
out = {}
for name in sys.argv[1:]:
    names = set()
    for node in ast.walk(ast.parse(open(name).read(), filename=name)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
            names.update(node.module + "." + alias.name for alias in node.names)
    out[name] = sorted(names)
print(json.dumps(out))
"""


@functools.cache
def _all_imports() -> dict[str, set[str]]:
    # Parsed in a fresh interpreter: CPython 3.11.7's ast module can be left in a broken state
    # by earlier work in a long test process ("AST constructor recursion depth mismatch").
    files = [str(p) for app in ("zerobot", *APPS) for p in (ROOT / app).rglob("*.py")]
    result = subprocess.run(
        [sys.executable, "-c", _PARSE, *files], capture_output=True, text=True, timeout=60,
        check=True,
    )  # fmt: skip
    return {name: set(names) for name, names in json.loads(result.stdout).items()}


def _imports(path: Path) -> set[str]:
    """Every module a file imports, at any depth (lazy imports inside functions included)."""
    return _all_imports()[str(path)]


def test_zerobot_lib_imports_no_app() -> None:
    offenders = {
        str(path.relative_to(ROOT)): sorted(
            name for name in _imports(path) if name.split(".")[0] in APPS
        )
        for path in (ROOT / "zerobot" / "lib").glob("*.py")
    }
    assert {path: names for path, names in offenders.items() if names} == {}


def test_monitoring_modules_import_no_circle() -> None:
    modules = {
        f"monitoring.{path.stem}": path
        for path in (ROOT / "monitoring").glob("*.py")
        if path.stem != "__init__"
    }
    graph = {
        name: {
            other
            for other in modules
            if other != name
            and (other in _imports(path) or f"monitoring.{other.split('.')[1]}" in _imports(path))
        }
        for name, path in modules.items()
    }
    # "from monitoring import pool" names monitoring.pool as well.
    for name, path in modules.items():
        graph[name] |= {
            f"monitoring.{imported.split('.')[1]}"
            for imported in _imports(path)
            if imported.startswith("monitoring.")
            and f"monitoring.{imported.split('.')[1]}" in modules
        } - {name}

    def cycle_from(start: str) -> list[str] | None:
        stack = [(start, [start])]
        while stack:
            node, path = stack.pop()
            for nxt in graph[node]:
                if nxt == start:
                    return [*path, nxt]
                if nxt not in path:
                    stack.append((nxt, [*path, nxt]))
        return None

    assert {name: cycle_from(name) for name in graph if cycle_from(name)} == {}


def test_prometheus_and_the_admin_aggregates_count_in_the_same_buckets() -> None:
    from monitoring import aggregation, metrics

    assert metrics.REQUEST_DURATION._upper_bounds[:-1] == [
        bound / 1000 for bound in aggregation.LATENCY_BOUNDS_MS
    ]
    assert metrics.REQUEST_QUERIES._upper_bounds[:-1] == [
        float(bound) for bound in aggregation.QUERY_BOUNDS
    ]


def test_the_budget_check_counts_the_workers_gunicorn_starts() -> None:
    """Before: the check assumed 1 process while gunicorn started 2 (its own default)."""
    config = runpy.run_path(str(ROOT / "gunicorn.conf.py"))  # the same environment as settings
    assert config["workers"] == settings.WEB_CONCURRENCY
    assert 'os.environ.get("WEB_CONCURRENCY", "2")' in (ROOT / "gunicorn.conf.py").read_text()
    assert 'env_int("WEB_CONCURRENCY", 2,' in (ROOT / "zerobot" / "settings.py").read_text()
