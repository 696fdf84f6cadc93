/* fuzz_peer.c - libFuzzer target for the registry and signalling rules (peer.c) and the hub
 * protocol (hub.c), in process and without sockets: the connection API of peerpigeon.c is
 * stubbed here over a tiny fake `struct conn` that keeps the loop's rules (the owner is told
 * once; a closed connection is detached at once, a dropped one - slow reader - at the end of
 * the batch; connections are freed at the end of the batch). The input is a script of
 * operations: peers open/message/close, outbound hub links dial/handshake/message/close, DNS
 * answers, the clock. Every message queued must be JSON with a string "type" and go to a
 * connection that is still attached; after each script everything is closed and the registry
 * must be empty again. socket() and connect() are faked so that hub.c dials nothing real.
 *
 * Script: byte 0 bit 0 = hub mode; then ops, each an opcode byte (low bits % 12: see run_op;
 * bit 7 ends the epoll batch: dropped connections are reaped) and its argument bytes. E.g.
 * 01 | 00 00 | 00 01 | 01 00 00 01 00 | 84 01 00: hub mode; open ids[0]; open ids[1]; to
 * connection 0 the template 0 (announce) in network 1 ("net-a") without data; close connection
 * 1 and end the batch. No seed corpus is needed:
 * the templates (announce, offer/answer/ice-candidate, goodbye, ping, peer-discovered,
 * peer-disconnected, hub-info, 101 answers, DNS answers to the query sent) are built here. */
#include "hub.h"
#include "json.h"
#include "peer.h"
#include "peerpigeon.h"
#include "ws.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define FUZZ_ASSERT(c)                                                                             \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "fuzz_peer: assertion failed at line %d: %s\n", __LINE__, #c);         \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* ---- what peerpigeon.c provides ---- */

struct config cfg;
int bound_port = 3000;
uint64_t now_ms;

uint64_t wall_ms(void)
{
    return 1700000000000ull + now_ms;
}

void log_msg(int level, const char *fmt, ...)
{
    char buf[2048];
    va_list ap;
    (void)level;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap); /* formats are checked, output dropped */
    va_end(ap);
}

enum { K_WS, K_DIAL, K_UDP };
enum { S_OPEN, S_CLOSING, S_DEAD };

struct conn {
    int kind, state, fd;
    int slow;      /* the next message queued makes it a slow reader (dropped) */
    int handshake; /* dial: 0 connecting, 1 request sent, 2 open */
    struct peer *peer;
    void *hublink;
    uint64_t last_heard;
    const char *why;
    char key[32];   /* dial: Sec-WebSocket-Key of the request */
    uint8_t q[512]; /* udp: the last query sent */
    size_t qlen;
};

#define MAX_CONNS 64
static struct conn *conns[MAX_CONNS];
static int nconns;
static int udp_send_fails, connect_fails;

static int conn_known(const struct conn *c)
{
    for (int i = 0; i < nconns; i++)
        if (conns[i] == c) return 1;
    return 0;
}

static struct conn *conn_make(int kind, int fd)
{
    if (nconns == MAX_CONNS) {
        if (fd >= 0) close(fd);
        return NULL;
    }
    struct conn *c = calloc(1, sizeof *c);
    FUZZ_ASSERT(c);
    c->kind = kind;
    c->fd = fd;
    c->last_heard = now_ms;
    conns[nconns++] = c;
    return c;
}

/* conn_detach of the loop: the owner is told once */
static void detach(struct conn *c, const char *why)
{
    if (c->peer) {
        struct peer *p = c->peer;
        c->peer = NULL;
        peer_on_close(p, why);
    }
    if (c->hublink) {
        void *h = c->hublink;
        c->hublink = NULL;
        if (c->kind == K_UDP)
            hub_on_dns_close(c, h, why);
        else
            hub_on_close(c, h);
    }
}

/* an immediate end (EOF, slow reader): the owner is told at the end of the batch */
static void conn_gone(struct conn *c, const char *why)
{
    if (c->state == S_DEAD) return;
    c->state = S_DEAD;
    c->why = why;
}

