#!/usr/bin/env bash
# test/proxy.sh - peerpigeon-c behind the two TLS proxies of deploy/: nginx (deploy/nginx.conf)
# and Caddy (deploy/Caddyfile), each on 127.0.0.1 and ::1, checked with the real npm client
# (test/smoke.js) over wss:// with a throwaway CA.
#
#  - installs Debian's nginx and caddy when missing (root + apt only; never starts their system
#    services: a policy-rc.d that refuses is put in place for the install when there is none);
#    a proxy that cannot be had is a FAIL, never a silent pass
#  - openssl: a CA and a server certificate for localhost, 127.0.0.1 and ::1, in a temp dir
#  - two servers ($PP_BIN, default build/peerpigeon-asan) with AUTH_TOKEN=secret, as hubs: S1,
#    and S2 which dials S1 (ws://, direct); nginx proxies to S1, Caddy to S2
#  - the proxy configs are the deploy/ files with their placeholders replaced (ports, certificate
#    paths, log paths, upstream); nginx runs with its own prefix, pid and logs in the temp dir
#    (never /etc/nginx), Caddy with admin off and its storage and home in the temp dir
#  - per proxy and address family: test/smoke.js wss://...?token=secret --ca (connect, discovery
#    both ways, offer/answer, leave seen), GET /health = 200; the token in a header
#    (--token); a wrong token is a 401 through the proxy; without --ca the certificate is refused;
#    across the proxies: a client on each hub; nginx's port-80 server redirects to https; an
#    idle WebSocket outlives nginx's proxy_read_timeout (cut to 5 s, S1 pinging every 2 s)
#  - the access logs of both proxies (and nginx's http-level default log and error log, and the
#    servers' logs) hold no token; the servers exit 0 on SIGTERM, sanitizer-clean
# Every process and the temp dir are cleaned up on exit. Last line: "N passed, N failed".
# Env: PP_BIN (server binary), NODE_PATH, PP_NO_IPV6=1 (act as if ::1 were missing), PP_KEEP=1
# (keep the temp dir with every config and log), PP_VERBOSE=1 (print the logs at the end).
set -u
cd "$(dirname "$0")/.."
ROOT=$PWD
PP_BIN=${PP_BIN:-$ROOT/build/peerpigeon-asan}
export NODE_PATH=${NODE_PATH:-$ROOT/.deps/node_modules}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
TOKEN=secret
SMOKE_TIMEOUT=15

pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok   $*"; }
bad() { fail=$((fail + 1)); echo "FAIL $*"; }
note() { echo "NOTE $*"; }
# check "what" command...: ok if the command succeeds
check() { local what=$1; shift; if "$@"; then ok "$what"; else bad "$what"; return 1; fi; }
match() { [[ $1 =~ $2 ]]; } # match STRING REGEX
has() { command -v "$1" >/dev/null; }

T=$(mktemp -d /tmp/pp-proxy.XXXXXX)
chmod 755 "$T" # nginx workers (user nobody) may need to traverse to their temp dirs
PIDS=()
POLICY_RC_TMP=
cleanup() {
    local p i
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
    for p in "${PIDS[@]}"; do
        for i in $(seq 30); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$p" 2>/dev/null
        wait "$p" 2>/dev/null
    done
    [ -n "$POLICY_RC_TMP" ] && rm -f /usr/sbin/policy-rc.d
    if [ -n "${PP_KEEP:-}" ]; then echo "NOTE kept $T"; else rm -rf "$T"; fi
}
trap cleanup EXIT
trap 'echo "FAIL interrupted (signal, or the 150 s watchdog)"; echo "$pass passed, $((fail + 1)) failed"; exit 130' INT TERM
# the whole suite is bounded: a watchdog ends it after 150 s (it normally takes ~15 s)
# (its output goes nowhere: a sleep left holding stdout would keep a caller's $(...) waiting)
( trap 'kill "$s" 2>/dev/null; exit 0' TERM; sleep 150 & s=$!; wait "$s" && kill -TERM $$ ) >/dev/null 2>&1 &
WATCHDOG=$!
PIDS+=("$WATCHDOG")

