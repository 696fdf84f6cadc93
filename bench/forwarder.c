/* forwarder.c - the floor for bench/run.sh and bench/cpu.sh: the least a PeerPigeon signalling
 * relay can do, so that our server's cost per message can be read against it (issue 11).
 * One thread, one epoll loop (level-triggered), non-blocking sockets. It accepts WebSocket
 * upgrades `GET /?peerId=<40 hex>` (Sec-WebSocket-Accept from ws.c), sends the server's
 * `{"type":"connected",...}`, keeps peers in a fixed-size hash table by id, and for each client
 * text frame: unmasks it, finds `"targetPeerId":"` with memmem, looks the target up and appends
 * one unmasked server frame with the payload, unchanged, to the target's output buffer. Output
 * is coalesced: one send() per connection per loop turn (EPOLLOUT only after a short send).
 * No JSON parsing, no UTF-8 check, no fromPeerId, no limits, no pings, no hubs.
 *
 * `build/load relay` also needs discovery: it announces every peer and waits for
 * peers*(peers-1) peer-discovered messages. So a text frame without targetPeerId whose first
 * 64 bytes hold `"type":"announce"` puts the sender in the network named by its
 * `"networkName":"..."` (first announce only; a linear scan of the announced peers, fine for
 * the thousand of `load discover`), and each new pair is told with the minimal
 * `{"type":"peer-discovered","data":{"peerId":"<id>"}}` both ways. Everything else is dropped.
 * Any other HTTP request gets 200 "ok" (a /health for scripts waiting for the port).
 *
 * Build: cc -O2 -I. bench/forwarder.c ws.c -o build/forwarder
 * Run:   PORT=3000 HOST=127.0.0.1 build/forwarder   (HOST: a numeric IPv4 address) */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "ws.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define ID_LEN 40
#define NET_MAX 64                /* bytes of a network name kept (longer names are cut) */
#define HASH_SLOTS (1u << 16)     /* fixed: chains are fine well past 100k peers */
#define HEAD_MAX 8192             /* HTTP request head */
#define MAX_PAYLOAD (1u << 20)    /* as the server's default MAX_MESSAGE_SIZE */
#define READ_ROOM (64u << 10)     /* free input space asked for before each recv */
#define READS_PER_TURN 4          /* fairness between connections, level-triggered anyway */
#define OUT_MAX (256u << 20)      /* a reader this far behind is dropped */
#define TARGET_KEY "\"targetPeerId\":\""

enum { S_HTTP, S_WS, S_DEAD };

struct fconn {
    int fd;
    uint8_t state;
    uint8_t want_out;
    uint8_t dirty;
    uint8_t announced;
    uint8_t in_table;
    char id[ID_LEN];
    uint32_t hnext; /* next fd + 1 in this hash chain, 0 = end */
    uint32_t aidx;  /* index in announced[] */
    uint8_t netlen;
    char net[NET_MAX];
    uint8_t *rb;
    size_t rlen, rcap;
    uint8_t *wb;
    size_t woff, wlen, wcap;
    struct fconn *next_dirty, *next_dead;
};

static struct fconn **conns; /* by fd */
static size_t nconns_cap;
static uint32_t table[HASH_SLOTS]; /* fd + 1 of the chain's first peer, 0 = empty */
static struct fconn **announced;
static size_t nannounced, announced_cap;
static struct fconn *dirty_head, *dead_head;
static int epfd, lfd;
static unsigned long long n_forwarded, n_unknown;

static void die(const char *what)
{
    fprintf(stderr, "forwarder: %s: %s\n", what, strerror(errno));
    exit(1);
}

static void *xrealloc(void *p, size_t n)
{
    p = realloc(p, n);
    if (!p) die("realloc");
    return p;
}

/* ---- the peer table ---- */

