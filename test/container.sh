#!/usr/bin/env bash
# test/container.sh - the Dockerfile's image, built and run without a Docker engine (buildah).
# The Debian build stage cannot pull its base image offline, so the final stage (from its
# `FROM scratch` line to the end, verbatim but for the COPY --from=build line, which takes
# build/peerpigeon-static from `make static` instead) is built with
# `buildah bud --isolation chroot --format docker`. Checks:
#   - the Dockerfile: a Debian build stage that installs musl-tools and runs `make static`,
#     then FROM scratch with the binary copied from it
#   - the build stage's context: its WORKDIR/COPY lines built on scratch with this clone and its
#     .dockerignore give exactly the Makefile, *.c, *.h and deploy/build-static.sh, and its
#     RUN lines (but apt-get) succeed in that tree on the host
#   - the image config (buildah inspect): user 65534:65534, exposed 3000/tcp, HEALTHCHECK
#     ["CMD","/peerpigeon","--health-check"], entrypoint ["/peerpigeon"], HOST=0.0.0.0 PORT=3000,
#     and a root filesystem of that one file, identical to build/peerpigeon-static
#   - `buildah run --isolation chroot --network host`: --version; the server runs as uid 65534;
#     the image's HEALTHCHECK command, run as the image says (its HOST=0.0.0.0 is asked on
#     127.0.0.1), exits 0 against the live server and 1 once it is gone; SIGTERM exits 0
#   - the bare image root with nothing added (chroot, as uid 65534: no /etc/hosts, /dev/null
#     or /proc, as in a scratch container without an engine's additions): HOST=localhost
#     listens on 127.0.0.1 within 2 s, /health answers 200, --health-check with HOST=0.0.0.0
#     and HOST=localhost exits 0 within 2 s, SIGTERM exits 0
#   - test/e2e.js against the container: PP_BIN is a wrapper (build/pp-container-<pid>) that
#     runs `buildah run ... -- /peerpigeon "$@"` with every variable the server reads (the
#     list below and every one its --help names), forwards
#     SIGTERM/SIGINT/SIGHUP to the server (buildah run does not), and takes the server down
#     if the wrapper is SIGKILLed. Not run there (PP_E2E_SKIP): the two tests that look at
#     the server's own pid (its /proc fd list, its CPU ticks) or set a shell `ulimit -n` of
#     4-16 descriptors in front of the binary, which buildah itself cannot start under.
# Installs Debian's buildah when missing (as root; otherwise FAIL). Everything it creates
# (container, image, wrapper, servers) goes at exit. Traffic stays on 127.0.0.1.
# About 40-60 s. Last line: "N passed, N failed"; exit 1 on any failure.
# Usage: bash test/container.sh
set -u
cd "$(dirname "$0")/.." || exit 1
ROOT=$PWD
pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok - $*"; }
bad() { fail=$((fail + 1)); echo "FAIL $*"; }
t() { # what cmd...: ok if the command succeeds
    local what=$1
    shift
    if "$@"; then ok "$what"; else bad "$what"; fi
}
finish() { echo "$pass passed, $fail failed"; [ "$fail" -eq 0 ]; exit; }

TAG=$$
IMG=localhost/peerpigeon-test:$TAG
CTR=peerpigeon-test-$TAG
WRAP=$ROOT/build/pp-container-$TAG
CTX=$ROOT/build/container-$TAG
PIDS=$CTX.pids
have_ctr=0
have_img=0
have_ctrsrc=0
have_imgsrc=0
CHPID=

