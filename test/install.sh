#!/usr/bin/env bash
# test/install.sh - deploy/install.sh run into scratch DESTDIRs (mktemp -d) with a prebuilt
# binary ($PP_BIN, else `make peerpigeon`), as a hub and as a plain server, with each kind of
# firewall faked. Stubs for systemctl, useradd/userdel, ufw, firewall-cmd, iptables,
# netfilter-persistent, apt-get and dnf come first in PATH: they answer the read-only questions
# (ufw status, firewall-cmd --state, iptables -S) and log every other call, which must never
# happen with DESTDIR set. Checks the files and their modes, the env file, the printed dial URL
# and hub secret (a hub gets a generated HUB_SECRET and no AUTH_TOKEN unless asked), idempotence,
# --uninstall, that nothing outside DESTDIR changed, that the unit passes `systemd-analyze
# verify` (skipped, not passed, when it cannot run here), and runs the installed binary with
# the env file's settings on a free loopback port: --health-check, clients open, hub rights by
# secret (/hubstats), and a token enforced when one is set. Last line: "N passed, N failed,
# N skipped"; exit 1 on a failure.
# shellcheck disable=SC2016,SC2034 # the checks are single-quoted for eval, on purpose (and so
# are the variables only they read)
set -u
cd "$(dirname "$0")/.." || exit 1
ROOT=$PWD
pass=0 fail=0 skip=0
ok() { pass=$((pass + 1)); echo "ok - $1"; }
bad() { fail=$((fail + 1)); echo "FAIL: $1"; }
skipped() { skip=$((skip + 1)); echo "skip - $1"; }
# t DESCRIPTION COMMAND...: a check
t() {
    local d=$1
    shift
    if "$@"; then ok "$d"; else bad "$d"; fi
}
has() { grep -qF -- "$2" <<<"$1"; }      # has TEXT STRING
hasline() { grep -qxF -- "$2" <<<"$1"; } # hasline TEXT LINE: LINE is one whole line of TEXT
hasnt() { ! grep -qF -- "$2" <<<"$1"; }

