#!/usr/bin/env bash
# deploy/install.sh - peerpigeon-c as a systemd service in one command, on Debian, Ubuntu or
# Oracle Linux, x86_64 or aarch64: builds the binary from this checkout with the machine's own
# compiler (or installs --binary), creates the system user, writes the unit and
# /etc/peerpigeon.env, opens the port in the firewall that is active, starts the service and
# checks /health. Idempotent; --uninstall undoes it. `deploy/install.sh --help` for the options.
#
# DESTDIR=DIR: files are written under DIR only and every command that would change the system
# (package installs, useradd/userdel, systemctl, firewall) is printed, not run. --dry-run: the
# same, and no file is written either. test/install.sh runs it that way.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
DESTDIR=${DESTDIR:-}
DESTDIR=${DESTDIR%/}
SVC=peerpigeon
SVC_USER=peerpigeon
BIN=/usr/local/bin/peerpigeon
UNIT=/etc/systemd/system/peerpigeon.service
DROPIN=/etc/systemd/system/peerpigeon.service.d/install.conf
ENVF=/etc/peerpigeon.env
STATE=/var/lib/peerpigeon-install/state
MANAGED="HOST PORT MAX_CONNECTIONS IS_HUB BOOTSTRAP_HUBS HUB_SECRET AUTH_TOKEN"
DEF_HOST=0.0.0.0 DEF_PORT=3000 DEF_MAXCONN=60000 UNIT_NOFILE=65536

usage() {
    cat <<'EOF'
usage: sudo deploy/install.sh [options]
Install peerpigeon-c as the systemd service "peerpigeon" (Debian, Ubuntu, Oracle Linux;
x86_64 or aarch64): build it from this checkout with the machine's compiler (installing gcc
and make with apt-get/dnf if missing) or take --binary; install /usr/local/bin/peerpigeon,
the system user peerpigeon, /etc/systemd/system/peerpigeon.service and /etc/peerpigeon.env
(mode 0600); open the port in the active firewall (ufw, firewalld, or the iptables REJECT
rule of Oracle Cloud images); start the service and check /health. Run it again to upgrade
or change settings: settings not given keep their value from /etc/peerpigeon.env, and an
existing hub secret and token are kept.

A new hub is a public one: browsers connect without a token, and hub rights (every peer of
every network, relays) go only to links it dials and to hubs that present its HUB_SECRET,
which is generated for it (32 random bytes as 64 hex digits) and which every hub of the mesh
shares: give it to the others with --hub-secret.

  --port N              TCP port (default 3000)
  --host H              bind address (default 0.0.0.0; 127.0.0.1 behind a reverse proxy,
                        and then no firewall port is opened)
  --hub | --no-hub      hub mode on or off (default off); a new hub gets a HUB_SECRET
  --bootstrap URL,...   hubs to dial: ws://host:port,... ('' for none)
  --hub-secret S        the secret that gives hub rights here, the same on every hub of the
                        mesh (sent as X-Hub-Secret when dialling; JS/Go hubs dial
                        ws://host:port/hub/<secret>); letters, digits and . _ ~ + = : - only;
                        '' for none: an open hub, where anyone can get hub rights
  --generate-hub-secret a new hub secret: 32 random bytes from /dev/urandom as 64 hex digits
                        (a new hub gets one unasked; a hub that has none gets none unasked)
  --auth-token T        a token every WebSocket client and hub must present, which closes the
                        server to browsers without it ('' for none; never set unless asked);
                        letters, digits and . _ ~ + / = : - only
  --generate-token      a new token: 32 random bytes from /dev/urandom as 64 hex digits
  --max-connections N   WebSocket connections at once (default 60000; above 64512 the unit's
                        LimitNOFILE is raised with a drop-in)
  --public-address A    the address other hubs and clients dial, for the printed URLs
                        (default: --host if specific, else the local address)
  --binary PATH         install this binary instead of building (e.g. build/peerpigeon-aarch64)
  --uninstall           stop and remove the service, unit, binary, env file, the user (if
                        this script created it) and the firewall opening it made
  --dry-run             print what would be done; change nothing, write nothing
  -h, --help            this text
Environment: DESTDIR=DIR writes the files under DIR and prints the system commands instead
of running them (no useradd, systemctl or firewall change).
EOF
}

say() { printf 'install: %s\n' "$*"; }
warn() { printf 'install: warning: %s\n' "$*" >&2; }
die() {
    printf 'install: error: %s\n' "$*" >&2
    exit "${2:-1}"
}

