#!/usr/bin/env bash
# test/aarch64.sh - the static aarch64 binary (deploy/build-static.sh --aarch64: clang + lld
# against Debian's musl-dev:arm64) under qemu-user, driven by test/e2e.js: PP_BIN is a wrapper
# (build/pp-aarch64-<pid>, a few lines of C) that execs qemu-aarch64(-static) on
# build/peerpigeon-aarch64, so the pid Node sees is qemu's and signals reach the guest. Checks first that the binary is an
# aarch64 static executable within 150 KB and that `--version` runs, then the whole e2e.
# As root on Debian it installs what is missing (the toolchain via build-static.sh,
# qemu-user-static when there is no qemu-aarch64); otherwise it fails, never passes silently.
# PP_E2E_SKIP (a regexp of e2e test names) is passed through if set. About 60-90 s.
# Last line: "N passed, N failed"; exit 1 on any failure.
# Usage: bash test/aarch64.sh
set -u
cd "$(dirname "$0")/.." || exit 1
ROOT=$PWD
pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok - $*"; }
bad() { fail=$((fail + 1)); echo "FAIL $*"; }
t() { local what=$1; shift; if "$@"; then ok "$what"; else bad "$what"; fi; }
finish() { echo "$pass passed, $fail failed"; [ "$fail" -eq 0 ]; exit; }
WRAP=$ROOT/build/pp-aarch64-$$
trap 'rm -f "$WRAP" "$WRAP.log"' EXIT

if ! bash deploy/build-static.sh --aarch64 >"$WRAP.log" 2>&1; then
    bad "deploy/build-static.sh --aarch64"
    cat "$WRAP.log"
    finish
fi
grep '^build-static: \(will install\|installing\)' "$WRAP.log"
BIN=$ROOT/build/peerpigeon-aarch64
ok "build/peerpigeon-aarch64 built, $(stat -c %s "$BIN") bytes"

QEMU=$(command -v qemu-aarch64-static || command -v qemu-aarch64 || true)
if [ -z "$QEMU" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "aarch64: apt-get install qemu-user-static"
    bash deploy/build-static.sh --ensure qemu-user-static >/dev/null
    QEMU=$(command -v qemu-aarch64-static || command -v qemu-aarch64 || true)
fi
if [ -z "$QEMU" ]; then
    bad "no qemu-aarch64 (as root on Debian: apt-get install qemu-user-static)"
    finish
fi
ok "qemu: $QEMU ($("$QEMU" --version | head -n1))"
if ! command -v node >/dev/null || [ ! -d .deps/node_modules/ws ]; then bash test/deps.sh; fi
export NODE_PATH="$ROOT/.deps/node_modules"

# ELF header: class 64-bit (byte 4 = 2), machine EM_AARCH64 (bytes 18-19 = b7 00), and no
# program interpreter (a static executable)
elf() { od -An -tx1 -j "$1" -N "$2" "$BIN" | tr -d ' \n'; }
t "ELF64, machine aarch64" [ "$(elf 4 1),$(elf 18 2)" = "02,b700" ]
if command -v readelf >/dev/null; then
    t "static: no program interpreter, no dynamic section" [ -z "$(readelf -lW "$BIN" | grep -E 'INTERP|DYNAMIC')" ]
fi
t "within 150 KB (153600 bytes)" [ "$(stat -c %s "$BIN")" -le 153600 ]
v=$("$QEMU" "$BIN" --version 2>&1)
t "--version under qemu: $v" [ "$v" = "peerpigeon $(sed -n 's/^VERSION = //p' Makefile)" ]

# the wrapper is a small C program, not a script: a shell holds the script open on a
# descriptor of its own (dash: fd 10), and e2e.js's `ulimit -n 4..16` test needs the server
# to see every descriptor the limit allows
if ! printf '%s\n' '#include <unistd.h>' '#include <stdio.h>' \
    'int main(int argc, char **argv) {' \
    '    char *args[argc + 2];' \
    '    args[0] = QEMU; args[1] = BIN;' \
    '    for (int i = 1; i <= argc; i++) args[i + 1] = argv[i];' \
    '    execv(QEMU, args);' \
    '    perror(QEMU);' \
    '    return 127;' \
    '}' | ${CC:-cc} -std=c99 -O2 -x c -DQEMU="\"$QEMU\"" -DBIN="\"$BIN\"" -o "$WRAP" -; then
    bad "wrapper: cc failed"
    finish
fi
echo "== test/e2e.js, PP_BIN=$WRAP"
t0=$(date +%s)
out=$(PP_BIN=$WRAP timeout 280 node test/e2e.js 2>&1)
rc=$?
printf '%s\n' "$out" | grep -E '^(FAIL|skip)' | cut -c1-400 | head -40
line=$(printf '%s\n' "$out" | grep -E '^[0-9]+ passed, [0-9]+ failed' | tail -n1)
if [ -z "$line" ]; then
    bad "e2e.js under qemu: no result (exit $rc)"
    printf '%s\n' "$out" | tail -20
else
    echo "e2e.js under qemu ($(($(date +%s) - t0)) s): $line"
    pass=$((pass + ${line%% passed*}))
    f=${line#*passed, }
    fail=$((fail + ${f%% failed*}))
    [ "$rc" -eq 0 ] || [ "${f%% failed*}" -ne 0 ] || bad "e2e.js exit $rc"
fi
finish
