#!/usr/bin/env bash
# test/tls_suite.sh - the TLS build (make TLS=1) against the whole Node suite: e2e, interop,
# browser, hub, mesh and chaos run with PP_BIN=build/peerpigeon-tls-asan, so that linking BearSSL
# changes nothing else (queue.js needs its own small-queue build; the wss:// specifics are
# test/tls.sh's). Installs libbearssl-dev when missing (root on Debian). Last line:
# "N passed, N failed".
set -u
cd "$(dirname "$0")/.."
if [ ! -f /usr/include/bearssl.h ] && [ ! -f /usr/include/bearssl/bearssl.h ] &&
    [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libbearssl-dev >&2
fi
if ! make -s build/peerpigeon-tls-asan >/tmp/tls_suite.make.$$ 2>&1; then
    echo "FAIL the TLS ASan build does not build"; tail -20 /tmp/tls_suite.make.$$
    rm -f /tmp/tls_suite.make.$$
    echo "0 passed, 1 failed"
    exit 1
fi
rm -f /tmp/tls_suite.make.$$
export PP_BIN="$PWD/build/peerpigeon-tls-asan"
pass=0 fail=0
for t in e2e interop browser hub mesh chaos; do
    out=$(timeout 400 node "test/$t.js" 2>&1)
    line=$(printf '%s\n' "$out" | grep -E '^[0-9]+ passed, [0-9]+ failed' | tail -1)
    printf '%s\n' "$out" | grep -E '^FAIL' | head -20
    if [ -z "$line" ]; then
        echo "FAIL $t.js under the TLS build: no result"; printf '%s\n' "$out" | tail -10
        fail=$((fail + 1)); continue
    fi
    echo "$t.js under the TLS build: $line"
    pass=$((pass + ${line%% passed*}))
    f=${line#*passed, }; fail=$((fail + ${f%% failed*}))
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
