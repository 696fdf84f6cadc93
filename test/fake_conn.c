/* fake_conn.c - conn.h without sockets or epoll, for the unit tests and the fuzz target of
 * peer.c and hub.c (controls in fake_conn.h). Connections are small records in one table; the
 * test drives the loop: the clock, messages in, ticks, deadlines, the end of a batch. The
 * closing rules are the real layer's (conn.c): the owner is told exactly once, conn_close tells
 * it at once, an immediate end waits for fake_reap. Every message queued is checked and kept.
 * fake_answer needs http.c and ws.c; they are weak references here, so that a test of peer.c
 * alone links without them. */
#include "fake_conn.h"
#include "conn.h"
#include "http.h"
#include "json.h"
#include "peer.h"
#include "ws.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#pragma weak http_parse_response
#pragma weak ws_accept_key

#define CLOSE_GRACE_MS 2000
#define WHY_MAX 128

struct rec {
    char *text; /* NUL-terminated copy */
    size_t len;
    char type[MAX_TYPE_LEN + 1]; /* decoded; "" if longer */
};

struct conn {
    int kind, state, fd;
    int slow, stage, counted, told;
    const struct conn_handlers *h;
    void *owner;
    uint64_t last_heard, since;
    int pings; /* conn_ping calls */
    int bulk;  /* conn_set_bulk */
    uint32_t timeout_ms;
    uint16_t close_code;
    int closed_by_call;
    char close_reason[WHY_MAX];
    char why[WHY_MAX];      /* why it died (dead) */
    char told_why[WHY_MAX]; /* what the owner was told */
    char key[32];
    char *request;
    uint8_t *udp;
    size_t udp_len;
    struct rec *recs;
    int nrecs, recs_cap;
};

static struct conn *conns[FAKE_MAX_CONNS];
static int nconns;
static uint32_t ws_open;
static uint64_t now;
static uint64_t rng = 1;
static struct conn_config conf = {
    .max_message_size = 65536, .ping_interval_ms = 30000, .log_level = LOG_INFO};
static uint32_t max_connections = 1000;
static int record = 1, abort_on = 1, violations, log_record, log_echo;
static int fail_connect, fail_udp;
static char log_last[1024];
static void (*on_send)(struct conn *c, const char *msg, size_t len);
static struct {
    void (*fn)(void *);
    void *arg;
} ticks[4];
static int nticks;

