# Trustline. `make run` starts the all-in-one dev process on the embedded
# default; `make test` runs the whole suite (see README.md for what it needs).

GO          ?= go
BIN         := bin/trustline
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
DEV_FLAGS   ?=

.PHONY: build run plant test test-short test-race fuzz lint fmt bench bench-scale bench-chaos bench-chaos-plant bench-chaos-postgres bench-peers bench-compare clean

VERSION    ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT     ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
BUILD_DATE ?= $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
LDFLAGS    := -X main.version=$(VERSION) -X main.commit=$(COMMIT) -X main.buildDate=$(BUILD_DATE)

build:
	$(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/trustline

run: build
	./$(BIN) dev $(DEV_FLAGS)

# A whole plant on loopback: PostgreSQL, a Redis Cluster, every role
# twice or more, Varnish in front (docs/deployment.md). Ctrl-C stops it.
plant: build
	BIN=./$(BIN) deploy/plant/plant.sh

# The whole suite: unit, conformance (SQLite and PostgreSQL), SoftHSM2,
# Redis and real-client tests. Under CI=true a missing service fails.
# TestAgreesWithWrk compares two load generators' figures: it runs on its
# own, after the rest, because other test packages competing for the CPU
# skew one generator more than the other.
test:
	$(GO) test -count=1 -timeout 20m -skip '^TestAgreesWithWrk$$' ./...
	$(GO) test -count=1 -timeout 5m -run '^TestAgreesWithWrk$$' ./bench/

# Unit tests only, without external services.
test-short:
	$(GO) test -short -count=1 ./...

# The whole suite under the race detector (~5 minutes on 2 cores).
test-race:
	$(GO) test -race -count=1 -timeout 30m ./...

# Every fuzz target in the module, FUZZTIME each (found by go test -list,
# so new ones need no edit here); stops at the first failure, whose input
# lands in that package's testdata/fuzz/<Target>/. FUZZPKGS narrows the
# search. About 15 minutes at 10s on 2 cores. See docs/fuzzing.md.
FUZZTIME ?= 10s
FUZZPKGS ?= ./...
fuzz:
	GO=$(GO) FUZZTIME=$(FUZZTIME) FUZZPKGS="$(FUZZPKGS)" scripts/fuzz.sh

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

fmt:
	gofmt -w $$(git ls-files '*.go')

# The standard load suite (≤ 10 minutes): writes bench/results/latest.json
# and latest.md with plots. See docs/bench.md.
bench: build
	./$(BIN) bench suite --bin ./$(BIN) --out bench/results --name latest

# Trustline fed N certificates (default one million; about 4 minutes on 2
# cores): populate, warm rebuild into a private Redis, OCSP over the whole
# set and a hot set, a revocation storm, resources. Writes
# bench/results/scale-N.{json,md}. See docs/bench.md.
N ?= 1000000
bench-scale: build
	./$(BIN) bench scale --bin ./$(BIN) --certs $(N) --out bench/results --name scale-$(N)

# Redis killed, restarted empty and flushed under the open-loop OCSP mix
# (docs/bench.md): bench/results/chaos-redis.{json,md}.
bench-chaos: build
	./$(BIN) bench chaos --bin ./$(BIN) --out bench/results --name chaos-redis

# The same Redis schedule against a plant (the production roles as
# separate processes; the pre-signer with one worker, leaving the other
# core to the responder as a machine of its own would): about 2 minutes,
# bench/results/chaos-redis-plant-w1.{json,md}.
bench-chaos-plant: build
	./$(BIN) bench chaos --bin ./$(BIN) --plant --presign-workers 1 --out bench/results --name chaos-redis-plant-w1

# The store (a private PostgreSQL server) hung for 30 s, then killed and
# restarted after 30 s, under OCSP, issuance and revocation load (about
# 6 minutes): bench/results/chaos-postgres-{stop,kill}.{json,md}.
bench-chaos-postgres: build
	./$(BIN) bench chaos --bin ./$(BIN) --out bench/results --name chaos-postgres-stop --duration 50s \
		--schedule 5s:stop:postgres,35s:cont:postgres --issue-rate 5 --revoke-rate 1
	./$(BIN) bench chaos --bin ./$(BIN) --out bench/results --name chaos-postgres-kill --duration 50s \
		--schedule 5s:kill:postgres,35s:start:postgres --issue-rate 5 --revoke-rate 1

# Trustline against the floor server, cfssl ocspserve v1.6.5 and openssl
# ocsp, in one run on the same pinning: bench/results/peers.{json,md}.
bench-peers: build
	BIN=./$(BIN) GO=$(GO) bench/scripts/peers.sh

# Go benchmarks against bench/baseline.txt through benchstat.
bench-compare:
	GO=$(GO) bench/scripts/compare.sh

clean:
	rm -rf bin
