# zerobot developer commands. `make run` and `make test` are the two set-up commands (README).
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell sha1sum requirements.txt | cut -c1-12)

# The test suite needs the real PostgreSQL and Redis; these defaults point at the local servers
# (.ci/run starts them if they are down). Override by exporting your own URLs.
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/zerobot
TEST_REDIS_URL    ?= redis://127.0.0.1:6379/15

.PHONY: install run serve test faults exhaustive benchmarks lint format checks ci bench clean chromium

$(STAMP): requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	rm -f $(VENV)/.installed-* && touch $(STAMP)

install: $(STAMP)

# Serves on http://127.0.0.1:8000 with DEBUG on: the page, its websocket, the API, the admin (one
# uvicorn process, reloading on code changes). SQLite + local memory + the in-memory channel layer
# unless DATABASE_URL / REDIS_URL are set in your environment.
run: install
	DEBUG=$${DEBUG:-1} $(BIN)/python manage.py migrate --noinput
	DEBUG=$${DEBUG:-1} $(BIN)/python manage.py seed_demo --if-empty
	DEBUG=$${DEBUG:-1} $(BIN)/uvicorn zerobot.asgi:application --host 127.0.0.1 --port 8000 \
		--lifespan off --ws websockets-sansio --reload --reload-dir zerobot --reload-dir trading \
		--reload-dir marketdata --reload-dir monitoring --reload-dir web

# Production-style: gunicorn (gunicorn.conf.py: workers, pool drain, metrics) running uvicorn
# workers, each serving HTTP (API, page, admin) and the websocket. Needs SECRET_KEY, and REDIS_URL
# as soon as there is more than one worker (events must reach every worker's sockets).
serve: install
	$(BIN)/python manage.py collectstatic --noinput -v0
	$(BIN)/gunicorn -c gunicorn.conf.py -k uvicorn_worker.UvicornWorker zerobot.asgi:application

# The default suite. Installs what its tests need: the venv and Debian's Chromium (browser tests).
test: install chromium
	DATABASE_URL=$${DATABASE_URL:-$(TEST_DATABASE_URL)} REDIS_URL=$${REDIS_URL:-$(TEST_REDIS_URL)} \
		$(BIN)/python -m pytest $(PYTEST_ARGS)

# Long runs out of the default suite (marker `exhaustive`): the whole small demo replayed through
# the services, and every benchmark once as a smoke run.
exhaustive: install
	DATABASE_URL=$${DATABASE_URL:-$(TEST_DATABASE_URL)} REDIS_URL=$${REDIS_URL:-$(TEST_REDIS_URL)} \
		$(BIN)/python -m pytest -m exhaustive $(PYTEST_ARGS)

# The pytest benchmarks (tables of numbers) and the positions_mark bench command (PERFORMANCE.md);
# none of them asserts a time. (`make bench` is the one-report command further down.)
benchmarks: install
	DATABASE_URL=$${DATABASE_URL:-$(TEST_DATABASE_URL)} REDIS_URL=$${REDIS_URL:-$(TEST_REDIS_URL)} \
		$(BIN)/python -m pytest -m exhaustive tests/performance --benchmark-enable $(PYTEST_ARGS)
	DATABASE_URL=$${DATABASE_URL:-$(TEST_DATABASE_URL)} REDIS_URL=$${REDIS_URL:-$(TEST_REDIS_URL)} \
		$(BIN)/python manage.py bench_positions_mark

# Fault tests (tests/faults): private PostgreSQL and Redis servers started, broken and removed
# by the tests themselves; never the shared ones. Needs the PostgreSQL server binaries.
faults: install
	DATABASE_URL=$${DATABASE_URL:-$(TEST_DATABASE_URL)} REDIS_URL=$${REDIS_URL:-$(TEST_REDIS_URL)} \
		$(BIN)/python -m pytest -m faults -s tests/faults $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Migrations match the models, and the system checks (incl. the pool budget) pass with no warning.
checks: install
	SECRET_KEY=ci-only-secret-key-0123456789abcdef0123456789 \
	DATABASE_URL=$${DATABASE_URL:-$(TEST_DATABASE_URL)} \
		$(BIN)/python manage.py makemigrations --check --dry-run
	SECRET_KEY=ci-only-secret-key-0123456789abcdef0123456789 \
	DATABASE_URL=$${DATABASE_URL:-$(TEST_DATABASE_URL)} \
		$(BIN)/python manage.py check --fail-level WARNING
	SECRET_KEY=ci-only-deploy-check-key-kW3v9Xq2Lp7Rt5Zm8Nb4Hc6Jd1Fg0Sa-Ye \
	REDIS_URL= DATABASE_URL=$${DATABASE_URL:-$(TEST_DATABASE_URL)} \
		$(BIN)/python manage.py check --deploy --fail-level WARNING

# One command, one report: bench-report/ (report.md, results.json, PNG charts), measured on a
# benchmark database it creates next to DATABASE_URL's, seeds and drops (PERFORMANCE.md, "One
# command"); DATABASE_URL's own data is never touched. Needs REDIS_URL, and Chromium for the page.
bench: install
	$(BIN)/python manage.py bench $(BENCH_ARGS)

ci: chromium lint checks test faults

# Monitoring: the admin dashboard test drives Debian's Chromium through Playwright
# (executable_path=/usr/bin/chromium; never `playwright install`). Needs root for apt-get.
chromium:
	@test -x /usr/bin/chromium || { apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }
	@/usr/bin/chromium --version 2>/dev/null | head -1

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