# --- options -------------------------------------------------------------------------------
o_port='' o_host='' o_hub='' o_boot='' o_boot_set='' o_token='' o_token_set='' o_gen='' o_max=''
o_secret='' o_secret_set='' o_gensec='' o_pub='' o_bin='' uninstall='' dry=''
need_arg() { [ $# -ge 2 ] || die "$1 needs a value (see --help)" 2; }
while [ $# -gt 0 ]; do
    case $1 in
        --*=*) a=$1; shift; set -- "${a%%=*}" "${a#*=}" "$@"; continue ;;
    esac
    case $1 in
        -h | --help) usage; exit 0 ;;
        --port) need_arg "$@"; o_port=$2; shift ;;
        --host) need_arg "$@"; o_host=$2; shift ;;
        --hub) o_hub=true ;;
        --no-hub) o_hub=false ;;
        --bootstrap | --bootstrap-hubs) need_arg "$@"; o_boot=$2; o_boot_set=1; shift ;;
        --auth-token) need_arg "$@"; o_token=$2; o_token_set=1; shift ;;
        --generate-token) o_gen=1 ;;
        --hub-secret) need_arg "$@"; o_secret=$2; o_secret_set=1; shift ;;
        --generate-hub-secret) o_gensec=1 ;;
        --max-connections) need_arg "$@"; o_max=$2; shift ;;
        --public-address) need_arg "$@"; o_pub=$2; shift ;;
        --binary) need_arg "$@"; o_bin=$2; shift ;;
        --uninstall) uninstall=1 ;;
        --dry-run) dry=1 ;;
        *) die "unknown option '$1' (see --help)" 2 ;;
    esac
    shift
done
[ -n "$o_token_set" ] && [ -n "$o_gen" ] && die "--auth-token and --generate-token exclude each other" 2
[ -n "$o_secret_set" ] && [ -n "$o_gensec" ] && die "--hub-secret and --generate-hub-secret exclude each other" 2

# LIVE: really change this machine. WRITE: write files (under DESTDIR when set).
LIVE=1 WRITE=1
[ -n "$DESTDIR" ] && LIVE=0
[ -n "$dry" ] && LIVE=0 WRITE=0
IS_ROOT=0
[ "$(id -u)" -eq 0 ] && IS_ROOT=1

# --- the only ways this script changes the system outside its files ------------------------
# Each prints the command; it runs only in a live install (no DESTDIR, no --dry-run).
# show WORD...: the command as one would type it (words with other characters single-quoted)
show() {
    local w out=
    for w in "$@"; do
        if [[ $w =~ ^[A-Za-z0-9_./:=,+@%-]+$ ]]; then out+=" $w"; else out+=" '${w//\'/\'\\\'\'}'"; fi
    done
    printf '%s' "${out# }"
}
sys_run() {
    if [ "$LIVE" = 1 ]; then
        say "+ $(show "$@")"
        "$@"
    else
        say "would run: $(show "$@")"
    fi
}
SYS_CHANGED=0
pkg() { sys_run "$@"; }                            # package installs (apt-get, dnf, yum)
account() { SYS_CHANGED=1; sys_run "$@"; }         # useradd, userdel
svc() { sys_run systemctl "$@"; }                  # systemctl
fw() { SYS_CHANGED=1; sys_run "$@"; }              # ufw, firewall-cmd, iptables, netfilter-persistent
fw_save() {                                        # iptables-save > FILE
    SYS_CHANGED=1
    if [ "$LIVE" = 1 ]; then
        say "+ iptables-save > $1"
        iptables-save >"$1"
    else
        say "would run: iptables-save > $1"
    fi
}

