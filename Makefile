# egressd — the two commands of the quick start are `make run` and `make test`.
GO        ?= go
export GOTOOLCHAIN := local
BIN       ?= bin/egressd
VERSION   ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X main.version=$(VERSION)
FUZZTIME  ?= 30s
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.6.1

.PHONY: build run test test-ci lint fuzz bench docker clean

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/egressd

# Runs egressd with the embedded development config: proxy on
# 127.0.0.1:3128 (PROXY header optional), admin on 127.0.0.1:9090.
run: build
	./$(BIN)

# The whole suite with the race detector, in random order; fuzz targets
# run their committed corpora as ordinary tests.
test:
	$(GO) vet ./...
	$(GO) test -race -shuffle=on -timeout 20m ./...

lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

# Each fuzz target for FUZZTIME; fails if a package lists no targets.
fuzz:
	@set -e; for pkg in ./acl ./proxy ./tlsinspect ./internal/config ./inject; do \
		targets=$$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); \
		[ -n "$$targets" ] || { echo "no fuzz targets in $$pkg"; exit 1; }; \
		for t in $$targets; do echo "== $$pkg $$t"; $(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) $$pkg; done; \
	done

# Side-by-side load test: egressd vs Squid vs a plain splice relay; writes bench/RESULTS.md.
bench:
	bash bench/compare.sh

# The Dockerfile's ARG VERSION stamps the binary, as make build does.
docker:
	docker build --build-arg VERSION=$(VERSION) -t egressd:$(VERSION) .

clean:
	rm -rf bin

# Renders every kustomization under deploy/ with kubectl and validates it:
# strict decoding plus the cross-checks in deploy/deploycheck. `make test`
# runs the same package.
.PHONY: deploy-check
deploy-check:
	$(GO) test -count=1 ./deploy/deploycheck/...

# The data-integrity soak for 10 minutes with the race detector: tunnels,
# uploads and downloads checked by sha256 while the policy reloads and one
# upstream fails, then a drain mid-traffic. `make test` runs a 5s version.
.PHONY: soak
soak:
	EGRESSD_SOAK=10m $(GO) test -race -count=1 -run 'TestRelSoak' -timeout 15m -v ./proxy/