static void violation(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void violation(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "fake_conn: rule broken: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    violations++;
    if (abort_on) abort();
}

int fake_known(const struct conn *c)
{
    for (int i = 0; i < nconns; i++)
        if (conns[i] == c) return 1;
    return 0;
}

/* Every call on a connection checks first that it is one of ours and not freed. */
static int known(const struct conn *c, const char *fn)
{
    if (c && fake_known(c)) return 1;
    violation("%s on %s connection %p", fn, c ? "an unknown or freed" : "a NULL", (void *)c);
    return 0;
}

static void copy_why(char *dst, const char *s)
{
    snprintf(dst, WHY_MAX, "%s", s ? s : "");
}

static struct conn *conn_new(int kind, int fd)
{
    if (nconns == FAKE_MAX_CONNS) {
        if (fd >= 0) close(fd);
        return NULL;
    }
    struct conn *c = calloc(1, sizeof *c);
    if (!c) {
        fprintf(stderr, "fake_conn: out of memory\n");
        abort();
    }
    c->kind = kind;
    c->fd = fd;
    c->since = c->last_heard = now;
    conns[nconns++] = c;
    return c;
}

/* conn_detach: tell the owner once. */
static void detach(struct conn *c, const char *why)
{
    if (c->counted) {
        c->counted = 0;
        ws_open--;
    }
    if (c->told) return;
    c->told = 1;
    copy_why(c->told_why, why);
    const struct conn_handlers *h = c->h;
    void *owner = c->owner;
    c->h = NULL;
    c->owner = NULL;
    if (h && h->closed) h->closed(c, owner, why);
}

/* An immediate end: the owner hears of it at fake_reap. */
static void gone(struct conn *c, const char *why)
{
    if (c->state == FAKE_DEAD) return;
    c->state = FAKE_DEAD;
    copy_why(c->why, why);
}

static void end(struct conn *c, uint16_t code, const char *reason, const char *why)
{
    if (c->state != FAKE_OPEN) return;
    c->close_code = code;
    c->closed_by_call = 1;
    copy_why(c->close_reason, reason);
    detach(c, why);
    if (c->kind == FAKE_UDP) {
        gone(c, why);
        return;
    }
    c->state = FAKE_CLOSING;
    c->since = now;
}

static void conn_free(struct conn *c)
{
    for (int i = 0; i < c->nrecs; i++)
        free(c->recs[i].text);
    free(c->recs);
    free(c->request);
    free(c->udp);
    if (c->fd >= 0) close(c->fd);
    free(c);
}

/* ---- conn.h: clock and logging ---- */

uint64_t conn_now_ms(void)
{
    return now;
}

uint64_t conn_wall_ms(void)
{
    return FAKE_EPOCH_MS + now;
}

/* ---- conn.h: the memory budget (fake_set_budget sets it; 0 = none) ---- */

static uint64_t fake_budget, fake_charged;

void fake_set_budget(uint64_t bytes)
{
    fake_budget = bytes;
}

uint64_t fake_mem_charged(void)
{
    return fake_charged;
}

uint64_t conn_mem_used(void)
{
    return fake_charged;
}

uint64_t conn_mem_budget(void)
{
    return fake_budget;
}

void conn_mem_charge(int64_t bytes)
{
    fake_charged += (uint64_t)bytes;
}

int conn_mem_room(uint64_t share_used, uint64_t bytes)
{
    return !fake_budget || share_used + bytes <= fake_budget / 4;
}

int conn_text_valid(struct conn *c, const char *msg, size_t len)
{
    (void)msg;
    (void)len;
    return known(c, "conn_text_valid");
}

void *conn_pool_get(struct conn_pool *p)
{
    void *r = calloc(1, p->size);
    if (r) p->used++;
    return r;
}

void conn_pool_put(struct conn_pool *p, void *r)
{
    if (!r) return;
    p->used--;
    free(r);
}

void conn_set_bulk(struct conn *c, int on)
{
    if (known(c, "conn_set_bulk")) c->bulk = on;
}

int fake_bulk(const struct conn *c)
{
    return c->bulk;
}

void conn_ping(struct conn *c)
{
    if (!known(c, "conn_ping")) return;
    c->pings++;
}

int fake_pings(const struct conn *c)
{
    return c->pings;
}

void fake_pong(struct conn *c)
{
    c->last_heard = conn_now_ms();
}

int conn_error(const struct conn *c)
{
    (void)c;
    return 0;
}

void conn_peer_addr(const struct conn *c, char *out, size_t cap)
{
    (void)c;
    snprintf(out, cap, "127.0.0.1:1");
}

void conn_set_log_json(int on)
{
    (void)on;
}

void conn_log(int level, const char *event, const char *fmt, ...)
{
    (void)event;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (log_record) memcpy(log_last, line, sizeof line);
    if (log_echo && level <= conf.log_level) fprintf(stderr, "fake_conn log %d: %s\n", level, line);
}

void conn_set_log_level(int level)
{
    conf.log_level = level;
}

/* ---- conn.h: the loop ---- */

int conn_init(const struct conn_config *cfg)
{
    conf = *cfg;
    return 0;
}

int conn_fd_limit(void)
{
    return FAKE_MAX_CONNS;
}

/* Nothing listens here: tests make their clients with fake_client. */
int conn_listen(int fd, const struct conn_handlers *h, void *owner)
{
    (void)h, (void)owner;
    if (fd >= 0) close(fd);
    return 0;
}

int conn_on_tick(void (*fn)(void *arg), void *arg)
{
    if (nticks == 4) return -1;
    ticks[nticks].fn = fn;
    ticks[nticks++].arg = arg;
    return 0;
}

/* The test is the loop: only the shutdown is left to do. */
void conn_run(volatile int *stop)
{
    (void)stop;
    fake_shutdown();
}

void conn_random(void *p, size_t n)
{
    uint8_t *o = p;
    for (size_t i = 0; i < n; i++) {
        rng ^= rng >> 12;
        rng ^= rng << 25;
        rng ^= rng >> 27;
        o[i] = (uint8_t)((rng * 0x2545f4914f6cdd1dull) >> 56);
    }
}

/* ---- conn.h: one connection ---- */

void conn_set_owner(struct conn *c, const struct conn_handlers *h, void *owner)
{
    if (!known(c, "conn_set_owner")) return;
    if (c->told) violation("conn_set_owner on a connection whose owner was already told");
    c->h = h;
    c->owner = owner;
}

void *conn_owner(const struct conn *c)
{
    return known(c, "conn_owner") ? c->owner : NULL;
}

int conn_is_open(const struct conn *c)
{
    return known(c, "conn_is_open") && c->state == FAKE_OPEN;
}

uint64_t conn_last_heard(const struct conn *c)
{
    return known(c, "conn_last_heard") ? c->last_heard : 0;
}

void conn_accept_ws(struct conn *c)
{
    if (!known(c, "conn_accept_ws")) return;
    if (c->kind != FAKE_HTTP || c->counted) violation("conn_accept_ws twice or not on HTTP");
    c->kind = FAKE_WS;
    c->last_heard = now;
    c->counted = 1;
    ws_open++;
}

uint32_t conn_ws_count(void)
{
    return ws_open;
}

static void keep(struct conn *c, char *text, size_t len, const char *type)
{
    if (c->nrecs == c->recs_cap) {
        int cap = c->recs_cap ? 2 * c->recs_cap : 8;
        struct rec *r = realloc(c->recs, (size_t)cap * sizeof *r);
        if (!r) abort();
        c->recs = r;
        c->recs_cap = cap;
    }
    struct rec *r = &c->recs[c->nrecs++];
    r->text = text;
    r->len = len;
    snprintf(r->type, sizeof r->type, "%s", type);
}

int conn_send_iov(struct conn *c, const struct iovec *iov, int n)
{
    if (!known(c, "conn_send")) return -1;
    size_t len = 0;
    for (int i = 0; i < n; i++)
        len += iov[i].iov_len;
    char *buf = malloc(len ? len : 1); /* exact size for the checks: an overread is seen */
    if (!buf) abort();
    for (size_t i = 0, at = 0; i < (size_t)n; at += iov[i].iov_len, i++)
        if (iov[i].iov_len) memcpy(buf + at, iov[i].iov_base, iov[i].iov_len);
    if (c->state == FAKE_CLOSING)
        violation("message to a closing connection (its owner was told): %.*s",
                  (int)(len < 200 ? len : 200), buf);
    if (c->kind == FAKE_UDP || c->kind == FAKE_HTTP)
        violation("WebSocket message on a %s connection", c->kind == FAKE_UDP ? "UDP" : "HTTP");
    if (c->kind == FAKE_DIAL && c->stage != 2)
        violation("message on a dialled connection before its handshake (stage %d)", c->stage);
    struct json_val root, t;
    char type[MAX_TYPE_LEN + 1] = "";
    if (json_validate(buf, len) || json_value(buf, len, &root) || root.type != JSON_OBJECT ||
        !json_get(&root, "type", &t) || t.type != JSON_STRING)
        violation("message is not a JSON object with a string type: %.*s",
                  (int)(len < 200 ? len : 200), buf);
    else if (json_str_unescape(&t, type, sizeof type) < 0)
        type[0] = 0;
    if (on_send) on_send(c, buf, len);
    if (c->state != FAKE_OPEN) {
        free(buf);
        return -1;
    }
    if (c->slow) {
        c->slow = 0;
        free(buf);
        gone(c, "slow reader");
        return -1;
    }
    if (!record) {
        free(buf);
        return 0;
    }
    char *text = realloc(buf, len + 1);
    if (!text) abort();
    text[len] = 0;
    keep(c, text, len, type);
    return 0;
}

int conn_send(struct conn *c, const char *msg, size_t len)
{
    struct iovec iov = {(void *)msg, len};
    return conn_send_iov(c, &iov, 1);
}

int conn_send_raw(struct conn *c, const void *p, size_t len)
{
    if (!known(c, "conn_send_raw")) return -1;
    if (c->state != FAKE_OPEN) return -1;
    if (c->kind == FAKE_HTTP) return 0; /* an HTTP answer: not recorded */
    if (c->kind != FAKE_DIAL || c->stage != 1 || c->request) {
        violation("raw bytes on a %s connection (stage %d, request %s)",
                  c->kind == FAKE_DIAL ? "dialled" : "WebSocket or UDP", c->stage,
                  c->request ? "already sent" : "not sent");
        return -1;
    }
    c->request = malloc(len + 1);
    if (!c->request) abort();
    memcpy(c->request, p, len);
    c->request[len] = 0;
    const char *k = memmem(p, len, "Sec-WebSocket-Key: ", 19);
    if (!k) {
        violation("upgrade request without Sec-WebSocket-Key");
        return 0;
    }
    k += 19;
    size_t kl = 0;
    while (kl < sizeof c->key - 1 && k + kl < (const char *)p + len && k[kl] != '\r')
        kl++;
    memcpy(c->key, k, kl);
    c->key[kl] = 0;
    return 0;
}

void conn_expect(struct conn *c, size_t bytes)
{
    (void)bytes;
    if (known(c, "conn_expect") && c->kind == FAKE_UDP) violation("conn_expect on UDP");
}

void conn_close(struct conn *c, uint16_t code, const char *reason)
{
    if (!known(c, "conn_close")) return;
    if (!reason) {
        violation("conn_close without a reason");
        reason = "";
    }
    end(c, code, reason, reason);
}

struct conn *conn_dial(int fd, const struct conn_handlers *h, void *owner, uint32_t timeout_ms)
{
    struct conn *c = conn_new(FAKE_DIAL, fd);
    if (!c) return NULL;
    c->h = h;
    c->owner = owner;
    c->timeout_ms = timeout_ms;
    return c;
}

struct conn *conn_udp(int fd, const struct conn_handlers *h, void *owner, uint32_t timeout_ms)
{
    struct conn *c = conn_new(FAKE_UDP, fd);
    if (!c) return NULL;
    c->h = h;
    c->owner = owner;
    c->timeout_ms = timeout_ms;
    return c;
}

int conn_udp_send(struct conn *c, const void *p, size_t len)
{
    if (!known(c, "conn_udp_send")) return -1;
    if (c->kind != FAKE_UDP) {
        violation("conn_udp_send on a TCP connection");
        return -1;
    }
    if (c->state != FAKE_OPEN || fail_udp) return -1;
    free(c->udp);
    c->udp = malloc(len ? len : 1);
    if (!c->udp) abort();
    memcpy(c->udp, p, len);
    c->udp_len = len;
    return 0;
}

/* ---- sockets: hub.c dials through these; /dev/null stands in for the descriptor ---- */

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
    errno = fail_connect ? ECONNREFUSED : EINPROGRESS;
    return fail_connect || !dgram ? -1 : 0;
}

