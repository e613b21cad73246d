# streamcheck — `make test` runs the daemon suite, `make check` runs the project's own tests.
# `make help` lists every target.

CARGO          ?= cargo
STREAMCHECK    := target/release/streamcheck
FORMAT         ?= human
CATEGORY       ?=
FUZZ_SECONDS   ?= 30
FUZZ_POWER_RUNS ?= 3000
JOBS           ?= $(shell nproc)
REPORT_DIR     ?= target/reports

export FORMAT CATEGORY STREAMCHECK REPORT_DIR

DAEMONS := ref uring go rust php swoole swow python-http2

.PHONY: help build test $(addprefix test-,$(DAEMONS)) test-category test-tap test-json list \
        check fmt clippy unit fuzz fuzz-tool fuzz-power fuzz-daemon fuzz-regression fuzz-cmin \
        bench mutation prop readme

help: ## List the targets
	@grep -E '^[a-z0-9%-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | expand -t 22

build: ## Build the release binary
	$(CARGO) build --release --locked

test: build ## Run the suite against the reference daemon and every configured daemon (FORMAT=html: pages and matrix.html in REPORT_DIR)
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

# With the `fuzzing` feature: the Arbitrary impls the fuzz targets use are checked and tested too.
clippy: ## Lint with the fuzzing feature, warnings as errors
	$(CARGO) clippy --locked --all-targets --features fuzzing -- -D warnings

unit: ## Unit, property and end-to-end tests (cargo test, with the fuzzing feature)
	$(CARGO) test --locked --features fuzzing

# The libFuzzer flags of a target: its dictionary, fuzz/TARGET.dict, when there is one.
# Runs read the committed corpus fuzz/corpus/TARGET and add what they find to
# fuzz/target/corpus/TARGET (libFuzzer writes to the first directory), so the checkout stays clean.
fuzz_flags = $$(test -f fuzz/$(1).dict && echo -dict=fuzz/$(1).dict)

fuzz-tool: ## Install cargo-fuzz if it is missing (cargo install --locked cargo-fuzz)
	@$(CARGO) fuzz --version >/dev/null 2>&1 || { \
	    echo "fuzz-tool: cargo-fuzz is missing; installing it: $(CARGO) install --locked cargo-fuzz"; \
	    $(CARGO) install --locked cargo-fuzz || { \
	        echo "fuzz-tool: could not install cargo-fuzz; install it by hand" \
	             "(cargo install --locked cargo-fuzz) and run make again"; exit 1; }; }
	@# The fuzz crate's lock file must be current, so fuzz builds never rewrite it.
	@$(CARGO) fetch --locked --manifest-path fuzz/Cargo.toml >/dev/null 2>&1 || { \
	    echo "fuzz-tool: fuzz/Cargo.lock is out of date; run" \
	         "'$(CARGO) update --workspace --manifest-path fuzz/Cargo.toml' and commit it"; exit 1; }

