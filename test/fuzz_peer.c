/* fuzz_peer.c - libFuzzer target for the registry and signalling rules (peer.c) and the hub
 * protocol (hub.c), in process and without sockets: the connection layer is test/fake_conn.c,
 * which keeps the real layer's rules (the owner is told once; a closed connection is told at
 * once and takes no more messages, a dropped one - EOF, slow reader - is told at the end of the
 * batch; connections are freed at the end of the batch) and checks every message queued (JSON
 * with a string "type", to a connection that is known and not closing, on a hub link only after
 * its handshake). The input is a script of operations: clients connect/message/close, outbound
 * hub links dial/handshake/message/close, DNS answers, the clock, ticks and deadlines. On top of
 * the fake's checks: a client is addressed by its own id and never told about itself; the
 * registry matches the connections after each step; after each script everything is closed and
 * the registry must be empty again.
 *
 * Script: byte 0 bit 0 = hub mode; then ops, each an opcode byte (low 7 bits % 12: see run_op;
 * bit 7 ends the epoll batch: dropped connections are reaped) and its argument bytes. E.g.
 * 01 | 00 00 | 00 01 | 01 00 00 01 00 | 84 01 00: hub mode; open ids[0]; open ids[1]; to
 * connection 0 the template 0 (announce) in network 1 ("net-a") without data; close connection
 * 1 and end the batch. test/fuzz.sh writes a few such scripts as its seed corpus; the templates
 * (announce, offer/answer/ice-candidate, goodbye, ping, peer-discovered, peer-disconnected,
 * hub-info, 101 answers, DNS answers to the query sent) are built here. */
#include "conn.h"
#include "fake_conn.h"
#include "hub.h"
#include "json.h"
#include "peer.h"
#include "ws.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_ASSERT(c)                                                                             \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "fuzz_peer: assertion failed at line %d: %s\n", __LINE__, #c);         \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_CONNECTIONS 16
#define PING_MS 30000
#define HUB_NS "pigeonhub-mesh"
/* a numeric host (dialled at once), a name (a DNS query) and one never dialled */
#define BOOTSTRAP "ws://127.0.0.2:9/path?x=1, ws://hub-two.invalid:8081,wss://tls.example"

static int hub_on; /* hub_init is in force */

/* A client is addressed by its own id and never told about itself (a hub connection may be). */
static void check_sent(struct conn *c, const char *msg, size_t len)
{
    const struct peer *p = fake_kind(c) == FAKE_WS ? conn_owner(c) : NULL;
    if (!p || peer_has_hub_rights(p)) return;
    const char *me = peer_id(p);
    struct json_val root, t, v, d;
    FUZZ_ASSERT(json_value(msg, len, &root) == 0 && json_get(&root, "type", &t));
    if (json_get(&root, "targetPeerId", &v)) FUZZ_ASSERT(json_str_eq(&v, me, PEER_ID_LEN));
    if ((json_str_eq(&t, "peer-discovered", 15) || json_str_eq(&t, "peer-disconnected", 17)) &&
        json_get(&root, "data", &d) && json_get(&d, "peerId", &v))
        FUZZ_ASSERT(!json_str_eq(&v, me, PEER_ID_LEN));
}

/* ---- the script ---- */

struct in {
    const uint8_t *p;
    size_t n;
};

static uint8_t get8(struct in *in)
{
    if (!in->n) return 0;
    in->n--;
    return *in->p++;
}

static uint16_t get16(struct in *in)
{
    uint16_t v = get8(in);
    return (uint16_t)(v << 8 | get8(in));
}

