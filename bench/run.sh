#!/usr/bin/env bash
# bench/run.sh (= make bench) - build, then measure three servers side by side on 127.0.0.1
# with build/load: ours (./peerpigeon, copied, RATE_LIMITS=false: the load generator sends far
# more per connection than a client may), the floor (build/forwarder from bench/forwarder.c: a
# bare epoll forwarder that only unmasks and forwards, see its header) and the JS reference
# server (when node or the npm package is missing it runs test/deps.sh, and says why if the
# server still is not there). For each: relay 50 pairs x window 16 in two offer key orders
# ("last": targetPeerId first, data last; "real": the npm client's order, data before
# targetPeerId), relay 10 pairs x window 1, the discovery storm, and (ours and JS) idle memory
# on a fresh server. Each relay run also gives the server's CPU time per delivered offer
# (utime+stime from /proc/<pid>/stat over exactly the measured window, read by load -P).
# Ends with one table and the ratios ours/floor and ours/JS. About 4 minutes.
# Usage: bash bench/run.sh  (from anywhere; env PAIRS=50 WIN=16 DUR=8)
set -u
cd "$(dirname "$0")/.." || exit 1
ulimit -n "$(ulimit -Hn)" 2>/dev/null
FD=$(ulimit -n)
make -s peerpigeon || exit 1
mkdir -p build
cc -O2 -I. bench/load.c ws.c -o build/load || exit 1
BIN=build/peerpigeon-bench; cp peerpigeon "$BIN"      # a copy: others may rebuild ./peerpigeon
FLOOR=build/forwarder
FLOOR_WHY=
cc -O2 -I. bench/forwarder.c ws.c -o "$FLOOR" 2>build/forwarder.cc.log ||
    FLOOR_WHY="bench/forwarder.c did not build (build/forwarder.cc.log)"
JS=.deps/node_modules/peerpigeon/server/start.js
IDLE=$(( FD - 200 )); [ "$IDLE" -gt 50000 ] && IDLE=50000
JS_IDLE=$(( IDLE < 5000 ? IDLE : 5000 ))
PAIRS=${PAIRS:-50} WIN=${WIN:-16} DUR=${DUR:-8}
declare -A R
rss() { awk '/VmRSS/{print $2}' "/proc/$1/status"; }
field() { sed -n "s/.*[ ]$1=\([0-9.]*\).*/\1/p" | tail -1; }

relay_one() { # name port pid key prefix-of-result-keys, then load's relay arguments
    local n=$1 port=$2 pid=$3 k=$4 pre=$5 out
    shift 5
    out=$(./build/load relay -p "$port" "$@" -k "$k" -t 60 -P "$pid")
    echo "$out" | sed "s/^/  [$n] /"
    R[$n,${pre}relay]=$(echo "$out" | field offers_per_s)
    R[$n,${pre}p50]=$(echo "$out" | field p50_us)
    R[$n,${pre}p99]=$(echo "$out" | field p99_us)
    R[$n,${pre}cpu]=$(echo "$out" | field server_us_per_msg)
}

