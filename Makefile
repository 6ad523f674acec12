# Dockgate: the one entry point for people and CI. `make help` lists the targets.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
NATIVE := $(VENV)/.native
# what `setup.py` compiles with mypyc (dockgate_server/native.py names the modules): a change to
# any of these rebuilds the extensions, so a test never runs a stale compiled module
NATIVE_SOURCES := setup.py $(wildcard server/dockgate_server/native.py \
  server/dockgate_server/engine/*.py server/dockgate_server/conditions/*.py \
  server/dockgate_server/policy/*.py)

.DEFAULT_GOAL := help
.PHONY: help install packages proto run test lint typecheck check unit readme bench bench-glob bench-engine bench-analysis bench-load bench-replicas clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	DOCKGATE_INTERPRETED=1 $(BIN)/pip install --quiet -e '.[dev,bench]'
	touch $(STAMP)

# the decision path compiled in place (mypyc, from .venv's mypy): the .so files sit beside their
# sources and take precedence on import; without a C compiler setup.py says so and builds none
$(NATIVE): $(STAMP) $(NATIVE_SOURCES)
	mkdir -p build
	# the previous extensions go first: a build that makes none (no compiler, or
	# DOCKGATE_INTERPRETED=1) leaves the sources to run, never an old .so beside a newer source
	find server -name '*.so' -delete
	$(BIN)/python setup.py --quiet build_ext --inplace --build-temp build/native/temp --build-lib build/native/lib > build/native.log 2>&1 || { cat build/native.log; exit 1; }
	grep -h '^dockgate:' build/native.log >&2 || true
	# mypyc rewrites only the modules whose C changed and setuptools' copies keep the build's
	# times: every extension is now current, and its time says so (tests/server/test_native.py)
	find server -name '*.so' -exec touch {} +
	touch $(NATIVE)

install: $(NATIVE) ## create .venv, install dockgate with its dev and bench tools, compile the decision path

proto: $(STAMP) ## regenerate client/dockgate/v1 from protos/ (committed; a test fails when stale)
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/python -m grpc_tools.protoc -Iprotos \
	  --python_out=client --grpc_python_out=client --mypy_out=client --mypy_grpc_out=client \
	  protos/dockgate/v1/*.proto

lint: $(STAMP) ## ruff: lint and formatting
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP) ## mypy --strict over server, client and tests
	$(BIN)/mypy

unit: $(NATIVE) ## the whole pytest suite (conformance corpora included)
	$(BIN)/pytest

readme: $(NATIVE) ## run every README snippet in order on a fresh clone (READMEFLAGS=--worktree: uncommitted work)
	$(BIN)/python -m tests.readme.run_readme $(READMEFLAGS)

run: $(NATIVE) ## serve decisions on 127.0.0.1:50051 (admin :50052, metrics :9464), sample fleet in .dockgate/
	$(BIN)/dockgate serve --data-dir .dockgate

packages: ## the Debian packages the tests need: installed as root, named otherwise (.ci/debian-packages)
	.ci/debian-packages

test: packages lint typecheck unit readme ## everything CI runs: packages, lint, type checks, the whole suite, the README

check: test ## alias of test

bench-glob: $(NATIVE) ## hostile wildcard patterns against ordinary ones (prints both)
	$(BIN)/python -m dockgate_server.bench.glob

bench-engine: $(NATIVE) ## the in-process engine on a 100,000-statement fleet against its probe slice
	$(BIN)/python -m dockgate_server.bench.engine

bench-analysis: $(NATIVE) ## who-can and what-can on a 10,000-repository fleet, against their goals and brute force
	$(BIN)/python -m dockgate_server.bench.analysis

bench-load: $(NATIVE) ## `dockgate bench` against a server it starts and the bare baseline; writes docs/bench.png
	$(BIN)/dockgate bench --start --baseline --pin --prime --duration 10 --plot docs/bench.png --report build/bench.json

bench-replicas: $(NATIVE) ## three replicas on a throw-away PostgreSQL: write visibility p50/p99, decisions/s against SQLite
	$(BIN)/python -m dockgate_server.bench.replicas

bench: bench-glob ## the speed goals: engine, unary and batch gRPC against a bare baseline, p99 (one table, a few minutes)
	$(BIN)/python -m dockgate_server.bench.suite

clean: ## remove the virtualenv, the compiled modules and caches
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis build/native build/temp.* build/lib.*
	find server -name '*.so' -delete