finish() {
    echo "$pass passed, $fail failed"
    [ "$fail" -eq 0 ]
    exit $?
}

# ---- tools ---------------------------------------------------------------------------------
# apt_get PKG...: install with apt when root on Debian, without starting any service
APT_UPDATED=
apt_get() {
    [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null || return 1
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && POLICY_RC_TMP=1
    fi
    echo "proxy: apt-get install $*"
    { [ -n "$APT_UPDATED" ] || timeout 60 apt-get update -qq; } && APT_UPDATED=1 &&
        DEBIAN_FRONTEND=noninteractive timeout 120 apt-get install -y -qq "$@" > "$T/apt.log" 2>&1
    local rc=$?
    [ "$rc" -eq 0 ] || tail -5 "$T/apt.log"
    if [ -n "$POLICY_RC_TMP" ]; then rm -f /usr/sbin/policy-rc.d; POLICY_RC_TMP=; fi
    return "$rc"
}
# has_candidate PKG: apt knows a version of PKG
has_candidate() { apt-cache policy "$1" 2>/dev/null | grep -q 'Candidate: [0-9]'; }
# need CMD PKG...: CMD exists, or the first PKG apt has is installed
need() {
    local cmd=$1 p
    shift
    command -v "$cmd" >/dev/null && return 0
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
        echo "proxy: $cmd missing and not root on Debian: cannot install ${*}"
        return 1
    fi
    for p in "$@"; do
        if ! has_candidate "$p"; then [ -n "$APT_UPDATED" ] || { timeout 60 apt-get update -qq; APT_UPDATED=1; }; fi
        if has_candidate "$p"; then apt_get "$p" && command -v "$cmd" >/dev/null && return 0; fi
        echo "proxy: package $p not available (apt-cache policy $p)"
    done
    return 1
}

HAVE_NGINX=1
HAVE_CADDY=1
check "nginx available (installed: Debian package nginx or nginx-light)" need nginx nginx nginx-light || HAVE_NGINX=
check "caddy available (installed: Debian package caddy)" need caddy caddy || HAVE_CADDY=
check "openssl available" has openssl || finish
check "node available" has node || finish
check "npm client installed (NODE_PATH=$NODE_PATH; test/deps.sh)" test -f "$NODE_PATH/peerpigeon/package.json" || finish
check "server binary $PP_BIN" test -x "$PP_BIN" || finish
[ -n "$HAVE_NGINX" ] && note "$(nginx -v 2>&1)"
[ -n "$HAVE_CADDY" ] && note "caddy $(caddy version 2>&1 | head -1)"

V6=1
# PP_NO_IPV6=1: behave as on a host without ::1 (to test that path)
if [ -z "${PP_NO_IPV6:-}" ] && node test/proxy.js ipv6; then :; else
    V6=
    note "SKIP IPv6: ::1 is not configured on this host; IPv4 only"
fi

# ---- certificates ----------------------------------------------------------------------------
PKI=$T/pki
mkdir -m 700 "$PKI"
make_certs() {
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
        -keyout "$PKI/ca.key" -out "$PKI/ca.crt" -subj "/CN=peerpigeon-c proxy test CA" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" &&
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$PKI/server.key" -out "$PKI/server.csr" -subj "/CN=localhost" &&
    printf '%s\n' "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1" "basicConstraints=CA:FALSE" \
        "keyUsage=critical,digitalSignature" "extendedKeyUsage=serverAuth" > "$PKI/ext.cnf" &&
    openssl x509 -req -in "$PKI/server.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" -CAcreateserial \
        -days 2 -extfile "$PKI/ext.cnf" -out "$PKI/server.crt" &&
    openssl verify -CAfile "$PKI/ca.crt" "$PKI/server.crt" >/dev/null
}
check "CA and server certificate (localhost, 127.0.0.1, ::1) made and verified" make_certs > "$T/openssl.log" 2>&1 ||
    { cat "$T/openssl.log"; finish; }
CA=$PKI/ca.crt

# ---- servers -------------------------------------------------------------------------------
# start_server NAME ENV...: start $PP_BIN with PORT=0 HOST=127.0.0.1 and ENV; sets <NAME>_PORT, <NAME>_PID
start_server() {
    local name=$1 i port=
    shift
    env PORT=0 HOST=127.0.0.1 LOG_LEVEL=info "$@" "$PP_BIN" 2> "$T/$name.log" &
    local pid=$!
    PIDS+=("$pid")
    for i in $(seq 100); do
        port=$(grep -oE 'listening on [^ ]+ port [0-9]+' "$T/$name.log" | head -1 | grep -oE '[0-9]+$')
        [ -n "$port" ] && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    printf -v "${name}_PORT" '%s' "$port"
    printf -v "${name}_PID" '%s' "$pid"
    [ -n "$port" ] || { tail -5 "$T/$name.log"; return 1; }
}
# S1 pings every 2 s: the nginx test config cuts idle upstreams after 5 s instead of 90 s, and an
# idle peer must survive that (the server's pings are what keeps the proxied socket alive)
check "server S1 (hub, AUTH_TOKEN, PING_INTERVAL=2) started" start_server S1 AUTH_TOKEN=$TOKEN IS_HUB=true PING_INTERVAL=2 || finish
check "server S2 (hub, AUTH_TOKEN, dials S1) started" start_server S2 AUTH_TOKEN=$TOKEN IS_HUB=true \
    BOOTSTRAP_HUBS=ws://127.0.0.1:$S1_PORT || finish
note "S1 on 127.0.0.1:$S1_PORT, S2 on 127.0.0.1:$S2_PORT"

# get URL: "<status> <location> <body>" (test/proxy.js)
get() { node test/proxy.js get "$1" "$CA" 2>&1; }
# wait_get URL REGEX [TRIES]: GET until the answer line matches (0.1 s apart)
wait_get() {
    local i line
    for i in $(seq "${3:-100}"); do
        line=$(get "$1")
        [[ $line =~ $2 ]] && return 0
        sleep 0.1
    done
    echo "  last answer from $1: $line"
    return 1
}

# ---- nginx -------------------------------------------------------------------------------------
# subst FILE OUT 'from|to'...: literal replacements, each of which must match at least once
subst() {
    local in=$1 out=$2 rule from to
    shift 2
    cp "$in" "$out"
    for rule in "$@"; do
        from=${rule%%|*}
        to=${rule#*|}
        if ! grep -qF -- "$from" "$out"; then echo "  placeholder not found in $in: $from"; return 1; fi
        FROM=$from TO=$to perl -0pi -e 's/\Q$ENV{FROM}\E/$ENV{TO}/g' "$out" || return 1
    done
}

start_nginx() {
    local N=$T/nginx rules
    mkdir -p "$N/tmp" && chmod 755 "$N"
    NG_HTTPS=$(node test/proxy.js port) && NG_HTTP=$(node test/proxy.js port) || return 1
    rules=("server 127.0.0.1:3000;|server 127.0.0.1:$S1_PORT;"
        "listen 443 ssl;|listen 127.0.0.1:$NG_HTTPS ssl;"
        "listen 80;|listen 127.0.0.1:$NG_HTTP;"
        "/etc/letsencrypt/live/signal.example.org/fullchain.pem|$PKI/server.crt"
        "/etc/letsencrypt/live/signal.example.org/privkey.pem|$PKI/server.key"
        "/var/log/nginx/peerpigeon.access.log|$N/access.log"
        "proxy_read_timeout 90s;|proxy_read_timeout 5s;" "proxy_send_timeout 90s;|proxy_send_timeout 5s;")
    if [ -n "$V6" ]; then
        rules+=("listen [::]:443 ssl;|listen [::1]:$NG_HTTPS ssl;" "listen [::]:80;|listen [::1]:$NG_HTTP;")
    else
        rules+=("listen [::]:443 ssl;|" "listen [::]:80;|")
    fi
    subst deploy/nginx.conf "$N/peerpigeon.conf" "${rules[@]}" || return 1
    if grep -nE '(^|[^0-9])(443|80|3000)[^0-9]|/etc/|/var/' "$N/peerpigeon.conf" | grep -v '^\s*[0-9]*:\s*#'; then
        echo "  nginx: placeholders left in the generated config (above)"
        return 1
    fi
    # the temp paths this nginx was built with, in the temp dir (else /var/lib/nginx/...)
    local temps="client_body_temp_path $N/tmp/body; proxy_temp_path $N/tmp/proxy;" m
    for m in fastcgi uwsgi scgi; do
        nginx -V 2>&1 | grep -q -- "--without-http_${m}_module" || temps="$temps ${m}_temp_path $N/tmp/$m;"
    done
    cat > "$N/nginx.conf" <<EOF
# generated by test/proxy.sh
daemon off;
worker_processes 1;
pid $N/nginx.pid;
error_log $N/error.log info;
events { worker_connections 256; }
http {
    # as Debian's /etc/nginx/nginx.conf: a combined-format log at http level, which the
    # server-level access_log of deploy/nginx.conf must override
    access_log $N/http-level.access.log;
    $temps
    include $N/peerpigeon.conf;
}
EOF
    local eopt=()
    nginx -h 2>&1 | grep -q -- '-e filename' && eopt=(-e "$N/error.log") # nginx >= 1.19.5
    if ! nginx -t -p "$N/" -c "$N/nginx.conf" "${eopt[@]}" > "$N/t.log" 2>&1; then
        sed 's/^/  /' "$N/t.log"
        return 1
    fi
    nginx -p "$N/" -c "$N/nginx.conf" "${eopt[@]}" 2> "$N/stderr.log" &
    NGINX_PID=$!
    PIDS+=("$NGINX_PID")
    wait_get "https://127.0.0.1:$NG_HTTPS/health" '^200 ' 100
}

# ---- Caddy -------------------------------------------------------------------------------------
start_caddy() {
    local C=$T/caddy sites bind
    mkdir -p "$C/data" "$C/config"
    CA_HTTPS=$(node test/proxy.js port) && CA_HTTP=$(node test/proxy.js port) || return 1
    sites="https://localhost:$CA_HTTPS, https://127.0.0.1:$CA_HTTPS"
    bind="127.0.0.1"
    if [ -n "$V6" ]; then sites="$sites, https://[::1]:$CA_HTTPS"; bind="127.0.0.1 ::1"; fi
    {
        cat <<EOF
# generated by test/proxy.sh from deploy/Caddyfile
{
	admin off
	skip_install_trust
	auto_https disable_redirects
	ocsp_stapling off
	storage file_system $C/data
	http_port $CA_HTTP
	https_port $CA_HTTPS
}
EOF
        cat deploy/Caddyfile
    } > "$C/Caddyfile.in"
    subst "$C/Caddyfile.in" "$C/Caddyfile" \
        "signal.example.org {|$sites {
	bind $bind
	tls $PKI/server.crt $PKI/server.key" \
        "reverse_proxy 127.0.0.1:3000 {|reverse_proxy 127.0.0.1:$S2_PORT {" \
        "/var/log/caddy/peerpigeon-access.log|$C/access.log" || return 1
    if ! HOME=$C XDG_DATA_HOME=$C/data XDG_CONFIG_HOME=$C/config \
        caddy validate --config "$C/Caddyfile" --adapter caddyfile > "$C/validate.log" 2>&1; then
        tail -5 "$C/validate.log" | sed 's/^/  /'
        return 1
    fi
    HOME=$C XDG_DATA_HOME=$C/data XDG_CONFIG_HOME=$C/config \
        caddy run --config "$C/Caddyfile" --adapter caddyfile > "$C/caddy.log" 2>&1 &
    CADDY_PID=$!
    PIDS+=("$CADDY_PID")
    wait_get "https://127.0.0.1:$CA_HTTPS/health" '^200 ' 100 || { tail -5 "$C/caddy.log" | sed 's/^/  /'; return 1; }
}

PROXIES=()
if [ -n "$HAVE_NGINX" ]; then
    if check "nginx: deploy/nginx.conf (placeholders replaced) loads (nginx -t) and nginx serves" start_nginx; then
        PROXIES+=(nginx)
        # in the background while the rest runs: an idle WebSocket through nginx for 8 s
        node test/proxy.js hold "wss://127.0.0.1:$NG_HTTPS/?token=$TOKEN" "$CA" 8000 > "$T/hold.out" 2>&1 &
        HOLD_PID=$!
        PIDS+=("$HOLD_PID")
        note "nginx on 127.0.0.1${V6:+ and [::1]} port $NG_HTTPS (https) and $NG_HTTP (http) -> S1"
    else
        tail -5 "$T/nginx/error.log" 2>/dev/null | sed 's/^/  /'
    fi
fi
if [ -n "$HAVE_CADDY" ]; then
    if check "caddy: deploy/Caddyfile (placeholders replaced) validates and caddy serves" start_caddy; then
        PROXIES+=(caddy)
        note "caddy on 127.0.0.1${V6:+ and [::1]} port $CA_HTTPS (https) -> S2"
    fi
fi

# ---- checks through each proxy -----------------------------------------------------------------
# smoke WHAT EXPECT_RC ARGS...: run test/smoke.js; print its line; ok if the exit code is EXPECT_RC
# (and, for an expected failure, its line matches $SMOKE_MATCH)
smoke() {
    local what=$1 want=$2 out rc
    shift 2
    out=$(timeout $((SMOKE_TIMEOUT + 10)) node test/smoke.js --timeout "$SMOKE_TIMEOUT" "$@" 2>&1)
    rc=$?
    # an expected refusal is shown without the word FAIL (test/run.sh greps for it)
    if [ "$want" -eq 0 ]; then echo "  $(printf '%s' "$out" | tail -1)"; else echo "  $(printf '%s' "$out" | tail -1 | sed 's/^smoke: FAIL /smoke: refused at /')"; fi
    if [ "$rc" -eq "$want" ] && { [ "$want" -eq 0 ] || [[ $out =~ ${SMOKE_MATCH:-.} ]]; }; then
        ok "$what"
    else
        bad "$what (exit $rc, want $want)"
        [ "$want" -eq 0 ] && printf '%s\n' "$out" | tail -5 | sed 's/^/  | /'
    fi
}
https_port() { if [ "$1" = nginx ]; then echo "$NG_HTTPS"; else echo "$CA_HTTPS"; fi; }
hosts=("127.0.0.1")
[ -n "$V6" ] && hosts+=("[::1]")

for p in "${PROXIES[@]}"; do
    port=$(https_port "$p")
    for h in "${hosts[@]}"; do
        base="https://$h:$port"
        line=$(get "$base/health")
        echo "  $line" | cut -c1-120
        check "$p $h: GET /health through the proxy is 200 healthy" match "$line" '^200 .*"status":"healthy"'
        smoke "$p $h: smoke wss://$h:$port/?token=... --ca: connect, discovery both ways, offer/answer, leave seen" 0 \
            --ca "$CA" "wss://$h:$port/?token=$TOKEN"
    done
    smoke "$p: smoke with the token in Authorization: Bearer (--token), path /ws" 0 --ca "$CA" --token "$TOKEN" "wss://localhost:$port/ws"
    SMOKE_MATCH='FAIL connect A: .*HTTP 401' smoke "$p: a wrong token is refused (HTTP 401 through the proxy)" 1 \
        --ca "$CA" "wss://127.0.0.1:$port/?token=wrong"
    SMOKE_MATCH='FAIL connect A: .*(certificate|CERT)' smoke "$p: without --ca the test CA is not trusted (TLS verification on)" 1 \
        "wss://127.0.0.1:$port/?token=$TOKEN"
    smoke "$p: smoke --insecure (no verification) connects" 0 --insecure "wss://127.0.0.1:$port/?token=$TOKEN"
    line=$(get "$base/stats")
    check "$p: GET /stats through the proxy is 200" match "$line" '^200 '
done

if [ -n "$HAVE_NGINX" ] && [[ " ${PROXIES[*]} " == *" nginx "* ]]; then
    line=$(get "http://127.0.0.1:$NG_HTTP/health?x=1")
    echo "  $line" | cut -c1-120
    # (to https://$host$request_uri: port 443, which is the deployment's; not this test's port)
    check "nginx: plain http is redirected to https (301, same host, path and query kept)" \
        match "$line" '^301 https://127\.0\.0\.1/health\?x=1 '
fi

if [ "${#PROXIES[@]}" -eq 2 ]; then
    if check "hub link S2 -> S1 up (S2 /hubstats)" wait_get "http://127.0.0.1:$S2_PORT/hubstats" '"connected":true' 100; then
        h2=${hosts[$((${#hosts[@]} - 1))]}
        smoke "across the proxies: A via nginx (S1) 127.0.0.1, B via caddy (S2) $h2: discovery, offer/answer, leave across the hubs" 0 \
            --ca "$CA" "wss://127.0.0.1:$NG_HTTPS/?token=$TOKEN" "wss://$h2:$CA_HTTPS/?token=$TOKEN"
    fi
else
    bad "across the proxies: needs both nginx and caddy (have: ${PROXIES[*]:-none})"
fi

if [ -n "${HOLD_PID:-}" ]; then
    wait "$HOLD_PID"
    rc=$?
    echo "  $(cat "$T/hold.out")"
    check "nginx: an idle WebSocket outlives proxy_read_timeout (5 s here) thanks to the server's pings (PING_INTERVAL=2)" [ "$rc" -eq 0 ]
fi

# ---- logs: no token anywhere --------------------------------------------------------------------
# an access log line is written when the request ends (for a WebSocket: when it closes)
wait_file_match() { local i; for i in $(seq 50); do grep -qE -- "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done; return 1; }
notoken() { ! grep -qE -- "token=|$TOKEN" "$@" 2>/dev/null; }
if [[ " ${PROXIES[*]} " == *" nginx "* ]]; then
    N=$T/nginx
    check "nginx: access log has the health checks (path only)" grep -qE '"GET /health HTTP/1\.1" 200 ' "$N/access.log"
    check "nginx: access log has the upgrades (\"GET / HTTP/1.1\" 101)" wait_file_match "$N/access.log" '"GET / HTTP/1\.1" 101 '
    check "nginx: access log has the 401 of the wrong token" grep -qE '"GET / HTTP/1\.1" 401 ' "$N/access.log"
    check "nginx: access log holds no token (no 'token=', no '$TOKEN') after runs with ?token=$TOKEN" notoken "$N/access.log"
    check "nginx: the http-level (combined) access log got nothing" test ! -s "$N/http-level.access.log"
    check "nginx: error log holds no token" notoken "$N/error.log" "$N/stderr.log"
    grep -E '\[(emerg|alert|crit|error)\]' "$N/error.log" 2>/dev/null | head -5 | sed 's/^/  nginx error.log: /'
fi
if [[ " ${PROXIES[*]} " == *" caddy "* ]]; then
    C=$T/caddy
    # (Caddy 2.6 logs a WebSocket it handed over with status 0, later versions with 101)
    check "caddy: access log has the upgrades (uri /?peerId=..., status 101 or 0)" \
        wait_file_match "$C/access.log" '"uri":"/\?peerId=[0-9a-f]{40}".*"status":(101|0),'
    check "caddy: access log has the 401 of the wrong token" wait_file_match "$C/access.log" '"status":401'
    check "caddy: access log holds no token (no 'token=', no '$TOKEN') after runs with ?token=$TOKEN and Bearer" notoken "$C/access.log"
fi
check "servers' logs hold no token" notoken "$T/S1.log" "$T/S2.log"

# ---- shutdown ----------------------------------------------------------------------------------
for v in NGINX_PID CADDY_PID; do
    [ -n "${!v:-}" ] && kill -TERM "${!v}" 2>/dev/null
done
stop_server() { # NAME PID: SIGTERM, exit 0, no sanitizer report
    local rc
    kill -TERM "$2"
    wait "$2"
    rc=$?
    check "$1 exits 0 on SIGTERM" [ "$rc" -eq 0 ]
    if grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$T/$1.log"; then
        bad "$1 sanitizer-clean"
        grep -E -A20 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$T/$1.log" | head -30
    else
        ok "$1 sanitizer-clean"
    fi
}
stop_server S2 "$S2_PID"
stop_server S1 "$S1_PID"
[ -n "${PP_VERBOSE:-}" ] && for f in "$T"/*.log "$T"/nginx/*.log "$T"/caddy/*.log; do echo "== $f"; cat "$f"; done
finish