# --- files (under DESTDIR) -----------------------------------------------------------------
CHANGED=0
owner_ok() { [ "$IS_ROOT" = 0 ] || [ "$(stat -c %u:%g "$1")" = 0:0 ]; }
# put FILE MODE -f SRC | put FILE MODE -t TEXT: install the file SRC (or TEXT) as $DESTDIR$FILE
# unless it is already identical with that mode (and owner root when root). The new file is
# renamed into place, so a running binary or a reader never sees half a file.
put() {
    local f=$1 mode=$2 kind=$3 src=$4 dst=$DESTDIR$1 tmp same=0
    if [ -f "$dst" ] && [ "$(stat -c %a "$dst")" = "$mode" ] && owner_ok "$dst"; then
        if [ "$kind" = -f ]; then
            cmp -s "$src" "$dst" && same=1
        else
            printf '%s' "$src" | cmp -s - "$dst" && same=1
        fi
    fi
    if [ "$same" = 1 ]; then
        say "unchanged: $f"
        return 0
    fi
    CHANGED=1
    if [ "$WRITE" = 0 ]; then
        say "would write: $f (mode $mode)"
        return 0
    fi
    mkdir -p "$(dirname "$dst")"
    tmp=$(mktemp "$dst.XXXXXX")
    if [ "$kind" = -f ]; then cat "$src" >"$tmp"; else printf '%s' "$src" >"$tmp"; fi
    chmod "$mode" "$tmp"
    if [ "$IS_ROOT" = 1 ]; then chown 0:0 "$tmp"; fi
    mv -f "$tmp" "$dst"
    # SELinux (Oracle Linux): the label of its directory, as a file installed there would get
    if [ "$LIVE" = 1 ] && command -v restorecon >/dev/null; then restorecon "$dst" 2>/dev/null || true; fi
    say "wrote: $f (mode $mode)"
}
remove() {
    local f=$1 dst=$DESTDIR$1
    [ -e "$dst" ] || return 0
    CHANGED=1
    if [ "$WRITE" = 0 ]; then
        say "would remove: $f"
    else
        rm -f "$dst"
        say "removed: $f"
    fi
}
# rmdir_own DIR: a directory of this script's own, once empty
rmdir_own() { if [ "$WRITE" = 1 ]; then rmdir "$DESTDIR$1" 2>/dev/null || true; fi; }

# KEY=VALUE files: env file and state. get_kv FILE KEY prints the value ('' if absent).
get_kv() {
    [ -f "$DESTDIR$1" ] || return 0
    local line v=
    while IFS= read -r line || [ -n "$line" ]; do
        case $line in "$2="*) v=${line#"$2="} ;; esac
    done <"$DESTDIR$1"
    case $v in \"*\") v=${v#\"}; v=${v%\"} ;; \'*\') v=${v#\'}; v=${v%\'} ;; esac
    printf '%s' "$v"
}

# --- checks --------------------------------------------------------------------------------
RE_NUM='^[0-9]{1,7}$'
RE_TOKEN='^[A-Za-z0-9._~+/=:-]{1,255}$'
RE_SECRET='^[A-Za-z0-9._~+=:-]{1,255}$' # the token's, without '/': it is a path segment (/hub/<secret>)
RE_HOST='^[A-Za-z0-9.:%_-]{1,253}$'
RE_URL='^wss?://[][A-Za-z0-9.:%_~/?=&+-]+$'
RE_KV='^[A-Za-z_][A-Za-z0-9_]*='
valid_port() { [[ $1 =~ $RE_NUM ]] && [ "$((10#$1))" -ge 1 ] && [ "$((10#$1))" -le 65535 ]; }
valid_token() { [[ $1 =~ $RE_TOKEN ]]; }
valid_secret() { [[ $1 =~ $RE_SECRET ]]; }
gen_token() { od -An -tx1 -N32 /dev/urandom | tr -d ' \n'; }
is_wildcard() { case $1 in 0.0.0.0 | :: | '') return 0 ;; *) return 1 ;; esac; }
is_loopback() { case $1 in 127.* | ::1 | localhost) return 0 ;; *) return 1 ;; esac; }
url_host() { case $1 in *:*) printf '[%s]' "$1" ;; *) printf '%s' "$1" ;; esac; }

