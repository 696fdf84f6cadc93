#!/usr/bin/env bash
# bench/cpu.sh - server CPU per relayed message, which stays stable on a shared machine where
# throughput does not: for each binary given, start it, run `load relay` against it, and divide
# the server's CPU time (utime + stime from /proc, warm-up included in neither) by the messages
# delivered. Binaries are run in turn, ROUNDS times, so that a noisy neighbour hits them alike.
# Usage: bash bench/cpu.sh BIN [BIN...]   (env: PAIRS=50 WIN=4 DUR=4 ROUNDS=3)
set -u
cd "$(dirname "$0")/.."
PAIRS=${PAIRS:-50} WIN=${WIN:-4} DUR=${DUR:-4} ROUNDS=${ROUNDS:-3}
mkdir -p build
cc -O2 -I. bench/load.c ws.c -o build/load || exit 1
TCK=$(getconf CLK_TCK)
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
for r in $(seq 1 "$ROUNDS"); do
    for bin in "$@"; do
        port=$((40000 + RANDOM % 20000))
        PORT=$port HOST=127.0.0.1 MAX_CONNECTIONS=100000 LOG_LEVEL=warn RATE_LIMITS=false "$bin" 2>/dev/null &
        pid=$!
        sleep 0.4
        # warm-up run, then the measured one between two readings of the server's CPU time
        ./build/load relay -p "$port" -n "$PAIRS" -w "$WIN" -d 1 -W 1 -t 30 >/dev/null
        t0=$(ticks $pid)
        out=$(./build/load relay -p "$port" -n "$PAIRS" -w "$WIN" -d "$DUR" -W 0 -t 60)
        t1=$(ticks $pid)
        kill $pid; wait $pid 2>/dev/null
        msgs=$(echo "$out" | sed -n 's/.*delivered=\([0-9]*\).*/\1/p' | tail -1)
        rate=$(echo "$out" | sed -n 's/.*offers_per_s=\([0-9]*\).*/\1/p' | tail -1)
        # the load generator counts what the server delivered in the measured window; the
        # server's CPU time also covers the connection set-up of that run (small next to it)
        awk -v b="$bin" -v r="$r" -v t=$((t1 - t0)) -v hz="$TCK" -v m="${msgs:-0}" -v q="${rate:-0}" \
            'BEGIN { printf "round %d  %-36s %8d msgs/s  server %.2f us CPU per message\n", r, b, q, m ? t * 1e6 / hz / m : 0 }'
    done
done