/* ---- fake_conn.h: the loop ---- */

void fake_set_now(uint64_t ms)
{
    now = ms;
}

void fake_advance(uint64_t ms)
{
    now += ms;
}

void fake_seed(uint64_t seed)
{
    rng = seed ? seed : 1;
}

void fake_tick(void)
{
    for (int i = 0; i < nticks; i++)
        ticks[i].fn(ticks[i].arg);
}

void fake_ticks_clear(void)
{
    nticks = 0;
}

void fake_expire(void)
{
    for (int i = 0; i < nconns; i++) {
        struct conn *c = conns[i];
        if (c->state == FAKE_DEAD || c->kind == FAKE_HTTP) continue;
        if (c->state == FAKE_CLOSING) {
            if (now - c->since >= CLOSE_GRACE_MS) gone(c, "closed");
        } else if (c->kind == FAKE_UDP) {
            if (now - c->since >= c->timeout_ms) gone(c, "no answer (timeout)");
        } else if (c->kind == FAKE_DIAL && c->stage < 2) {
            if (now - c->since >= c->timeout_ms) gone(c, "handshake timeout");
        } else if (now - c->last_heard >= 2ull * conf.ping_interval_ms) {
            end(c, WS_CLOSE_GOING_AWAY, "ping timeout", "timeout");
        }
    }
}

