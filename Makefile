# krustlet-go developer entry points. `make help` lists them.

GO            ?= go
BIN           := bin
DEV_DIR       ?= .krustlet-dev
VERSION       ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo v0.0.0-dev)
COMMIT        ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
BUILD_DATE    ?= $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
VERSION_PKG   := github.com/krustlet/krustlet-go/pkg/version
LDFLAGS       := -X $(VERSION_PKG).gitVersion=$(VERSION) -X $(VERSION_PKG).gitCommit=$(COMMIT) -X $(VERSION_PKG).buildDate=$(BUILD_DATE)
STATICCHECK   := honnef.co/go/tools/cmd/staticcheck@v0.8.2
# End-to-end tests bring up a real control plane; the first run builds it.
TEST_TIMEOUT  ?= 45m

.PHONY: help deps build up down status test test-unit lint clean

help: ## Show this help.
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

deps: ## Install what the local cluster and the tests need from Debian (a CNCF distribution registry; containerd, runc and CNI plugins).
	@need=""; \
	command -v docker-registry >/dev/null || need="$$need docker-registry"; \
	PATH="$$PATH:/usr/sbin:/sbin"; \
	command -v containerd >/dev/null || need="$$need containerd"; \
	command -v runc >/dev/null || need="$$need runc"; \
	[ -x /usr/lib/cni/bridge ] || [ -x /opt/cni/bin/bridge ] || need="$$need containernetworking-plugins"; \
	command -v ip >/dev/null || need="$$need iproute2"; \
	if [ -n "$$need" ]; then \
	  echo "installing Debian's$$need (the registry of make up and the tests; the CRI tests' runtime)"; \
	  DEBIAN_FRONTEND=noninteractive apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$need; \
	fi

build: ## Build bin/krustlet (cgo: wasmtime-go links its static library).
	CGO_ENABLED=1 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/krustlet ./cmd/krustlet

$(BIN)/devcluster: FORCE
	$(GO) build -o $@ ./hack/devcluster

up: deps build $(BIN)/devcluster ## Start the local cluster on loopback (builds the control plane on first use).
	$(BIN)/devcluster up --dir $(DEV_DIR)

down: $(BIN)/devcluster ## Stop everything `make up` started.
	$(BIN)/devcluster down --dir $(DEV_DIR)

status: $(BIN)/devcluster ## Say whether the local cluster runs.
	$(BIN)/devcluster status --dir $(DEV_DIR)

test: deps lint ## Lint, then run every test: unit and end to end (real control plane).
	$(GO) test -count=1 -timeout $(TEST_TIMEOUT) ./...

test-unit: ## Run the unit tests only (no control plane).
	$(GO) test -short -count=1 ./...

lint: ## gofmt, go vet and staticcheck.
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

# Benchmarks against kwok (hack/bench, a module of its own; kwok is built
# from hack/kwok and cached like the control plane).
BENCH_OUT       ?= docs/bench
BENCH_SMOKE_OUT ?= _bench/smoke

.PHONY: bench bench-smoke

bench: ## Benchmarks side by side with kwok (~15 min): writes docs/bench (report.md, results.json, PNGs).
	cd hack/bench && GOWORK=off $(GO) run . -out $(CURDIR)/$(BENCH_OUT)

bench-smoke: ## Every benchmark scenario with small numbers (~3 min); fails only if a scenario errors.
	cd hack/bench && GOWORK=off $(GO) run . -smoke -out $(CURDIR)/$(BENCH_SMOKE_OUT)

clean: ## Remove build output (not the cached control-plane binaries).
	rm -rf $(BIN)

FORCE:
