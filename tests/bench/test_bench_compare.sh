#!/bin/sh
# test_bench_compare.sh SLUICE_BENCH — `sluice-bench compare` on hand-made
# runs: medians per side, the noise rule (a change within the measured
# run-to-run spread is not a regression, one beyond it is), a loss is always
# a regression, and bad input exits 2.
set -u
BENCH=$1
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail=0
run() { # run NAME WANT_RC ARGS...: checks the exit status
    name=$1 want=$2
    shift 2
    "$BENCH" compare "$@" >"$T/out" 2>&1
    rc=$?
    if [ "$rc" -ne "$want" ]; then
        echo "FAIL $name: exit $rc, want $want"
        cat "$T/out"
        fail=1
    else
        echo "ok   $name"
    fi
}
line() { # line MSGS_S P99_US LOST
    printf '{"workload":{"system":"sluice"},"produce_msgs_s":%s,"consume_msgs_s":%s,"e2e_p99_us":%s,"lost":%s}\n' \
        "$1" "$1" "$2" "$3"
}
has() { # has NAME PATTERN: the last output contains PATTERN
    if grep -q -- "$2" "$T/out"; then echo "ok   $1"; else
        echo "FAIL $1: no '$2' in"
        cat "$T/out"
        fail=1
    fi
}

# One run a side: the plain 10% threshold.
line 1000000 500 0 >"$T/old1"
line 950000 540 0 >"$T/new-5pct"
line 850000 500 0 >"$T/new-15pct"
run "5% slower is within 10%" 0 "$T/old1" "$T/new-5pct"
run "15% slower is a regression" 1 "$T/old1" "$T/new-15pct"
has "the regressed figure is named" "produce_msgs_s .*REGRESSION"
run "--threshold 20 admits 15%" 0 "$T/old1" "$T/new-15pct" --threshold 20
run "--threshold=1 catches 5%" 1 "$T/old1" "$T/new-5pct" --threshold=1

# Repeated runs: the old side spreads 800k..1.2M around a 1M median (40%),
# so a 15% drop of the median is noise, a 50% drop is not.
{ line 800000 500 0; line 1000000 500 0; line 1200000 500 0; } >"$T/old3"
{ line 850000 500 0; line 860000 500 0; line 840000 500 0; } >"$T/new3-15pct"
{ line 500000 500 0; line 510000 500 0; line 490000 500 0; } >"$T/new3-50pct"
run "15% within 40% noise" 0 "$T/old3" "$T/new3-15pct"
has "medians are compared" "produce_msgs_s  *1000000.0  *850000.0"
has "noise is reported" "40.0%"
run "50% beyond 40% noise" 1 "$T/old3" "$T/new3-50pct"
run "latency up 2x is a regression" 1 "$T/old1" "$(line 1000000 1000 0 >"$T/lat"; echo "$T/lat")"
run "a loss is a regression at any threshold" 1 "$T/old1" "$(line 1000000 500 3 >"$T/lost"; echo "$T/lost")" --threshold 1000

# Bad input.
run "missing file" 2 "$T/old1" "$T/nope"
printf 'not json\n' >"$T/garbage"
run "no JSON line" 2 "$T/old1" "$T/garbage"
run "one file only" 2 "$T/old1"
run "negative threshold" 2 "$T/old1" "$T/old1" --threshold -5
i=0
while [ $i -lt 65 ]; do line 1 1 0; i=$((i + 1)); done >"$T/many"
run "more than 64 runs" 2 "$T/many" "$T/old1"
exit $fail