#define NIDS 12
static const char *const ids[NIDS] = {
    "0000000000000000000000000000000000000001", "0000000000000000000000000000000000000002",
    "abcdefabcdefabcdefabcdefabcdefabcdefabcd", "ABCDEFABCDEFABCDEFABCDEFABCDEFABCDEFABCD",
    "1111111111111111111111111111111111111111", "2222222222222222222222222222222222222222",
    "3333333333333333333333333333333333333333", "4444444444444444444444444444444444444444",
    "5555555555555555555555555555555555555555", "6666666666666666666666666666666666666666",
    "fedcba9876543210fedcba9876543210fedcba98", /* this hub's id */
    "zz00000000000000000000000000000000000000", /* not an id */
};
static const char *const nets[] = {"global", "net-a", "net-b", "pigeonhub-mesh", "n\xc3\xa9t"};
#define NNETS (sizeof nets / sizeof *nets)

#define MSG_CAP 70000
static char msg[MSG_CAP];
static size_t mlen;

static void put(const char *s, size_t n)
{
    if (mlen + n < MSG_CAP) {
        memcpy(msg + mlen, s, n);
        mlen += n;
    }
}

static void puts_(const char *s)
{
    put(s, strlen(s));
}

static void put_str(const char *s, size_t n)
{
    struct json_writer w;
    json_writer_init(&w, msg + mlen, MSG_CAP - mlen);
    json_write_str(&w, s, n);
    if (!w.overflow) mlen += w.len;
}

/* a fuzzed string: escaped by the writer, or raw bytes between quotes (escapes, bad UTF-8) */
static void put_fuzz_str(struct in *in)
{
    size_t n = get8(in) % 48, raw = n & 1;
    char tmp[48];
    size_t k = 0;
    while (k < n && in->n)
        tmp[k++] = (char)get8(in);
    if (raw) {
        puts_("\"");
        put(tmp, k);
        puts_("\"");
    } else {
        put_str(tmp, k);
    }
}

static void put_id(struct in *in)
{
    uint8_t c = get8(in);
    if (c < 240) {
        puts_("\"");
        puts_(ids[c % NIDS]);
        puts_("\"");
    } else if (c < 248) {
        put_fuzz_str(in);
    } else if (c < 252) {
        puts_("null");
    } else {
        puts_("42");
    }
}

/* `,"networkName":...` or nothing */
static void put_net(struct in *in)
{
    uint8_t c = get8(in) % 16;
    if (c == 0) return;
    puts_(",\"networkName\":");
    if (c < 8) {
        put_str(nets[c % NNETS], strlen(nets[c % NNETS]));
    } else if (c == 8) {
        puts_("null");
    } else if (c == 9) {
        puts_("\"\"");
    } else if (c == 10) {
        puts_("\"a\\u0000b\"");
    } else if (c == 11) {
        char big[300];
        memset(big, 'n', sizeof big);
        put_str(big, 256 + get8(in) % 3); /* 256 fits, 257 does not */
    } else if (c == 12) {
        puts_("7");
    } else {
        put_fuzz_str(in);
    }
}

/* a JSON value for `data` */
static void put_data(struct in *in, int announce)
{
    uint8_t c = get8(in) % 12;
    switch (c) {
    case 0:
        puts_("{\"isHub\":true}");
        break;
    case 1:
        puts_("{\"isHub\":false,\"k\":\"v\",\"n\":[1,2,{\"x\":null}]}");
        break;
    case 2:
        puts_("{\"peerId\":\"x\",\"isHub\":true,\"port\":3000,\"host\":\"h\"}");
        break;
    case 3:
        puts_("null");
        break;
    case 4:
        puts_("\"sdp text\"");
        break;
    case 5:
        puts_("{\"x\":");
        put_fuzz_str(in);
        puts_(",");
        put_fuzz_str(in);
        puts_(":1}");
        break;
    case 6: {
        /* announce data over MAX_ANNOUNCE_DATA, or just under */
        size_t n = MAX_ANNOUNCE_DATA - 16 + get8(in) % 32;
        puts_("{\"blob\":\"");
        for (size_t i = 0; i < n && mlen + 8 < MSG_CAP; i++)
            msg[mlen++] = 'b';
        puts_("\"}");
        break;
    }
    case 7:
        puts_("{\"isHub\":");
        puts_(get8(in) & 1 ? "true" : "\"true\"");
        puts_(",\"peerId\":");
        put_id(in);
        puts_("}");
        break;
    case 8:
        puts_("{}");
        break;
    case 9:
        puts_("[1,2,3]");
        break;
    default:
        puts_(announce ? "{\"isHub\":false}" : "{\"type\":\"offer\",\"sdp\":\"v=0\"}");
        break;
    }
}