# the processes of `buildah run ... $CTR ...` and the servers under them
our_runs() {
    local p
    for p in $(pgrep -x buildah 2>/dev/null); do
        tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -qF " $CTR " && echo "$p"
    done
}
descendants() { local c; for c in $(pgrep -P "$1" 2>/dev/null); do echo "$c"; descendants "$c"; done; }
cleanup() {
    local p r
    [ -n "$CHPID" ] && kill "$CHPID" 2>/dev/null
    r=$(our_runs)
    if [ -n "$r" ]; then
        echo "cleanup: stopping leftover container runs: $r"
        for p in $r; do kill $(descendants "$p") "$p" 2>/dev/null; done
        sleep 1
        for p in $r; do kill -9 $(descendants "$p") "$p" 2>/dev/null; done
    fi
    [ -f "$PIDS" ] && for p in $(cat "$PIDS"); do kill "$p" 2>/dev/null; done
    [ $have_ctr = 1 ] && { buildah umount "$CTR" >/dev/null 2>&1; buildah rm "$CTR" >/dev/null 2>&1; }
    [ $have_ctrsrc = 1 ] && { buildah umount "$CTRSRC" >/dev/null 2>&1; buildah rm "$CTRSRC" >/dev/null 2>&1; }
    [ $have_img = 1 ] && buildah rmi -f "$IMG" >/dev/null 2>&1
    [ $have_imgsrc = 1 ] && buildah rmi -f "$IMGSRC" >/dev/null 2>&1
    rm -rf "$CTX" "$PIDS" "$WRAP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP PIPE

# ---- tools --------------------------------------------------------------------------------
if ! command -v buildah >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "container: apt-get install buildah"
        { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq buildah; } >/dev/null 2>&1
    fi
    if ! command -v buildah >/dev/null; then
        bad "buildah missing and not installable here (as root on Debian: apt-get install buildah)"
        finish
    fi
fi
ok "buildah present ($(buildah --version | head -n1))"
if ! command -v node >/dev/null || [ ! -d .deps/node_modules/ws ]; then bash test/deps.sh; fi
export NODE_PATH="$ROOT/.deps/node_modules"

# ---- the Dockerfile -----------------------------------------------------------------------
debian_stage() { grep -Eq '^FROM +\$\{DEBIAN_IMAGE\} +AS +build$' Dockerfile && grep -Eq '^ARG DEBIAN_IMAGE=debian:12' Dockerfile; }
t "Dockerfile: build stage FROM Debian 12" debian_stage
t "Dockerfile: build stage installs musl-tools" grep -Eq 'apt-get install .*musl-tools' Dockerfile
t "Dockerfile: build stage runs make static" grep -Eq '^RUN make static' Dockerfile
t "Dockerfile: final stage FROM scratch, last" [ "$(grep -E '^FROM ' Dockerfile | tail -n1)" = "FROM scratch" ]
COPYLINE='COPY --from=build /src/build/peerpigeon-static /peerpigeon'
t "Dockerfile: final stage copies the static binary from the build stage" grep -qxF "$COPYLINE" Dockerfile
t ".dockerignore: sends the Makefile, sources and build-static.sh, not build/ or .deps/" \
    grep -qx '!Makefile' .dockerignore
[ "$fail" -eq 0 ] || finish

if ! make -s static >"$CTX.make.log" 2>&1; then
    bad "make static"
    cat "$CTX.make.log"
    rm -f "$CTX.make.log"
    finish
fi
rm -f "$CTX.make.log"
ok "make static: build/peerpigeon-static, $(stat -c %s build/peerpigeon-static) bytes"

mkdir -p "$CTX"
# ---- the build stage's context, offline -----------------------------------------------------
# Its WORKDIR and COPY lines, verbatim, on FROM scratch with this clone as the context (so
# .dockerignore applies as for `docker build .`); then its RUN lines but apt-get (musl-tools is
# here already) are run on the host in the tree that stage would have: the files it copies
# must be enough for `make static`.
IMGSRC=localhost/peerpigeon-test-src:$TAG
CTRSRC=peerpigeon-test-src-$TAG
awk '/^FROM .* AS build$/ { p = 1; print "FROM scratch"; next } /^FROM / { p = 0 } p && /^(WORKDIR|COPY) /' \
    Dockerfile >"$CTX/Dockerfile.build"
WD=$(sed -n 's/^WORKDIR //p' "$CTX/Dockerfile.build" | tail -n1)
if [ -n "$WD" ] && timeout 60 buildah bud --isolation chroot -q -t "$IMGSRC" -f "$CTX/Dockerfile.build" . >"$CTX/bud-src.log" 2>&1 &&
    have_imgsrc=1 && buildah from -q --name "$CTRSRC" "$IMGSRC" >/dev/null && have_ctrsrc=1 &&
    cp -a "$(buildah mount "$CTRSRC")$WD" "$CTX/src"; then
    got=$(cd "$CTX/src" && find . -type f | sed 's|^\./||' | sort | tr '\n' ' ')
    want=$({ echo Makefile; echo deploy/build-static.sh; ls -- *.c *.h; } | sort | tr '\n' ' ')
    t "build stage context: the Makefile, top-level sources and deploy/build-static.sh, nothing else" [ "$got" = "$want" ]
    [ "$got" = "$want" ] || echo "  got:  $got"$'\n'"  want: $want"
    runs=$(awk '/^FROM .* AS build$/ { p = 1; next } /^FROM / { p = 0 } p && /^RUN / && !/apt-get/ { sub(/^RUN /, ""); print }' Dockerfile)
    (cd "$CTX/src" && bash -ec "$runs") >"$CTX/run-src.log" 2>&1
    rc=$?
    t "build stage RUN lines (but apt-get) succeed in that tree: $runs" [ $rc = 0 ]
    [ $rc = 0 ] || tail -20 "$CTX/run-src.log"
    t "build stage output is the static binary" [ -x "$CTX/src/build/peerpigeon-static" ]
else
    bad "build stage context (buildah bud of its COPY lines)"
    cat "$CTX/bud-src.log"
fi

# ---- build the final stage offline ----------------------------------------------------------
cp build/peerpigeon-static "$CTX/peerpigeon-static"
tac Dockerfile | sed '/^FROM scratch$/q' | tac |
    sed "s|^$COPYLINE\$|COPY peerpigeon-static /peerpigeon|" >"$CTX/Dockerfile"
t "final stage taken from the Dockerfile, COPY from the local binary" \
    grep -qx 'COPY peerpigeon-static /peerpigeon' "$CTX/Dockerfile"
if timeout 60 buildah bud --isolation chroot --format docker -q -t "$IMG" -f "$CTX/Dockerfile" "$CTX" >"$CTX/bud.log" 2>&1; then
    have_img=1
    ok "buildah bud of the final stage"
else
    bad "buildah bud of the final stage"
    cat "$CTX/bud.log"
    finish
fi

# ---- image config -------------------------------------------------------------------------
cfg=$(buildah inspect --type image "$IMG" |
    node -e 'console.log(JSON.stringify(JSON.parse(require("fs").readFileSync(0, "utf8")).Docker.config || {}))')
jq_() { node -e 'const c = JSON.parse(process.argv[1]); console.log(JSON.stringify(eval(process.argv[2])))' "$cfg" "$1"; }
t "image user 65534:65534" [ "$(jq_ c.User)" = '"65534:65534"' ]
t "image exposes 3000/tcp only" [ "$(jq_ 'Object.keys(c.ExposedPorts || {})')" = '["3000/tcp"]' ]
t "image healthcheck CMD /peerpigeon --health-check" \
    [ "$(jq_ 'c.Healthcheck && c.Healthcheck.Test')" = '["CMD","/peerpigeon","--health-check"]' ]
t "image entrypoint /peerpigeon, no cmd" \
    [ "$(jq_ '[c.Entrypoint, c.Cmd || []]')" = '[["/peerpigeon"],[]]' ]
t "image env HOST=0.0.0.0 PORT=3000" \
    [ "$(jq_ '(c.Env || []).filter((e) => /^(HOST|PORT)=/.test(e)).sort()')" = '["HOST=0.0.0.0","PORT=3000"]' ]
t "image stop signal SIGTERM" [ "$(jq_ 'c.StopSignal')" = '"SIGTERM"' ]

if ! buildah from -q --name "$CTR" --ulimit "nofile=$(ulimit -Sn):$(ulimit -Hn)" "$IMG" >/dev/null; then
    bad "buildah from $IMG"
    finish
fi
have_ctr=1
MNT=$(buildah mount "$CTR")
t "image root is the one file /peerpigeon" [ "$(cd "$MNT" && find . -mindepth 1 | sort | tr '\n' ' ')" = "./peerpigeon " ]
t "image /peerpigeon is build/peerpigeon-static" cmp -s "$MNT/peerpigeon" build/peerpigeon-static

RUN=(buildah run --isolation chroot --network host)
free_port() { node -e 'const s = require("net").createServer().listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); })'; }
health_code() { # status of GET /health on 127.0.0.1:port, 0 if none
    node -e 'require("http").get({ host: "127.0.0.1", port: +process.argv[1], path: "/health", agent: false, timeout: 3000 },
        (r) => { console.log(r.statusCode); process.exit(0); }).on("error", () => console.log(0))' "$1"
}
wait_log() { # file pattern pid [tries]: until the pattern is in the file (tries x 50 ms, 5 s)
    local _       # or pid is gone
    for _ in $(seq 1 "${4:-100}"); do
        grep -q "$2" "$1" 2>/dev/null && return 0
        kill -0 "$3" 2>/dev/null || return 1
        sleep 0.05
    done
    return 1
}

