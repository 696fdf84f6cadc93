#!/usr/bin/env bash
# Installs the test tools that are missing: npm packages into .deps/ (git-ignored) and, when
# root on Debian, chromium for the browser test. Safe to run again; prints what it did.
set -u
cd "$(dirname "$0")/.."
NPM_PKGS="peerpigeon@1.1.3 ws@8 playwright-core@1"
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
if ! command -v chromium >/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "deps: apt-get install chromium" >&2
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >&2 ||
        echo "deps: chromium install failed" >&2
fi
exit 0
