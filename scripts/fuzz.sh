#!/usr/bin/env bash
# Runs every fuzz target of the module for FUZZTIME each (`make fuzz`,
# docs/fuzzing.md). Targets are found with `go test -list '^Fuzz'`, so a
# new FuzzXxx is picked up without editing this file. Stops at the first
# target that fails (its input is then in the package's
# testdata/fuzz/<Target>/) and prints each target's exec count.
#
#   GO        the go command (default go)
#   FUZZTIME  per target: a duration (10s, 10m) or a count of execs (5000x)
#   FUZZPKGS  packages to search (default ./...)
#   FUZZMINIMIZETIME  how long the fuzzer may minimise an input (default
#             5s): Go's 60s default can spend a short run minimising one
#             input of a slow target
set -euo pipefail
cd "$(dirname "$0")/.."

GO=${GO:-go}
FUZZTIME=${FUZZTIME:-10s}
FUZZPKGS=${FUZZPKGS:-./...}
FUZZMINIMIZETIME=${FUZZMINIMIZETIME:-5s}

log() { printf 'fuzz: %s\n' "$*"; }

# `go test -list` prints each package's matching names, then "ok <pkg>".
list=$(mktemp)
out=$(mktemp)
trap 'rm -f "$list" "$out"' EXIT
# shellcheck disable=SC2086 # FUZZPKGS may name several patterns
if ! "$GO" test -list '^Fuzz' $FUZZPKGS >"$list" 2>&1; then
  cat "$list"
  log "listing the fuzz targets failed"
  exit 1
fi
targets=()
names=()
while IFS= read -r line; do
  case "$line" in
    Fuzz*) names+=("$line") ;;
    ok*)
      pkg=$(awk '{print $2}' <<<"$line")
      for n in "${names[@]}"; do targets+=("$pkg $n"); done
      names=()
      ;;
  esac
done <"$list"
log "${#targets[@]} targets, $FUZZTIME each"

summary=()
for t in "${targets[@]}"; do
  read -r pkg name <<<"$t"
  log "$name ($pkg)"
  ok=0
  for try in 1 2; do
    if "$GO" test -run '^$' -fuzz "^${name}\$" -fuzztime "$FUZZTIME" -fuzzminimizetime "$FUZZMINIMIZETIME" "$pkg" >"$out" 2>&1; then
      ok=1
      break
    fi
    # The go command can report "context deadline exceeded" when -fuzztime
    # ends while a worker is still minimising an input: no input failed,
    # none was written. Such a run is tried once more, then let through
    # with a warning; a real failure always writes its input.
    if grep -q 'Failing input written to' "$out" || ! grep -q 'context deadline exceeded' "$out"; then
      break
    fi
    log "$name: the fuzzing run ended on its deadline while minimising (no failing input); try $try of 2"
    if [ "$try" = 2 ]; then
      ok=1
    fi
  done
  if [ "$ok" != 1 ]; then
    cat "$out"
    log "FAIL $name ($pkg): the failing input is under $(sed 's|^github.com/trustline/trustline|.|' <<<"$pkg")/testdata/fuzz/$name/"
    exit 1
  fi
  # A short run may end while the seed corpus is still being measured:
  # then there is no exec count, and "?" is printed.
  execs=$( (grep -o 'execs: [0-9]*' "$out" || true) | tail -n1 | awk '{print $2}')
  summary+=("$(printf '%-12s %-28s %s' "${execs:-?}" "$name" "$pkg")")
  log "ok $name: ${execs:-?} execs"
done

log "every target passed; execs per target:"
printf '  %s\n' "${summary[@]}"
