/* json_bench.c - a microbenchmark (not a test) of what the server does with each relayed offer:
 * validate a 2.8 KB signal whose `data` holds an SDP string (a \r\n escape every ~50 bytes)
 * and look up type, targetPeerId, networkName and data, in the real client's key order
 * (type, data, targetPeerId, networkName, fromPeerId, timestamp) and with data last. Prints ns
 * per message and cycles per byte (the TSC on x86_64, so reference cycles) per way of doing it:
 *   validate   json_validate alone
 *   get        json_validate + json_value + json_get x4 (what peer.c does today)
 *   parse      json_parse + json_obj_get x4 (only against a json.h that has them)
 * Build with the scanner to measure and run:
 *   cc -O2 -I. -o build/json_bench bench/json_bench.c json.c [-DJSON_SCALAR | -DJSON_SWAR]
 * or against another json.c/json.h (say the previous one, copied to /tmp/old):
 *   cc -O2 -I/tmp/old -o build/json_bench_old bench/json_bench.c /tmp/old/json.c */
#include "json.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
#define HAVE_TSC 1
#endif

#define ROUNDS 1000   /* the best of these is reported */
#define PER_ROUND 100 /* messages per round */

/* A Chrome-style offer: audio and a data channel, with host and srflx candidates. */
static const char *const sdp_lines[] = {
    "v=0",
    "o=- 4611731400430051336 2 IN IP4 127.0.0.1",
    "s=-",
    "t=0 0",
    "a=group:BUNDLE 0 1",
    "a=msid-semantic: WMS 5c2f3a8e-6b1d-4f7e-9a0c-2d8e4b6f1a3c",
    "m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126",
    "c=IN IP4 0.0.0.0",
    "a=rtcp:9 IN IP4 0.0.0.0",
    "a=candidate:842163049 1 udp 1677729535 203.0.113.7 54321 typ srflx raddr 192.168.1.23 "
    "rport 54321 generation 0 network-cost 999",
    "a=candidate:1467250027 1 udp 2122260223 192.168.1.23 54321 typ host generation 0 "
    "network-id 1 network-cost 10",
    "a=candidate:2999745851 1 udp 2122194687 10.8.0.2 61055 typ host generation 0 network-id 2",
    "a=candidate:3251869349 1 udp 2122197247 2001:db8:85a3::8a2e:370:7334 54323 typ host "
    "generation 0 network-id 3 network-cost 10",
    "a=candidate:1922411311 1 udp 2122131711 fd00:1234:5678::2 54324 typ host generation 0 "
    "network-id 4 network-cost 50",
    "a=ice-ufrag:8hhY",
    "a=ice-pwd:x9cml/YzichV2+XlhiMu8g1k",
    "a=ice-options:trickle",
    "a=fingerprint:sha-256 7B:8B:F0:65:5F:78:E2:51:3B:AC:6F:F3:3F:46:1B:35:DC:B8:5F:64:1A:24:C2:"
    "43:F0:A1:58:D0:A1:2C:19:08",
    "a=setup:actpass",
    "a=mid:0",
    "a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level",
    "a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time",
    "a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01",
    "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid",
    "a=sendrecv",
    "a=msid:5c2f3a8e-6b1d-4f7e-9a0c-2d8e4b6f1a3c 0e5a7c9b-3d1f-4b8a-a6e2-7f4c1b9d3e5a",
    "a=rtcp-mux",
    "a=rtpmap:111 opus/48000/2",
    "a=rtcp-fb:111 transport-cc",
    "a=fmtp:111 minptime=10;useinbandfec=1",
    "a=ssrc:3735928559 cname:k2Xq9vB7nT4mL1pR",
    "a=ssrc:3735928559 msid:5c2f3a8e-6b1d-4f7e-9a0c-2d8e4b6f1a3c 0e5a7c9b-3d1f-4b8a-a6e2-7f4c1b9d",
    "m=application 9 UDP/DTLS/SCTP webrtc-datachannel",
    "c=IN IP4 0.0.0.0",
    "a=candidate:842163049 1 udp 1677729535 203.0.113.7 54322 typ srflx raddr 192.168.1.23 "
    "rport 54322 generation 0 network-cost 999",
    "a=candidate:1467250027 1 udp 2122260223 192.168.1.23 54322 typ host generation 0 "
    "network-id 1 network-cost 10",
    "a=candidate:2999745851 1 udp 2122194687 10.8.0.2 61056 typ host generation 0 network-id 2",
    "a=candidate:4233069003 1 tcp 1518280447 192.168.1.23 9 typ host tcptype active "
    "generation 0 network-id 1",
    "a=candidate:3251869349 1 udp 2122197247 2001:db8:85a3::8a2e:370:7334 54325 typ host "
    "generation 0 network-id 3 network-cost 10",
    "a=ice-ufrag:8hhY",
    "a=ice-pwd:x9cml/YzichV2+XlhiMu8g1k",
    "a=ice-options:trickle",
    "a=fingerprint:sha-256 7B:8B:F0:65:5F:78:E2:51:3B:AC:6F:F3:3F:46:1B:35:DC:B8:5F:64:1A:24:C2:"
    "43:F0:A1:58:D0:A1:2C:19:08",
    "a=setup:actpass",
    "a=mid:1",
    "a=sctp-port:5000",
    "a=max-message-size:262144",
};