# --- firewall ------------------------------------------------------------------------------
FW_KIND=none FW_POS='' FW_NOTE=''
ipt_spec() { printf '%s\n' -p tcp -m state --state NEW -m tcp --dport "$1" -j ACCEPT; }
fw_detect() {
    if command -v firewall-cmd >/dev/null && firewall-cmd --state >/dev/null 2>&1; then
        FW_KIND=firewalld
    elif command -v ufw >/dev/null && ufw status 2>/dev/null | grep -q '^Status: active'; then
        FW_KIND=ufw
    elif command -v iptables >/dev/null &&
        FW_POS=$(iptables -S INPUT 2>/dev/null | awk '/^-A INPUT /{n++} /^-A INPUT -j (REJECT|DROP)( |$)/{print n; exit}') &&
        [ -n "$FW_POS" ]; then
        FW_KIND=iptables
    else
        FW_KIND=none
        command -v ufw >/dev/null && FW_NOTE=" (ufw is installed but inactive)"
        command -v firewall-cmd >/dev/null && FW_NOTE=" (firewalld is installed but not running)"
    fi
    return 0
}
# Whether the port is open already: asked of the firewall when live, else from the state.
fw_is_open() {
    local kind=$1 port=$2
    if [ "$LIVE" = 0 ]; then
        [ "$(get_kv "$STATE" FW_OPENED)" = "$kind:$port" ]
        return
    fi
    case $kind in
        firewalld) firewall-cmd --permanent --query-port="$port/tcp" >/dev/null 2>&1 ;;
        ufw) ufw status 2>/dev/null | grep -Eq "^$port(/tcp)? +ALLOW" ;;
        iptables)
            local spec
            mapfile -t spec < <(ipt_spec "$port")
            iptables -C INPUT "${spec[@]}" 2>/dev/null
            ;;
        *) return 1 ;;
    esac
}
fw_persist() {
    if command -v netfilter-persistent >/dev/null; then
        fw netfilter-persistent save || warn "netfilter-persistent save failed"
    elif [ -d /etc/iptables ]; then
        fw_save /etc/iptables/rules.v4 || warn "saving /etc/iptables/rules.v4 failed"
    elif [ -f /etc/sysconfig/iptables ]; then
        fw_save /etc/sysconfig/iptables || warn "saving /etc/sysconfig/iptables failed"
    else
        warn "the iptables rule is not persisted (no netfilter-persistent, /etc/iptables or /etc/sysconfig/iptables): it is lost at reboot"
    fi
}
fw_open() {
    local kind=$1 port=$2 spec
    case $kind in
        firewalld) fw firewall-cmd --permanent --add-port="$port/tcp" && fw firewall-cmd --reload ;;
        ufw) fw ufw allow "$port/tcp" ;;
        iptables)
            mapfile -t spec < <(ipt_spec "$port")
            fw iptables -I INPUT "$FW_POS" "${spec[@]}" && fw_persist
            ;;
    esac
}
fw_close() {
    local kind=$1 port=$2 spec
    case $kind in
        firewalld) fw firewall-cmd --permanent --remove-port="$port/tcp" && fw firewall-cmd --reload ;;
        ufw) fw ufw delete allow "$port/tcp" ;;
        iptables)
            mapfile -t spec < <(ipt_spec "$port")
            fw iptables -D INPUT "${spec[@]}" && fw_persist
            ;;
    esac
}
close_recorded() {
    local opened
    opened=$(get_kv "$STATE" FW_OPENED)
    [ -n "$opened" ] || return 0
    say "firewall: closing port ${opened#*:} opened by an earlier run (${opened%%:*})"
    fw_close "${opened%%:*}" "${opened#*:}" || warn "could not close ${opened#*:}/tcp in ${opened%%:*}; do it by hand"
}

# --- the service user ----------------------------------------------------------------------
user_exists() {
    if [ "$LIVE" = 1 ] || { [ -z "$DESTDIR" ] && [ -n "$dry" ]; }; then
        getent passwd "$SVC_USER" >/dev/null
    else
        [ "$(get_kv "$STATE" USER_CREATED)" = 1 ] || grep -qs "^$SVC_USER:" "$DESTDIR/etc/passwd"
    fi
}
nologin_path() { type -P nologin 2>/dev/null || echo /usr/sbin/nologin; }

# --- preconditions of a live run -----------------------------------------------------------
if [ "$LIVE" = 1 ]; then
    [ "$IS_ROOT" = 1 ] || die "run as root: sudo $0 ... (or DESTDIR=dir / --dry-run to try it)"
    [ -d /run/systemd/system ] || die "systemd is not running on this machine (a container?); use DESTDIR=dir, or run $ROOT/peerpigeon directly"
fi

# ============================================================================================
if [ -n "$uninstall" ]; then
    say "uninstalling peerpigeon${DESTDIR:+ from DESTDIR=$DESTDIR}${dry:+ (dry run)}"
    if [ -e "$DESTDIR$UNIT" ]; then
        svc disable --now "$SVC" || warn "systemctl disable failed"
    fi
    had_unit=0
    [ -e "$DESTDIR$UNIT" ] && had_unit=1
    remove "$DROPIN"
    rmdir_own "$(dirname "$DROPIN")"
    remove "$UNIT"
    if [ "$had_unit" = 1 ]; then
        svc daemon-reload || true
        [ "$LIVE" = 1 ] && systemctl reset-failed "$SVC" 2>/dev/null || true
    fi
    remove "$BIN"
    remove "$ENVF"
    close_recorded
    if [ "$(get_kv "$STATE" USER_CREATED)" = 1 ]; then
        if [ "$LIVE" = 0 ] || getent passwd "$SVC_USER" >/dev/null; then
            account userdel "$SVC_USER" || warn "userdel $SVC_USER failed"
        fi
    elif [ "$LIVE" = 1 ] && getent passwd "$SVC_USER" >/dev/null; then
        say "keeping user $SVC_USER: this script did not create it"
    fi
    remove "$STATE"
    rmdir_own "$(dirname "$STATE")"
    if [ "$CHANGED" = 0 ] && [ "$SYS_CHANGED" = 0 ]; then say "nothing to remove"; else say "peerpigeon uninstalled"; fi
    exit 0
