#!/usr/bin/env bash
# test/layers.sh - the module graph, read from the objects: each module is compiled alone, its
# undefined symbols are matched to the module that defines them, and the edges must be the ones
# allowed below (which is the table in README.md, Layout) and form no cycle. Then each unit-test
# rule of the Makefile must link only its module and the modules below it.
set -u
cd "$(dirname "$0")/.."
mods="json ws dns http tls conn peer hub peerpigeon"
# module -> the modules it may call (directly); the transitive closure is "below"
declare -A allow=(
    [json]=""
    [ws]=""
    [dns]=""
    [http]="json"
    [tls]=""
    [conn]="http ws json tls"
    [peer]="conn json"
    [hub]="peer conn dns http json ws"
    [peerpigeon]="hub peer conn dns http json ws"
)
pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() { echo "FAIL $*"; fail=$((fail + 1)); }
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
declare -A owner
# the TLS build's graph (tls.c below conn.c) when BearSSL is there; the default build's is a
# subgraph of it (without PP_TLS tls.c is empty and nothing calls it)
tls=""
[ -f /usr/include/bearssl.h ] && tls="-DPP_TLS -I/usr/include/bearssl"
for m in $mods; do
    cc -std=c11 -D_GNU_SOURCE $tls -O0 -c -o "$dir/$m.o" "$m.c" || { bad "$m.c does not compile"; continue; }
    for s in $(nm -g --defined-only "$dir/$m.o" | awk '{print $3}'); do owner[$s]=$m; done
done
declare -A edges
for m in $mods; do
    [ -f "$dir/$m.o" ] || continue
    used=""
    for s in $(nm -u "$dir/$m.o" | awk '{print $2}'); do
        o=${owner[$s]:-}
        [ -n "$o" ] && [ "$o" != "$m" ] && case " $used " in *" $o "*) ;; *) used="$used $o" ;; esac
    done
    edges[$m]=$used
    wrong=""
    for o in $used; do case " ${allow[$m]} " in *" $o "*) ;; *) wrong="$wrong $o" ;; esac; done
    if [ -n "$wrong" ]; then bad "$m calls$wrong by name (allowed: ${allow[$m]:-nothing})"; else ok; fi
    echo "  $m ->${used:- (nothing)}"
done
# no cycle: repeatedly remove modules whose every callee is already removed
left=" $mods "
while :; do
    removed=0
    for m in $left; do
        dep=0
        for o in ${edges[$m]:-}; do case "$left" in *" $o "*) dep=1 ;; esac; done
        if [ $dep = 0 ]; then left=${left/ $m / }; removed=1; fi
    done
    [ $removed = 0 ] && break
done
if [ -z "${left// /}" ]; then ok; else bad "cycle among:$left"; fi
# below(m): the transitive closure of allow
below() {
    local out="" todo=${allow[$1]} x
    while [ -n "${todo// /}" ]; do
        set -- $todo
        x=$1; shift; todo="$*"
        case " $out " in *" $x "*) continue ;; esac
        out="$out $x"; todo="$todo ${allow[$x]}"
    done
    echo "$out"
}
# each unit test links only its module and those below it (test/ files are the test itself and
# fakes of a layer below)
for t in $(sed -n 's/^build\/test_\([a-z]*\):.*/\1/p' Makefile); do
    line=$(awk -v t="build/test_$t" '$1 == t":" {getline; print; exit}' Makefile)
    srcs=$(echo "$line" | grep -o '[a-z_]*\.c' | grep -v '^test_' | sed 's/\.c$//')
    allowed="$t $(below "$t")"
    wrong=""
    for s in $srcs; do
        case " $allowed " in *" $s "*) ;; *) [ -f "test/$s.c" ] || wrong="$wrong $s" ;; esac
    done
    if [ -n "$wrong" ]; then bad "test_$t links$wrong, not below $t"; else ok; fi
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