T=$(mktemp -d)
SERVER=
cleanup() {
    [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT

if [ -n "${PP_BIN:-}" ]; then
    BIN=$PP_BIN
else
    make -s peerpigeon >/dev/null || { echo "make peerpigeon failed"; echo "0 passed, 1 failed, 0 skipped"; exit 1; }
    BIN=$ROOT/peerpigeon
fi
[ -x "$BIN" ] || { echo "FAIL: no binary $BIN"; echo "0 passed, 1 failed, 0 skipped"; exit 1; }

# --- stubs ---------------------------------------------------------------------------------
mkdir -p "$T/stub"
LOG=$T/calls.log
: >"$LOG"
stub() { printf '#!/usr/bin/env bash\n%s\n' "$2" >"$T/stub/$1"; chmod +x "$T/stub/$1"; }
MUT='echo "MUTATE $(basename "$0") $*" >>"$FAKE_LOG"'
for c in systemctl useradd userdel groupadd groupdel apt-get dnf yum netfilter-persistent iptables-save runuser journalctl; do
    stub "$c" "$MUT; exit 0"
done
stub ufw 'if [ "$1" = status ]; then [ "$FAKE_FW" = ufw ] && echo "Status: active" || echo "Status: inactive"; exit 0; fi
'"$MUT"
stub firewall-cmd 'if [ "$1" = --state ]; then [ "$FAKE_FW" = firewalld ] && { echo running; exit 0; }; echo "not running"; exit 252; fi
'"$MUT"
stub iptables 'if [ "$1" = -S ]; then [ "$FAKE_FW" = iptables ] || exit 1
cat <<EOF
-P INPUT ACCEPT
-A INPUT -m state --state RELATED,ESTABLISHED -j ACCEPT
-A INPUT -p icmp -j ACCEPT
-A INPUT -i lo -j ACCEPT
-A INPUT -p udp -m udp --sport 123 -j ACCEPT
-A INPUT -p tcp -m state --state NEW -m tcp --dport 22 -j ACCEPT
-A INPUT -j REJECT --reject-with icmp-host-prohibited
EOF
exit 0; fi
'"$MUT"

# run DESTDIR FIREWALL ARGS...: deploy/install.sh; output in OUT, exit code in RC
run() {
    local d=$1 fw=$2
    shift 2
    OUT=$(DESTDIR=$d FAKE_FW=$fw FAKE_LOG=$LOG PATH="$T/stub:$PATH" timeout 60 bash deploy/install.sh "$@" 2>&1)
    RC=$?
}
envf() { cat "$1/etc/peerpigeon.env"; }
val() { sed -n "s/^$2=//p" "$1/etc/peerpigeon.env"; }
mode() { stat -c %a "$1"; }

# what must not change outside the DESTDIRs
snap() {
    ls -la --time-style=+%s /etc/systemd/system /usr/local/bin 2>&1
    ls -la --time-style=+%s /etc/peerpigeon.env /var/lib/peerpigeon-install 2>&1
    md5sum /etc/passwd /etc/group 2>&1
}
snap >"$T/before"

# --- options -------------------------------------------------------------------------------
t "deploy/install.sh parses (bash -n)" bash -n deploy/install.sh
t "deploy/install.sh is executable" test -x deploy/install.sh
run "$T/none" none --help
t "--help: exit 0 and the usage, with the hub secret options" eval '[ $RC -eq 0 ] && has "$OUT" "usage: sudo deploy/install.sh" && has "$OUT" "--uninstall" && has "$OUT" "--hub-secret S" && has "$OUT" "--generate-hub-secret"'
run "$T/none" none --frobnicate
t "unknown option: exit 2" test "$RC" -eq 2
for args in "--port 0" "--port 70000" "--port x" "--max-connections 0" "--max-connections 2000000" \
    "--auth-token a\ b" "--bootstrap http://h:3000" "--host a\ b" "--auth-token x --generate-token" \
    "--hub --hub-secret a\ b" "--hub --hub-secret a/b" "--hub --hub-secret x --generate-hub-secret"; do
    eval "set -- $args"
    run "$T/bad" none --binary "$BIN" "$@"
    t "refused: $args (exit 2, nothing written)" eval '[ $RC -eq 2 ] && [ ! -e "$T/bad" ]'
done

run "$T/bad" none --binary "$BIN" --hub --hub-secret a/b
t "refused: --hub-secret with '/' (a path segment) by the script's own check" eval '[ $RC -eq 2 ] && has "$OUT" "--hub-secret: use 1-255" && [ ! -e "$T/bad" ]'

# a binary of the other architecture (e_machine patched) is refused before anything is done
cp "$BIN" "$T/other-arch"
if [ "$(uname -m)" = x86_64 ]; then other='\267'; else other='\076'; fi
printf "$other" | dd of="$T/other-arch" bs=1 seek=18 conv=notrunc status=none
run "$T/bad" none --binary "$T/other-arch"
t "refused: --binary of another architecture (nothing written)" eval '[ $RC -ne 0 ] && has "$OUT" "binary and this machine is $(uname -m)" && [ ! -e "$T/bad" ]'

# --- a hub, ufw active ---------------------------------------------------------------------
H=$T/hub
run "$H" ufw --hub --port 3000 --max-connections 5000 --public-address 203.0.113.7 --binary "$BIN"
echo "$OUT" | sed 's/^/    /'
t "hub: exit 0" test "$RC" -eq 0
t "hub: binary installed, mode 755, identical" eval '[ "$(mode "$H/usr/local/bin/peerpigeon")" = 755 ] && cmp -s "$BIN" "$H/usr/local/bin/peerpigeon"'
t "hub: unit installed, mode 644, from deploy/peerpigeon.service" eval '[ "$(mode "$H/etc/systemd/system/peerpigeon.service")" = 644 ] && cmp -s deploy/peerpigeon.service "$H/etc/systemd/system/peerpigeon.service"'
t "hub: unit reads EnvironmentFile=/etc/peerpigeon.env, runs as peerpigeon, keeps the sandbox" \
    eval 'u=$(cat "$H/etc/systemd/system/peerpigeon.service"); has "$u" "EnvironmentFile=/etc/peerpigeon.env" && has "$u" "User=peerpigeon" && has "$u" "ProtectSystem=strict" && has "$u" "SystemCallFilter=@system-service" && has "$u" "NoNewPrivileges=yes"'
t "hub: env file mode 600" test "$(mode "$H/etc/peerpigeon.env")" = 600
if [ "$(id -u)" = 0 ]; then
    t "hub: env file owned by root" test "$(stat -c %U:%G "$H/etc/peerpigeon.env")" = root:root
else
    skipped "env file owner (not root)"
fi
t "hub: env file has the settings" eval '[ "$(val "$H" HOST)" = 0.0.0.0 ] && [ "$(val "$H" PORT)" = 3000 ] && [ "$(val "$H" MAX_CONNECTIONS)" = 5000 ] && [ "$(val "$H" IS_HUB)" = true ]'
SECRET=$(val "$H" HUB_SECRET)
t "hub: generated HUB_SECRET is 64 hex, one line" eval '[[ $SECRET =~ ^[0-9a-f]{64}$ ]] && [ "$(grep -c "^HUB_SECRET=" "$H/etc/peerpigeon.env")" = 1 ]'
t "hub: no AUTH_TOKEN written (browsers stay open)" eval '! grep -q "^AUTH_TOKEN" "$H/etc/peerpigeon.env" && hasnt "$OUT" "AUTH_TOKEN=" && hasnt "$OUT" "--auth-token"'
t "hub: says it generated the hub secret" has "$OUT" "generated a hub secret"
t "hub: no open-hub warning" hasnt "$OUT" "anyone can get hub rights"
t "hub: prints the dial URL BOOTSTRAP_HUBS=ws://203.0.113.7:3000" has "$OUT" "BOOTSTRAP_HUBS=ws://203.0.113.7:3000"
t "hub: prints the secret other hubs need" hasline "$OUT" "    HUB_SECRET=$SECRET"
t "hub: prints the command for the other hubs" hasline "$OUT" "  on each of them: sudo deploy/install.sh --hub --bootstrap ws://203.0.113.7:3000 --hub-secret $SECRET"
t "hub: prints the URL JS/Go hubs dial, ws://203.0.113.7:3000/hub/<secret>" hasline "$OUT" "  JS/Go hubs dial: ws://203.0.113.7:3000/hub/$SECRET"
t "hub: clients without a token" hasline "$OUT" "  clients:  ws://203.0.113.7:3000"
t "hub: says hub rights need the secret" has "$OUT" "  hubs:     hub rights only with the HUB_SECRET"
t "hub: prints the health URL" has "$OUT" "http://203.0.113.7:3000/health"
t "hub: useradd printed, not run" eval 'has "$OUT" "would run: useradd --system --user-group --no-create-home" && has "$OUT" "peerpigeon-c server'"'"' peerpigeon"'
t "hub: systemctl daemon-reload and enable --now printed" eval 'has "$OUT" "would run: systemctl daemon-reload" && has "$OUT" "would run: systemctl enable --now peerpigeon"'
t "hub: ufw allow 3000/tcp printed" has "$OUT" "would run: ufw allow 3000/tcp"
t "hub: health check printed" has "$OUT" "would check: HOST=0.0.0.0 PORT=3000 /usr/local/bin/peerpigeon --health-check"
t "hub: no drop-in for 5000 connections" test ! -e "$H/etc/systemd/system/peerpigeon.service.d"
t "hub: nothing run outside DESTDIR" eval '! grep -q MUTATE "$LOG"'

# systemd-analyze verify --root=DESTDIR: first on a known-good unit, to tell "cannot run here"
# from "the unit is wrong"
if ! command -v systemd-analyze >/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq systemd; } >/dev/null 2>&1
fi
VERIFY=
if command -v systemd-analyze >/dev/null; then
    V=$T/vcheck
    mkdir -p "$V/etc/systemd/system" "$V/usr/local/bin"
    cp "$(type -P true)" "$V/usr/local/bin/probe"
    printf '[Unit]\nDescription=probe\n[Service]\nExecStart=/usr/local/bin/probe\n' >"$V/etc/systemd/system/probe.service"
    if why=$(systemd-analyze verify --root="$V" --recursive-errors=no probe.service 2>&1) && [ -z "$why" ]; then
        VERIFY=1
        # and it does fail a wrong unit: the check is not vacuous
        printf '[Unit]\nDescription=probe\n[Service]\nExecStart=/usr/local/bin/probe\nRestart=sometimes\nProtectSystm=strict\n' >"$V/etc/systemd/system/probe.service"
        if systemd-analyze verify --root="$V" --recursive-errors=no probe.service >/dev/null 2>&1; then
            bad "systemd-analyze verify passes a unit with an unknown key and a bad value"
        else
            ok "systemd-analyze verify fails a wrong unit"
        fi
    else
        VERIFY_WHY="systemd-analyze cannot verify here: $why"
    fi
else
    VERIFY_WHY="no systemd-analyze"
fi
verify() { # verify DESTDIR LABEL
    if [ -z "$VERIFY" ]; then skipped "$2: systemd-analyze verify ($VERIFY_WHY)"; return; fi
    local o
    o=$(systemd-analyze verify --root="$1" --recursive-errors=no peerpigeon.service 2>&1)
    if [ $? -eq 0 ] && [ -z "$o" ]; then ok "$2: systemd-analyze verify"; else bad "$2: systemd-analyze verify: $o"; fi
}
verify "$H" "hub"

# --- the installed binary with the env file's settings on a free loopback port --------------
# run_server DESTDIR: start it with HOST=127.0.0.1 PORT=0 (any free port); sets SERVER, SPORT
run_server() {
    local -a settings
    mapfile -t settings < <(grep -E '^[A-Za-z_]+=' "$1/etc/peerpigeon.env")
    SETTINGS=("${settings[@]}")
    env -i "${settings[@]}" HOST=127.0.0.1 PORT=0 "$1/usr/local/bin/peerpigeon" >"$T/server.log" 2>&1 &
    SERVER=$!
    SPORT=
    for _ in $(seq 1 100); do
        SPORT=$(sed -n 's/.*listening on .* port \([0-9][0-9]*\).*/\1/p' "$T/server.log" | head -n1)
        [ -n "$SPORT" ] && break
        kill -0 "$SERVER" 2>/dev/null || break
        sleep 0.05
    done
}
stop_server() { kill "$SERVER" 2>/dev/null; wait "$SERVER" 2>/dev/null; SERVER=; }
health() { env -i "${SETTINGS[@]}" HOST=127.0.0.1 PORT="$SPORT" "$1/usr/local/bin/peerpigeon" --health-check 2>/dev/null; }
# upgrade QUERY: the status line of a WebSocket upgrade to the server
# hubrights: the hubRights of GET /hubstats ("open" or "secret")
hubrights() {
    local body
    exec 3<>"/dev/tcp/127.0.0.1/$SPORT" || return 1
    printf 'GET /hubstats HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' >&3
    body=$(timeout 3 cat <&3)
    exec 3<&-
    sed -n 's/.*"hubRights":"\([a-z]*\)".*/\1/p' <<<"$body"
}
upgrade() {
    local line
    exec 3<>"/dev/tcp/127.0.0.1/$SPORT" || return 1
    printf 'GET /?peerId=%s%s HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n' \
        "0123456789abcdef0123456789abcdef01234567" "$1" >&3
    IFS= read -r -t 3 line <&3
    exec 3<&-
    printf '%s' "${line%$'\r'}"
}
run_server "$H"
if [ -n "$SPORT" ]; then
    ok "hub: installed binary starts with the env file's settings (port $SPORT)"
    t "hub: --health-check with the env file's settings answers 0" health "$H"
    t "hub: WebSocket without a token: 101 (clients open)" eval 'has "$(upgrade "")" " 101"'
    t "hub: /hubstats says hub rights need the secret" test "$(hubrights)" = secret
    t "hub: no 'no HUB_SECRET' warning in the server log" eval '! grep -q "no HUB_SECRET" "$T/server.log"'
    stop_server
    t "hub: --health-check of a stopped server fails" eval '! health "$H"'
else
    bad "hub: installed binary did not start: $(tail -5 "$T/server.log")"
    stop_server
fi

# --- idempotence ---------------------------------------------------------------------------
cp -p "$H/etc/peerpigeon.env" "$T/env.1"
m1=$(stat -c %Y "$H/etc/peerpigeon.env" "$H/usr/local/bin/peerpigeon" "$H/etc/systemd/system/peerpigeon.service")
sleep 1
run "$H" ufw --hub --port 3000 --max-connections 5000 --public-address 203.0.113.7 --binary "$BIN"
t "second run: exit 0" test "$RC" -eq 0
t "second run: same hub secret, printed" eval '[ "$(val "$H" HUB_SECRET)" = "$SECRET" ] && hasline "$OUT" "    HUB_SECRET=$SECRET" && has "$OUT" "kept the hub secret"'
t "second run: still no AUTH_TOKEN" eval '! grep -q "^AUTH_TOKEN" "$H/etc/peerpigeon.env"'
t "second run: env file identical, files not rewritten" eval 'cmp -s "$T/env.1" "$H/etc/peerpigeon.env" && [ "$(stat -c %Y "$H/etc/peerpigeon.env" "$H/usr/local/bin/peerpigeon" "$H/etc/systemd/system/peerpigeon.service")" = "$m1" ]'
t "second run: says nothing changed" has "$OUT" "nothing changed"
t "second run: no useradd, no firewall change, no daemon-reload, no restart" eval 'hasnt "$OUT" useradd && hasnt "$OUT" "ufw allow" && hasnt "$OUT" daemon-reload && hasnt "$OUT" restart'
t "second run: still enable --now (a stopped service is started)" has "$OUT" "would run: systemctl enable --now peerpigeon"
run "$H" ufw --binary "$BIN" --public-address 203.0.113.7
t "run without settings keeps them (hub, port, secret)" eval '[ $RC -eq 0 ] && cmp -s "$T/env.1" "$H/etc/peerpigeon.env" && has "$OUT" "BOOTSTRAP_HUBS=ws://203.0.113.7:3000"'

# other settings kept, port change moves the firewall opening
echo "LOG_LEVEL=debug" >>"$H/etc/peerpigeon.env"
run "$H" ufw --port 3100 --binary "$BIN" --public-address 203.0.113.7
t "port change: exit 0, PORT=3100, hub and secret kept, no token" eval '[ $RC -eq 0 ] && [ "$(val "$H" PORT)" = 3100 ] && [ "$(val "$H" IS_HUB)" = true ] && [ "$(val "$H" HUB_SECRET)" = "$SECRET" ] && ! grep -q "^AUTH_TOKEN" "$H/etc/peerpigeon.env"'
t "port change: LOG_LEVEL=debug kept once" test "$(grep -c '^LOG_LEVEL=debug$' "$H/etc/peerpigeon.env")" = 1
t "port change: no duplicate variables" eval '[ -z "$(grep -E "^[A-Z_]+=" "$H/etc/peerpigeon.env" | cut -d= -f1 | sort | uniq -d)" ]'
t "port change: closes 3000, opens 3100 in ufw" eval 'has "$OUT" "would run: ufw delete allow 3000/tcp" && has "$OUT" "would run: ufw allow 3100/tcp"'
t "port change: restarts the service (try-restart)" has "$OUT" "would run: systemctl try-restart peerpigeon"
t "port change: dial URL on the new port" has "$OUT" "BOOTSTRAP_HUBS=ws://203.0.113.7:3100"
t "port change: the command for the other hubs on the new port, same secret" hasline "$OUT" "  on each of them: sudo deploy/install.sh --hub --bootstrap ws://203.0.113.7:3100 --hub-secret $SECRET"

# hub secrets
run "$H" ufw --generate-hub-secret --binary "$BIN" --public-address 203.0.113.7
S2=$(val "$H" HUB_SECRET)
t "--generate-hub-secret: a new 64-hex secret, printed" eval '[ $RC -eq 0 ] && [[ $S2 =~ ^[0-9a-f]{64}$ ]] && [ "$S2" != "$SECRET" ] && hasline "$OUT" "    HUB_SECRET=$S2" && has "$OUT" "--hub-secret $S2"'
run "$H" ufw --hub-secret my.Secret-1 --binary "$BIN" --public-address 203.0.113.7
t "--hub-secret: the given secret, one line" eval '[ $RC -eq 0 ] && [ "$(val "$H" HUB_SECRET)" = my.Secret-1 ] && [ "$(grep -c "^HUB_SECRET=" "$H/etc/peerpigeon.env")" = 1 ] && has "$OUT" "ws://203.0.113.7:3100/hub/my.Secret-1"'

# tokens: only when asked for, and then enforced
run "$H" ufw --generate-token --binary "$BIN" --public-address 203.0.113.7
T2=$(val "$H" AUTH_TOKEN)
t "--generate-token: a 64-hex token, printed, secret kept" eval '[ $RC -eq 0 ] && [[ $T2 =~ ^[0-9a-f]{64}$ ]] && hasline "$OUT" "    AUTH_TOKEN=$T2" && [ "$(val "$H" HUB_SECRET)" = my.Secret-1 ]'
t "--generate-token: the command for the other hubs has the secret and the token" hasline "$OUT" "  on each of them: sudo deploy/install.sh --hub --bootstrap ws://203.0.113.7:3100 --hub-secret my.Secret-1 --auth-token $T2"
run_server "$H"
if [ -n "$SPORT" ]; then
    t "hub with a token: WebSocket without it: 401" eval 'has "$(upgrade "")" " 401"'
    t "hub with a token: WebSocket with ?token=: 101" eval 'has "$(upgrade "&token=$T2")" " 101"'
else
    bad "hub with a token: installed binary did not start: $(tail -5 "$T/server.log")"
fi
stop_server
run "$H" ufw --generate-token --binary "$BIN" --public-address 203.0.113.7
T3=$(val "$H" AUTH_TOKEN)
t "--generate-token again: a new token" eval '[ $RC -eq 0 ] && [[ $T3 =~ ^[0-9a-f]{64}$ ]] && [ "$T3" != "$T2" ]'
run "$H" ufw --auth-token my.Token-1 --binary "$BIN" --public-address 203.0.113.7
t "--auth-token: the given token" eval '[ $RC -eq 0 ] && [ "$(val "$H" AUTH_TOKEN)" = my.Token-1 ] && [ "$(grep -c "^AUTH_TOKEN=" "$H/etc/peerpigeon.env")" = 1 ]'
run "$H" ufw --binary "$BIN" --public-address 203.0.113.7
t "a token is kept on a re-run" eval '[ $RC -eq 0 ] && [ "$(val "$H" AUTH_TOKEN)" = my.Token-1 ] && has "$OUT" "kept the token"'
run "$H" ufw --auth-token '' --binary "$BIN" --public-address 203.0.113.7
t "--auth-token '': token removed, secret kept" eval '[ $RC -eq 0 ] && ! grep -q "^AUTH_TOKEN" "$H/etc/peerpigeon.env" && [ "$(val "$H" HUB_SECRET)" = my.Secret-1 ]'
run "$H" ufw --bootstrap ws://198.51.100.9:3000,ws://hub2.example:3000 --binary "$BIN" --public-address 203.0.113.7
t "--bootstrap: BOOTSTRAP_HUBS written" eval '[ $RC -eq 0 ] && [ "$(val "$H" BOOTSTRAP_HUBS)" = "ws://198.51.100.9:3000,ws://hub2.example:3000" ]'

# drop-in: many connections, a privileged port
run "$H" ufw --max-connections 100000 --port 80 --binary "$BIN" --public-address 203.0.113.7
DI=$H/etc/systemd/system/peerpigeon.service.d/install.conf
t "--max-connections 100000 --port 80: drop-in with LimitNOFILE and CAP_NET_BIND_SERVICE" \
    eval '[ $RC -eq 0 ] && grep -qx "LimitNOFILE=101024" "$DI" && grep -qx "AmbientCapabilities=CAP_NET_BIND_SERVICE" "$DI" && has "$OUT" "would run: systemctl daemon-reload"'
verify "$H" "hub with drop-in"
run "$H" ufw --max-connections 5000 --port 3100 --binary "$BIN" --public-address 203.0.113.7
t "back to 5000 connections on 3100: drop-in removed" eval '[ $RC -eq 0 ] && [ ! -e "$H/etc/systemd/system/peerpigeon.service.d" ] && has "$OUT" "would run: ufw delete allow 80/tcp"'

# --- uninstall -----------------------------------------------------------------------------
run "$H" ufw --uninstall
t "uninstall: exit 0" test "$RC" -eq 0
t "uninstall: systemctl disable --now, daemon-reload printed" eval 'has "$OUT" "would run: systemctl disable --now peerpigeon" && has "$OUT" "would run: systemctl daemon-reload"'
t "uninstall: userdel printed" has "$OUT" "would run: userdel peerpigeon"
t "uninstall: closes 3100/tcp in ufw" has "$OUT" "would run: ufw delete allow 3100/tcp"
t "uninstall: no file left in DESTDIR" eval '[ -z "$(find "$H" -type f)" ]'
run "$H" ufw --uninstall
t "uninstall again: nothing to remove" eval '[ $RC -eq 0 ] && has "$OUT" "nothing to remove" && hasnt "$OUT" "would run"'

# --- a plain server, Oracle Cloud iptables -------------------------------------------------
P=$T/plain
run "$P" iptables --port 3000 --public-address 198.51.100.4 --binary "$BIN"
echo "$OUT" | sed 's/^/    /'
t "plain: exit 0" test "$RC" -eq 0
t "plain: IS_HUB=false, no token, no dial lines" eval '[ "$(val "$P" IS_HUB)" = false ] && ! grep -q "^AUTH_TOKEN=" "$P/etc/peerpigeon.env" && hasnt "$OUT" "BOOTSTRAP_HUBS="'
t "plain: env file mode 600, unit 644, binary 755" eval '[ "$(mode "$P/etc/peerpigeon.env")" = 600 ] && [ "$(mode "$P/etc/systemd/system/peerpigeon.service")" = 644 ] && [ "$(mode "$P/usr/local/bin/peerpigeon")" = 755 ]'
t "plain: client URL ws://198.51.100.4:3000" has "$OUT" "clients:  ws://198.51.100.4:3000"
t "plain: ACCEPT inserted before the REJECT rule (6)" has "$OUT" "would run: iptables -I INPUT 6 -p tcp -m state --state NEW -m tcp --dport 3000 -j ACCEPT"
t "plain: persisted with netfilter-persistent" has "$OUT" "would run: netfilter-persistent save"
verify "$P" "plain"
run_server "$P"
if [ -n "$SPORT" ]; then
    t "plain: --health-check with the env file's settings answers 0" health "$P"
    t "plain: WebSocket without a token: 101" eval 'has "$(upgrade "")" " 101"'
else
    bad "plain: installed binary did not start: $(tail -5 "$T/server.log")"
fi
stop_server
run "$P" iptables --port 3000 --public-address 198.51.100.4 --binary "$BIN"
t "plain second run: nothing changed, no iptables" eval '[ $RC -eq 0 ] && has "$OUT" "nothing changed" && hasnt "$OUT" "iptables -I"'
t "plain: no HUB_SECRET" eval '! grep -q "^HUB_SECRET" "$P/etc/peerpigeon.env"'
run "$P" iptables --hub --binary "$BIN" --public-address 198.51.100.4
PS=$(val "$P" HUB_SECRET)
t "plain turned hub: a HUB_SECRET generated, no AUTH_TOKEN" eval '[ $RC -eq 0 ] && [[ $PS =~ ^[0-9a-f]{64}$ ]] && ! grep -q "^AUTH_TOKEN" "$P/etc/peerpigeon.env" && has "$OUT" "--hub-secret $PS"'
run "$P" iptables --uninstall
t "plain uninstall: deletes the rule and persists" eval 'has "$OUT" "would run: iptables -D INPUT -p tcp -m state --state NEW -m tcp --dport 3000 -j ACCEPT" && has "$OUT" "would run: netfilter-persistent save"'
t "plain uninstall: no file left" eval '[ -z "$(find "$P" -type f)" ]'

# --- firewalld, then loopback only ---------------------------------------------------------
F=$T/fwd
run "$F" firewalld --hub --binary "$BIN" --public-address 192.0.2.1
FS=$(val "$F" HUB_SECRET)
t "public host: no TRUST_PROXY" eval '! grep -q "^TRUST_PROXY" "$F/etc/peerpigeon.env"'
t "firewalld hub: its own generated secret" eval '[[ $FS =~ ^[0-9a-f]{64}$ ]] && [ "$FS" != "$SECRET" ]'
t "firewalld: --permanent --add-port and --reload" eval 'has "$OUT" "would run: firewall-cmd --permanent --add-port=3000/tcp" && has "$OUT" "would run: firewall-cmd --reload"'
run "$F" firewalld --host 127.0.0.1 --binary "$BIN"
t "loopback host: port closed again, none opened" eval 'has "$OUT" "would run: firewall-cmd --permanent --remove-port=3000/tcp" && has "$OUT" "loopback only: no port opened" && hasnt "$OUT" "add-port"'
t "loopback host: dial URL ws://127.0.0.1:3000" has "$OUT" "BOOTSTRAP_HUBS=ws://127.0.0.1:3000"
t "loopback host: TRUST_PROXY=true written (the proxy's X-Forwarded-For is the client)" eval 'grep -qx "TRUST_PROXY=true" "$F/etc/peerpigeon.env" && has "$OUT" "TRUST_PROXY=true: HOST=127.0.0.1"'
run "$F" none --host 0.0.0.0 --binary "$BIN" --public-address 192.0.2.1
t "no firewall: says so" has "$OUT" "firewall: none active"
run "$F" none --hub-secret '' --binary "$BIN" --public-address 192.0.2.1
t "hub with --hub-secret '': no secret, the warning, no token" eval '[ $RC -eq 0 ] && ! grep -q "^HUB_SECRET" "$F/etc/peerpigeon.env" && ! grep -q "^AUTH_TOKEN" "$F/etc/peerpigeon.env" && has "$OUT" "anyone can get hub rights"'
t "open hub: says so; the command for the other hubs has no secret" eval 'has "$OUT" "  hubs:     hub rights open to anyone" && hasline "$OUT" "  on each of them: sudo deploy/install.sh --hub --bootstrap ws://192.0.2.1:3000" && hasline "$OUT" "  JS/Go hubs dial: ws://192.0.2.1:3000"'
run_server "$F"
if [ -n "$SPORT" ]; then
    t "open hub: /hubstats says hub rights are open" test "$(hubrights)" = open
else
    bad "open hub: installed binary did not start: $(tail -5 "$T/server.log")"
fi
stop_server
run "$F" none --binary "$BIN" --public-address 192.0.2.1
t "open hub run again: still no secret generated, the warning" eval '[ $RC -eq 0 ] && ! grep -q "^HUB_SECRET" "$F/etc/peerpigeon.env" && has "$OUT" "nothing changed" && has "$OUT" "anyone can get hub rights"'
run "$F" none --generate-hub-secret --binary "$BIN" --public-address 192.0.2.1
t "open hub, --generate-hub-secret: a secret again" eval '[ $RC -eq 0 ] && [[ "$(val "$F" HUB_SECRET)" =~ ^[0-9a-f]{64}$ ]] && hasnt "$OUT" "anyone can get hub rights"'
run "$F" none --uninstall
t "firewalld uninstall: no file left" eval '[ $RC -eq 0 ] && [ -z "$(find "$F" -type f)" ]'

# --- a hub installed before HUB_SECRET (AUTH_TOKEN, no secret): nothing generated unasked ---
U=$T/older
mkdir -p "$U/etc"
printf 'HOST=0.0.0.0\nPORT=3000\nMAX_CONNECTIONS=5000\nIS_HUB=true\nAUTH_TOKEN=old.Token\n' >"$U/etc/peerpigeon.env"
chmod 600 "$U/etc/peerpigeon.env"
run "$U" none --binary "$BIN" --public-address 192.0.2.2
t "older hub: token kept, no secret generated, the warning" eval '[ $RC -eq 0 ] && [ "$(val "$U" AUTH_TOKEN)" = old.Token ] && ! grep -q "^HUB_SECRET" "$U/etc/peerpigeon.env" && has "$OUT" "anyone can get hub rights"'
run "$U" none --auth-token '' --generate-hub-secret --binary "$BIN" --public-address 192.0.2.2
t "older hub: --auth-token '' --generate-hub-secret makes it a public hub" eval '[ $RC -eq 0 ] && ! grep -q "^AUTH_TOKEN" "$U/etc/peerpigeon.env" && [[ "$(val "$U" HUB_SECRET)" =~ ^[0-9a-f]{64}$ ]]'
run "$U" none --uninstall
t "older hub uninstall: no file left" eval '[ $RC -eq 0 ] && [ -z "$(find "$U" -type f)" ]'

# --- dry runs ------------------------------------------------------------------------------
DR=$T/dry
mkdir -p "$DR"
run "$DR" ufw --dry-run --hub --binary "$BIN" --public-address 203.0.113.7
t "DESTDIR + --dry-run: exit 0, would write, nothing written" eval '[ $RC -eq 0 ] && has "$OUT" "would write: /etc/peerpigeon.env (mode 600)" && [ -z "$(ls -A "$DR")" ]'
t "--dry-run --hub: a secret shown, not kept" eval 'has "$OUT" "a dry run does not keep it" && has "$OUT" "    HUB_SECRET="'
if [ ! -e /etc/peerpigeon.env ] && [ ! -e /usr/local/bin/peerpigeon ]; then
    OUT=$(FAKE_FW=ufw FAKE_LOG=$LOG PATH="$T/stub:$PATH" timeout 60 bash deploy/install.sh --dry-run --hub --binary "$BIN" --public-address 203.0.113.7 2>&1)
    RC=$?
    t "--dry-run on this machine: exit 0, prints the plan" eval '[ $RC -eq 0 ] && has "$OUT" "would write: /usr/local/bin/peerpigeon" && has "$OUT" "would run: systemctl enable --now peerpigeon"'
    t "--dry-run on this machine: wrote nothing" eval '[ ! -e /etc/peerpigeon.env ] && [ ! -e /usr/local/bin/peerpigeon ] && [ ! -e /etc/systemd/system/peerpigeon.service ]'
    # never leave them behind if the dry run was not dry
    [ -e /etc/peerpigeon.env ] && rm -f /etc/peerpigeon.env /etc/systemd/system/peerpigeon.service /usr/local/bin/peerpigeon
else
    skipped "--dry-run without DESTDIR (peerpigeon is installed on this machine)"
fi
if [ ! -d /run/systemd/system ]; then
    OUT=$(FAKE_FW=ufw FAKE_LOG=$LOG PATH="$T/stub:$PATH" timeout 60 bash deploy/install.sh --binary "$BIN" 2>&1)
    RC=$?
    t "live run without systemd: refused before any change" eval '[ $RC -ne 0 ] && has "$OUT" "systemd is not running" && [ ! -e /etc/peerpigeon.env ]'
else
    skipped "live run without systemd (systemd runs here; a live run would install for real)"
fi

# --- nothing outside the DESTDIRs ----------------------------------------------------------
snap >"$T/after"
t "nothing changed in /etc/systemd/system, /usr/local/bin, /etc/passwd, /etc/group" cmp -s "$T/before" "$T/after" ||
    diff "$T/before" "$T/after" | head -20
t "no system command was run (stub log empty)" eval '! grep -q MUTATE "$LOG"' || head "$LOG"

echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