# ---- runs in the container ------------------------------------------------------------------
v=$("${RUN[@]}" "$CTR" -- /peerpigeon --version 2>&1)
t "container: /peerpigeon --version" [ "$v" = "peerpigeon $(sed -n 's/^VERSION = //p' Makefile)" ]

# the image's own HEALTHCHECK command, as the engine runs it (image env; PORT set to ours)
mapfile -t HC < <(node -e 'JSON.parse(process.argv[1]).Healthcheck.Test.slice(1).forEach((a) => console.log(a))' "$cfg")
P=$(free_port)
"${RUN[@]}" --env PORT="$P" --env HOST=127.0.0.1 "$CTR" -- /peerpigeon >"$CTX/run.log" 2>&1 &
BR=$!
echo "$BR" >>"$PIDS"
if wait_log "$CTX/run.log" "listening on 127.0.0.1 port $P" "$BR"; then
    ok "container: server listening on 127.0.0.1 port $P"
    sp=
    for c in $(descendants "$BR"); do [ "$(cat "/proc/$c/comm" 2>/dev/null)" = peerpigeon ] && sp=$c; done
    uid_of() { [ -n "$1" ] && awk '/^Uid:/{print $2}' "/proc/$1/status"; }
    t "container: server runs as uid 65534" [ "$(uid_of "$sp")" = 65534 ]
    t "container: /health 200" [ "$(health_code "$P")" = 200 ]
    t "container: HEALTHCHECK command (image HOST=0.0.0.0, asked on loopback) exits 0" \
        "${RUN[@]}" --env PORT="$P" "$CTR" -- "${HC[@]}"
    [ -n "$sp" ] && kill -TERM "$sp"
    wait "$BR"
    t "container: server exits 0 on SIGTERM" [ $? = 0 ]
    "${RUN[@]}" --env PORT="$P" "$CTR" -- "${HC[@]}" >"$CTX/hc.log" 2>&1
    rc=$?
    t "container: HEALTHCHECK command exits 1 with nothing listening" [ $rc = 1 ]
    t "container: HEALTHCHECK says what failed" grep -q "health check of 127.0.0.1 port $P failed" "$CTX/hc.log"