void fake_reap(void)
{
    for (;;) {
        int told = 0;
        for (int i = 0; i < nconns; i++) {
            struct conn *c = conns[i];
            if (c->state == FAKE_DEAD && (!c->told || c->counted)) {
                detach(c, c->why);
                told = 1;
            }
        }
        if (!told) break;
    }
    for (int i = 0; i < nconns;) {
        struct conn *c = conns[i];
        if (c->state == FAKE_OPEN) {
            i++;
            continue;
        }
        if (!c->told || c->h || c->owner) violation("connection freed before its owner was told");
        conns[i] = conns[--nconns];
        conn_free(c);
    }
}

void fake_shutdown(void)
{
    for (int i = 0; i < nconns; i++)
        end(conns[i], WS_CLOSE_GOING_AWAY, "server shutting down", "shutdown");
    for (int i = 0; i < nconns; i++)
        gone(conns[i], "shutdown");
    fake_reap();
    if (nconns || ws_open)
        violation("%d connections (%u WebSocket) left after the shutdown", nconns, ws_open);
}

/* ---- fake_conn.h: connections ---- */

int fake_nconns(void)
{
    return nconns;
}

struct conn *fake_conn_at(int i)
{
    return i >= 0 && i < nconns ? conns[i] : NULL;
}

int fake_kind(const struct conn *c)
{
    return known(c, "fake_kind") ? c->kind : -1;
}