static uint32_t hash_id(const char *id)
{
    uint32_t h = 2166136261u; /* FNV-1a over all 40 bytes (load's ids share their first 8) */
    for (int i = 0; i < ID_LEN; i++) h = (h ^ (uint8_t)id[i]) * 16777619u;
    return h & (HASH_SLOTS - 1);
}

static struct fconn *table_find(const char *id)
{
    for (uint32_t s = table[hash_id(id)]; s; s = conns[s - 1]->hnext) {
        struct fconn *c = conns[s - 1];
        if (!memcmp(c->id, id, ID_LEN)) return c;
    }
    return NULL;
}

static void table_remove(struct fconn *c)
{
    uint32_t *link = &table[hash_id(c->id)];
    while (*link && conns[*link - 1] != c) link = &conns[*link - 1]->hnext;
    if (*link) *link = c->hnext;
    c->in_table = 0;
}

/* ---- output ---- */

static void mark_dirty(struct fconn *c)
{
    if (c->dirty) return;
    c->dirty = 1;
    c->next_dirty = dirty_head;
    dirty_head = c;
}

static uint8_t *out_reserve(struct fconn *c, size_t n)
{
    if (c->woff == c->wlen) c->woff = c->wlen = 0;
    if (c->wcap - c->wlen < n) {
        if (c->woff) {
            memmove(c->wb, c->wb + c->woff, c->wlen - c->woff);
            c->wlen -= c->woff;
            c->woff = 0;
        }
        if (c->wcap - c->wlen < n) {
            size_t cap = c->wcap ? c->wcap : 16384;
            while (cap - c->wlen < n) cap *= 2;
            c->wb = xrealloc(c->wb, cap);
            c->wcap = cap;
        }
    }
    return c->wb + c->wlen;
}

static void out_raw(struct fconn *c, const void *p, size_t n)
{
    memcpy(out_reserve(c, n), p, n);
    c->wlen += n;
    mark_dirty(c);
}

static void out_frame(struct fconn *c, int op, const void *p, size_t n)
{
    uint8_t *d = out_reserve(c, n + WS_MAX_HEADER);
    size_t hl = ws_frame_header(d, op, 1, n, NULL);
    memcpy(d + hl, p, n);
    c->wlen += hl + n;
    mark_dirty(c);
}

