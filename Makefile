# Trustline. `make run` starts the all-in-one dev process on the embedded
# default; `make test` runs the whole suite (see README.md for what it needs).

GO          ?= go
BIN         := bin/trustline
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
DEV_FLAGS   ?=

.PHONY: build run test test-short lint fmt bench clean

build:
	$(GO) build -trimpath -o $(BIN) ./cmd/trustline

run: build
	./$(BIN) dev $(DEV_FLAGS)

# The whole suite: unit, conformance (SQLite and PostgreSQL), SoftHSM2,
# Redis and real-client tests. Under CI=true a missing service fails.
test:
	$(GO) test -count=1 -timeout 20m ./...

# Unit tests only, without the race detector's cost or external services.
test-short:
	$(GO) test -short -count=1 ./...

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf bin