int fake_state(const struct conn *c)
{
    return known(c, "fake_state") ? c->state : -1;
}

int fake_dial_stage(const struct conn *c)
{
    return known(c, "fake_dial_stage") ? c->stage : -1;
}

uint16_t fake_close_code(const struct conn *c)
{
    return known(c, "fake_close_code") ? c->close_code : 0;
}

const char *fake_close_reason(const struct conn *c)
{
    return known(c, "fake_close_reason") && c->closed_by_call ? c->close_reason : NULL;
}

const char *fake_told(const struct conn *c)
{
    return known(c, "fake_told") && c->told ? c->told_why : NULL;
}

static int fake_may_hub = 1;

void fake_set_may_hub(int on)
{
    fake_may_hub = on;
}

void fake_set_max_connections(uint32_t n)
{
    max_connections = n;
}

struct conn *fake_client(const char *id)
{
    struct conn *c = conn_new(FAKE_HTTP, -1);
    if (!c) return NULL;
    conn_accept_ws(c);
    if (!peer_id_valid(id, strlen(id))) {
        conn_close(c, WS_CLOSE_POLICY, "Invalid peerId format");
        return c;
    }
    if (conn_ws_count() > max_connections) {
        conn_close(c, WS_CLOSE_POLICY, "Maximum connections reached");
        return c;
    }
    const char *why = NULL;
    struct peer *p = peer_open(c, id, fake_may_hub, &why);
    if (!p) {
        if (!why) violation("peer_open refused %s without a reason", id);
        conn_close(c, WS_CLOSE_POLICY, why ? why : "");
        return c;
    }
    if (conn_owner(c) != p || peer_conn(p) != c)
        violation("peer_open did not take the connection over");
    return c; /* peer_open queued "connected" */
}

int fake_deliver_n(struct conn *c, const char *p, size_t len)
{
    if (!known(c, "fake_deliver")) return -1;
    if (c->state != FAKE_OPEN || c->kind == FAKE_UDP || c->kind == FAKE_HTTP) return -1;
    if (c->kind == FAKE_DIAL && c->stage != 2) return -1;
    char *copy = malloc(len ? len : 1); /* exact size: an overread hits the redzone */
    if (!copy) abort();
    if (len) memcpy(copy, p, len);
    c->last_heard = now;
    if (c->h && c->h->message) c->h->message(c, c->owner, copy, len);
    free(copy);
    return 0;
}

int fake_deliver(struct conn *c, const char *json_text)
{
    return fake_deliver_n(c, json_text, strlen(json_text));
}

void fake_drop(struct conn *c, const char *why)
{
    if (known(c, "fake_drop")) gone(c, why);
}

void fake_set_slow(struct conn *c)
{
    if (known(c, "fake_set_slow")) c->slow = 1;
}

/* ---- fake_conn.h: dialled and UDP ---- */

void fake_connected(struct conn *c)
{
    if (!known(c, "fake_connected")) return;
    if (c->kind != FAKE_DIAL || c->state != FAKE_OPEN || c->stage != 0) return;
    c->stage = 1;
    if (c->h && c->h->connected) c->h->connected(c, c->owner);
}

const char *fake_ws_key(const struct conn *c)
{
    return known(c, "fake_ws_key") ? c->key : "";
}

const char *fake_request(const struct conn *c)
{
    return known(c, "fake_request") && c->request ? c->request : "";
}

int fake_answer(struct conn *c, const char *p, size_t len)
{
    if (!known(c, "fake_answer")) return -2;
    if (c->kind != FAKE_DIAL || c->state != FAKE_OPEN || c->stage != 1) return -2;
    if (!http_parse_response) {
        violation("fake_answer needs http.c linked");
        return -2;
    }
    char *copy = malloc(len ? len : 1);
    if (!copy) abort();
    if (len) memcpy(copy, p, len);
    struct http_response res;
    int r = http_parse_response(copy, len, &res);
    if (r == HTTP_INCOMPLETE) {
        free(copy);
        return -2;
    }
    if (r < 0 || !c->h || !c->h->handshake || c->h->handshake(c, c->owner, &res) < 0) {
        free(copy);
        gone(c, "bad handshake answer");
        return -1;
    }
    free(copy);
    c->stage = 2;
    c->last_heard = now;
    if (c->h && c->h->open) c->h->open(c, c->owner);
    return 0;
}

