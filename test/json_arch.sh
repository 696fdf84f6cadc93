#!/usr/bin/env bash
# test/json_arch.sh - test_json once per string scanner of json.c: scalar (-DJSON_SCALAR),
# SWAR (-DJSON_SWAR) and this machine's own (SSE2 on x86_64, NEON on aarch64), each with
# ASan/UBSan; each checks its scanner against the scalar reference compiled into the test.
# On another host, NEON is also cross-built (-static) and run under qemu-aarch64: the tools
# are installed when missing and this runs as root on Debian (apt-get), else aarch64 is
# skipped, and says so; SWAR also runs big-endian (s390x under qemu) when those tools are
# here. One pass or failure per variant run; the last line is the count.
set -u
cd "$(dirname "$0")/.." || exit 1
CC=${CC:-cc}
WARN="-std=c11 -D_GNU_SOURCE -Wall -Wextra -Wshadow -Wstrict-prototypes -Wvla -Werror"
SAN="-g -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}"
pass=0 fail=0
mkdir -p build

# variant NAME COMMAND...: run a built test binary; it passes if it exits 0 with "0 failed"
variant() {
    local name=$1 out line
    shift
    out=$("$@" 2>&1)
    local rc=$?
    line=$(printf '%s\n' "$out" | grep -E '^[0-9]+ passed, [0-9]+ failed' | tail -1)
    if [ $rc -eq 0 ] && [ -n "$line" ] && [ "${line#*passed, }" = "0 failed" ]; then
        echo "json $name: $(printf '%s\n' "$out" | grep '^scanner' | tail -1): $line"
        pass=$((pass + 1))
    else
        echo "FAIL json $name (exit $rc): ${line:-no result}"
        printf '%s\n' "$out" | grep -E 'FAIL|ERROR|SUMMARY|differs' | head -20
        fail=$((fail + 1))
    fi
}

# build NAME COMPILER FLAGS...: test_json + json.c into build/test_json_NAME
build() {
    local name=$1 cc=$2
    shift 2
    if ! $cc $WARN "$@" -I. -o "build/test_json_$name" test/test_json.c json.c; then
        echo "FAIL json $name does not build"
        fail=$((fail + 1))
        return 1
    fi
}

case $(uname -m) in
x86_64 | i?86) native=sse2 ;;
aarch64 | arm64) native=neon ;;
*) native="" ;; # SWAR is this machine's own
esac
build scalar "$CC" $SAN -DJSON_SCALAR && variant scalar "./build/test_json_scalar"
build swar "$CC" $SAN -DJSON_SWAR && variant swar "./build/test_json_swar"
if [ -n "$native" ]; then
    build "$native" "$CC" $SAN && variant "$native" "./build/test_json_$native"
fi

# NEON elsewhere: a static aarch64 build under qemu-user (UBSan traps: no runtime needed)
if [ "$native" != neon ]; then
    have_a64() {
        command -v aarch64-linux-gnu-gcc >/dev/null &&
            { command -v qemu-aarch64 >/dev/null || command -v qemu-aarch64-static >/dev/null; }
    }
    if ! have_a64 && [ "$(id -u)" = 0 ] && [ -f /etc/debian_version ] &&
        command -v apt-get >/dev/null; then
        echo "json_arch: apt-get install gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user"
        { [ -n "${APT_UPDATED:-}" ] || apt-get update -qq; } &&
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gcc-aarch64-linux-gnu \
                libc6-dev-arm64-cross qemu-user >/dev/null ||
            echo "json_arch: the install failed"
    fi
    if have_a64; then
        qemu=$(command -v qemu-aarch64 || command -v qemu-aarch64-static)
        build neon aarch64-linux-gnu-gcc -g -O2 -static -fsanitize=undefined \
            -fsanitize-undefined-trap-on-error && variant neon "$qemu" ./build/test_json_neon
    else
        echo "json_arch: skipped aarch64 (needs aarch64-linux-gnu-gcc and qemu-aarch64; as root" \
            "on Debian: apt-get install gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user)"
    fi
fi
# SWAR's big-endian load, when a big-endian cross compiler is already here (never installed:
# as root on Debian, apt-get install gcc-s390x-linux-gnu libc6-dev-s390x-cross qemu-user)
if command -v s390x-linux-gnu-gcc >/dev/null && command -v qemu-s390x >/dev/null; then
    build swar-s390x s390x-linux-gnu-gcc -g -O2 -static -fsanitize=undefined \
        -fsanitize-undefined-trap-on-error && variant swar-s390x qemu-s390x ./build/test_json_swar-s390x
else
    echo "json_arch: skipped big-endian SWAR (no s390x-linux-gnu-gcc and qemu-s390x)"
fi
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