static const char peer_a[] = "3f2a9c1b7e5d4a8f6b0c2e9d1a7f3b5c8e4d6a2f";
static const char peer_b[] = "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678";

/* The signal with the SDP as the JSON text client code writes: data second, or last. */
static size_t make_offer(char *buf, size_t cap, int data_last, size_t *sdp_len, size_t *lines)
{
    char sdp[4096];
    size_t n = 0;
    *lines = 0;
    for (size_t k = 0; k < sizeof sdp_lines / sizeof sdp_lines[0]; k++) {
        size_t l = strlen(sdp_lines[k]);
        memcpy(sdp + n, sdp_lines[k], l);
        memcpy(sdp + n + l, "\r\n", 2);
        n += l + 2;
        ++*lines;
    }
    *sdp_len = n;
    struct json_writer w;
    json_writer_init(&w, buf, cap);
    JSON_LIT(&w, "{\"type\":\"offer\",");
    if (!data_last) {
        JSON_LIT(&w, "\"data\":{\"type\":\"offer\",\"sdp\":");
        json_write_str(&w, sdp, n);
        JSON_LIT(&w, "},");
    }
    JSON_LIT(&w, "\"targetPeerId\":\"");
    json_write_raw(&w, peer_b, 40);
    JSON_LIT(&w, "\",\"networkName\":\"global\",\"fromPeerId\":\"");
    json_write_raw(&w, peer_a, 40);
    JSON_LIT(&w, "\",\"timestamp\":1733080000000");
    if (data_last) {
        JSON_LIT(&w, ",\"data\":{\"type\":\"offer\",\"sdp\":");
        json_write_str(&w, sdp, n);
        JSON_LIT(&w, "}");
    }
    JSON_LIT(&w, "}");
    if (w.overflow) {
        fprintf(stderr, "offer does not fit\n");
        exit(2);
    }
    return w.len;
}

static volatile size_t sink;

static size_t way_validate(const char *m, size_t n)
{
    return (size_t)json_validate(m, n);
}

static size_t way_get(const char *m, size_t n)
{
    struct json_val root, t, tp, nn, d;
    if (json_validate(m, n) || json_value(m, n, &root)) return 0;
    size_t r = (size_t)json_get(&root, "type", &t) + (size_t)json_get(&root, "targetPeerId", &tp) +
               (size_t)json_get(&root, "networkName", &nn) + (size_t)json_get(&root, "data", &d);
    return r + d.len + t.len;
}