int fake_handshake(struct conn *c, int ok)
{
    if (!known(c, "fake_handshake")) return -2;
    if (!ws_accept_key) {
        violation("fake_handshake needs ws.c linked");
        return -2;
    }
    char accept[29], head[256];
    ws_accept_key(c->key, strlen(c->key), accept);
    if (!ok) accept[0] = accept[0] == 'A' ? 'B' : 'A';
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
                     accept);
    return fake_answer(c, head, (size_t)n);
}

void fake_datagram(struct conn *c, const void *p, size_t n)
{
    if (!known(c, "fake_datagram")) return;
    if (c->kind != FAKE_UDP || c->state != FAKE_OPEN) return;
    uint8_t *copy = malloc(n ? n : 1);
    if (!copy) abort();
    if (n) memcpy(copy, p, n);
    if (c->h && c->h->datagram) c->h->datagram(c, c->owner, copy, n);
    free(copy);
}

const uint8_t *fake_udp_last(const struct conn *c, size_t *len)
{
    *len = 0;
    if (!known(c, "fake_udp_last") || !c->udp) return NULL;
    *len = c->udp_len;
    return c->udp;
}

void fake_fail_connect(int on)
{
    fail_connect = on;
}

void fake_fail_udp_send(int on)
{
    fail_udp = on;
}

/* ---- fake_conn.h: what was sent ---- */

void fake_set_record(int on)
{
    record = on;
}

static int matches(const struct rec *r, const char *type)
{
    return !type || !strcmp(r->type, type);
}

int fake_count(const struct conn *c, const char *type)
{
    int n = 0;
    if (!known(c, "fake_count")) return 0;
    for (int i = 0; i < c->nrecs; i++)
        n += matches(&c->recs[i], type);
    return n;
}

const char *fake_nth(const struct conn *c, const char *type, int i)
{
    if (!known(c, "fake_nth")) return NULL;
    for (int k = 0; k < c->nrecs; k++)
        if (matches(&c->recs[k], type) && i-- == 0) return c->recs[k].text;
    return NULL;
}

const char *fake_last(const struct conn *c, const char *type)
{
    if (!known(c, "fake_last")) return NULL;
    for (int k = c->nrecs - 1; k >= 0; k--)
        if (matches(&c->recs[k], type)) return c->recs[k].text;
    return NULL;
}

void fake_clear(struct conn *c)
{
    if (!known(c, "fake_clear")) return;
    for (int i = 0; i < c->nrecs; i++)
        free(c->recs[i].text);
    c->nrecs = 0;
}

void fake_clear_all(void)
{
    for (int i = 0; i < nconns; i++)
        fake_clear(conns[i]);
}

void fake_on_send(void (*fn)(struct conn *c, const char *msg, size_t len))
{
    on_send = fn;
}

/* ---- fake_conn.h: rules and logs ---- */

void fake_set_abort(int on)
{
    abort_on = on;
}

int fake_violations(void)
{
    return violations;
}

void fake_log_record(int on)
{
    log_record = on;
}

void fake_log_echo(int on)
{
    log_echo = on;
}

const char *fake_log_last(void)
{
    return log_last;
}

/* ---- message helpers for the unit tests ---- */

const char *fake_q(const char *s)
{
    static char buf[8][8192];
    static int k;
    char *o = buf[k++ % 8];
    size_t i = 0;
    for (; s[i] && i < sizeof buf[0] - 1; i++)
        o[i] = s[i] == '\'' ? '"' : s[i];
    o[i] = 0;
    return o;
}

void fake_sendq(struct conn *c, const char *fmt, ...)
{
    char buf[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    fake_deliver(c, fake_q(buf));
}

int fake_has(const char *s, const char *needle)
{
    return s && strstr(s, fake_q(needle));
}

int fake_str_member(const char *s, int in_data, const char *key, const char *want)
{
    struct json_val root, d, v;
    if (!s || json_value(s, strlen(s), &root)) return 0;
    if (in_data) {
        if (!json_get(&root, "data", &d)) return 0;
        root = d;
    }
    return json_get(&root, key, &v) && json_str_eq(&v, want, strlen(want));
}