static void set_out(struct fconn *c, int on)
{
    if (c->want_out == on) return;
    struct epoll_event ev = {.events = EPOLLIN | (on ? EPOLLOUT : 0), .data.fd = c->fd};
    c->want_out = (uint8_t)on;
    epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

/* Out of every table now; the fd is closed and the memory freed at the end of the turn, after
 * the dirty list is gone (so neither a stale pointer nor a reused fd can be met in between). */
static void conn_dead(struct fconn *c)
{
    if (c->state == S_DEAD) return;
    c->state = S_DEAD;
    if (c->in_table) table_remove(c);
    if (c->announced) {
        struct fconn *last = announced[--nannounced];
        announced[c->aidx] = last;
        last->aidx = c->aidx;
        c->announced = 0;
    }
    epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
    c->next_dead = dead_head;
    dead_head = c;
}

static void flush_one(struct fconn *c)
{
    if (c->woff == c->wlen) return;
    ssize_t n = send(c->fd, c->wb + c->woff, c->wlen - c->woff, MSG_NOSIGNAL);
    if (n > 0) c->woff += (size_t)n;
    else if (n < 0 && errno != EAGAIN && errno != EINTR) {
        conn_dead(c);
        return;
    }
    if (c->woff == c->wlen) {
        c->woff = c->wlen = 0;
        if (c->wcap > (1u << 20)) { /* no big buffer kept after a burst */
            free(c->wb);
            c->wb = NULL;
            c->wcap = 0;
        }
        set_out(c, 0);
    } else {
        if (c->wlen - c->woff > OUT_MAX) conn_dead(c);
        else set_out(c, 1);
    }
}

static void end_of_turn(void)
{
    while (dirty_head) {
        struct fconn *c = dirty_head;
        dirty_head = c->next_dirty;
        c->dirty = 0;
        if (c->state != S_DEAD) flush_one(c);
    }
    while (dead_head) {
        struct fconn *c = dead_head;
        dead_head = c->next_dead;
        close(c->fd);
        conns[c->fd] = NULL;
        free(c->rb);
        free(c->wb);
        free(c);
    }
}

/* ---- messages ---- */

static void tell_discovered(struct fconn *to, const struct fconn *about)
{
    char m[96];
    int n = snprintf(m, sizeof m, "{\"type\":\"peer-discovered\",\"data\":{\"peerId\":\"%.40s\"}}",
                     about->id);
    out_frame(to, WS_OP_TEXT, m, (size_t)n);
}

static void on_announce(struct fconn *c, const uint8_t *p, size_t n)
{
    if (c->announced) return;
    const uint8_t *k = memmem(p, n, "\"networkName\":\"", 15);
    size_t nl = 0;
    if (k) {
        const uint8_t *s = k + 15, *e = memchr(s, '"', n - (size_t)(s - p));
        if (e) {
            nl = (size_t)(e - s);
            if (nl > NET_MAX) nl = NET_MAX;
            memcpy(c->net, s, nl);
        }
    }
    c->netlen = (uint8_t)nl;
    for (size_t i = 0; i < nannounced; i++) {
        struct fconn *o = announced[i];
        if (o->netlen != c->netlen || memcmp(o->net, c->net, nl)) continue;
        tell_discovered(o, c);
        tell_discovered(c, o);
    }
    if (nannounced == announced_cap) {
        announced_cap = announced_cap ? 2 * announced_cap : 1024;
        announced = xrealloc(announced, announced_cap * sizeof *announced);
    }
    c->aidx = (uint32_t)nannounced;
    announced[nannounced++] = c;
    c->announced = 1;
}

static void on_text(struct fconn *c, const uint8_t *p, size_t n)
{
    const uint8_t *k = memmem(p, n, TARGET_KEY, sizeof TARGET_KEY - 1);
    if (k) {
        const uint8_t *id = k + sizeof TARGET_KEY - 1;
        if ((size_t)(p + n - id) <= ID_LEN || id[ID_LEN] != '"') return;
        struct fconn *t = table_find((const char *)id);
        if (!t) {
            n_unknown++;
            return;
        }
        out_frame(t, WS_OP_TEXT, p, n);
        n_forwarded++;
        return;
    }
    if (memmem(p, n < 64 ? n : 64, "\"type\":\"announce\"", 17)) on_announce(c, p, n);
}

/* ---- HTTP: the upgrade ---- */

static int is_hex40(const char *s)
{
    for (int i = 0; i < ID_LEN; i++) {
        char ch = s[i];
        if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F')))
            return 0;
    }
    return 1;
}

/* The value of header `name` in head[0..n) (lines end in CRLF), or NULL. */
static const char *header(const char *head, size_t n, const char *name, size_t *vl)
{
    size_t nl = strlen(name);
    const char *end = head + n;
    for (const char *l = memmem(head, n, "\r\n", 2); l && l + 2 < end;) {
        l += 2;
        const char *e = memmem(l, (size_t)(end - l), "\r\n", 2);
        if (!e) break;
        if ((size_t)(e - l) > nl && l[nl] == ':' && !strncasecmp(l, name, nl)) {
            const char *v = l + nl + 1;
            while (v < e && (*v == ' ' || *v == '\t')) v++;
            const char *ve = e;
            while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t')) ve--;
            *vl = (size_t)(ve - v);
            return v;
        }
        l = e;
    }
    return NULL;
}

static void http_reply(struct fconn *c, const char *status, const char *body)
{
    char m[256];
    int n = snprintf(m, sizeof m,
                     "HTTP/1.1 %s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n%s",
                     status, strlen(body), body);
    send(c->fd, m, (size_t)n, MSG_NOSIGNAL); /* small: fits the empty socket buffer */
    conn_dead(c);
}

/* Returns the bytes of the head consumed (0 = incomplete). */
static size_t on_http(struct fconn *c)
{
    const char *h = (const char *)c->rb;
    const char *e = memmem(h, c->rlen, "\r\n\r\n", 4);
    if (!e) {
        if (c->rlen > HEAD_MAX) http_reply(c, "431 Request Header Fields Too Large", "too big\n");
        return 0;
    }
    size_t hl = (size_t)(e - h) + 4;
    size_t kl;
    const char *key = header(h, hl, "Sec-WebSocket-Key", &kl);
    if (!key) {
        http_reply(c, "200 OK", "ok\n");
        return hl;
    }
    const char *q = hl > 14 && !memcmp(h, "GET /?", 6) ? memmem(h, hl, "peerId=", 7) : NULL;
    if (!q || (size_t)(h + hl - (q + 7)) < ID_LEN + 1 || !is_hex40(q + 7) ||
        (q[7 + ID_LEN] != ' ' && q[7 + ID_LEN] != '&') || !ws_key_valid(key, kl)) {
        http_reply(c, "400 Bad Request", "need GET /?peerId=<40 hex> and a WebSocket key\n");
        return hl;
    }
    memcpy(c->id, q + 7, ID_LEN);
    if (table_find(c->id)) {
        http_reply(c, "409 Conflict", "peer already connected\n");
        return hl;
    }
    uint32_t *slot = &table[hash_id(c->id)];
    c->hnext = *slot;
    *slot = (uint32_t)c->fd + 1;
    c->in_table = 1;
    char acc[29], m[512];
    ws_accept_key(key, kl, acc);
    int n = snprintf(m, sizeof m,
                     "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
                     acc);
    out_raw(c, m, (size_t)n);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    n = snprintf(m, sizeof m,
                 "{\"type\":\"connected\",\"data\":{\"peerId\":\"%.40s\"},\"fromPeerId\":"
                 "\"system\",\"timestamp\":%llu}",
                 c->id,
                 (unsigned long long)ts.tv_sec * 1000ull + (unsigned long long)ts.tv_nsec / 1000000);
    out_frame(c, WS_OP_TEXT, m, (size_t)n);
    c->state = S_WS;
    return hl;
}

/* ---- WebSocket frames ---- */

/* Handles the complete frames from c->rb + used on; returns where the first incomplete one
 * starts. */
static size_t on_frames(struct fconn *c, size_t used)
{
    while (c->state == S_WS) {
        struct ws_frame f;
        uint16_t code;
        const char *reason;
        int h = ws_frame_parse(c->rb + used, c->rlen - used, 1, MAX_PAYLOAD, &f, &code, &reason);
        if (h == WS_INCOMPLETE) break;
        if (h == WS_ERROR) {
            uint8_t cl[2] = {(uint8_t)(code >> 8), (uint8_t)code};
            out_frame(c, WS_OP_CLOSE, cl, 2);
            flush_one(c);
            conn_dead(c);
            break;
        }
        if (c->rlen - used - (size_t)h < f.payload_len) break;
        uint8_t *p = c->rb + used + h;
        size_t n = (size_t)f.payload_len;
        used += (size_t)h + n;
        ws_mask(p, n, f.mask, 0);
        if (f.opcode == WS_OP_TEXT) {
            on_text(c, p, n);
        } else if (f.opcode == WS_OP_PING) {
            out_frame(c, WS_OP_PONG, p, n);
        } else if (f.opcode == WS_OP_CLOSE) {
            out_frame(c, WS_OP_CLOSE, p, n < 2 ? 0 : 2);
            flush_one(c);
            conn_dead(c);
        } /* binary, continuation and pong: dropped */
    }
    return used;
}

static void readable(struct fconn *c)
{
    for (int i = 0; i < READS_PER_TURN && c->state != S_DEAD; i++) {
        if (c->rcap - c->rlen < READ_ROOM) { /* once per connection, unless a frame is big */
            size_t cap = c->rcap ? c->rcap : 2 * READ_ROOM;
            while (cap - c->rlen < READ_ROOM) cap *= 2;
            c->rb = xrealloc(c->rb, cap);
            c->rcap = cap;
        }
        ssize_t n = recv(c->fd, c->rb + c->rlen, c->rcap - c->rlen, 0);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
            conn_dead(c);
            return;
        }
        if (n < 0) return;
        c->rlen += (size_t)n;
        size_t used = 0;
        if (c->state == S_HTTP) used = on_http(c);
        if (c->state == S_WS) used = on_frames(c, used);
        if (c->state == S_DEAD) return;
        if (used) {
            memmove(c->rb, c->rb + used, c->rlen - used);
            c->rlen -= used;
        }
        if (c->rlen == 0 && c->rcap > 2 * READ_ROOM) { /* after a big frame */
            free(c->rb);
            c->rb = NULL;
            c->rcap = 0;
        }
        if ((size_t)n < READ_ROOM) return; /* the socket is drained */
    }
}