else
    bad "container: server did not start"
    cat "$CTX/run.log"
    kill "$BR" 2>/dev/null
fi

# ---- the bare image root: no /etc/hosts, /etc/resolv.conf, /dev/null, /proc ------------------
# (what a scratch container is without an engine's additions). HOST=localhost must bind
# loopback at once: without /etc/hosts a getaddrinfo("localhost") asks DNS at 127.0.0.1:53,
# where nothing answers, and waits out musl's 5 s timeout.
ms() { echo $(($(date +%s%N) / 1000000)); }
CHROOT=$(command -v chroot)
P=$(free_port)
t0=$(ms)
env -i HOST=localhost PORT="$P" "$CHROOT" --userspec=65534:65534 "$MNT" /peerpigeon >"$CTX/chroot.log" 2>&1 &
CHPID=$!
if wait_log "$CTX/chroot.log" "ready: port" "$CHPID" 200; then
    dt=$(($(ms) - t0))
    t "bare root: HOST=localhost listens on 127.0.0.1 without /etc/hosts" grep -q "listening on 127.0.0.1 port $P" "$CTX/chroot.log"
    t "bare root: HOST=localhost listening within 2 s (took $dt ms)" [ "$dt" -lt 2000 ]
    t "bare root: /health 200" [ "$(health_code "$P")" = 200 ]
    rss=$(node -e 'require("http").get({ host: "127.0.0.1", port: +process.argv[1], path: "/health", agent: false },
        (r) => { let b = ""; r.on("data", (d) => (b += d)); r.on("end", () => console.log(JSON.parse(b).memory.rss)); }).on("error", () => console.log(0))' "$P")
    t "bare root: /health memory.rss without /proc is the peak, not 0 ($rss)" [ "${rss:-0}" -gt 0 ]
    for h in 0.0.0.0 localhost; do
        t0=$(ms)
        env -i HOST=$h PORT="$P" "$CHROOT" --userspec=65534:65534 "$MNT" /peerpigeon --health-check >"$CTX/hc.log" 2>&1
        rc=$?
        dt=$(($(ms) - t0))
        t "bare root: --health-check with HOST=$h exits 0 within 2 s (exit $rc, $dt ms)" [ "$rc,$((dt < 2000))" = 0,1 ]
    done
    kill -TERM "$CHPID"
    wait "$CHPID"
    t "bare root: exits 0 on SIGTERM" [ $? = 0 ]
    CHPID=
    echo "  bare root log: $(grep -v 'listening on\|ready: port\|stopped' "$CTX/chroot.log" | sed 's/^[0-9TZ:.-]* //' | tr '\n' ';')"
