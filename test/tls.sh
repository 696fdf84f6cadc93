#!/usr/bin/env bash
# test/tls.sh - the TLS build (make TLS=1): wss:// hub links with certificates checked.
#  - installs libbearssl-dev, nginx and openssl when missing (root + apt only; never starts
#    nginx's system service); builds build/peerpigeon-tls and build/peerpigeon-tls-asan
#  - openssl: a test CA and, signed by it, a certificate for localhost, one for another name and
#    an expired one; a second CA (unknown to the hubs) with its own localhost certificate
#  - hub A (TLS ASan build) on 127.0.0.1; Debian's nginx in front of it, the config generated
#    from deploy/nginx.conf as test/proxy.sh does (the good certificate), plus one TLS server
#    per bad certificate, all on 127.0.0.1, proxying to A
#  - hub B (TLS ASan build, HUB_CA_FILE=the test CA) dials all four: wss://localhost:<port>/;
#    the good link comes up (/hubstats: scheme wss, tlsError null), and the npm client
#    (test/smoke.js) with one peer on A (through nginx, wss://) and one on B discovers and
#    signals across; each bad certificate is refused with its reason in the log ([hub.tls]) and
#    in /hubstats tlsError, retried (attemptNumber grows), never connected
#  - hub C: no HUB_CA_FILE, SSL_CERT_FILE=the test CA: the good link comes up; hub D: the system
#    bundle only: the test CA is unknown there; HUB_CA_FILE that does not exist: logged, retried
#  - the TLS build refuses wss:// to an IP address (the certificate is checked by name); the
#    default build (build/peerpigeon-asan) reports wss:// as needing `make TLS=1`
#  - every server exits 0 on SIGTERM, sanitizer-clean
# Bounded by a 120 s watchdog; every process and the temp dir are cleaned up on exit.
# Last line: "N passed, N failed". Env: NODE_PATH, PP_TLS_BIN (the TLS binary under test, default
# build/peerpigeon-tls-asan), PP_KEEP=1 (keep the temp dir), PP_VERBOSE=1 (print every log).
set -u
cd "$(dirname "$0")/.."
ROOT=$PWD
export NODE_PATH=${NODE_PATH:-$ROOT/.deps/node_modules}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
TLS_BIN=${PP_TLS_BIN:-$ROOT/build/peerpigeon-tls-asan} # PP_TLS_BIN: another TLS build (static)
PLAIN_BIN=$ROOT/build/peerpigeon-asan

pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok   $*"; }
bad() { fail=$((fail + 1)); echo "FAIL $*"; }
note() { echo "NOTE $*"; }
check() { local what=$1; shift; if "$@"; then ok "$what"; else bad "$what"; return 1; fi; }

