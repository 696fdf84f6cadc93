#!/usr/bin/env bash
# test/install.sh - deploy/install.sh run into scratch DESTDIRs (mktemp -d) with a prebuilt
# binary ($PP_BIN, else `make peerpigeon`), as a hub and as a plain server, with each kind of
# firewall faked. Stubs for systemctl, useradd/userdel, ufw, firewall-cmd, iptables,
# netfilter-persistent, apt-get and dnf come first in PATH: they answer the read-only questions
# (ufw status, firewall-cmd --state, iptables -S) and log every other call, which must never
# happen with DESTDIR set. Checks the files and their modes, the env file, the printed dial URL
# and token, idempotence, --uninstall, that nothing outside DESTDIR changed, that the unit
# passes `systemd-analyze verify` (skipped, not passed, when it cannot run here), and runs the
# installed binary with the env file's settings on a free loopback port: --health-check, and
# the token enforced. Last line: "N passed, N failed, N skipped"; exit 1 on a failure.
# shellcheck disable=SC2016 # the checks are single-quoted for eval, on purpose
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
t "--help: exit 0 and the usage" eval '[ $RC -eq 0 ] && has "$OUT" "usage: sudo deploy/install.sh" && has "$OUT" "--uninstall"'
run "$T/none" none --frobnicate
t "unknown option: exit 2" test "$RC" -eq 2
for args in "--port 0" "--port 70000" "--port x" "--max-connections 0" "--max-connections 2000000" \
    "--auth-token a\ b" "--bootstrap http://h:3000" "--host a\ b" "--auth-token x --generate-token"; do
    eval "set -- $args"
    run "$T/bad" none --binary "$BIN" "$@"
    t "refused: $args (exit 2, nothing written)" eval '[ $RC -eq 2 ] && [ ! -e "$T/bad" ]'
done

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
TOKEN=$(val "$H" AUTH_TOKEN)
t "hub: generated AUTH_TOKEN is 64 hex" eval '[[ $TOKEN =~ ^[0-9a-f]{64}$ ]]'
t "hub: prints the dial URL BOOTSTRAP_HUBS=ws://203.0.113.7:3000" has "$OUT" "BOOTSTRAP_HUBS=ws://203.0.113.7:3000"
t "hub: prints the token other hubs need" has "$OUT" "AUTH_TOKEN=$TOKEN"
t "hub: prints the command for the other hubs" has "$OUT" "sudo deploy/install.sh --hub --bootstrap ws://203.0.113.7:3000 --auth-token $TOKEN"
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
    t "hub: WebSocket without the token: 401" eval 'has "$(upgrade "")" " 401"'
    t "hub: WebSocket with ?token=: 101" eval 'has "$(upgrade "&token=$TOKEN")" " 101"'
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
t "second run: same token" test "$(val "$H" AUTH_TOKEN)" = "$TOKEN"
t "second run: env file identical, files not rewritten" eval 'cmp -s "$T/env.1" "$H/etc/peerpigeon.env" && [ "$(stat -c %Y "$H/etc/peerpigeon.env" "$H/usr/local/bin/peerpigeon" "$H/etc/systemd/system/peerpigeon.service")" = "$m1" ]'
t "second run: says nothing changed" has "$OUT" "nothing changed"
t "second run: no useradd, no firewall change, no daemon-reload, no restart" eval 'hasnt "$OUT" useradd && hasnt "$OUT" "ufw allow" && hasnt "$OUT" daemon-reload && hasnt "$OUT" restart'
t "second run: still enable --now (a stopped service is started)" has "$OUT" "would run: systemctl enable --now peerpigeon"
run "$H" ufw --binary "$BIN" --public-address 203.0.113.7
t "run without settings keeps them (hub, port, token)" eval '[ $RC -eq 0 ] && cmp -s "$T/env.1" "$H/etc/peerpigeon.env" && has "$OUT" "BOOTSTRAP_HUBS=ws://203.0.113.7:3000"'

