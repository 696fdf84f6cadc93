#!/usr/bin/env bash
# deploy/build-static.sh - static musl builds for x86_64 and aarch64 from Debian 12 packages only.
#   build/peerpigeon-x86_64   musl-gcc with the Makefile's STATIC_FLAGS (-Os -static -s, no unwind
#                             tables, --gc-sections), as `make static`
#   build/peerpigeon-aarch64  clang --target=aarch64-linux-musl + ld.lld against Debian's
#                             musl-dev:arm64, with compiler-rt builtins from libclang-rt-N-dev:arm64
#                             (aarch64 long double is IEEE quad: musl's printf needs __multf3 etc.)
# It first says what it needs and what of that is missing. As root it installs what is missing
# (idempotent): musl-tools clang lld, the arm64 dpkg architecture, musl-dev:arm64
# libclang-rt-N-dev:arm64, and qemu-user-static for the smoke run; not as root it prints the
# commands and exits 1. If qemu-aarch64(-static) is present, the aarch64 binary is run:
# --version, then PORT=0 on 127.0.0.1 and GET /health. Fails if a binary exceeds 150 KB
# (153600 bytes). Never writes ./peerpigeon.
# Usage: bash deploy/build-static.sh          (or `make static-all`)
#        bash deploy/build-static.sh --aarch64  (only build/peerpigeon-aarch64, no smoke run)
#        bash deploy/build-static.sh --ensure PKG...  (install Debian packages as root, or say
#                                      what to install and exit 1; `make static` uses it)
set -euo pipefail
cd "$(dirname "$0")/.."

WARN=${WARN:--std=c11 -D_GNU_SOURCE -Wall -Wextra -Wshadow -Wstrict-prototypes -Wvla -Werror}
VERSION=${VERSION:-$(sed -n 's/^VERSION = //p' Makefile)}
# the Makefile passes its SRCS; run by hand, the same list is read from the Makefile
SRCS="${SRCS:-$(sed -n 's/^SRCS = //p' Makefile)}"
[ -n "$SRCS" ] || { echo "build-static: no SRCS (run from the repository, or set SRCS)" >&2; exit 1; }
# the Makefile's STATIC_FLAGS; the linker flags work with GNU ld and lld alike
STATIC_FLAGS=${STATIC_FLAGS:-$(sed -n '/^STATIC_FLAGS = /,/[^\\]$/p' Makefile | sed 's/^STATIC_FLAGS = //; s/\\$//' | tr '\n\t' '  ')}
LIMIT=153600
MUSL_A64=/usr/lib/aarch64-linux-musl
MUSL_A64_INC=/usr/include/aarch64-linux-musl

installed() { [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]; }

