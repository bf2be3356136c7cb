# VO leads — the two commands: `make run` (whole system, embedded default) and `make test`.
SHELL := /bin/bash
PY := .venv/bin/python
SERVICES := ingest qualify dispatch crm
# Where the test servers listen (scripts/infra.sh reads the same variables).
export PG_PORT ?= 5432
export KAFKA_PORT ?= 9092
export TEST_POSTGRES_URL ?= postgresql+asyncpg://vo:vo@127.0.0.1:$(PG_PORT)/postgres
export TEST_KAFKA_BOOTSTRAP ?= 127.0.0.1:$(KAFKA_PORT)
export IMAP_PORT ?= 10143
export TEST_IMAP_PORT ?= $(IMAP_PORT)
export SMTP_PORT ?= 10025
export TEST_SMTP_PORT ?= $(SMTP_PORT)
export OIDC_PORT ?= 18080
export TEST_OIDC_URL ?= http://127.0.0.1:$(OIDC_PORT)

.PHONY: install run test test-unit infra-up infra-down infra-status lint fmt schemas bench revision migrate token

install: ## create .venv from uv.lock (installs uv if missing)
	@scripts/bootstrap.sh

run: install ## migrations, the four APIs + workers (127.0.0.1:8001-8004 or <SVC>_HTTP_PORT), SQLite + embedded bus, a demo directory; prints progress, then "ready"
	@scripts/run_local.sh

test: install infra-up ## the whole suite against real PostgreSQL and Kafka (started here)
	REQUIRE_INTEGRATION=1 ALLOW_BROKER_RESTART=1 $(PY) -m pytest

test-unit: install ## only the tests that need no server
	$(PY) -m pytest -m "not postgres and not kafka and not imap and not smtp and not oidc and not broker_restart"

infra-up: install ## start PostgreSQL, Kafka, Dovecot (IMAP), Postfix (SMTP) and Keycloak (OIDC) on 127.0.0.1 (idempotent)
	@scripts/infra.sh start
	@scripts/imap.sh start
	@scripts/smtp.sh start
	@scripts/oidc.sh start

infra-down:
	@scripts/oidc.sh stop
	@scripts/smtp.sh stop
	@scripts/imap.sh stop
	@scripts/infra.sh stop

infra-status:
	@scripts/infra.sh status
	@scripts/imap.sh status
	@scripts/smtp.sh status
	@scripts/oidc.sh status

lint: install ## ruff (lint + format check) and mypy strict
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy shared services tests benchmarks scripts

fmt: install
	.venv/bin/ruff format .
	.venv/bin/ruff check --fix .

schemas: install ## regenerate docs/events/*.schema.json from the catalogue
	$(PY) -m shared.events.schemas docs/events

bench: install ## every benchmark → docs/benchmarks.md, written whole by this run (~20 min)
	@scripts/infra.sh start
	@scripts/imap.sh start
	@scripts/smtp.sh start
	$(PY) -m benchmarks.run

migrate: install ## upgrade the four databases (settings from the environment)
	@for s in $(SERVICES); do $(PY) -m $$s migrate; done

revision: install ## make revision SERVICE=crm MESSAGE="add x"
	cd services/$(SERVICE) && ../../.venv/bin/alembic revision --autogenerate -m "$(MESSAGE)"

token: install ## make token NAME=alice ROLES=operator: one token stored in all four services
	@t=$$($(PY) -c 'import shared.auth as a; print(a.new_token())'); \
	for s in $(SERVICES); do $(PY) -m $$s create-token --name "$(NAME)" --roles "$(ROLES)" --token "$$t" >/dev/null; done; \
	echo "$$t"