/* the mesh fields between hubs of ours: originSeq, originHub (ours, another, junk), or none */
static void put_mesh(struct in *in)
{
    static const char *const seqs[] = {"1", "2", "1000", "1742000000000000",
                                       "18446744073709551615", "-1", "0.5", "\"7\""};
    uint8_t f = get8(in);
    if (f & 1) {
        puts_(",\"originSeq\":");
        puts_(seqs[(f >> 1) % 8]);
    }
    if (f & 16) {
        puts_(",\"originHub\":");
        put_id(in);
    }
}

static const char *const signal_types[] = {"offer", "answer", "ice-candidate", "Offer"};

/* Build a message from a template with fuzzed fields into msg[0..mlen). */
static void build(struct in *in)
{
    uint8_t t = get8(in) % 14;
    mlen = 0;
    switch (t) {
    case 0:
    case 1: /* announce */
        puts_("{\"type\":\"announce\"");
        put_net(in);
        if (get8(in) % 4) {
            puts_(",\"data\":");
            put_data(in, 1);
        }
        puts_("}");
        break;
    case 2:
    case 3: { /* signal */
        puts_("{\"type\":\"");
        puts_(signal_types[get8(in) % 4]);
        puts_("\"");
        uint8_t f = get8(in);
        if (f & 1) {
            puts_(",\"targetPeerId\":");
            put_id(in);
        }
        if (f & 2) {
            puts_(",\"fromPeerId\":");
            put_id(in);
        }
        if (f & 4) {
            puts_(",\"data\":");
            put_data(in, 0);
        }
        if (f & 8) {
            static const char *const hops[] = {
                "0", "1", "7", "8", "-1", "1e3", "0.5", "18446744073709551617", "\"3\""};
            puts_(",\"hubHops\":");
            puts_(hops[get8(in) % 9]);
        }
        put_net(in);
        puts_("}");
        break;
    }
    case 4:
        puts_("{\"type\":\"goodbye\"");
        put_net(in);
        puts_("}");
        break;
    case 5:
        puts_("{\"type\":\"ping\",\"data\":{\"t\":1}}");
        break;
    case 6: /* peer-discovered (honoured with hub rights) */
        puts_("{\"type\":\"peer-discovered\",\"data\":{\"peerId\":");
        put_id(in);
        if (get8(in) & 1) puts_(",\"isHub\":true");
        if (get8(in) & 1) puts_(",\"extra\":{\"a\":[1]}");
        puts_("}");
        put_net(in);
        put_mesh(in);
        puts_(",\"fromPeerId\":\"system\"}");
        break;
    case 7: { /* peer-disconnected */
        puts_("{\"type\":\"peer-disconnected\",\"data\":{\"peerId\":");
        put_id(in);
        uint8_t r = get8(in) % 5;
        if (r == 1) puts_(",\"reason\":\"goodbye\"");
        if (r == 2) puts_(",\"reason\":5");
        if (r == 3) {
            puts_(",\"reason\":");
            put_fuzz_str(in);
        }
        if (r == 4)
            puts_(",\"reason\":\"a reason that is much longer than sixty-four bytes, so it is "
                  "cut or replaced\"");
        puts_("}");
        put_net(in);
        put_mesh(in);
        puts_("}");
        break;
    }
    case 8:
        if (get8(in) & 1) {
            puts_("{\"type\":\"hub-info\",\"data\":{\"cachesPeers\":true}}");
        } else { /* a heartbeat of some hub: seq, since */
            puts_("{\"type\":\"hub-heartbeat\"");
            put_mesh(in);
            puts_(",\"seq\":");
            puts_(get8(in) & 1 ? "5" : "1742000000000000");
            puts_(",\"since\":");
            puts_(get8(in) & 1 ? "0" : "1742000000000000");
            puts_("}");
        }
        break;
    case 9:
        puts_("{\"type\":\"cleanup\"}");
        break;
    case 10: /* an unrouted type, maybe long, maybe escaped */
        puts_("{\"type\":");
        put_fuzz_str(in);
        puts_("}");
        break;
    case 11:
        puts_("{\"type\":\"");
        for (int i = 0; i < 40; i++)
            puts_("\xc3\xa9");
        puts_("\"}");
        break;
    case 12: /* not an object, no type */
        puts_(get8(in) & 1 ? "[\"announce\"]" : "{\"type\":1}");
        break;
    default: /* raw bytes */
    {
        size_t n = get16(in) % 512;
        while (n-- && in->n)
            msg[mlen++] = (char)get8(in);
        break;
    }
    }
}

