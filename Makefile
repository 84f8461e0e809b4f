# meterd — run `make help` for the targets.

GO          ?= go
BIN         := bin
VERSION     := $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS     := -X main.version=$(VERSION)
LINT        := $(BIN)/golangci-lint
LINT_VER    := v2.15.0
TEST_FLAGS  ?= -timeout 20m
BENCH_FLAGS ?= -p 1 -run '^$$' -bench . -benchmem -count 1 -timeout 60m

.DEFAULT_GOAL := help

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: run
run: build ## Run everything locally: private PostgreSQL, migrations, API, jobs (Ctrl-C stops).
	@.ci/install-deps run
	@exec $(BIN)/meterd dev

.PHONY: build
build: ## Build bin/meterd (and the other binaries under cmd).
	@mkdir -p $(BIN)
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/ ./cmd/...

.PHONY: test
test: ## Run go vet, the whole test suite (starts its own PostgreSQL clusters) and a short fuzz of every decoder and parser.
	$(GO) vet ./...
	$(GO) test $(TEST_FLAGS) ./...
	@$(MAKE) --no-print-directory fuzz FUZZTIME=4s

.PHONY: test-race
test-race: ## Run the test suite with the race detector.
	$(GO) test -race $(TEST_FLAGS) ./...

.PHONY: bench
bench: ## Run the benchmarks one package at a time (so they do not compete for the cores); each reports its figure next to a same-run baseline.
	$(GO) test $(BENCH_FLAGS) ./...

# Go 1.26's fuzz coordinator can fail a target with a bare "context deadline
# exceeded" as -fuzztime runs out, having found nothing (golang/go#75804, fixed
# in Go 1.27). A run that fails that way and wrote no failing input is reported
# and passes; any other failure, and every failing input, fails the target.
.PHONY: fuzz
fuzz: ## Fuzz every Fuzz target for FUZZTIME each (default 20s).
	@for d in $$(grep -rlE '^func Fuzz' --include='*_test.go' . | xargs -n1 dirname | sort -u); do \
		for f in $$(grep -hoE '^func Fuzz[A-Za-z0-9_]+' $$d/*_test.go | cut -d' ' -f2); do \
			echo "fuzz $$d $$f for $${FUZZTIME:-20s}"; \
			out=$$($(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $${FUZZTIME:-20s} $$d 2>&1); rc=$$?; \
			echo "$$out"; \
			if [ $$rc -ne 0 ]; then \
				if printf '%s\n' "$$out" | grep -qx -- "--- FAIL: $$f ([0-9.]*s)" && \
				   printf '%s\n' "$$out" | grep -qx '    context deadline exceeded' && \
				   ! printf '%s\n' "$$out" | grep -q 'Failing input written'; then \
					echo "fuzz $$d $$f: the fuzz coordinator's own deadline race (golang/go#75804), no failing input: not a finding"; \
				else exit 1; fi; \
			fi; \
		done; \
	done

.PHONY: lint
lint: $(LINT) ## Run golangci-lint (installed into bin/ on first use).
	$(LINT) run ./...

$(LINT):
	@mkdir -p $(BIN)
	GOBIN=$(CURDIR)/$(BIN) GOFLAGS= $(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(LINT_VER)

.PHONY: portal-assets
portal-assets: ## Refresh the web portal's vendored htmx and uPlot from npm (commit the result).
	$(GO) generate ./api/portal

.PHONY: fmt
fmt: ## Format the code (gofmt).
	gofmt -w $$(git ls-files '*.go')

.PHONY: db-reset
db-reset: ## Delete the private dev cluster and its data (.meterd).
	rm -rf .meterd
	@echo "removed .meterd; the next 'make run' starts from an empty database"

.PHONY: clean
clean: ## Remove build output.
	rm -rf $(BIN)
