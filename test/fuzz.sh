#!/usr/bin/env bash
# Runs each libFuzzer target for FUZZ_SECONDS (default 5), starting from a small seed corpus
# per target written here into build/corpus_<m>/ (what the unit tests feed: WebSocket frames,
# request and answer heads, PeerPigeon messages, DNS answers, and fuzz_peer scripts that reach
# a hub link, a DNS lookup, an inbound hub and the duplicate rule). New inputs the fuzzer finds
# are kept there for the next run. One pass per target that finds nothing. Needs clang; without
# it, says so and fails.
set -u
cd "$(dirname "$0")/.."
secs=${FUZZ_SECONDS:-5}
command -v clang >/dev/null || { echo "FAIL clang not found"; echo "0 passed, 1 failed"; exit 1; }
pass=0 fail=0
mkdir -p build

# seed <target> <name> <bytes as printf %b text>
seed() {
    mkdir -p "build/corpus_$1"
    printf '%b' "$3" >"build/corpus_$1/seed-$2"
}
# hexseed <target> <name> <hex bytes; white space and | ignored>
hexseed() {
    local h=${3//[[:space:]|]/} out="" i
    for ((i = 0; i < ${#h}; i += 2)); do out="$out\\x${h:i:2}"; done
    seed "$1" "$2" "$out"
}

# ws: frames as a client sends them (masked) and as a server does, fragments, control frames
seed ws text-masked '\x81\x82\x00\x00\x00\x00hi'
seed ws text-masked2 '\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58'
seed ws text '\x81\x02hi'
seed ws fragments '\x01\x01h\x00\x01\xc3\x80\x01\xa9'
seed ws close '\x88\x02\x03\xe8'
seed ws ping-pong '\x89\x00\x8a\x01x'
seed ws len16 "\\x82\\x7e\\x00\\x7e$(printf 'a%.0s' {1..126})"
seed ws utf8 '\x81\x0ah\xc3\xa9ll\xf0\x9f\x98\x80o'

# http: request heads (an upgrade, endpoints, pipelining) and answer heads (what a hub answers)
seed http upgrade 'GET /?peerId=0123456789abcdef0123456789abcdef01234567&token=t HTTP/1.1\r\nHost: localhost:3000\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nAuthorization: Bearer t\r\n\r\n'
seed http health 'GET /health HTTP/1.1\r\nHost: x\r\n\r\nGET /hubs HTTP/1.0\r\n\r\n'
seed http body 'POST /stats HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello'
seed http options 'OPTIONS * HTTP/1.1\r\nHost: x\r\nOrigin: http://a\r\n\r\n'
seed http answer-101 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n'
seed http answer-1010 'HTTP/1.1 1010 Switching Protocols\r\n\r\n'
seed http answer-200 'HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok'

# json: the messages the server reads
seed json announce '{"type":"announce","networkName":"net-a","data":{"peerId":"x","isHub":false,"k":[1,2,{"x":null}]}}'
seed json offer '{"type":"offer","targetPeerId":"0123456789abcdef0123456789abcdef01234567","data":{"type":"offer","sdp":"v=0\\r\\n"},"hubHops":3,"originSeq":1740000000000000}'
seed json escapes '{"type":"x\\u0041\\u00e9\\ud83d\\ude00","n":-1.5e3,"t":true,"f":false,"z":null,"e":""}'
seed json nested '[[[[{"a":[[[]]]}]]]]'

# dns: byte 0 picks the question (bit 0 AAAA, bits 1+ the name: hub-a.test, a, web.test)
qa='\x05hub-a\x04test\x00'
seed dns a "\\x00\\x12\\x34\\x81\\x80\\x00\\x01\\x00\\x01\\x00\\x00\\x00\\x00$qa\\x00\\x01\\x00\\x01\\xc0\\x0c\\x00\\x01\\x00\\x01\\x00\\x00\\x00\\x3c\\x00\\x04\\x7f\\x00\\x00\\x01"
seed dns aaaa "\\x01\\x12\\x34\\x81\\x80\\x00\\x01\\x00\\x01\\x00\\x00\\x00\\x00$qa\\x00\\x1c\\x00\\x01\\xc0\\x0c\\x00\\x1c\\x00\\x01\\x00\\x00\\x00\\x3c\\x00\\x10\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x01"
seed dns nxdomain "\\x00\\xbe\\xef\\x81\\x83\\x00\\x01\\x00\\x00\\x00\\x00\\x00\\x00$qa\\x00\\x01\\x00\\x01"
seed dns cname '\x04\x00\x07\x81\x80\x00\x01\x00\x02\x00\x00\x00\x00\x03web\x04test\x00\x00\x01\x00\x01\xc0\x0c\x00\x05\x00\x01\x00\x00\x00\x3c\x00\x08\x05hub-a\xc0\x10\xc0\x26\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04\x0a\x00\x00\x01'
seed dns truncated "\\x00\\x12\\x34\\x83\\x80\\x00\\x01\\x00\\x00\\x00\\x00\\x00\\x00$qa\\x00\\x01\\x00\\x01"

# peer: scripts (see test/fuzz_peer.c): byte 0 = hub mode, then ops
# two clients announce in net-a, one closes (the example of fuzz_peer.c's header)
hexseed peer example '01 | 00 00 | 00 01 | 01 00 00 01 00 | 84 01 00'
# a hub link: tick, connected, 101, a client announces, a remote peer, an offer to it, withdrawn
hexseed peer link '01 | 08 00 | 09 00 01 | 09 00 02 | 00 00 | 01 02 00 01 00 |
    01 00 06 01 00 00 01 | 02 02 02 00 05 01 01 01 | 01 00 07 01 01 01 | 84 00 00'
# the bootstrap name: a DNS answer, then its link opens
hexseed peer dns '01 | 08 00 | 0a 01 01 | 09 02 01 | 09 02 02 | 00 00 | 01 03 00 01 00'
# an inbound hub: announces in the hub namespace, sends a peer and a signal
hexseed peer inbound '01 | 00 04 | 01 00 00 03 01 00 | 00 05 | 01 01 00 01 00 |
    01 00 06 06 00 00 02 | 01 00 02 00 07 06 01 03 02 | 0b'
# plain server: duplicate refused, replaced after silence, goodbye, ping, slow reader, EOF
hexseed peer duplicates '00 | 00 00 | 00 01 | 01 00 00 01 00 | 01 01 00 01 00 | 00 00 |
    87 ff | 00 00 | 01 01 04 00 | 02 01 05 | 06 00 | 01 01 00 01 00 | 85 01 | 0b'

for m in ws http json dns peer; do
    srcs="test/fuzz_$m.c $m.c"
    [ "$m" = http ] && srcs="$srcs json.c"
    [ "$m" = peer ] && srcs="test/fuzz_peer.c test/fake_conn.c peer.c hub.c dns.c json.c ws.c http.c"
    if ! clang -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined -I. \
        -o "build/fuzz_$m" $srcs; then
        echo "FAIL fuzz_$m does not build"; fail=$((fail + 1)); continue
    fi
    if "./build/fuzz_$m" -max_total_time="$secs" -max_len=4096 -print_final_stats=0 \
        -artifact_prefix=build/ "build/corpus_$m" >"build/fuzz_$m.log" 2>&1; then
        pass=$((pass + 1))
    else
        echo "FAIL fuzz_$m found a crash:"; tail -30 "build/fuzz_$m.log"; fail=$((fail + 1))
    fi
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