static struct conn *pick(struct in *in)
{
    int n = fake_nconns();
    uint8_t k = get8(in);
    return n ? fake_conn_at(k % n) : NULL;
}

/* Deliver msg[0..mlen) to c as the loop does (the fake drops it unless c is open). */
static void deliver(struct conn *c)
{
    if (c) fake_deliver_n(c, msg, mlen);
}

static void op_open(struct in *in)
{
    const char *id = ids[get8(in) % (NIDS - 1)];
    struct conn *c = fake_client(id);
    if (!c || fake_state(c) != FAKE_OPEN) {
        FUZZ_ASSERT(!c || fake_close_reason(c));
        return;
    }
    struct peer *p = conn_owner(c);
    FUZZ_ASSERT(p && !strcmp(peer_id(p), id) && peer_conn(p) == c && peer_find(id) == p);
}

static void op_handshake(struct in *in)
{
    struct conn *c = pick(in);
    uint8_t how = get8(in);
    if (!c || fake_kind(c) != FAKE_DIAL || fake_state(c) != FAKE_OPEN) return;
    if (fake_dial_stage(c) == 0) { /* connected (dial_writable) */
        if (how & 1) {
            fake_connected(c);
            FUZZ_ASSERT(fake_dial_stage(c) == 1 && fake_ws_key(c)[0]);
        } else {
            fake_drop(c, "connect failed");
        }
        return;
    }
    if (fake_dial_stage(c) != 1) return;
    char head[1024], accept[29];
    int n;
    const char *key = fake_ws_key(c);
    ws_accept_key(key, strlen(key), accept);
    if (how % 4 == 0) { /* fuzzed head */
        size_t k = get8(in) % 200;
        n = 0;
        while (k-- && in->n)
            head[n++] = (char)get8(in);
        void *end = memmem(head, (size_t)n, "\r\n\r\n", 4);
        if (end) n = (int)((char *)end - head);
        memcpy(head + n, "\r\n\r\n", 4);
        n += 4;
    } else {
        /* valid; with an extension; with a wrong accept value; status 1010 is not 101 */
        n = snprintf(head, sizeof head,
                     "HTTP/1.1 %s Switching Protocols\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n%s\r\n",
                     how % 4 == 1 && how & 8 ? "1010" : "101",
                     how % 4 == 3 ? "AAAAAAAAAAAAAAAAAAAAAAAAAAA=" : accept,
                     how & 4 ? "Sec-WebSocket-Extensions: x\r\n" : "");
    }
    int r = fake_answer(c, head, (size_t)n);
    if (how % 4 == 3 || (how % 4 == 1 && how & 8) || (how % 4 != 0 && how & 4))
        FUZZ_ASSERT(r == -1 && fake_state(c) == FAKE_DEAD);
    if (how % 4 == 2 && !(how & 4)) FUZZ_ASSERT(r == 0 && fake_dial_stage(c) == 2);
}

