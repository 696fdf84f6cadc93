#!/usr/bin/env bash
# bench/run.sh - build, start ./peerpigeon (and the JS reference server: when node or the npm
# package is missing it runs test/deps.sh, and says so if the server still is not there) on 127.0.0.1, run the relay / discover / idle modes of build/load against each and
# print a table (our server runs with RATE_LIMITS=false: the load generator sends far more per
# connection than a client may). Bounded: about 2-3 minutes. Usage: bash bench/run.sh  (from the repo root)
set -u
cd "$(dirname "$0")/.."
ulimit -n "$(ulimit -Hn)" 2>/dev/null
FD=$(ulimit -n)
make -s peerpigeon || exit 1
mkdir -p build
cc -O2 -I. bench/load.c ws.c -o build/load || exit 1
BIN=build/peerpigeon-bench; cp peerpigeon "$BIN"      # a copy: others may rebuild ./peerpigeon
JS=.deps/node_modules/peerpigeon/server/start.js
IDLE=$(( FD - 200 )); [ "$IDLE" -gt 50000 ] && IDLE=50000
JS_IDLE=$(( IDLE < 5000 ? IDLE : 5000 ))
PAIRS=${PAIRS:-50} WIN=${WIN:-16} DUR=${DUR:-8}
declare -A R
rss() { awk '/VmRSS/{print $2}' "/proc/$1/status"; }
field() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p" | tail -1; }

bench_one() { # name port pid idle_peers
    local n=$1 port=$2 pid=$3 k=$4 out
    R[$n,start]=$(rss "$pid")
    out=$(./build/load relay -p "$port" -n "$PAIRS" -w "$WIN" -d "$DUR" -W 2 -t 60)
    echo "$out" | sed "s/^/  [$n] /"
    R[$n,relay]=$(echo "$out" | field offers_per_s); R[$n,p50]=$(echo "$out" | field p50_us)
    R[$n,p99]=$(echo "$out" | field p99_us)
    out=$(./build/load relay -p "$port" -n 10 -w 1 -d 4 -W 1 -t 60)
    echo "$out" | sed "s/^/  [$n] /"
    R[$n,lrelay]=$(echo "$out" | field offers_per_s); R[$n,lp50]=$(echo "$out" | field p50_us)
    R[$n,lp99]=$(echo "$out" | field p99_us)
    out=$(./build/load discover -p "$port" -m 1000 -t 90)
    echo "$out" | sed "s/^/  [$n] /"
    R[$n,disc]=$(echo "$out" | field discovered_per_s)
}

idle_one() { # name port pid idle_peers: on a freshly started server (no heap left by other modes)
    local n=$1 port=$2 pid=$3 k=$4
    local before after f=build/idle.$n.out
    sleep 1; before=$(rss "$pid")
    ./build/load idle -p "$port" -m "$k" -g 100 -H 4 -t 120 > "$f" &
    local lp=$!
    for _ in $(seq 1 1200); do grep -q IDLE_READY "$f" 2>/dev/null && break; kill -0 $lp 2>/dev/null || break; sleep 0.1; done
    sleep 1; after=$(rss "$pid"); wait $lp
    sed "s/^/  [$n] /" "$f"
    R[$n,idle]=$k; R[$n,before]=$before; R[$n,after]=$after
    R[$n,bpp]=$(( (after - before) * 1024 / k ))
}

PORT=$(( 40000 + RANDOM % 10000 ))
echo "== peerpigeon-c (port $PORT, fd limit $FD)"
PORT=$PORT HOST=127.0.0.1 MAX_CONNECTIONS=100000 LOG_LEVEL=warn RATE_LIMITS=false "$BIN" 2>build/pp-bench.log &
PP=$!; sleep 0.5
bench_one c "$PORT" "$PP" "$IDLE"
kill $PP; wait $PP 2>/dev/null
PORT=$((PORT + 1))
PORT=$PORT HOST=127.0.0.1 MAX_CONNECTIONS=100000 LOG_LEVEL=warn RATE_LIMITS=false "$BIN" 2>>build/pp-bench.log &
PP=$!; sleep 0.5
idle_one c "$PORT" "$PP" "$IDLE"
kill $PP; wait $PP 2>/dev/null
SIZE=$(cp "$BIN" build/pp-stripped && strip build/pp-stripped && stat -c %s build/pp-stripped)

HAVE_JS=0
JS_WHY=
# the JS reference server comes with test/deps.sh (npm peerpigeon into .deps/; node via apt as root)
if ! command -v node >/dev/null || [ ! -f "$JS" ]; then
    echo "== JS reference server missing ($(command -v node >/dev/null || printf 'no node; ')$([ -f "$JS" ] || printf 'no %s' "$JS")): running bash test/deps.sh"
    bash test/deps.sh 2>&1 | sed 's/^/  /'
fi
if ! command -v node >/dev/null; then
    JS_WHY="node not installed"
elif [ ! -f "$JS" ]; then
    JS_WHY="$JS missing"
fi
if [ -n "$JS_WHY" ]; then
    echo "== JS reference server NOT measured: $JS_WHY; install it with: bash test/deps.sh (as root it also installs node/npm)"
else
    HAVE_JS=1; JPORT=$(( PORT + 11 ))
    echo "== JS reference server (port $JPORT; its console log goes to build/js-bench.log)"
    PORT=$JPORT HOST=127.0.0.1 MAX_CONNECTIONS=100000 node "$JS" > build/js-bench.log 2>&1 &
    JP=$!
    for _ in $(seq 1 50); do curl -s "127.0.0.1:$JPORT/health" >/dev/null 2>&1 && break; sleep 0.2; done
    bench_one js "$JPORT" "$JP" "$JS_IDLE"
    kill $JP; wait $JP 2>/dev/null
    JPORT=$((JPORT + 1))
    PORT=$JPORT HOST=127.0.0.1 MAX_CONNECTIONS=100000 node "$JS" >> build/js-bench.log 2>&1 &
    JP=$!
    for _ in $(seq 1 50); do curl -s "127.0.0.1:$JPORT/health" >/dev/null 2>&1 && break; sleep 0.2; done
    idle_one js "$JPORT" "$JP" "$JS_IDLE"
    kill $JP; wait $JP 2>/dev/null
fi

printf '\n%-34s %14s %14s\n' "metric" "peerpigeon-c" "JS server"
row() { printf '%-34s %14s %14s\n' "$1" "${R[c,$2]:-}" "$( [ $HAVE_JS = 1 ] && echo "${R[js,$2]:-}" || echo "-" )"; }
row "relay offers/s ($PAIRS pairs, win $WIN)" relay
row "  p50 latency us" p50
row "  p99 latency us" p99
row "relay offers/s (10 pairs, win 1)" lrelay
row "  p50 latency us" lp50
row "  p99 latency us" lp99
row "peer-discovered/s (1000 peers)" disc
row "idle peers held" idle
row "RSS before idle test kB (fresh)" before
row "RSS with idle peers kB" after
row "bytes per idle peer" bpp
row "RSS right after start kB" start
printf '%-34s %14s\n' "stripped binary bytes (-O2)" "$SIZE"
[ $HAVE_JS = 1 ] || echo "JS server column: not measured ($JS_WHY); bash test/deps.sh installs it"