ensure_packages() {
    local missing=() p
    if ! command -v dpkg-query >/dev/null || ! command -v apt-get >/dev/null; then
        echo "build-static: not a Debian system (no dpkg/apt-get): install the equivalents of $*" \
            "(Debian names) with your package manager" >&2
        return 1
    fi
    for p in "$@"; do installed "$p" || missing+=("$p"); done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" -ne 0 ]; then
        echo "build-static: missing ${missing[*]}; as root: apt-get install ${missing[*]}" >&2
        return 1
    fi
    echo "build-static: installing ${missing[*]} (apt-get)"
    if [ -z "${APT_UPDATED:-}" ]; then apt-get update -qq; APT_UPDATED=1; fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

if [ "${1:-}" = --ensure ]; then
    shift
    ensure_packages "$@"
    exit $?
fi
ONLY_A64=0
[ "${1:-}" = --aarch64 ] && ONLY_A64=1

have_qemu() { command -v qemu-aarch64-static >/dev/null || command -v qemu-aarch64 >/dev/null; }

# --- the plan, up front --------------------------------------------------------------------
if ! command -v dpkg-query >/dev/null || ! command -v apt-get >/dev/null; then
    echo "build-static: needs Debian's dpkg and apt (musl-dev:arm64 is a Debian package); elsewhere" \
        "build the x86_64 binary with \`make static\` (musl-gcc) or natively on an aarch64 host" >&2
    exit 1
fi
# compiler-rt must match clang (Debian 12: clang 14 -> libclang-rt-14-dev); before clang is
# installed, the version is the one the clang package depends on
if command -v clang >/dev/null; then
    CLANG_MAJOR=$(clang -dumpversion | cut -d. -f1)
else
    CLANG_MAJOR=$(apt-cache depends clang 2>/dev/null | sed -n 's/^ *Depends: clang-\([0-9][0-9]*\)$/\1/p' | head -n1)
    CLANG_MAJOR=${CLANG_MAJOR:-14}
fi
NEED_HOST="clang lld"; [ $ONLY_A64 = 1 ] || NEED_HOST="musl-tools $NEED_HOST"
NEED_A64="musl-dev:arm64 libclang-rt-$CLANG_MAJOR-dev:arm64"
# TLS=1: the TLS build (wss:// hub links, BearSSL linked statically from Debian's libbearssl-dev
# of each architecture), written as build/peerpigeon-<arch>-tls; no 150 KB check for it
TLS=${TLS:-0}
SUFFIX=
if [ "$TLS" = 1 ]; then
    SUFFIX=-tls
    NEED_HOST="$NEED_HOST libbearssl-dev"
    NEED_A64="$NEED_A64 libbearssl-dev:arm64"
fi
todo=()
for p in $NEED_HOST; do installed "$p" || todo+=("$p"); done
ARCH_MISSING=0
dpkg --print-foreign-architectures 2>/dev/null | grep -qx arm64 || ARCH_MISSING=1
for p in $NEED_A64; do installed "$p" || todo+=("$p"); done
QEMU_PLAN=""
if [ $ONLY_A64 = 0 ] && ! have_qemu; then QEMU_PLAN=qemu-user-static; todo+=(qemu-user-static); fi
echo "build-static: needs $NEED_HOST $NEED_A64 (Debian packages; arm64 as a dpkg architecture)${QEMU_PLAN:+,}" \
    ${QEMU_PLAN:+"and qemu-user-static for the aarch64 smoke run"}
if [ ${#todo[@]} -eq 0 ] && [ $ARCH_MISSING = 0 ]; then
    echo "build-static: all present, nothing to install"
elif [ "$(id -u)" -eq 0 ]; then
    plan=""
    [ $ARCH_MISSING = 1 ] && plan="dpkg --add-architecture arm64; "
    [ ${#todo[@]} -gt 0 ] && plan="${plan}apt-get install ${todo[*]}"
    echo "build-static: will install: $plan"
else
    echo "build-static: missing; as root run:" >&2
    [ $ARCH_MISSING = 1 ] && echo "  dpkg --add-architecture arm64 && apt-get update" >&2
    [ ${#todo[@]} -gt 0 ] && echo "  apt-get install ${todo[*]}" >&2
    exit 1
fi

# --- toolchains ------------------------------------------------------------------------
# shellcheck disable=SC2086
ensure_packages $NEED_HOST
if [ $ARCH_MISSING = 1 ]; then
    dpkg --add-architecture arm64
    APT_UPDATED=
fi
# shellcheck disable=SC2086
ensure_packages $NEED_A64
if [ -n "$QEMU_PLAN" ]; then
    ensure_packages qemu-user-static || echo "build-static: no qemu; aarch64 smoke run skipped"
fi

RESDIR=$(clang -print-resource-dir)
BUILTINS=$RESDIR/lib/linux/libclang_rt.builtins-aarch64.a
[ -f "$BUILTINS" ] || { echo "build-static: $BUILTINS not found" >&2; exit 1; }

mkdir -p build
# --- x86_64 ----------------------------------------------------------------------------
if [ $ONLY_A64 = 0 ]; then
    # shellcheck disable=SC2086
    if [ "$TLS" = 1 ]; then
        # shellcheck disable=SC2086
        musl-gcc $WARN -DPP_TLS -isystem /usr/include/bearssl $STATIC_FLAGS -DPP_VERSION="\"$VERSION\"" \
            -o build/peerpigeon-x86_64-tls $SRCS tls.c /usr/lib/x86_64-linux-gnu/libbearssl.a
    else
        # shellcheck disable=SC2086
        musl-gcc $WARN $STATIC_FLAGS -DPP_VERSION="\"$VERSION\"" -o build/peerpigeon-x86_64 $SRCS
    fi
fi

# --- aarch64 ---------------------------------------------------------------------------
# -nostdinc/-nostdlib: only musl's arm64 headers and clang's own (stddef.h, stdarg.h...), and an
# explicit musl link line; STATIC_FLAGS carry -static, -s (strip at link time) and --gc-sections.
# shellcheck disable=SC2086
TLS_A64_C= TLS_A64_L=
[ "$TLS" = 1 ] && TLS_A64_C="-DPP_TLS -isystem /usr/include/bearssl" &&
    TLS_A64_L="tls.c /usr/lib/aarch64-linux-gnu/libbearssl.a"
# shellcheck disable=SC2086
clang --target=aarch64-linux-musl $WARN $TLS_A64_C $STATIC_FLAGS -DPP_VERSION="\"$VERSION\"" \
    -nostdinc -isystem "$RESDIR/include" -isystem "$MUSL_A64_INC" \
    -nostdlib -fuse-ld=lld -o build/peerpigeon-aarch64$SUFFIX \
    "$MUSL_A64/crt1.o" "$MUSL_A64/crti.o" $SRCS $TLS_A64_L "$MUSL_A64/libc.a" "$BUILTINS" \
    "$MUSL_A64/crtn.o"

fail=0
ARCHS="x86_64 aarch64"; [ $ONLY_A64 = 0 ] || ARCHS=aarch64
for a in $ARCHS; do
    s=$(stat -c %s "build/peerpigeon-$a$SUFFIX")
    if [ "$TLS" = 1 ]; then
        echo "build/peerpigeon-$a$SUFFIX: $s bytes stripped (the TLS build: no size target)"
        continue
    fi
    echo "build/peerpigeon-$a: $s bytes stripped (target <= $LIMIT)"
    [ "$s" -le "$LIMIT" ] || { echo "build-static: $a binary over $LIMIT bytes" >&2; fail=1; }
done
[ $ONLY_A64 = 1 ] && exit $fail
build/peerpigeon-x86_64 --version

# --- aarch64 smoke run under qemu --------------------------------------------------------
QEMU=$(command -v qemu-aarch64-static || command -v qemu-aarch64 || true)
if [ -n "$QEMU" ]; then
    echo "aarch64 (via $(basename "$QEMU")): $("$QEMU" build/peerpigeon-aarch64$SUFFIX --version)"
    log=$(mktemp)
    PORT=0 HOST=127.0.0.1 "$QEMU" build/peerpigeon-aarch64$SUFFIX >"$log" 2>&1 &
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