static void op_dns(struct in *in)
{
    struct conn *c = pick(in);
    uint8_t how = get8(in);
    if (!c || fake_kind(c) != FAKE_UDP || fake_state(c) != FAKE_OPEN) return;
    size_t qlen;
    const uint8_t *q = fake_udp_last(c, &qlen);
    uint8_t a[600];
    size_t n;
    if (how % 4 == 0 || !q || qlen < 12 || qlen > 512) { /* garbage */
        n = get8(in) % 64;
        for (size_t i = 0; i < n; i++)
            a[i] = get8(in);
    } else {
        /* an answer to the query: rcode, an A/AAAA record or none */
        memcpy(a, q, qlen);
        n = qlen;
        a[2] |= 0x80;
        a[3] = (uint8_t)(0x80 | (how >> 2) % 4 % 3 * (how & 16 ? 3 : 1)); /* 0, 2 or 3 */
        uint16_t qtype = (uint16_t)(q[n - 4] << 8 | q[n - 3]);
        if ((a[3] & 15) == 0 && !(how & 32)) {
            a[7] = 1;
            static const uint8_t rr[] = {0xc0, 0x0c, 0, 0, 0, 1, 0, 0, 0, 60};
            memcpy(a + n, rr, sizeof rr);
            a[n + 2] = (uint8_t)(qtype >> 8);
            a[n + 3] = (uint8_t)qtype;
            n += sizeof rr;
            size_t al = qtype == 28 ? 16 : 4;
            a[n++] = 0;
            a[n++] = (uint8_t)al;
            memset(a + n, 0, al);
            a[n] = qtype == 28 ? 0 : 127;
            a[n + al - 1] = 3;
            n += al;
        }
    }
    fake_datagram(c, a, n);
}

static void op_stats(void)
{
    static char buf[1 << 18];
    struct json_writer w;
    json_writer_init(&w, buf, sizeof buf);
    peer_write_hubs(&w);
    FUZZ_ASSERT(!w.overflow && json_validate(w.p, w.len) == 0);
    json_writer_init(&w, buf, sizeof buf);
    hub_write_bootstrap(&w);
    FUZZ_ASSERT(!w.overflow && json_validate(w.p, w.len) == 0);
    FUZZ_ASSERT(hub_links_connected() <= hub_links_total());
}

static void run_op(struct in *in)
{
    uint8_t op_byte = get8(in);
    switch ((op_byte & 0x7f) % 12) {
    case 0: /* open a peer */
        op_open(in);
        break;
    case 1:
    case 2:
    case 3: /* a templated message to a peer or link */
    {
        struct conn *c = pick(in);
        build(in);
        deliver(c);
        break;
    }
    case 4: /* close: the owner is told now */
    {
        struct conn *c = pick(in);
        if (c) conn_close(c, WS_CLOSE_GOING_AWAY, get8(in) & 1 ? "ping timeout" : "");
        break;
    }
    case 5: /* gone (EOF, reset): the owner is told at the end of the batch */
    {
        struct conn *c = pick(in);
        if (c) fake_drop(c, "closed");
        break;
    }
    case 6: /* slow reader: the next message cuts it off */
    {
        struct conn *c = pick(in);
        if (c) fake_set_slow(c);
        break;
    }
    case 7: /* the clock */
    {
        uint8_t k = get8(in);
        fake_advance(k < 128 ? k : k < 250 ? (uint64_t)(k - 127) * 1000 : 2ull * PING_MS);
        break;
    }
    case 8: /* housekeeping: deadlines (bit 3), then the ticks: dial the links that are due */
    {
        uint8_t f = get8(in);
        fake_fail_connect(f & 1);
        fake_fail_udp_send((f & 6) == 6);
        if (f & 8) fake_expire();
        fake_tick();
        fake_fail_connect(0);
        fake_fail_udp_send(0);
        break;
    }
    case 9:
        op_handshake(in);
        break;
    case 10:
        op_dns(in);
        break;
    default:
        op_stats();
        break;
    }
    if (op_byte & 0x80) fake_reap(); /* the end of an epoll batch */
}

/* Every client connection with an owner is the peer registered under its id (no duplicates);
 * every registered peer is on a live connection; a remote peer's link is not closing. */