else
    bad "bare root: server did not start"
    cat "$CTX/chroot.log"
fi

# ---- test/e2e.js against the container ------------------------------------------------------
# every variable the server reads: these, and any setting its --help lists (new ones too)
VARS="PORT HOST MAX_CONNECTIONS CORS_ORIGIN IS_HUB HUB_MESH_NAMESPACE BOOTSTRAP_HUBS AUTH_TOKEN MAX_MESSAGE_SIZE PING_INTERVAL LOG_LEVEL HUB_PEER_ID PP_RESOLV_CONF PP_DNS_PORT JOURNAL_STREAM"
VARS=$({ printf '%s\n' $VARS; build/peerpigeon-static --help 2>&1 |
    awk '$1 ~ /^--/ && $2 ~ /^[A-Z][A-Z0-9_]+$/ { print $2 }'; } | awk '!seen[$0]++' | tr '\n' ' ')
echo "container: the wrapper passes $VARS"
cat >"$WRAP" <<EOF
#!/usr/bin/env bash
# PP_BIN for the Node suites: /peerpigeon in container $CTR (test/container.sh writes it)
args=()
for v in $VARS; do [ -n "\${!v+x}" ] && args+=(--env "\$v=\${!v}"); done
buildah run --isolation chroot --network host "\${args[@]}" $CTR -- /peerpigeon "\$@" &
b=\$!
echo "\$b" >>"$PIDS"
servers() { local p q; for p in \$(pgrep -P "\$b"); do for q in \$(pgrep -P "\$p"); do pgrep -x -P "\$q" peerpigeon; done; done; }
fwd() { local s; s=\$(servers); [ -n "\$s" ] && kill -s "\$1" \$s; }
trap 'fwd TERM' TERM
trap 'fwd INT' INT
trap 'fwd HUP' HUP
# if this wrapper is SIGKILLed, the server must not outlive it
me=\$\$
( while kill -0 "\$me" 2>/dev/null; do sleep 0.2; done; fwd KILL ) </dev/null >/dev/null 2>&1 &
while :; do
    wait "\$b"
    rc=\$?
    kill -0 "\$b" 2>/dev/null || break