static void check_message(const struct conn *c, const struct iovec *iov, int n)
{
    static char buf[4 * 65536 + 65536];
    size_t len = 0;
    FUZZ_ASSERT(conn_known(c));
    FUZZ_ASSERT(c->state != S_CLOSING); /* detached: its owner must hold no reference */
    FUZZ_ASSERT(c->kind != K_UDP);
    FUZZ_ASSERT(c->kind != K_DIAL || c->handshake == 2);
    for (int i = 0; i < n; i++) {
        FUZZ_ASSERT(len + iov[i].iov_len <= sizeof buf);
        memcpy(buf + len, iov[i].iov_base, iov[i].iov_len);
        len += iov[i].iov_len;
    }
    struct json_val root, t;
    FUZZ_ASSERT(json_validate(buf, len) == 0);
    FUZZ_ASSERT(json_value(buf, len, &root) == 0 && root.type == JSON_OBJECT);
    FUZZ_ASSERT(json_get(&root, "type", &t) && t.type == JSON_STRING);
    /* a client is addressed by its own id and never told about itself */
    if (c->kind == K_WS && c->peer && !peer_has_hub_rights(c->peer)) {
        const char *me = peer_id(c->peer);
        struct json_val v, d;
        if (json_get(&root, "targetPeerId", &v)) FUZZ_ASSERT(json_str_eq(&v, me, PEER_ID_LEN));
        if ((json_str_eq(&t, "peer-discovered", 15) || json_str_eq(&t, "peer-disconnected", 17)) &&
            json_get(&root, "data", &d) && json_get(&d, "peerId", &v))
            FUZZ_ASSERT(!json_str_eq(&v, me, PEER_ID_LEN));
    }
}

int conn_send_iov(struct conn *c, const struct iovec *iov, int n)
{
    check_message(c, iov, n);
    if (c->state != S_OPEN) return -1;
    if (c->slow) {
        conn_gone(c, "slow reader");
        return -1;
    }
    return 0;
}

int conn_send(struct conn *c, const char *msg, size_t len)
{
    struct iovec iov = {(void *)msg, len};
    return conn_send_iov(c, &iov, 1);
}

int conn_send_raw(struct conn *c, const void *p, size_t len)
{
    FUZZ_ASSERT(conn_known(c) && c->kind == K_DIAL && c->handshake == 0);
    if (c->state != S_OPEN) return -1;
    const char *k = memmem(p, len, "Sec-WebSocket-Key: ", 19);
    FUZZ_ASSERT(k);
    k += 19;
    size_t kl = 0;
    while (kl < sizeof c->key - 1 && k + kl < (const char *)p + len && k[kl] != '\r')
        kl++;
    memcpy(c->key, k, kl);
    c->key[kl] = 0;
    c->handshake = 1;
    return 0;
}

void conn_expect(struct conn *c, size_t bytes)
{
    (void)bytes;
    FUZZ_ASSERT(conn_known(c) && c->kind != K_UDP);
}

void conn_close(struct conn *c, uint16_t code, const char *reason)
{
    (void)code;
    FUZZ_ASSERT(conn_known(c));
    FUZZ_ASSERT(reason);
    if (c->state != S_OPEN) return;
    detach(c, reason);
    c->state = c->kind == K_UDP ? S_DEAD : S_CLOSING;
}

int conn_is_open(const struct conn *c)
{
    FUZZ_ASSERT(conn_known(c));
    return c->state == S_OPEN;
}

struct peer *conn_peer(const struct conn *c)
{
    FUZZ_ASSERT(conn_known(c));
    return c->peer;
}

uint64_t conn_last_heard(const struct conn *c)
{
    FUZZ_ASSERT(conn_known(c));
    return c->last_heard;
}

void *conn_hublink(const struct conn *c)
{
    FUZZ_ASSERT(conn_known(c));
    return c->hublink;
}

struct conn *conn_dial(int fd, void *hublink)
{
    struct conn *c = conn_make(K_DIAL, fd);
    if (c) c->hublink = hublink;
    return c;
}

struct conn *conn_udp(int fd, void *hublink)
{
    struct conn *c = conn_make(K_UDP, fd);
    if (c) c->hublink = hublink;
    return c;
}

int conn_udp_send(struct conn *c, const void *p, size_t len)
{
    FUZZ_ASSERT(conn_known(c) && c->kind == K_UDP);
    if (c->state != S_OPEN || udp_send_fails) return -1;
    FUZZ_ASSERT(len <= sizeof c->q);
    memcpy(c->q, p, len);
    c->qlen = len;
    return 0;
}

/* hub.c dials through these: no real socket, /dev/null stands in for the fd */
static uint8_t fd_dgram[4096];

int socket(int domain, int type, int protocol)
{
    (void)domain, (void)protocol;
    int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (fd >= 0 && fd < (int)sizeof fd_dgram) fd_dgram[fd] = (type & 0xf) == SOCK_DGRAM;
    return fd;
}