fi

# ============================================================================================
# --- settings: options, else the existing env file, else defaults -------------------------
had_env=0
[ -f "$DESTDIR$ENVF" ] && had_env=1
host=${o_host:-$(get_kv "$ENVF" HOST)}
host=${host:-$DEF_HOST}
port=${o_port:-$(get_kv "$ENVF" PORT)}
port=${port:-$DEF_PORT}
maxc=${o_max:-$(get_kv "$ENVF" MAX_CONNECTIONS)}
maxc=${maxc:-$DEF_MAXCONN}
hub=${o_hub:-$(get_kv "$ENVF" IS_HUB)}
case ${hub,,} in true | 1 | yes | on) hub=true ;; *) hub=false ;; esac
if [ -n "$o_boot_set" ]; then boot=$o_boot; else boot=$(get_kv "$ENVF" BOOTSTRAP_HUBS); fi
old_token=$(get_kv "$ENVF" AUTH_TOKEN)
old_secret=$(get_kv "$ENVF" HUB_SECRET)
old_hub=$(get_kv "$ENVF" IS_HUB)
case ${old_hub,,} in true | 1 | yes | on) old_hub=true ;; *) old_hub=false ;; esac
# the other VARIABLE=value lines of an existing env file, kept as they are
kept=()
if [ "$had_env" = 1 ]; then
    while IFS= read -r line || [ -n "$line" ]; do
        [[ $line =~ $RE_KV ]] || continue
        case " $MANAGED " in *" ${line%%=*} "*) continue ;; esac
        kept+=("$line")
    done <"$DESTDIR$ENVF"
fi
# behind a reverse proxy on this machine (a loopback HOST): trust what it forwards, so that the
# per-address limits apply to each client's own address, not to 127.0.0.1 (which is exempt)
if is_loopback "$host" && ! printf '%s\n' "${kept[@]}" | grep -q '^TRUST_PROXY='; then
    kept+=("TRUST_PROXY=true")
    say "TRUST_PROXY=true: HOST=$host is behind a local proxy; its X-Forwarded-For is the client"
fi