static void accept_all(void)
{
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE) fprintf(stderr, "forwarder: out of fds\n");
            return;
        }
        if ((size_t)fd >= nconns_cap) {
            size_t cap = nconns_cap ? nconns_cap : 1024;
            while (cap <= (size_t)fd) cap *= 2;
            conns = xrealloc(conns, cap * sizeof *conns);
            memset(conns + nconns_cap, 0, (cap - nconns_cap) * sizeof *conns);
            nconns_cap = cap;
        }
        struct fconn *c = calloc(1, sizeof *c);
        if (!c) die("calloc");
        c->fd = fd;
        c->state = S_HTTP;
        conns[fd] = c;
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
        if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0) die("epoll_ctl");
    }
}

static volatile sig_atomic_t stop;
static void on_signal(int s)
{
    (void)s;
    stop = 1;
}

int main(void)
{
    const char *ps = getenv("PORT"), *host = getenv("HOST");
    int port = ps ? atoi(ps) : 3000;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (!host || !strcmp(host, "localhost")) host = "127.0.0.1";
    if (port < 0 || port > 65535 || inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
        fprintf(stderr, "forwarder: PORT must be 0-65535 and HOST a numeric IPv4 address\n");
        return 2;
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sg = {.sa_handler = on_signal};
    sigaction(SIGTERM, &sg, NULL);
    sigaction(SIGINT, &sg, NULL);
    lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (lfd < 0) die("socket");
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(lfd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(lfd, 4096) < 0) die("bind/listen");
    epfd = epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0) die("epoll_create1");
    struct epoll_event lev = {.events = EPOLLIN, .data.fd = lfd};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &lev) < 0) die("epoll_ctl");
    socklen_t sl = sizeof sa;
    getsockname(lfd, (struct sockaddr *)&sa, &sl);
    fprintf(stderr, "forwarder: listening on %s:%d\n", host, ntohs(sa.sin_port));
    struct epoll_event evs[512];
    while (!stop) {
        int n = epoll_wait(epfd, evs, 512, 1000);
        if (n < 0 && errno != EINTR) die("epoll_wait");
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            if (fd == lfd) {
                accept_all();
                continue;
            }
            struct fconn *c = (size_t)fd < nconns_cap ? conns[fd] : NULL;
            if (!c || c->state == S_DEAD) continue;
            if (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) readable(c);
            if (c->state != S_DEAD && (evs[i].events & EPOLLOUT)) mark_dirty(c);
        }
        end_of_turn();
    }
    fprintf(stderr, "forwarder: %llu messages forwarded, %llu to unknown peers\n", n_forwarded,
            n_unknown);
    return 0;
}