fuzz: fuzz-tool ## Run every fuzz target for FUZZ_SECONDS (stable, no sanitizer), then fuzz-power
	@targets=$$($(CARGO) fuzz list) || { echo "fuzz: cargo fuzz list failed"; exit 1; }; \
	test -n "$$targets" || { echo "fuzz: cargo fuzz list named no target"; exit 1; }; \
	logs=fuzz/target/make-fuzz; rm -rf $$logs; mkdir -p $$logs; \
	for t in $$targets; do \
	    echo "fuzz: $$t for $(FUZZ_SECONDS)s"; \
	    mkdir -p fuzz/target/corpus/$$t; \
	    $(CARGO) fuzz run -s none $$t fuzz/target/corpus/$$t fuzz/corpus/$$t -- \
	        $(call fuzz_flags,$$t) -max_total_time=$(FUZZ_SECONDS) 2>&1 \
	        | tee $$logs/$$t.log | grep -E '^(Done|==== )' ; \
	    grep -q '^Done [0-9]* runs' $$logs/$$t.log || { \
	        tail -n 40 $$logs/$$t.log; echo "fuzz: $$t failed (log: $$logs/$$t.log)"; exit 1; }; \
	done; \
	ran=$$(grep -l '^Done [0-9]* runs' $$logs/*.log | wc -l); \
	test "$$ran" -eq "$$(echo $$targets | wc -w)" || { \
	    echo "fuzz: $$ran target(s) ran to the end, cargo fuzz list names: $$targets"; exit 1; }; \
	echo "fuzz: all $$ran target(s) ran:" $$targets
	@$(MAKE) --no-print-directory fuzz-power

fuzz-power: fuzz-tool ## The daemon target finds three reference-daemon faults in FUZZ_POWER_RUNS runs, and nothing in a correct one
	@sh fuzz/daemon_power.sh $(FUZZ_POWER_RUNS)

fuzz-daemon: fuzz-tool ## Fuzz a daemon until stopped, JOBS processes: make fuzz-daemon DAEMON='BIN --socket {socket}' [FAULT=name] [FUZZ_ARGS=…]
	@mkdir -p fuzz/target/corpus/daemon
	$(if $(DAEMON),STREAMCHECK_FUZZ_DAEMON='$(DAEMON)') $(if $(FAULT),STREAMCHECK_FUZZ_FAULT='$(FAULT)') \
	    $(CARGO) fuzz run -s none daemon fuzz/target/corpus/daemon fuzz/corpus/daemon -- \
	    -dict=fuzz/daemon.dict $(if $(filter-out 1,$(JOBS)),-fork=$(JOBS)) $(FUZZ_ARGS)

fuzz-regression: fuzz-tool ## Keep a daemon-target crash as a prop regression case: make fuzz-regression CRASH=FILE [DAEMON=…|FAULT=…]
	@test -n "$(CRASH)" || { echo "set CRASH to the crash file libFuzzer saved, e.g." \
	    "CRASH=fuzz/artifacts/daemon/crash-…"; exit 2; }
	@out=$$($(if $(DAEMON),STREAMCHECK_FUZZ_DAEMON='$(DAEMON)') $(if $(FAULT),STREAMCHECK_FUZZ_FAULT='$(FAULT)') \
	    STREAMCHECK_FUZZ_PERSIST='$(abspath proptest-regressions/prop-daemon.txt)' \
	    $(CARGO) fuzz run -s none daemon '$(abspath $(CRASH))' 2>&1); \
	echo "$$out" | grep -A2 '^regression case: ' || { echo "$$out" | tail -n 30; \
	    echo "fuzz-regression: $(CRASH) passed against this daemon; nothing kept (give the DAEMON or FAULT it failed against)"; exit 1; }

fuzz-cmin: fuzz-tool ## Minimise every target's corpus in place (cargo fuzz cmin), then commit fuzz/corpus
	@for t in $$($(CARGO) fuzz list); do \
	    echo "fuzz-cmin: $$t"; \
	    $(CARGO) fuzz cmin -s none $$t -- $(call fuzz_flags,$$t) || exit 1; \
	done

prop: build ## Generated streams against the reference daemon: make prop CASES=1000 SEED=7
	$(STREAMCHECK) prop --cases $(or $(CASES),200) $(if $(SEED),--seed $(SEED)) \
	    --daemon-cmd '$(abspath $(STREAMCHECK)) ref-daemon --socket {socket}'

bench: ## Parser and client benchmarks (figures go into the README)
	$(CARGO) bench --bench parser
	$(CARGO) build --release --locked
	sh benches/stress.sh $(STREAMCHECK)
	sh benches/hostile.sh $(STREAMCHECK)
	sh benches/capacity.sh $(STREAMCHECK)

mutation: build ## Table: fault mode of the reference daemon -> scenarios that caught it
	$(STREAMCHECK) mutation

readme: ## Regenerate README.md's scenario catalog and fault-mode table from the code
	STREAMCHECK_UPDATE_README=1 $(CARGO) test --locked --test readme_catalog --test suite_mutation