valid_port "$port" || die "--port: expected a port number 1-65535, not '$port'" 2
port=$((10#$port))
[[ $maxc =~ $RE_NUM ]] && [ "$((10#$maxc))" -ge 1 ] && [ "$((10#$maxc))" -le 1000000 ] ||
    die "--max-connections: expected a whole number 1-1000000, not '$maxc'" 2
maxc=$((10#$maxc))
[[ $host =~ $RE_HOST ]] || die "--host: expected an address or host name, not '$host'" 2
if [ -n "$boot" ]; then
    IFS=, read -r -a urls <<<"$boot"
    [ "${#urls[@]}" -gt 0 ] || die "--bootstrap: no URL in '$boot'" 2
    for u in "${urls[@]}"; do
        [[ $u =~ $RE_URL ]] ||
            die "--bootstrap: expected comma-separated ws://host:port URLs, not '$u'" 2
        case $u in wss://*) warn "$u: wss:// is not dialled by peerpigeon-c (TLS is out of scope); dial a TLS proxy's ws:// side" ;; esac
    done
    [ "$hub" = true ] || warn "--bootstrap has no effect without --hub"
fi
[ -z "$o_pub" ] || [[ $o_pub =~ $RE_HOST ]] || die "--public-address: expected an address or name, not '$o_pub'" 2

# HUB_SECRET: hub rights only for the hubs that present it. Generated when this run makes the
# server a hub (a new install, or a plain server turned hub). A hub that was one before without
# a secret gets none unasked: it was refused (--hub-secret '', then OPEN_HUB=1 in the state),
# or it is an older install whose mesh does not know a secret yet.
secret_note=
if [ -n "$o_gensec" ]; then
    secret=$(gen_token)
    secret_note="generated a new hub secret: give it to every hub of the mesh (--hub-secret)${dry:+; a dry run does not keep it}"
elif [ -n "$o_secret_set" ]; then
    secret=$o_secret
    [ -z "$secret" ] || valid_secret "$secret" ||
        die "--hub-secret: use 1-255 letters, digits and . _ ~ + = : - only" 2
elif [ -n "$old_secret" ]; then
    secret=$old_secret
    secret_note="kept the hub secret of $ENVF"
elif [ "$hub" = true ] && [ "$old_hub" != true ]; then
    secret=$(gen_token)
    secret_note="generated a hub secret (32 random bytes): hub rights need it, browsers do not${dry:+; a dry run does not keep it}"
else
    secret=
fi
if [ "$hub" = true ] && [ -z "$secret" ]; then
    warn "hub without HUB_SECRET: anyone can get hub rights here (every peer of every network, relays); --generate-hub-secret to set one, the same on every hub of the mesh"
fi

# AUTH_TOKEN: every WebSocket client must present it (browsers too), so only when asked for.
token_note=
if [ -n "$o_gen" ]; then
    token=$(gen_token)
    token_note="generated a new token: every client must present it${dry:+; a dry run does not keep it}"
elif [ -n "$o_token_set" ]; then
    token=$o_token
    [ -z "$token" ] || valid_token "$token" ||
        die "--auth-token: use 1-255 letters, digits and . _ ~ + / = : - only" 2
elif [ -n "$old_token" ]; then
    token=$old_token
    token_note="kept the token of $ENVF (every client must present it; --auth-token '' removes it)"
else
    token=
fi

say "installing peerpigeon on $(uname -m)${DESTDIR:+ into DESTDIR=$DESTDIR}${dry:+ (dry run: nothing is changed)}"

# --- the binary ----------------------------------------------------------------------------
if [ -n "$o_bin" ]; then
    [ -f "$o_bin" ] && [ -x "$o_bin" ] || die "--binary: $o_bin is not an executable file"
    src_bin=$(cd "$(dirname "$o_bin")" && pwd)/$(basename "$o_bin")
else
    src_bin=$ROOT/peerpigeon
    if ! command -v make >/dev/null || ! { command -v cc >/dev/null || command -v gcc >/dev/null; }; then
        if [ "$LIVE" = 1 ] || [ -n "$dry" ]; then
            if command -v apt-get >/dev/null; then
                pkg apt-get update -qq && pkg env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gcc make libc6-dev
            elif command -v dnf >/dev/null; then
                pkg dnf install -y gcc make glibc-devel
            elif command -v yum >/dev/null; then
                pkg yum install -y gcc make glibc-devel
            else
                die "gcc and make are missing and there is no apt-get, dnf or yum: install them, or pass --binary"
            fi
        else
            die "gcc and make are missing (not installing packages with DESTDIR set): install them, or pass --binary"
        fi
    fi
    if [ -n "$dry" ]; then
        say "would run: make -C $ROOT peerpigeon"
    else
        # As the owner of the checkout, so that sudo does not leave root-owned files in it.
        owner=$(stat -c %U "$ROOT")
        if [ "$IS_ROOT" = 1 ] && [ "$owner" != root ] && command -v runuser >/dev/null; then
            say "building: runuser -u $owner -- make -C $ROOT peerpigeon"
            runuser -u "$owner" -- make -C "$ROOT" peerpigeon >&2 || die "the build failed"
        else
            say "building: make -C $ROOT peerpigeon"
            make -C "$ROOT" peerpigeon >&2 || die "the build failed"
        fi
    fi
fi
# elf_machine FILE: x86_64, aarch64, ... from the ELF header (e_machine, little-endian)
elf_machine() {
    local m
    [ "$(head -c 4 "$1" | od -An -c | tr -d ' ')" = '177ELF' ] || { echo "not ELF"; return; }
    m=$(od -An -tu2 -j18 -N2 "$1" | tr -d ' ')
    case $m in 62) echo x86_64 ;; 183) echo aarch64 ;; 3) echo i386 ;; 40) echo arm ;; *) echo "machine $m" ;; esac
}
version=
if [ -x "$src_bin" ]; then
    arch=$(elf_machine "$src_bin")
    [ "$arch" = "$(uname -m)" ] ||
        die "$src_bin is a $arch binary and this machine is $(uname -m) (build/peerpigeon-$(uname -m) from make static-all, or build here without --binary)"
    version=$("$src_bin" --version 2>&1) ||
        die "$src_bin does not run on this machine ($(uname -m)): $version"
    say "binary: $src_bin ($version)"
    # The server checks its settings before anything else: exit 2 is a bad value.
    rc=0
    err=$(env -i PATH=/usr/bin:/bin "${kept[@]}" HOST="$host" PORT="$port" MAX_CONNECTIONS="$maxc" IS_HUB="$hub" \
        BOOTSTRAP_HUBS="$boot" HUB_SECRET="$secret" AUTH_TOKEN="$token" timeout 10 "$src_bin" --health-check 2>&1) || rc=$?
    [ "$rc" -ne 2 ] || die "peerpigeon refuses these settings: $err" 2