/* TCP: in progress (or refused); UDP: connected at once */
int connect(int fd, __CONST_SOCKADDR_ARG addr, socklen_t len)
{
    (void)addr, (void)len;
    int dgram = fd >= 0 && fd < (int)sizeof fd_dgram && fd_dgram[fd];
    errno = connect_fails ? ECONNREFUSED : EINPROGRESS;
    return connect_fails || !dgram ? -1 : 0;
}

/* conn_reap: tell the owners of dropped connections (which may drop more), then free every
 * connection that is no longer open */
static void reap(void)
{
    for (;;) {
        int told = 0;
        for (int i = 0; i < nconns; i++) {
            struct conn *c = conns[i];
            if (c->state == S_DEAD && (c->peer || c->hublink)) {
                detach(c, c->why);
                told = 1;
            }
        }
        if (!told) break;
    }
    for (int i = 0; i < nconns;) {
        struct conn *c = conns[i];
        if (c->state != S_OPEN) {
            FUZZ_ASSERT(!c->peer && !c->hublink);
            if (c->fd >= 0) close(c->fd);
            free(c);
            conns[i] = conns[--nconns];
        } else {
            i++;
        }
    }
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
    "fedcba9876543210fedcba9876543210fedcba98", /* cfg.hub_id */
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
        puts_("}");
        break;
    }
    case 8:
        puts_("{\"type\":\"hub-info\",\"data\":{\"cachesPeers\":true}}");
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
    if (!nconns) {
        get8(in);
        return NULL;
    }
    return conns[get8(in) % nconns];
}

/* Deliver msg[0..mlen) to c as the loop does: to the peer or to the hub link. */
static void deliver(struct conn *c)
{
    if (!c || c->state != S_OPEN) return;
    if (c->kind == K_DIAL && c->handshake != 2) return;
    if (c->kind == K_UDP) return;
    char *copy = malloc(mlen ? mlen : 1); /* exact size: an overread hits the redzone */
    FUZZ_ASSERT(copy);
    memcpy(copy, msg, mlen);
    c->last_heard = now_ms;
    if (c->peer)
        peer_on_message(c->peer, copy, mlen);
    else if (c->hublink)
        hub_on_message(c, copy, mlen);
    free(copy);
}

static void op_open(struct in *in)
{
    const char *id = ids[get8(in) % (NIDS - 1)];
    struct conn *c = conn_make(K_WS, -1);
    if (!c) return;
    uint32_t open = 0;
    for (int i = 0; i < nconns; i++)
        open += conns[i]->kind == K_WS && conns[i]->state == S_OPEN;
    if (open > cfg.max_connections) { /* the loop's ws_open check */
        conn_close(c, WS_CLOSE_POLICY, "Maximum connections reached");
        return;
    }
    const char *why = NULL;
    struct peer *p = peer_open(c, id, &why);
    if (!p) {
        FUZZ_ASSERT(why);
        conn_close(c, WS_CLOSE_POLICY, why);
        return;
    }
    FUZZ_ASSERT(!strcmp(peer_id(p), id) && peer_conn(p) == c && peer_find(id) == p);
    c->peer = p;
}

static void op_handshake(struct in *in)
{
    struct conn *c = pick(in);
    uint8_t how = get8(in);
    if (!c || c->kind != K_DIAL || c->state != S_OPEN) return;
    if (c->handshake == 0) { /* connected (dial_writable) */
        if (how & 1) {
            hub_on_connect(c);
            FUZZ_ASSERT(c->handshake == 1);
        } else {
            conn_gone(c, "connect failed");
        }
        return;
    }
    if (c->handshake != 1) return;
    char head[1024], accept[29];
    int n;
    ws_accept_key(c->key, strlen(c->key), accept);
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
        n = snprintf(head, sizeof head,
                     "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n%s\r\n",
                     how % 4 == 3 ? "AAAAAAAAAAAAAAAAAAAAAAAAAAA=" : accept,
                     how & 4 ? "Sec-WebSocket-Extensions: x\r\n" : "");
    }
    if (hub_on_handshake(c, head, (size_t)n) < 0) {
        conn_gone(c, "bad handshake answer");
        return;
    }
    c->handshake = 2;
    c->last_heard = now_ms;
    hub_on_open(c);
}