# other settings kept, port change moves the firewall opening
echo "LOG_LEVEL=debug" >>"$H/etc/peerpigeon.env"
run "$H" ufw --port 3100 --binary "$BIN" --public-address 203.0.113.7
t "port change: exit 0, PORT=3100, hub and token kept" eval '[ $RC -eq 0 ] && [ "$(val "$H" PORT)" = 3100 ] && [ "$(val "$H" IS_HUB)" = true ] && [ "$(val "$H" AUTH_TOKEN)" = "$TOKEN" ]'
t "port change: LOG_LEVEL=debug kept once" test "$(grep -c '^LOG_LEVEL=debug$' "$H/etc/peerpigeon.env")" = 1
t "port change: no duplicate variables" eval '[ -z "$(grep -E "^[A-Z_]+=" "$H/etc/peerpigeon.env" | cut -d= -f1 | sort | uniq -d)" ]'
t "port change: closes 3000, opens 3100 in ufw" eval 'has "$OUT" "would run: ufw delete allow 3000/tcp" && has "$OUT" "would run: ufw allow 3100/tcp"'
t "port change: restarts the service (try-restart)" has "$OUT" "would run: systemctl try-restart peerpigeon"
t "port change: dial URL on the new port" has "$OUT" "BOOTSTRAP_HUBS=ws://203.0.113.7:3100"

# tokens
run "$H" ufw --generate-token --binary "$BIN" --public-address 203.0.113.7
T2=$(val "$H" AUTH_TOKEN)
t "--generate-token: a new 64-hex token" eval '[ $RC -eq 0 ] && [[ $T2 =~ ^[0-9a-f]{64}$ ]] && [ "$T2" != "$TOKEN" ] && has "$OUT" "AUTH_TOKEN=$T2"'
run "$H" ufw --auth-token my.Secret-1 --binary "$BIN" --public-address 203.0.113.7
t "--auth-token: the given token" eval '[ $RC -eq 0 ] && [ "$(val "$H" AUTH_TOKEN)" = my.Secret-1 ] && [ "$(grep -c "^AUTH_TOKEN=" "$H/etc/peerpigeon.env")" = 1 ]'
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
run "$P" iptables --uninstall
t "plain uninstall: deletes the rule and persists" eval 'has "$OUT" "would run: iptables -D INPUT -p tcp -m state --state NEW -m tcp --dport 3000 -j ACCEPT" && has "$OUT" "would run: netfilter-persistent save"'
t "plain uninstall: no file left" eval '[ -z "$(find "$P" -type f)" ]'

# --- firewalld, then loopback only ---------------------------------------------------------
F=$T/fwd
run "$F" firewalld --hub --binary "$BIN" --public-address 192.0.2.1
t "firewalld: --permanent --add-port and --reload" eval 'has "$OUT" "would run: firewall-cmd --permanent --add-port=3000/tcp" && has "$OUT" "would run: firewall-cmd --reload"'
run "$F" firewalld --host 127.0.0.1 --binary "$BIN"
t "loopback host: port closed again, none opened" eval 'has "$OUT" "would run: firewall-cmd --permanent --remove-port=3000/tcp" && has "$OUT" "loopback only: no port opened" && hasnt "$OUT" "add-port"'
t "loopback host: dial URL ws://127.0.0.1:3000" has "$OUT" "BOOTSTRAP_HUBS=ws://127.0.0.1:3000"
run "$F" none --host 0.0.0.0 --binary "$BIN" --public-address 192.0.2.1
t "no firewall: says so" has "$OUT" "firewall: none active"
run "$F" none --auth-token '' --binary "$BIN" --public-address 192.0.2.1
t "hub with --auth-token '': no token, a warning" eval '[ $RC -eq 0 ] && ! grep -q "^AUTH_TOKEN=" "$F/etc/peerpigeon.env" && has "$OUT" "anyone can join this mesh"'
run "$F" none --binary "$BIN" --public-address 192.0.2.1
t "open hub run again: still no token generated" eval '[ $RC -eq 0 ] && ! grep -q "^AUTH_TOKEN=" "$F/etc/peerpigeon.env" && has "$OUT" "nothing changed"'
run "$F" none --uninstall
t "firewalld uninstall: no file left" eval '[ $RC -eq 0 ] && [ -z "$(find "$F" -type f)" ]'

# --- dry runs ------------------------------------------------------------------------------
DR=$T/dry
mkdir -p "$DR"
run "$DR" ufw --dry-run --hub --binary "$BIN" --public-address 203.0.113.7
t "DESTDIR + --dry-run: exit 0, would write, nothing written" eval '[ $RC -eq 0 ] && has "$OUT" "would write: /etc/peerpigeon.env (mode 600)" && [ -z "$(ls -A "$DR")" ]'
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