fi

# --- the service user ----------------------------------------------------------------------
user_created=$(get_kv "$STATE" USER_CREATED)
if user_exists; then
    say "user $SVC_USER exists"
else
    group=(--user-group)
    if [ "$LIVE" = 1 ] && getent group "$SVC_USER" >/dev/null; then group=(--gid "$SVC_USER"); fi
    account useradd --system "${group[@]}" --no-create-home --home-dir /nonexistent \
        --shell "$(nologin_path)" --comment "peerpigeon-c server" "$SVC_USER" ||
        die "could not create the user $SVC_USER"
    user_created=1
fi

# --- files ---------------------------------------------------------------------------------
had_unit=0
[ -f "$DESTDIR$UNIT" ] && had_unit=1
[ -f "$ROOT/deploy/peerpigeon.service" ] || die "$ROOT/deploy/peerpigeon.service not found"
grep -qx "EnvironmentFile=-\{0,1\}$ENVF" "$ROOT/deploy/peerpigeon.service" ||
    die "deploy/peerpigeon.service does not read EnvironmentFile=$ENVF"

if [ -n "$dry" ] && [ ! -x "$src_bin" ]; then
    say "would write: $BIN (mode 755) from the build"
    CHANGED=1
else
    put "$BIN" 755 -f "$src_bin"
fi
unit_before=$CHANGED
CHANGED=0
put "$UNIT" 644 -f "$ROOT/deploy/peerpigeon.service"

# drop-in: what the unit's defaults do not allow
dropin=
if [ $((maxc + 1024)) -gt "$UNIT_NOFILE" ]; then
    dropin+="LimitNOFILE=$((maxc + 1024))"$'\n'
fi
if [ "$port" -lt 1024 ]; then
    dropin+="CapabilityBoundingSet=CAP_NET_BIND_SERVICE"$'\n'"AmbientCapabilities=CAP_NET_BIND_SERVICE"$'\n'
fi
if [ -n "$dropin" ]; then
    put "$DROPIN" 644 -t "# written by deploy/install.sh from its settings (MAX_CONNECTIONS, PORT)"$'\n'"[Service]"$'\n'"$dropin"
else
    remove "$DROPIN"
    rmdir_own "$(dirname "$DROPIN")"
fi
unit_changed=$CHANGED
[ "$unit_before" = 1 ] && CHANGED=1

# env file: the managed settings, then any other VARIABLE=value lines of the old file
envtext="# /etc/peerpigeon.env: settings of peerpigeon.service (see \`peerpigeon --help\`).
# Written by deploy/install.sh, which manages $MANAGED
# and keeps other VARIABLE=value lines (e.g. LOG_LEVEL=debug) when run again. Mode 0600.
HOST=$host
PORT=$port
MAX_CONNECTIONS=$maxc
IS_HUB=$hub
"
[ -n "$boot" ] && envtext+="BOOTSTRAP_HUBS=$boot"$'\n'
[ -n "$secret" ] && envtext+="HUB_SECRET=$secret"$'\n'
[ -n "$token" ] && envtext+="AUTH_TOKEN=$token"$'\n'
for line in "${kept[@]}"; do envtext+="$line"$'\n'; done
put "$ENVF" 600 -t "$envtext"

# --- firewall ------------------------------------------------------------------------------
opened=$(get_kv "$STATE" FW_OPENED)
if is_loopback "$host"; then
    say "firewall: HOST=$host is loopback only: no port opened"
    [ -z "$opened" ] || { close_recorded; opened=; }
else
    fw_detect
    if [ -n "$opened" ] && [ "$opened" != "$FW_KIND:$port" ]; then
        close_recorded
        opened=
    fi
    if [ "$FW_KIND" = none ]; then
        say "firewall: none active$FW_NOTE: nothing to open"
    elif fw_is_open "$FW_KIND" "$port"; then
        say "firewall: $port/tcp is already open in $FW_KIND"
    else
        say "firewall: opening $port/tcp in $FW_KIND"
        if fw_open "$FW_KIND" "$port"; then
            opened=$FW_KIND:$port
        else
            warn "could not open $port/tcp in $FW_KIND"
        fi
    fi
fi