static void op_dns(struct in *in)
{
    struct conn *c = pick(in);
    uint8_t how = get8(in);
    if (!c || c->kind != K_UDP || c->state != S_OPEN) return;
    uint8_t a[600];
    size_t n;
    if (how % 4 == 0 || c->qlen < 12) { /* garbage */
        n = get8(in) % 64;
        for (size_t i = 0; i < n; i++)
            a[i] = get8(in);
    } else {
        /* an answer to the query: rcode, an A/AAAA record or none */
        memcpy(a, c->q, c->qlen);
        n = c->qlen;
        a[2] |= 0x80;
        a[3] = (uint8_t)(0x80 | (how >> 2) % 4 % 3 * (how & 16 ? 3 : 1)); /* 0, 2 or 3 */
        uint16_t qtype = (uint16_t)(c->q[n - 4] << 8 | c->q[n - 3]);
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
    hub_on_dns(c, a, n);
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
    switch (op_byte % 12) {
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
        if (c) conn_gone(c, "closed");
        break;
    }
    case 6: /* slow reader: the next message cuts it off */
    {
        struct conn *c = pick(in);
        if (c) c->slow = 1;
        break;
    }
    case 7: /* the clock */
    {
        uint8_t k = get8(in);
        now_ms += k < 128 ? k : k < 250 ? (uint64_t)(k - 127) * 1000 : 2ull * cfg.ping_interval_ms;
        break;
    }
    case 8: /* housekeeping: dial the links that are due */
    {
        uint8_t f = get8(in);
        connect_fails = f & 1;
        udp_send_fails = (f & 6) == 6;
        if (cfg.is_hub) hub_tick();
        connect_fails = udp_send_fails = 0;
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
    if (op_byte & 0x80) reap(); /* the end of an epoll batch */
}

/* Every attached peer is the one registered under its id (no duplicates); once the batch is
 * reaped, every registered peer is attached to a live connection. */
static void check_registry(void)
{
    uint32_t attached = 0;
    for (int i = 0; i < nconns; i++) {
        struct conn *c = conns[i];
        if (!c->peer) continue;
        attached++;
        FUZZ_ASSERT(peer_find(peer_id(c->peer)) == c->peer);
        FUZZ_ASSERT(peer_conn(c->peer) == c);
    }
    FUZZ_ASSERT(attached == peer_count());
    FUZZ_ASSERT(peer_hub_count() <= peer_count());
    FUZZ_ASSERT(network_count() <= peer_count());
    for (int i = 0; i < NIDS; i++) {
        struct peer *p = peer_find(ids[i]);
        if (p) FUZZ_ASSERT(!strcmp(peer_id(p), ids[i]) && conn_known(peer_conn(p)));
        struct peer *r = peer_remote_find(ids[i]);
        if (r) {
            struct conn *via = peer_via(r);
            FUZZ_ASSERT(via && conn_known(via));
            FUZZ_ASSERT(via->state != S_CLOSING); /* detached: its remotes are gone */
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    if (!ready) {
        cfg.port = 3000;
        strcpy(cfg.host, "localhost");
        cfg.max_connections = 16;
        strcpy(cfg.cors_origin, "*");
        strcpy(cfg.hub_ns, "pigeonhub-mesh");
        cfg.max_message_size = 65536;
        cfg.ping_interval_ms = 30000;
        cfg.log_level = LOG_DEBUG;
        strcpy(cfg.hub_id, ids[10]);
        /* a numeric host (dialled at once), a name (a DNS query) and one never dialled */
        strcpy(cfg.bootstrap_hubs,
               "ws://127.0.0.2:9/path?x=1, ws://hub-two.invalid:8081,wss://tls.example");
        cfg.is_hub = 1;
        FUZZ_ASSERT(peer_init(cfg.max_connections) == 0);
        FUZZ_ASSERT(hub_init() == NULL);
        ready = 1;
    }
    struct in in = {data, size};
    cfg.is_hub = get8(&in) & 1;
    /* every link is due again and the relay dedup window of the last run is over */
    now_ms += 1000000;
    for (int steps = 0; in.n && steps < 256; steps++) {
        run_op(&in);
        check_registry();
    }
    /* the end: every connection closes, and nothing is left */
    for (int i = 0; i < nconns; i++)
        conn_close(conns[i], WS_CLOSE_GOING_AWAY, "shutdown");
    reap();
    FUZZ_ASSERT(nconns == 0);
    FUZZ_ASSERT(peer_count() == 0);
    FUZZ_ASSERT(network_count() == 0);
    FUZZ_ASSERT(peer_hub_count() == 0);
    FUZZ_ASSERT(peer_sync_bytes(NULL, 0) == 0); /* no remote peer either */
    for (size_t i = 0; i < NNETS; i++)
        FUZZ_ASSERT(peer_sync_bytes(nets[i], strlen(nets[i])) == 0);
    FUZZ_ASSERT(hub_links_connected() == 0);
    return 0;
}
