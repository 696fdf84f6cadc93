#!/usr/bin/env bash
# bench/cpu.sh - server CPU per relayed message, which stays stable on a shared machine where
# throughput does not: for each binary given (default: a copy of ./peerpigeon, built with
# `make -s peerpigeon`) and the floor (build/forwarder from bench/forwarder.c: unmask, memmem
# targetPeerId, forward; FLOOR=0 leaves it out), start it, run `load relay` against it, and
# divide the server's CPU time (utime + stime from /proc/<pid>/stat, read by load -P over
# exactly the measured window) by the offers delivered in that window. Each offer key order in
# ORDERS ("last": targetPeerId first, data last; "real": the npm client's order, targetPeerId
# after the data). Binaries are run in turn, ROUNDS times, so that a noisy neighbour hits them
# alike; the summary gives the mean per binary and order and its ratio to the floor.
# Usage: bash bench/cpu.sh [BIN...]   (env: PAIRS=50 WIN=4 DUR=4 ROUNDS=3 ORDERS="last real" FLOOR=1)
set -u
cd "$(dirname "$0")/.." || exit 1
PAIRS=${PAIRS:-50} WIN=${WIN:-4} DUR=${DUR:-4} ROUNDS=${ROUNDS:-3} ORDERS=${ORDERS:-last real}
mkdir -p build
cc -O2 -I. bench/load.c ws.c -o build/load || exit 1
BINS=("$@")
if [ ${#BINS[@]} = 0 ]; then
    make -s peerpigeon || exit 1
    cp peerpigeon build/peerpigeon-cpu   # a copy: others may rebuild ./peerpigeon
    BINS=(build/peerpigeon-cpu)
fi
FLOORBIN=
if [ "${FLOOR:-1}" != 0 ]; then
    if cc -O2 -I. bench/forwarder.c ws.c -o build/forwarder; then
        FLOORBIN=build/forwarder; BINS+=("$FLOORBIN")
    else
        echo "floor NOT measured: bench/forwarder.c did not build (above)"
    fi
fi
echo "relay $PAIRS pairs x $WIN in flight, ${DUR} s measured after a 1 s warm-up run; key orders: $ORDERS"
declare -A SUM CNT
for r in $(seq 1 "$ROUNDS"); do
    for bin in "${BINS[@]}"; do
        for k in $ORDERS; do
            port=$((40000 + RANDOM % 20000))
            PORT=$port HOST=127.0.0.1 MAX_CONNECTIONS=100000 LOG_LEVEL=warn RATE_LIMITS=false "$bin" 2>/dev/null &
            pid=$!
            for _ in $(seq 1 50); do curl -s "127.0.0.1:$port/health" >/dev/null 2>&1 && break; sleep 0.1; done
            ./build/load relay -p "$port" -n "$PAIRS" -w "$WIN" -d 1 -W 1 -k "$k" -t 30 >/dev/null
            out=$(./build/load relay -p "$port" -n "$PAIRS" -w "$WIN" -d "$DUR" -W 0 -k "$k" -t 60 -P "$pid")
            kill $pid; wait $pid 2>/dev/null
            rate=$(echo "$out" | sed -n 's/.* offers_per_s=\([0-9]*\).*/\1/p' | tail -1)
            us=$(echo "$out" | sed -n 's/.* server_us_per_msg=\([0-9.]*\).*/\1/p' | tail -1)
            if [ -z "$us" ]; then
                printf 'round %d  %-28s %-4s FAILED: %s\n' "$r" "$bin" "$k" "$(echo "$out" | tail -1)"
                continue
            fi
            printf 'round %d  %-28s %-4s %8d msgs/s  server %.2f us CPU per message\n' "$r" "$bin" "$k" "${rate:-0}" "$us"
            SUM[$bin,$k]=$(awk -v a="${SUM[$bin,$k]:-0}" -v b="$us" 'BEGIN { print a + b }')
            CNT[$bin,$k]=$(( ${CNT[$bin,$k]:-0} + 1 ))
        done
    done
done
echo
printf '%-28s %-5s %8s %12s %10s\n' "binary" "order" "rounds" "us CPU/msg" "/ floor"
for bin in "${BINS[@]}"; do
    for k in $ORDERS; do
        n=${CNT[$bin,$k]:-0}
        if [ "$n" = 0 ]; then printf '%-28s %-5s %8s %12s %10s\n' "$bin" "$k" 0 FAILED -; continue; fi
        m=$(awk -v a="${SUM[$bin,$k]}" -v n="$n" 'BEGIN { printf "%.2f", a / n }')
        f=-
        if [ -n "$FLOORBIN" ] && [ "${CNT[$FLOORBIN,$k]:-0}" != 0 ]; then
            f=$(awk -v a="$m" -v s="${SUM[$FLOORBIN,$k]}" -v n="${CNT[$FLOORBIN,$k]}" 'BEGIN { printf "%.2fx", a / (s / n) }')
        fi
        printf '%-28s %-5s %8d %12s %10s\n' "$bin" "$k" "$n" "$m" "$f"
    done
done
[ -n "$FLOORBIN" ] || echo "(no floor column: FLOOR=0 or the forwarder did not build)"