T=$(mktemp -d /tmp/pp-tls.XXXXXX)
chmod 755 "$T"
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
    if [ -n "${PP_VERBOSE:-}" ]; then for f in "$T"/*.log; do echo "== $f"; cat "$f"; done; fi
    if [ -n "${PP_KEEP:-}" ]; then echo "NOTE kept $T"; else rm -rf "$T"; fi
}
trap cleanup EXIT
trap 'echo "FAIL interrupted (signal, or the 120 s watchdog)"; echo "$pass passed, $((fail + 1)) failed"; exit 130' INT TERM
( trap 'kill "$s" 2>/dev/null; exit 0' TERM; sleep 120 & s=$!; wait "$s" && kill -TERM $$ ) >/dev/null 2>&1 &
PIDS+=("$!")

finish() {
    echo "$pass passed, $fail failed"
    [ "$fail" -eq 0 ]
    exit $?
}

# ---- tools -----------------------------------------------------------------------------------
APT_UPDATED=
# apt_get PKG...: install with apt when root on Debian, without starting any service
apt_get() {
    [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null || return 1
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && POLICY_RC_TMP=1
    fi
    echo "tls: apt-get install $*"
    { [ -n "$APT_UPDATED" ] || timeout 60 apt-get update -qq; } && APT_UPDATED=1 &&
        DEBIAN_FRONTEND=noninteractive timeout 120 apt-get install -y -qq "$@" > "$T/apt.log" 2>&1
    local rc=$?
    [ "$rc" -eq 0 ] || tail -5 "$T/apt.log"
    if [ -n "$POLICY_RC_TMP" ]; then rm -f /usr/sbin/policy-rc.d; POLICY_RC_TMP=; fi
    return "$rc"
}
# need TEST PKG: TEST (a command) succeeds, or PKG is installed and then it does
need() {
    local test=$1 pkg=$2
    eval "$test" && return 0
    apt_get "$pkg" || { echo "tls: $pkg missing and cannot be installed (not root on Debian?)"; return 1; }
    eval "$test"
}
check "BearSSL available (Debian package libbearssl-dev)" need '[ -f /usr/include/bearssl.h ]' libbearssl-dev || finish
check "nginx available (Debian package nginx)" need 'command -v nginx >/dev/null' nginx || finish
check "openssl available" need 'command -v openssl >/dev/null' openssl || finish
check "node and the npm client (NODE_PATH=$NODE_PATH; test/deps.sh)" test -f "$NODE_PATH/peerpigeon/package.json" || finish
check "make build/peerpigeon-tls build/peerpigeon-tls-asan (-Werror)" \
    make -s build/peerpigeon-tls build/peerpigeon-tls-asan > "$T/make.log" 2>&1 || { tail -20 "$T/make.log"; finish; }
check "make TLS=0 build/peerpigeon-asan (the default build)" make -s TLS=0 build/peerpigeon-asan >> "$T/make.log" 2>&1 ||
    { tail -20 "$T/make.log"; finish; }
note "sizes: $(stat -c '%n %s' build/peerpigeon-tls | sed "s|$ROOT/||") (the default ./peerpigeon, if built: $(stat -c %s peerpigeon 2>/dev/null || echo -))"

# ---- certificates ------------------------------------------------------------------------------
P=$T/pki
mkdir -m 700 "$P"
# ca NAME CN: a self-signed CA
ca() {
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
        -keyout "$P/$1.key" -out "$P/$1.crt" -subj "/CN=$2" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
}
# leaf NAME CA SAN [START END]: a server certificate signed by CA (START/END: YYYYMMDDHHMMSSZ)
leaf() {
    local name=$1 ca=$2 san=$3
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$P/$name.key" \
        -out "$P/$name.csr" -subj "/CN=${san#DNS:}" || return 1
    printf '%s\n' "subjectAltName=$san" "basicConstraints=CA:FALSE" \
        "keyUsage=critical,digitalSignature" "extendedKeyUsage=serverAuth" > "$P/$name.ext"
    if [ $# -ge 5 ]; then
        # openssl x509 -req has no start date before 3.4: a minimal `openssl ca` does it
        mkdir -p "$P/db-$name" && : > "$P/db-$name/index.txt"
        cat > "$P/db-$name/ca.cnf" <<EOF
[ca]
default_ca = d
[d]
database = $P/db-$name/index.txt
new_certs_dir = $P/db-$name
serial = $P/db-$name/serial
default_md = sha256
policy = p
copy_extensions = none
[p]
commonName = supplied
EOF
        echo 01 > "$P/db-$name/serial"
        openssl ca -batch -notext -config "$P/db-$name/ca.cnf" -cert "$P/$ca.crt" -keyfile "$P/$ca.key" \
            -startdate "$4" -enddate "$5" -extfile "$P/$name.ext" -in "$P/$name.csr" -out "$P/$name.crt"
    else
        openssl x509 -req -in "$P/$name.csr" -CA "$P/$ca.crt" -CAkey "$P/$ca.key" -CAcreateserial \
            -days 2 -extfile "$P/$name.ext" -out "$P/$name.crt"
    fi
}
make_certs() {
    ca ca "peerpigeon-c TLS test CA" && ca other "an unknown CA" &&
        leaf good ca DNS:localhost && leaf wrongname ca DNS:hub.other.example &&
        leaf expired ca DNS:localhost 20200101000000Z 20200201000000Z &&
        leaf unknown other DNS:localhost &&
        openssl verify -CAfile "$P/ca.crt" "$P/good.crt" "$P/wrongname.crt" >/dev/null &&
        ! openssl verify -CAfile "$P/ca.crt" "$P/expired.crt" >/dev/null 2>&1
}
check "test CAs and certificates made (good, wrong name, expired, unknown CA)" make_certs > "$T/openssl.log" 2>&1 ||
    { tail -20 "$T/openssl.log"; finish; }
CA=$P/ca.crt

# ---- servers -----------------------------------------------------------------------------------
# start_server NAME BIN ENV...: PORT=0 HOST=127.0.0.1 LOG_LEVEL=info IS_HUB=true, no
# SSL_CERT_FILE / HUB_CA_FILE from outside; sets <NAME>_PORT, <NAME>_PID
start_server() {
    local name=$1 bin=$2 i port=
    shift 2
    env -u SSL_CERT_FILE -u HUB_CA_FILE PORT=0 HOST=127.0.0.1 LOG_LEVEL=info IS_HUB=true "$@" "$bin" \
        2> "$T/$name.log" &
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
stop_server() { # NAME PID: SIGTERM, exit 0, no sanitizer report
    local rc
    kill -TERM "$2"
    wait "$2"
    rc=$?
    check "$1: exits 0 on SIGTERM (exit $rc), sanitizer-clean" \
        bash -c '[ "$0" = 0 ] && ! grep -qE "Sanitizer|runtime error" "$1"' "$rc" "$T/$1.log" ||
        grep -E -A5 'Sanitizer|runtime error' "$T/$1.log" | head -20
}
port() { node test/proxy.js port; }
# link_json PORT URI: that link's /hubstats entry, as JSON (null if none)
link_json() {
    node -e 'fetch(`http://127.0.0.1:${process.argv[1]}/hubstats`).then(r => r.json())
      .then(j => console.log(JSON.stringify(j.bootstrapHubs.find(b => b.uri === process.argv[2]) || null)))
      .catch(() => console.log("null"))' "$1" "$2"
}
# jget JSON EXPR: evaluate EXPR with l = JSON
jget() { node -e 'const l=JSON.parse(process.argv[1]);console.log(eval(process.argv[2]))' "$1" "$2"; }
# wait_for TRIES CMD...: CMD succeeds within TRIES * 0.1 s
wait_for() { local n=$1 i; shift; for i in $(seq "$n"); do "$@" && return 0; sleep 0.1; done; return 1; }

check "hub A (TLS ASan build) started" start_server A "$TLS_BIN" || finish

# ---- nginx: deploy/nginx.conf with the good certificate, one more server per bad one ----------
subst() { # subst FILE OUT 'from|to'...: literal replacements, each of which must match
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
    local N=$T/nginx name temps m
    mkdir -p "$N/tmp" && chmod 755 "$N"
    GOOD=$(port) && HTTP=$(port) && WRONGNAME=$(port) && EXPIRED=$(port) && UNKNOWN=$(port) || return 1
    subst deploy/nginx.conf "$N/peerpigeon.conf" \
        "server 127.0.0.1:3000;|server 127.0.0.1:$A_PORT;" \
        "listen 443 ssl;|listen 127.0.0.1:$GOOD ssl;" "listen 80;|listen 127.0.0.1:$HTTP;" \
        "listen [::]:443 ssl;|" "listen [::]:80;|" \
        "/etc/letsencrypt/live/signal.example.org/fullchain.pem|$P/good.crt" \
        "/etc/letsencrypt/live/signal.example.org/privkey.pem|$P/good.key" \
        "/var/log/nginx/peerpigeon.access.log|$N/access.log" || return 1
    if grep -nE '(^|[^0-9])(443|80|3000)[^0-9]|/etc/|/var/' "$N/peerpigeon.conf" | grep -v '^\s*[0-9]*:\s*#'; then
        echo "  nginx: placeholders left in the generated config (above)"
        return 1
    fi
    for name in wrongname expired unknown; do
        local p
        case $name in wrongname) p=$WRONGNAME ;; expired) p=$EXPIRED ;; unknown) p=$UNKNOWN ;; esac
        cat >> "$N/peerpigeon.conf" <<EOF
server {
    listen 127.0.0.1:$p ssl;
    ssl_certificate $P/$name.crt;
    ssl_certificate_key $P/$name.key;
    access_log $N/access.log peerpigeon_notoken;
    location / {
        proxy_pass http://peerpigeon;
        proxy_http_version 1.1;
        proxy_set_header Upgrade \$http_upgrade;
        proxy_set_header Connection \$peerpigeon_connection;
    }
}
EOF
    done
    temps="client_body_temp_path $N/tmp/body; proxy_temp_path $N/tmp/proxy;"
    for m in fastcgi uwsgi scgi; do
        nginx -V 2>&1 | grep -q -- "--without-http_${m}_module" || temps="$temps ${m}_temp_path $N/tmp/$m;"
    done
    cat > "$N/nginx.conf" <<EOF
# generated by test/tls.sh
daemon off;
worker_processes 1;
pid $N/nginx.pid;
error_log $N/error.log info;
events { worker_connections 256; }
http {
    access_log $N/http-level.access.log;
    $temps
    include $N/peerpigeon.conf;
}
EOF
    local eopt=()
    nginx -h 2>&1 | grep -q -- '-e filename' && eopt=(-e "$N/error.log")
    nginx -t -p "$N/" -c "$N/nginx.conf" "${eopt[@]}" > "$N/t.log" 2>&1 || { sed 's/^/  /' "$N/t.log"; return 1; }
    nginx -p "$N/" -c "$N/nginx.conf" "${eopt[@]}" 2> "$N/stderr.log" &
    PIDS+=("$!")
    wait_for 100 bash -c 'node test/proxy.js get "https://localhost:$0/health" "$1" | grep -q "^200 "' "$GOOD" "$CA"
}
check "nginx: deploy/nginx.conf (test CA certificate for localhost) + 3 bad-certificate servers, in front of A" start_nginx ||
    { tail -5 "$T/nginx/error.log" 2>/dev/null; finish; }
note "A on 127.0.0.1:$A_PORT; nginx 127.0.0.1: good $GOOD, wrong name $WRONGNAME, expired $EXPIRED, unknown CA $UNKNOWN"

U_GOOD=wss://localhost:$GOOD/
U_WRONG=wss://localhost:$WRONGNAME/
U_EXP=wss://localhost:$EXPIRED/
U_UNK=wss://localhost:$UNKNOWN/
check "hub B (TLS ASan build, HUB_CA_FILE=test CA) dials the four wss:// URLs" start_server B "$TLS_BIN" \
    HUB_CA_FILE="$CA" BOOTSTRAP_HUBS="$U_GOOD,$U_WRONG,$U_EXP,$U_UNK" || finish

linked() { [ "$(jget "$(link_json "$1" "$2")" 'l && l.connected')" = true ]; }
check "B -> nginx -> A: the wss:// link comes up (/hubstats connected)" wait_for 100 linked "$B_PORT" "$U_GOOD"
L=$(link_json "$B_PORT" "$U_GOOD")
check "B /hubstats: the good link has scheme wss and tlsError null ($L)" \
    test "$(jget "$L" 'l.scheme === "wss" && l.tlsError === null && l.attemptNumber === 0')" = true
check "B logged the trust anchors it loaded ([hub.tls] 1 trust anchors from $CA)" grep -qF "[hub.tls] 1 trust anchors from $CA" "$T/B.log"
check "B logged the link up ([hub.link.up] $U_GOOD)" grep -qF "[hub.link.up] bootstrap hub $U_GOOD: connected" "$T/B.log"

out=$(timeout 40 node test/smoke.js --timeout 20 --ca "$CA" "wss://localhost:$GOOD/" "ws://127.0.0.1:$B_PORT/" 2>&1)
rc=$?
echo "  $(printf '%s' "$out" | tail -1)"
check "npm clients: one on A (via nginx, wss://) and one on B discover each other and signal across the wss:// link" \
    test "$rc" = 0
out=$(timeout 40 node test/smoke.js --timeout 20 "ws://127.0.0.1:$B_PORT/" "ws://127.0.0.1:$A_PORT/" 2>&1)
rc=$?
echo "  $(printf '%s' "$out" | tail -1)"
check "npm clients: one on B, one on A directly: discovery and signalling across (B -> A)" test "$rc" = 0

# each bad certificate: refused with the reason, retried, never linked
sleep 3.5
refused() { # WHAT URI REGEX FIRST (attemptNumber seen before any of these checks)
    local what=$1 uri=$2 re=$3 first=$4 l1 l2
    l1=$(link_json "$B_PORT" "$uri")
    check "$what: logged with the reason ([hub.tls] ... $re)" \
        grep -qE "\[hub\.tls\] bootstrap hub $uri: TLS handshake failed: .*($re)" "$T/B.log"
    check "$what: logged as a failed attempt, retried ([hub.link.retry])" \
        grep -qE "\[hub\.link\.retry\] bootstrap hub $uri: attempt [0-9]+ failed \(.*($re).*\); next in" "$T/B.log"
    check "$what: /hubstats tlsError has the reason, not connected ($l1)" \
        test "$(jget "$l1" "l && l.connected === false && l.scheme === 'wss' && /$re/.test(l.tlsError)")" = true
    # the backoff doubles (1 s .. 30 s, +-25 %): from the first snapshot, the next attempt is
    # at most ~20 s away
    wait_for 250 grows "$uri" "$first"
    l2=$(link_json "$B_PORT" "$uri")
    check "$what: retried with backoff: attemptNumber grows ($first -> $(jget "$l2" l.attemptNumber)), still not connected" \
        test "$(jget "$l2" "l.attemptNumber > $first && l.attemptNumber >= 2 && !l.connected")" = true
}
attempts() { jget "$(link_json "$B_PORT" "$1")" 'l ? l.attemptNumber : -1'; }
grows() { [ "$(attempts "$1")" -gt "$2" ]; }
F_WRONG=$(attempts "$U_WRONG") F_EXP=$(attempts "$U_EXP") F_UNK=$(attempts "$U_UNK")
refused "wrong host name" "$U_WRONG" 'certificate is not for localhost' "$F_WRONG"
refused "expired certificate" "$U_EXP" 'expired' "$F_EXP"
refused "unknown CA" "$U_UNK" 'not trusted: unknown CA' "$F_UNK"
check "A saw exactly one inbound hub (the good link): $(grep -c 'hub.inbound.up' "$T/A.log") [hub.inbound.up] lines" \
    test "$(grep -c 'hub.inbound.up' "$T/A.log")" = 1

# ---- where the trust anchors come from ---------------------------------------------------------
check "hub C (SSL_CERT_FILE=test CA, no HUB_CA_FILE) started" start_server C "$TLS_BIN" \
    SSL_CERT_FILE="$CA" BOOTSTRAP_HUBS="$U_GOOD" && {
    check "C: the good link comes up with SSL_CERT_FILE" wait_for 100 linked "$C_PORT" "$U_GOOD"
    stop_server C "$C_PID"
}
SYS=
for f in /etc/ssl/certs/ca-certificates.crt /etc/ssl/cert.pem /etc/pki/tls/certs/ca-bundle.crt; do
    [ -f "$f" ] && { SYS=$f; break; }
done
if [ -n "$SYS" ]; then
    check "hub D (no HUB_CA_FILE, no SSL_CERT_FILE: the system bundle $SYS) started" \
        start_server D "$TLS_BIN" BOOTSTRAP_HUBS="$U_GOOD" && {
        check "D: loaded the system bundle ([hub.tls] N trust anchors from $SYS)" \
            wait_for 50 grep -qE "\[hub\.tls\] [0-9]+ trust anchors from $SYS" "$T/D.log"
        check "D: the test CA is not in the system bundle: refused as unknown CA" \
            wait_for 50 grep -qE "\[hub\.tls\] bootstrap hub $U_GOOD: TLS handshake failed: .*unknown CA" "$T/D.log"
        stop_server D "$D_PID"
    }
else
    note "SKIP system bundle: none of the usual paths exists"
fi
check "hub E (HUB_CA_FILE that does not exist) started" start_server E "$TLS_BIN" \
    HUB_CA_FILE="$T/nope.pem" BOOTSTRAP_HUBS="$U_GOOD" && {
    check "E: logged why TLS cannot start (HUB_CA_FILE ...: No such file), retried" \
        wait_for 40 bash -c 'n=$(grep -cE "\[hub\.tls\] bootstrap hub .*cannot start TLS: HUB_CA_FILE .*nope.pem: No such file" "$0"); [ "$n" -ge 2 ]' "$T/E.log"
    L=$(link_json "$E_PORT" "$U_GOOD")
    check "E: /hubstats tlsError names HUB_CA_FILE, not connected ($L)" \
        test "$(jget "$L" 'l && !l.connected && /HUB_CA_FILE/.test(l.tlsError) && l.attemptNumber >= 2')" = true
    stop_server E "$E_PID"
}

# ---- what is not dialled -----------------------------------------------------------------------
check "hub F (TLS build, wss:// to 127.0.0.1) started" start_server F "$TLS_BIN" \
    HUB_CA_FILE="$CA" BOOTSTRAP_HUBS="wss://127.0.0.1:$GOOD/" && {
    L=$(link_json "$F_PORT" "wss://127.0.0.1:$GOOD/")
    check "F: wss:// to an IP address is not dialled: the certificate is checked by name ($L)" \
        test "$(jget "$L" 'l && l.attemptNumber === 0 && /IP address/.test(l.error)')" = true
    stop_server F "$F_PID"
}
check "hub G (default build) started with a wss:// bootstrap hub" start_server G "$PLAIN_BIN" BOOTSTRAP_HUBS="$U_GOOD" && {
    L=$(link_json "$G_PORT" "$U_GOOD")
    check "G: the default build reports wss:// as needing the TLS build (make TLS=1) ($L)" \
        test "$(jget "$L" 'l && l.scheme === "wss" && l.attemptNumber === 0 && /make TLS=1/.test(l.error) && !("tlsError" in l)')" = true
    check "G: its log says so" grep -qE "\[hub\.config\] bootstrap hub $U_GOOD not dialled: .*make TLS=1" "$T/G.log"
    stop_server G "$G_PID"
}

stop_server B "$B_PID"
stop_server A "$A_PID"
finish
