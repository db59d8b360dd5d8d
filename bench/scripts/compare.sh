#!/usr/bin/env bash
# make bench-compare: the regression guard. Runs a fixed list of Go
# benchmarks, compares them with bench/baseline.txt through benchstat, and
# fails when one got significantly (p < 0.05) slower — sec/op up by more
# than MAX_SLOWDOWN percent — or allocates more: allocs/op up by at least
# one and by more than MAX_ALLOC_GROWTH percent (some benchmarks make fresh
# RSA keys, whose allocation count varies a little).
#
#   make bench-compare                 compare with the baseline
#   UPDATE=1 make bench-compare        rewrite bench/baseline.txt (do it on
#                                      the base commit, on the machine that
#                                      will compare; commit the file)
#
# Knobs: COUNT (runs per benchmark, default 6: benchstat needs ≥ 6 for a
# confidence interval), BENCHTIME (default 300ms), MAX_SLOWDOWN (default 20),
# MAX_ALLOC_GROWTH (default 5).
# Results: bench/results/compare-new.txt (raw) and compare.txt (benchstat).
set -euo pipefail
cd "$(dirname "$0")/../.."

GO=${GO:-go}
COUNT=${COUNT:-6}
BENCHTIME=${BENCHTIME:-300ms}
MAX_SLOWDOWN=${MAX_SLOWDOWN:-20}
MAX_ALLOC_GROWTH=${MAX_ALLOC_GROWTH:-5}
BASELINE=bench/baseline.txt
NEW=bench/results/compare-new.txt
BENCHSTAT=("$GO" run golang.org/x/perf/cmd/benchstat@latest)

# Package and -bench regexp, one pair per line. Fixed, so that runs compare:
# add to it (and update the baseline) rather than edit entries. Only
# benchmarks that need no service (PostgreSQL, Redis, SoftHSM) belong here.
LIST='
./internal/ocspcodec/ ^Benchmark(ParseRequest|DecodeGET|Sign)$
./responder/ ^BenchmarkAnswerL1Hit$
./responder/server/ ^BenchmarkHandler$
./responder/floor/ ^BenchmarkCompare$
./origin/ ^Benchmark(ConditionalGet|ConditionalGetModifiedSince|Get)$
./crlgen/crlenc/ ^BenchmarkEncode$/^10k$
./issuer/csrcheck/ ^BenchmarkCheck$
./issuer/presign/ ^BenchmarkSign$
./bench/ ^Benchmark(VerifyOCSP|RawConnParse|OCSPRoundTrip|HistogramRecord|BuildRequest)$
'

mkdir -p bench/results
: >"$NEW"
while read -r pkg re; do
	[ -n "$pkg" ] || continue
	echo "bench-compare: $pkg $re" >&2
	"$GO" test -run '^$' -bench "$re" -benchmem -count "$COUNT" -benchtime "$BENCHTIME" "$pkg" | grep -v '^ok\|^PASS' >>"$NEW"
done <<<"$LIST"

if [ "${UPDATE:-}" = 1 ]; then
	cp "$NEW" "$BASELINE"
	echo "bench-compare: wrote $BASELINE; commit it" >&2
	exit 0
fi

"${BENCHSTAT[@]}" "$BASELINE" "$NEW" | tee bench/results/compare.txt

# The guard reads benchstat's CSV: each table starts with a ",<unit>,…"
# row; then name, base, CI, new, CI, change, "p=… n=…".
"${BENCHSTAT[@]}" -format csv "$BASELINE" "$NEW" 2>/dev/null | awk -F, -v max="$MAX_SLOWDOWN" -v maxa="$MAX_ALLOC_GROWTH" '
	$1 == "" && $2 != "" { unit = $2; next }
	$1 == "" || $1 == "geomean" { next }
	{
		split($7, f, /[= ]/)
		if (f[1] != "p" || f[2] + 0 >= 0.05) next # not significant
		base = $2 + 0; new = $4 + 0
		if (unit == "sec/op" && base > 0 && new > base * (1 + max / 100)) {
			printf "REGRESSION %s: %s slower (%s)\n", $1, $6, $7; bad = 1
		}
		if (unit == "allocs/op" && new - base >= 1 && new > base * (1 + maxa / 100)) {
			printf "REGRESSION %s: %s → %s allocs/op (%s)\n", $1, $2, $4, $7; bad = 1
		}
	}
	END { exit bad }' || { echo "bench-compare: regressions against $BASELINE (see above)" >&2; exit 1; }
echo "bench-compare: no significant regression against $BASELINE (thresholds: ${MAX_SLOWDOWN}% sec/op, ${MAX_ALLOC_GROWTH}% allocs/op)" >&2