bench_one() { # name port pid
    local n=$1 port=$2 pid=$3 out
    R[$n,start]=$(rss "$pid")
    relay_one "$n" "$port" "$pid" last "" -n "$PAIRS" -w "$WIN" -d "$DUR" -W 2
    relay_one "$n" "$port" "$pid" real r -n "$PAIRS" -w "$WIN" -d "$DUR" -W 2
    relay_one "$n" "$port" "$pid" last l -n 10 -w 1 -d 4 -W 1
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

wait_http() { # port: until /health answers (at most 10 s)
    for _ in $(seq 1 50); do curl -s "127.0.0.1:$1/health" >/dev/null 2>&1 && return; sleep 0.2; done
}

PORT=$(( 40000 + RANDOM % 10000 ))
echo "== peerpigeon-c (port $PORT, fd limit $FD)"
PORT=$PORT HOST=127.0.0.1 MAX_CONNECTIONS=100000 LOG_LEVEL=warn RATE_LIMITS=false "$BIN" 2>build/pp-bench.log &
PP=$!; wait_http "$PORT"
bench_one c "$PORT" "$PP"
kill $PP; wait $PP 2>/dev/null
PORT=$((PORT + 1))
PORT=$PORT HOST=127.0.0.1 MAX_CONNECTIONS=100000 LOG_LEVEL=warn RATE_LIMITS=false "$BIN" 2>>build/pp-bench.log &
PP=$!; wait_http "$PORT"
idle_one c "$PORT" "$PP" "$IDLE"
kill $PP; wait $PP 2>/dev/null
SIZE=$(cp "$BIN" build/pp-stripped && strip build/pp-stripped && stat -c %s build/pp-stripped)

HAVE_FLOOR=0
if [ -n "$FLOOR_WHY" ]; then
    echo "== floor NOT measured: $FLOOR_WHY"; sed 's/^/  /' build/forwarder.cc.log
else
    HAVE_FLOOR=1; FPORT=$(( PORT + 5 ))
    echo "== floor: build/forwarder (port $FPORT; unmask, memmem targetPeerId, forward)"
    PORT=$FPORT HOST=127.0.0.1 "$FLOOR" 2>build/forwarder-bench.log &
    FP=$!; wait_http "$FPORT"
    bench_one floor "$FPORT" "$FP"
    kill $FP; wait $FP 2>/dev/null
    R[floor,size]=$(cp "$FLOOR" build/forwarder-stripped && strip build/forwarder-stripped && stat -c %s build/forwarder-stripped)
fi

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
    JP=$!; wait_http "$JPORT"
    bench_one js "$JPORT" "$JP"
    kill $JP; wait $JP 2>/dev/null
    JPORT=$((JPORT + 1))
    PORT=$JPORT HOST=127.0.0.1 MAX_CONNECTIONS=100000 node "$JS" >> build/js-bench.log 2>&1 &
    JP=$!; wait_http "$JPORT"
    idle_one js "$JPORT" "$JP" "$JS_IDLE"
    kill $JP; wait $JP 2>/dev/null
fi

# the table: a value, "-" for a server not measured (said why below), "n/a" for what the floor
# does not do, FAILED for a run that gave nothing (its output is above)
val() { # server key
    local s=$1 k=$2
    case $s in
    floor) [ $HAVE_FLOOR = 1 ] || { echo "-"; return; }
           case $k in idle|before|after|bpp) echo "n/a"; return;; esac;;
    js) [ $HAVE_JS = 1 ] || { echo "-"; return; };;
    esac
    echo "${R[$s,$k]:-FAILED}"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a ~ /^[0-9.]+$/ && b ~ /^[0-9.]+$/ && b > 0) printf "%.2f", a / b; else printf "-" }'; }
W='%-44s %13s %13s %13s %10s %10s\n'
printf "\n$W" "metric" "peerpigeon-c" "floor" "JS server" "ours/floor" "ours/JS"
row() { # label key
    local c f j
    c=$(val c "$2"); f=$(val floor "$2"); j=$(val js "$2")
    printf "$W" "$1" "$c" "$f" "$j" "$(ratio "$c" "$f")" "$(ratio "$c" "$j")"
}
row "relay offers/s ($PAIRS pairs, win $WIN, data last)" relay
row "  p50 latency us" p50
row "  p99 latency us" p99
row "  server CPU us per relayed offer" cpu
row "relay offers/s ($PAIRS pairs, win $WIN, real order)" rrelay
row "  p50 latency us" rp50
row "  p99 latency us" rp99
row "  server CPU us per relayed offer" rcpu
row "relay offers/s (10 pairs, win 1, data last)" lrelay
row "  p50 latency us" lp50
row "  p99 latency us" lp99
row "  server CPU us per relayed offer" lcpu
row "peer-discovered/s (1000 peers)" disc
row "idle peers held" idle
row "RSS before idle test kB (fresh)" before
row "RSS with idle peers kB" after
row "bytes per idle peer" bpp
row "RSS right after start kB" start
printf "$W" "stripped binary bytes (-O2)" "$SIZE" "$( [ $HAVE_FLOOR = 1 ] && echo "${R[floor,size]}" || echo -)" "-" "$(ratio "$SIZE" "${R[floor,size]:-}")" "-"
echo
echo "key orders: \"data last\" = {type,targetPeerId,networkName,data} (load -k last); \"real\" = the npm"
echo "  client's {type,data,maxPeers,networkName,targetPeerId} (load -k real), targetPeerId after 2.8 KB"
echo "server CPU: utime+stime of the server process over the measured window / offers delivered in it"
echo "floor: relay and discovery only (no idle test: it is not a server to deploy); minimal"
echo "  peer-discovered messages and no fromPeerId, so its discovery figure is a floor as well"
if [ $HAVE_FLOOR = 1 ]; then
    for k in cpu rcpu; do
        r=$(ratio "$(val c $k)" "$(val floor $k)")
        [ "$r" != - ] && echo "ours / floor, CPU per relayed offer ($([ $k = cpu ] && echo data last || echo real order)): ${r}x"
    done
else
    echo "floor column: not measured ($FLOOR_WHY)"
fi
if [ $HAVE_JS = 1 ]; then
    for k in relay rrelay; do
        r=$(ratio "$(val c $k)" "$(val js $k)")
        [ "$r" != - ] && echo "ours / JS, relay throughput ($([ $k = relay ] && echo data last || echo real order)): ${r}x"
    done
else
    echo "JS server column: not measured ($JS_WHY); bash test/deps.sh installs it"
fi
