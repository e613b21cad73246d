# streamcheck — `make test` runs the daemon suite, `make check` runs the project's own tests.
# `make help` lists every target.

CARGO          ?= cargo
STREAMCHECK    := target/release/streamcheck
FORMAT         ?= human
CATEGORY       ?=
FUZZ_SECONDS   ?= 30

export FORMAT CATEGORY STREAMCHECK

DAEMONS := ref uring go rust php swoole swow python-http2

.PHONY: help build test $(addprefix test-,$(DAEMONS)) test-category test-tap test-json list \
        check fmt clippy unit fuzz bench mutation prop readme

help: ## List the targets
	@grep -E '^[a-z0-9%-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | expand -t 22

build: ## Build the release binary
	$(CARGO) build --release --locked

test: build ## Run the suite against the reference daemon and every configured daemon
	@integration/run_all.sh

test-ref: build ## Run the suite against the built-in reference daemon
	integration/ref_test.sh $(FORMAT) $(CATEGORY)

test-uring: build ## Run the suite against URING_DAEMON (C io_uring daemon)
	integration/uring_test.sh $(FORMAT) $(CATEGORY)

test-go: build ## Run the suite against GO_DAEMON
	integration/go_test.sh $(FORMAT) $(CATEGORY)

test-rust: build ## Run the suite against RUST_DAEMON
	integration/rust_test.sh $(FORMAT) $(CATEGORY)

test-php: build ## Run the suite against PHP_DAEMON (AMPHP)
	integration/php_test.sh $(FORMAT) $(CATEGORY)

test-swoole: build ## Run the suite against SWOOLE_DAEMON
	integration/swoole_test.sh $(FORMAT) $(CATEGORY)

test-swow: build ## Run the suite against SWOW_DAEMON
	integration/swow_test.sh $(FORMAT) $(CATEGORY)

test-python-http2: build ## Run the suite against PYTHON_DAEMON (asyncio, HTTP/2 upstream)
	integration/python_http2_test.sh $(FORMAT) $(CATEGORY)

test-category: build ## Run one category against the reference daemon: make test-category CATEGORY=unicode
	@test -n "$(CATEGORY)" || { echo "set CATEGORY, e.g. make test-category CATEGORY=unicode"; exit 2; }
	integration/ref_test.sh $(FORMAT) $(CATEGORY)

test-tap: build ## Run the suite against the reference daemon, TAP output
	integration/ref_test.sh tap $(CATEGORY)

test-json: build ## Run the suite against the reference daemon, JSON output
	integration/ref_test.sh json $(CATEGORY)

list: build ## Print the scenario catalog
	$(STREAMCHECK) list

check: fmt clippy unit fuzz ## The project's own tests (what CI runs)

fmt: ## Check formatting (cargo fmt)
	$(CARGO) fmt --all -- --check

clippy: ## Lint, warnings as errors
	$(CARGO) clippy --locked --all-targets -- -D warnings

unit: ## Unit, property and end-to-end tests (cargo test)
	$(CARGO) test --locked

fuzz: ## Run each fuzz target for FUZZ_SECONDS (stable toolchain, no sanitizer)
	@for t in $$(cd fuzz && $(CARGO) fuzz list); do \
	    echo "fuzz: $$t for $(FUZZ_SECONDS)s"; \
	    (cd fuzz && $(CARGO) fuzz run -s none $$t -- -max_total_time=$(FUZZ_SECONDS)) || exit 1; \
	done

prop: build ## Generated streams against the reference daemon: make prop CASES=1000 SEED=7
	$(STREAMCHECK) prop --cases $(or $(CASES),200) $(if $(SEED),--seed $(SEED)) \
	    --daemon-cmd '$(abspath $(STREAMCHECK)) ref-daemon --socket {socket}'

bench: ## Parser and client benchmarks (figures go into the README)
	$(CARGO) bench --bench parser
	$(CARGO) build --release --locked
	sh benches/stress.sh $(STREAMCHECK)
	sh benches/hostile.sh $(STREAMCHECK)

mutation: build ## Table: fault mode of the reference daemon -> scenarios that caught it
	$(STREAMCHECK) mutation

readme: ## Regenerate README.md's scenario catalog and fault-mode table from the code
	STREAMCHECK_UPDATE_README=1 $(CARGO) test --locked --test readme_catalog --test suite_mutation
