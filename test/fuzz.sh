#!/usr/bin/env bash
# Runs each libFuzzer target for FUZZ_SECONDS (default 5) from the unit tests' seeds upward;
# one pass per target that finds nothing. Needs clang; without it, says so and fails.
set -u
cd "$(dirname "$0")/.."
secs=${FUZZ_SECONDS:-5}
command -v clang >/dev/null || { echo "FAIL clang not found"; echo "0 passed, 1 failed"; exit 1; }
pass=0 fail=0
mkdir -p build
for m in ws http json dns peer; do
    srcs="test/fuzz_$m.c $m.c"
    [ "$m" = http ] && srcs="$srcs json.c"
    [ "$m" = peer ] && srcs="$srcs hub.c dns.c json.c ws.c http.c"
    if ! clang -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined -I. \
        -o "build/fuzz_$m" $srcs; then
        echo "FAIL fuzz_$m does not build"; fail=$((fail + 1)); continue
    fi
    if "./build/fuzz_$m" -max_total_time="$secs" -max_len=4096 -print_final_stats=0 \
        -artifact_prefix=build/ >"build/fuzz_$m.log" 2>&1; then
        pass=$((pass + 1))
    else
        echo "FAIL fuzz_$m found a crash:"; tail -30 "build/fuzz_$m.log"; fail=$((fail + 1))
    fi
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
