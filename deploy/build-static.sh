#!/usr/bin/env bash
# deploy/build-static.sh - static musl builds for x86_64 and aarch64 from Debian 12 packages only.
#   build/peerpigeon-x86_64   musl-gcc -Os -static -s
#   build/peerpigeon-aarch64  clang --target=aarch64-linux-musl + ld.lld against Debian's
#                             musl-dev:arm64, with compiler-rt builtins from libclang-rt-N-dev:arm64
#                             (aarch64 long double is IEEE quad: musl's printf needs __multf3 etc.)
# As root it installs what is missing (idempotent): musl-tools clang lld, the arm64 dpkg
# architecture, musl-dev:arm64 libclang-rt-N-dev:arm64, and qemu-user-static for the smoke run.
# If qemu-aarch64(-static) is present, the aarch64 binary is run: --version, then PORT=0 on
# 127.0.0.1 and GET /health. Fails if a binary exceeds 150 KB (153600 bytes). Never writes
# ./peerpigeon. Usage: bash deploy/build-static.sh  (or `make static-all`)
set -euo pipefail
cd "$(dirname "$0")/.."

WARN=${WARN:--std=c11 -D_GNU_SOURCE -Wall -Wextra -Wshadow -Wstrict-prototypes -Wvla -Werror}
VERSION=${VERSION:-$(sed -n 's/^VERSION = //p' Makefile)}
SRCS="${SRCS:-peerpigeon.c peer.c hub.c dns.c ws.c http.c json.c}"
LIMIT=153600
MUSL_A64=/usr/lib/aarch64-linux-musl
MUSL_A64_INC=/usr/include/aarch64-linux-musl

installed() { [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]; }

ensure_packages() {
    local missing=() p
    for p in "$@"; do installed "$p" || missing+=("$p"); done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" -ne 0 ]; then
        echo "build-static: missing ${missing[*]}; as root: apt-get install ${missing[*]}" >&2
        return 1
    fi
    echo "build-static: installing ${missing[*]}"
    if [ -z "${APT_UPDATED:-}" ]; then apt-get update -qq; APT_UPDATED=1; fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

# --- toolchains ------------------------------------------------------------------------
ensure_packages musl-tools clang lld
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    [ "$(id -u)" -eq 0 ] || { echo "build-static: as root: dpkg --add-architecture arm64" >&2; exit 1; }
    dpkg --add-architecture arm64
    APT_UPDATED=
fi
# compiler-rt must match the installed clang (Debian 12: clang 14 -> libclang-rt-14-dev)
CLANG_MAJOR=$(clang -dumpversion | cut -d. -f1)
ensure_packages musl-dev:arm64 "libclang-rt-$CLANG_MAJOR-dev:arm64"
if ! command -v qemu-aarch64-static >/dev/null && ! command -v qemu-aarch64 >/dev/null; then
    ensure_packages qemu-user-static || echo "build-static: no qemu; aarch64 smoke run skipped"
fi

RESDIR=$(clang -print-resource-dir)
BUILTINS=$RESDIR/lib/linux/libclang_rt.builtins-aarch64.a
[ -f "$BUILTINS" ] || { echo "build-static: $BUILTINS not found" >&2; exit 1; }

mkdir -p build
# --- x86_64 ----------------------------------------------------------------------------
# shellcheck disable=SC2086
musl-gcc $WARN -Os -static -s -DPP_VERSION="\"$VERSION\"" -o build/peerpigeon-x86_64 $SRCS

# --- aarch64 ---------------------------------------------------------------------------
# -nostdinc/-nostdlib: only musl's arm64 headers and clang's own (stddef.h, stdarg.h...), and an
# explicit musl link line; -s strips at link time.
# shellcheck disable=SC2086
clang --target=aarch64-linux-musl $WARN -Os -DPP_VERSION="\"$VERSION\"" \
    -nostdinc -isystem "$RESDIR/include" -isystem "$MUSL_A64_INC" \
    -static -nostdlib -fuse-ld=lld -s -o build/peerpigeon-aarch64 \
    "$MUSL_A64/crt1.o" "$MUSL_A64/crti.o" $SRCS "$MUSL_A64/libc.a" "$BUILTINS" "$MUSL_A64/crtn.o"

fail=0
for a in x86_64 aarch64; do
    s=$(stat -c %s "build/peerpigeon-$a")
    echo "build/peerpigeon-$a: $s bytes stripped (target <= $LIMIT)"
    [ "$s" -le "$LIMIT" ] || { echo "build-static: $a binary over $LIMIT bytes" >&2; fail=1; }
done
build/peerpigeon-x86_64 --version

# --- aarch64 smoke run under qemu --------------------------------------------------------
QEMU=$(command -v qemu-aarch64-static || command -v qemu-aarch64 || true)
if [ -n "$QEMU" ]; then
    echo "aarch64 (via $(basename "$QEMU")): $("$QEMU" build/peerpigeon-aarch64 --version)"
    log=$(mktemp)
    PORT=0 HOST=127.0.0.1 "$QEMU" build/peerpigeon-aarch64 >"$log" 2>&1 &
    pid=$!
    trap 'kill "$pid" 2>/dev/null || true; rm -f "$log"' EXIT
    port=
    for _ in $(seq 1 100); do
        port=$(sed -n 's/.*listening on .* port \([0-9][0-9]*\).*/\1/p' "$log" | head -n1)
        [ -n "$port" ] && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if [ -z "$port" ]; then
        echo "build-static: aarch64 server did not start:" >&2; cat "$log" >&2; exit 1
    fi
    if command -v curl >/dev/null; then
        health=$(curl -sS --max-time 5 "http://127.0.0.1:$port/health")
    else
        exec 3<>"/dev/tcp/127.0.0.1/$port"
        printf 'GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' >&3
        health=$(timeout 5 cat <&3 | tail -n1); exec 3<&-
    fi
    echo "aarch64 /health on port $port: $health"
    case $health in *'"status":"healthy"'*) ;; *) echo "build-static: /health failed" >&2; fail=1 ;; esac
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
fi
exit $fail