done
exit \$rc
EOF
chmod +x "$WRAP"

# tests that need the server's own pid or a ulimit in front of the binary (see the header)
export PP_E2E_SKIP='^(200 sockets destroyed abruptly|out of descriptors with none in reserve)'
# the lines test/e2e.js needs, before its last line run(tests, ...)
SKIP_LINES=$(cat <<'EOF'
// PP_E2E_SKIP: a regexp; tests whose names match are not run, each listed (test/container.sh, test/aarch64.sh)
const SKIP = process.env.PP_E2E_SKIP && new RegExp(process.env.PP_E2E_SKIP);
if (SKIP) for (const t of tests.filter(([n]) => SKIP.test(n))) { console.log(`skip: ${t[0]} (PP_E2E_SKIP)`); tests.splice(tests.indexOf(t), 1); }
EOF
)
SKIP_LINES="$SKIP_LINES
"
E2E=test/e2e.js
if ! grep -q PP_E2E_SKIP test/e2e.js; then
    # until e2e.js honours PP_E2E_SKIP: a copy with the two lines it needs, before run(tests
    E2E=$CTX/e2e.js
    node -e '
        const fs = require("fs");
        const [src, dst, root, lines] = process.argv.slice(1);
        let t = fs.readFileSync(src, "utf8").replace("require(\x27./lib\x27)", `require(${JSON.stringify(root + "/test/lib")})`)
            .split("${__dirname}").join(root + "/test");
        const i = t.search(/^run\(tests/m);
        if (i < 0) { console.error("e2e.js: no run(tests line"); process.exit(1); }
        fs.writeFileSync(dst, t.slice(0, i) + lines + t.slice(i));' test/e2e.js "$E2E" "$ROOT" "$SKIP_LINES" || bad "e2e.js copy"
    echo "note: test/e2e.js does not honour PP_E2E_SKIP yet; running a copy with the skip lines"
fi
echo "== test/e2e.js, PP_BIN=$WRAP"
out=$(PP_BIN=$WRAP timeout 200 node "$E2E" 2>&1)
rc=$?
printf '%s\n' "$out" | grep -E '^(FAIL|skip)' | head -40
line=$(printf '%s\n' "$out" | grep -E '^[0-9]+ passed, [0-9]+ failed' | tail -n1)
if [ -z "$line" ]; then
    bad "e2e.js in the container: no result (exit $rc)"
    printf '%s\n' "$out" | tail -20
else
    echo "e2e.js in the container: $line"
    pass=$((pass + ${line%% passed*}))
    f=${line#*passed, }
    fail=$((fail + ${f%% failed*}))
    [ "$rc" -eq 0 ] || [ "${f%% failed*}" -ne 0 ] || bad "e2e.js exit $rc"
fi
[ "$(printf '%s\n' "$out" | grep -c '^skip: ')" = 2 ] || bad "e2e.js: expected exactly 2 skipped tests"
r=$(our_runs)
t "no container run left behind by e2e.js" [ -z "$r" ]
finish
