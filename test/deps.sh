#!/usr/bin/env bash
# Installs the test tools that are missing: npm packages into .deps/ (git-ignored) and, when
# root on Debian, node/npm, clang with libFuzzer and chromium. Safe to run again; prints what
# it did; a tool it cannot install makes its suite fail, never pass silently.
set -u
cd "$(dirname "$0")/.."
NPM_PKGS="peerpigeon@1.1.3 ws@8 playwright-core@1"
apt_install() { # root on Debian only; prints what it does
    [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null || return 1
    echo "deps: apt-get install $*" >&2
    { [ -n "${APT_UPDATED:-}" ] || apt-get update -qq; } && APT_UPDATED=1 &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >&2
}
command -v node >/dev/null && command -v npm >/dev/null || apt_install nodejs npm ||
    echo "deps: node/npm missing; Node-based tests will fail" >&2
# the fuzz targets need clang with libFuzzer (Debian: clang + libclang-rt-dev)
if ! printf 'int LLVMFuzzerTestOneInput(const char *d, long n){(void)d;(void)n;return 0;}' |
    clang -x c -fsanitize=fuzzer -o /dev/null - 2>/dev/null; then
    apt_install clang libclang-rt-dev || echo "deps: clang with libFuzzer missing; fuzz will fail" >&2
fi
if ! command -v node >/dev/null; then
    echo "deps: node not found; Node-based tests will fail" >&2
elif [ ! -f .deps/node_modules/peerpigeon/package.json ] || [ ! -d .deps/node_modules/ws ] ||
     [ ! -d .deps/node_modules/playwright-core ]; then
    mkdir -p .deps
    [ -f .deps/package.json ] || echo '{"name":"peerpigeon-c-test-deps","private":true}' > .deps/package.json
    echo "deps: npm install $NPM_PKGS into .deps/" >&2
    # --ignore-scripts: peerpigeon's optional WebRTC module would download a binary
    (cd .deps && npm install --silent --no-audit --no-fund --ignore-scripts $NPM_PKGS) >&2 ||
        echo "deps: npm install failed" >&2
fi
# promtool (checks /metrics): from Debian's prometheus package, unpacked into .deps/ only (the
# service is not installed)
if [ ! -x .deps/bin/promtool ] && ! command -v promtool >/dev/null &&
    [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "deps: promtool from Debian's prometheus package into .deps/bin" >&2
    t=$(mktemp -d)
    { [ -n "${APT_UPDATED:-}" ] || apt-get update -qq; } && APT_UPDATED=1
    if (cd "$t" && apt-get download -qq prometheus >&2) && dpkg -x "$t"/prometheus_*.deb "$t/x"; then
        mkdir -p .deps/bin && cp "$t/x/usr/bin/promtool" .deps/bin/promtool
    else
        echo "deps: promtool unavailable; the /metrics format check will fail" >&2
    fi
    rm -rf "$t"
fi
command -v chromium >/dev/null || apt_install chromium ||
    echo "deps: chromium missing; the browser test will fail" >&2
exit 0
