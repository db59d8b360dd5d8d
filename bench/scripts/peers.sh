#!/usr/bin/env bash
# make bench-peers: Trustline's OCSP responder against the floor server,
# cfssl ocspserve v1.6.5 and openssl ocsp, one at a time, on the same
# certificates, each server pinned to CPU 0 and the load generator to CPU 1
# (taskset). Writes bench/results/peers.json and peers.md. docs/bench.md
# explains the method.
#
# cfssl is installed once with `go install` (through the Go module proxy)
# into $TRUSTLINE_BENCH_TOOLS (default ~/.cache/trustline-bench/bin).
# Extra arguments go to `trustline bench peers` (e.g. --duration 20s).
set -euo pipefail
cd "$(dirname "$0")/../.."

GO=${GO:-go}
BIN=${BIN:-./bin/trustline}
TOOLS=${TRUSTLINE_BENCH_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/trustline-bench/bin}
CFSSL_MODULE=github.com/cloudflare/cfssl
CFSSL_VERSION=v1.6.5

if [ ! -x "$BIN" ]; then
	echo "bench-peers: $BIN is missing; run make build" >&2
	exit 1
fi
if ! "$GO" version -m "$TOOLS/cfssl" 2>/dev/null | grep -Eq "mod[[:space:]]+$CFSSL_MODULE[[:space:]]+$CFSSL_VERSION"; then
	echo "bench-peers: installing cfssl $CFSSL_VERSION into $TOOLS" >&2
	mkdir -p "$TOOLS"
	GOBIN="$TOOLS" "$GO" install "$CFSSL_MODULE/cmd/cfssl@$CFSSL_VERSION"
fi
command -v taskset >/dev/null || { echo "bench-peers: taskset (util-linux) is needed to pin server and load" >&2; exit 1; }

exec "$BIN" bench peers --bin "$BIN" --cfssl "$TOOLS/cfssl" --openssl "$(command -v openssl || true)" "$@"