# --- state: what this script created, for --uninstall and the next run --------------------
open_hub=
[ "$hub" = true ] && [ -z "$secret" ] && open_hub=1
statetext="# deploy/install.sh: what it created (read by --uninstall)
USER_CREATED=${user_created:-0}
FW_OPENED=$opened
OPEN_HUB=${open_hub:-0}
"
if [ "$WRITE" = 1 ]; then
    mkdir -p "$(dirname "$DESTDIR$STATE")"
    chmod 700 "$(dirname "$DESTDIR$STATE")"
fi
files_changed=$CHANGED
put "$STATE" 600 -t "$statetext" >/dev/null
CHANGED=$files_changed

# --- the service ---------------------------------------------------------------------------
[ "$unit_changed" = 1 ] && { svc daemon-reload || die "systemctl daemon-reload failed"; }
if [ "$CHANGED" = 1 ] && [ "$had_unit" = 1 ]; then
    svc try-restart "$SVC" || die "systemctl try-restart $SVC failed; see journalctl -u $SVC"
fi
svc enable --now "$SVC" || die "systemctl enable --now $SVC failed; see journalctl -u $SVC -n 50"

# --- where it is reachable -----------------------------------------------------------------
pub_note=
public_address() {
    local a=''
    if [ -n "$o_pub" ]; then echo "$o_pub"; return; fi
    if ! is_wildcard "$host"; then echo "$host"; return; fi
    # no third-party "what is my IP" service is asked: the address of the default route (no
    # packet is sent), which is the public one unless the VM is behind NAT (cloud VMs are:
    # pass --public-address)
    a=$(ip -4 route get 1.1.1.1 2>/dev/null | sed -n 's/.* src \([0-9.]*\).*/\1/p')
    [ -n "$a" ] || a=$(hostname -I 2>/dev/null | awk '{print $1}')
    echo "${a:-127.0.0.1}"
    return 1
}
addr=$(public_address) || pub_note=" (the local address: behind NAT, as on Oracle Cloud, pass --public-address)"
ahost=$(url_host "$addr")

# --- health --------------------------------------------------------------------------------
health="http://$ahost:$port/health"
if [ "$LIVE" = 1 ]; then
    ok=0
    for _ in $(seq 1 40); do
        if env -i HOST="$host" PORT="$port" "$BIN" --health-check 2>/dev/null; then ok=1; break; fi
        sleep 0.25
    done
    if [ "$ok" = 0 ]; then
        journalctl -u "$SVC" -n 30 --no-pager 2>/dev/null || true
        die "the service does not answer GET /health on $host port $port (systemctl status $SVC)"
    fi
    say "health: $health answers 200"
else
    say "would check: HOST=$host PORT=$port $BIN --health-check"
fi

[ -n "$secret_note" ] && say "$secret_note"
[ -n "$token_note" ] && say "$token_note"
if [ "$CHANGED" = 0 ] && [ "$SYS_CHANGED" = 0 ]; then say "nothing changed"; fi
echo
echo "peerpigeon ${version:+($version) }${dry:+would be }installed${DESTDIR:+ in $DESTDIR}: service $SVC, settings $ENVF"
echo "  health:   $health$pub_note"
echo "  clients:  ws://$ahost:$port${token:+  (with the token: Authorization: Bearer <token> or ?token=<token>)}"
if is_loopback "$host"; then
    echo "  note:     HOST=$host: reachable from this machine only (behind a reverse proxy)"
fi
if [ "$hub" = true ]; then
    if [ -n "$secret" ]; then
        echo "  hubs:     hub rights only with the HUB_SECRET below (and for the links this hub dials)"
    else
        echo "  hubs:     hub rights open to anyone (no HUB_SECRET)"
    fi
    echo "  other hubs dial this one with:"
    echo "    BOOTSTRAP_HUBS=ws://$ahost:$port"
    [ -n "$secret" ] && echo "    HUB_SECRET=$secret"
    [ -n "$token" ] && echo "    AUTH_TOKEN=$token"
    echo "  on each of them: sudo deploy/install.sh --hub --bootstrap ws://$ahost:$port${secret:+ --hub-secret $secret}${token:+ --auth-token $token}"
    if [ -n "$secret" ]; then
        echo "  JS/Go hubs dial: ws://$ahost:$port/hub/$secret"
    else
        echo "  JS/Go hubs dial: ws://$ahost:$port"
    fi
fi
if ! is_loopback "$host"; then
    echo "  cloud:    also allow TCP $port in the provider's network firewall (Oracle Cloud: an ingress rule in the VCN security list)"
fi
echo "  logs:     journalctl -u $SVC -f    remove: sudo deploy/install.sh --uninstall"