#ifdef JSON_MAX_MEMBERS
static size_t way_parse(const char *m, size_t n)
{
    struct json_val root, t, tp, nn, d;
    struct json_obj o;
    if (json_parse(m, n, &root, &o)) return 0;
    size_t r = (size_t)json_obj_get(&o, &root, "type", &t) +
               (size_t)json_obj_get(&o, &root, "targetPeerId", &tp) +
               (size_t)json_obj_get(&o, &root, "networkName", &nn) +
               (size_t)json_obj_get(&o, &root, "data", &d);
    return r + d.len + t.len;
}
#endif

static const char *scanner_name(void)
{
#ifdef JSON_MAX_MEMBERS
    return json_scanner();
#else
    return "before";
#endif
}

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static uint64_t ticks(void)
{
#ifdef HAVE_TSC
    return __rdtsc();
#else
    return 0;
#endif
}

struct bench_case {
    const char *way_name, *order;
    size_t (*way)(const char *, size_t);
    const char *m;
    size_t n;
    double ns, cyc; /* the best round's, per message */
};

/* Every case once per round, rounds interleaved, so a noisy stretch of the machine hits all
 * cases alike; each case keeps its best round. */
static void run(struct bench_case *c, size_t nc)
{
    for (size_t k = 0; k < nc; k++) {
        c[k].ns = c[k].cyc = 1e300;
        if (c[k].way(c[k].m, c[k].n) == 0 && c[k].way != way_validate) {
            fprintf(stderr, "%s: the offer did not parse\n", c[k].way_name);
            exit(2);
        }
    }
    for (int r = 0; r < ROUNDS; r++) {
        for (size_t k = 0; k < nc; k++) {
            size_t acc = 0;
            uint64_t c0 = ticks();
            double t0 = now_ns();
            for (int i = 0; i < PER_ROUND; i++)
                acc += c[k].way(c[k].m, c[k].n);
            double t1 = now_ns();
            uint64_t c1 = ticks();
            sink += acc;
            double ns = (t1 - t0) / PER_ROUND, cyc = (double)(c1 - c0) / PER_ROUND;
            if (ns < c[k].ns) c[k].ns = ns;
            if (cyc < c[k].cyc) c[k].cyc = cyc;
        }
    }
    for (size_t k = 0; k < nc; k++) {
#ifdef HAVE_TSC
        printf("%-8s %-10s %-9s %8.0f ns/msg  %5.2f cycles/byte\n", scanner_name(), c[k].way_name,
               c[k].order, c[k].ns, c[k].cyc / (double)c[k].n);
#else
        printf("%-8s %-10s %-9s %8.0f ns/msg\n", scanner_name(), c[k].way_name, c[k].order,
               c[k].ns);
#endif
    }
}

int main(void)
{
    static char offer[2][8192];
    size_t n[2], sdp, lines, nc = 0;
    const char *order[2] = {"data-2nd", "data-last"};
    struct bench_case c[6];
    for (int k = 0; k < 2; k++) {
        n[k] = make_offer(offer[k], sizeof offer[k], k, &sdp, &lines);
        /* a heap copy of exactly its size, as the server's message buffer would be */
        char *m = malloc(n[k]);
        if (!m) return 2;
        memcpy(m, offer[k], n[k]);
        c[nc++] = (struct bench_case){"validate", order[k], way_validate, m, n[k], 0, 0};
        c[nc++] = (struct bench_case){"get", order[k], way_get, m, n[k], 0, 0};
#ifdef JSON_MAX_MEMBERS
        c[nc++] = (struct bench_case){"parse", order[k], way_parse, m, n[k], 0, 0};
#endif
    }
    printf("offer: %zu bytes, SDP %zu bytes in %zu lines (a \\r\\n every %.0f bytes)\n", n[0], sdp,
           lines, (double)sdp / (double)lines);
    run(c, nc);
    for (size_t k = 0; k < nc; k += nc / 2)
        free((void *)c[k].m);
    return 0;
}