static void check_registry(void)
{
    uint32_t attached = 0;
    for (int i = 0; i < fake_nconns(); i++) {
        struct conn *c = fake_conn_at(i);
        struct peer *p = fake_kind(c) == FAKE_WS ? conn_owner(c) : NULL;
        if (!p) continue;
        attached++;
        FUZZ_ASSERT(peer_find(peer_id(p)) == p);
        FUZZ_ASSERT(peer_conn(p) == c);
    }
    FUZZ_ASSERT(attached == peer_count());
    FUZZ_ASSERT(peer_hub_count() <= peer_count());
    FUZZ_ASSERT(peer_network_count() <= peer_count());
    for (int i = 0; i < NIDS; i++) {
        struct peer *p = peer_find(ids[i]);
        if (p) FUZZ_ASSERT(!strcmp(peer_id(p), ids[i]) && fake_known(peer_conn(p)));
        struct peer *r = peer_remote_find(ids[i]);
        if (r) {
            struct conn *via = peer_via(r);
            /* a peer of a hub of ours keeps no route when its link goes (the next heartbeat
             * finds one); a peer a JS hub told us of goes with its link */
            FUZZ_ASSERT(via || peer_origin(r));
            if (via) FUZZ_ASSERT(fake_known(via));
            if (via) FUZZ_ASSERT(fake_state(via) != FAKE_CLOSING); /* told: routes forgotten */
        }
    }
}

static void set_hub_mode(int on)
{
    static const struct hub_config hc = {
        .id = "fedcba9876543210fedcba9876543210fedcba98", /* ids[10] */
        .ns = HUB_NS,
        .bootstrap = BOOTSTRAP,
        .auth_token = "",
        .host = "localhost",
        .max_message_size = 65536,
    };
    if (on == hub_on) return;
    if (on) {
        fake_ticks_clear();
        FUZZ_ASSERT(hub_init(&hc) == NULL);
        hub_set_port(3000);
    } else {
        hub_free();
    }
    hub_on = on;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    if (!ready) {
        static const struct conn_config cc = {
        .max_message_size = 65536, .ping_interval_ms = PING_MS, .log_level = LOG_DEBUG};
        static const struct peer_config pc = {.max_connections = MAX_CONNECTIONS,
                                          .max_message_size = 65536,
                                          .ping_interval_ms = PING_MS,
                                          .hub_ns = HUB_NS,
                                          .rate_limits = 1};
        FUZZ_ASSERT(conn_init(&cc) == 0);
        FUZZ_ASSERT(peer_init(&pc) == 0);
        fake_set_max_connections(MAX_CONNECTIONS);
        fake_set_record(0); /* checked as sent, not kept */
        fake_on_send(check_sent);
        ready = 1;
    }
    struct in in = {data, size};
    set_hub_mode(get8(&in) & 1);
    fake_seed(1);
    /* every link is due again and the relay dedup window of the last run is over */
    fake_advance(1000000);
    for (int steps = 0; in.n && steps < 256; steps++) {
        run_op(&in);
        check_registry();
    }
    /* the end: every connection closes, and once the hubs of ours they told us of have been
     * unheard long enough (4 s), nothing is left */
    fake_shutdown();
    fake_advance(5000);
    fake_tick();
    fake_shutdown(); /* the links that tick dialled again */
    FUZZ_ASSERT(fake_nconns() == 0);
    FUZZ_ASSERT(conn_ws_count() == 0);
    FUZZ_ASSERT(peer_count() == 0);
    FUZZ_ASSERT(peer_network_count() == 0);
    FUZZ_ASSERT(peer_hub_count() == 0);
    FUZZ_ASSERT(peer_sync_bytes(NULL, 0) == 0); /* no remote peer either */
    for (size_t i = 0; i < NNETS; i++)
        FUZZ_ASSERT(peer_sync_bytes(nets[i], strlen(nets[i])) == 0);
    FUZZ_ASSERT(hub_links_connected() == 0);
    return 0;
}
