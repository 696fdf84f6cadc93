/* peerpigeon.c - configuration, the listening sockets, connections and the single-threaded
 * epoll loop. Every socket is non-blocking and level-triggered; reads go to one shared scratch
 * buffer and only a partial frame or request is kept per connection, writes are queued per
 * connection and flushed once per loop turn (one send for everything queued). Connections are
 * freed only at the end of an epoll batch. HTTP answers are in http.c, frames in ws.c, the
 * signalling rules in peer.c, outbound hub links (and their DNS queries) in hub.c. */
#include "peerpigeon.h"
#include "http.h"
#include "hub.h"
#include "json.h"
#include "peer.h"
#include "ws.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef PP_VERSION
#define PP_VERSION "dev"
#endif

#define MAX_LISTEN 8
#define PORT_PROBE 10 /* PORT busy: try up to PORT+10 (both reference servers do) */
#define EPOLL_BATCH 256
#define READS_PER_TURN 8 /* recv calls per readable connection per turn (fairness) */
#define SCRATCH_SIZE 65536
#define BUF_MIN 512 /* smallest per-connection buffer; grows by doubling */
#ifndef WBUF_BASE
#define WBUF_BASE (8u << 20) /* queued output cap: 8 MiB + 2 max messages; more = slow reader */
#endif
#define HTTP_IDLE_MS 10000  /* an HTTP connection silent this long is closed */
#define CLOSE_GRACE_MS 2000 /* after our close frame / last answer, wait this long for EOF */
#define RESPONSE_MAX (256u << 10)

struct config cfg; /* zero here, defaults set by config_defaults: keeps 33 KB out of .data */

static void config_defaults(void)
{
    cfg.port = 3000;
    strcpy(cfg.host, "localhost");
    cfg.max_connections = 1000;
    strcpy(cfg.cors_origin, "*");
    strcpy(cfg.hub_ns, "pigeonhub-mesh");
    cfg.max_message_size = 1u << 20;
    cfg.ping_interval_ms = 30000;
    cfg.log_level = LOG_INFO;
}

int bound_port;
uint64_t now_ms;
static uint64_t start_ms;
static volatile sig_atomic_t stop_flag;

/* ---- logging and clocks ---- */

uint64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void log_msg(int level, const char *fmt, ...)
{
    static const char *names[] = {"error", "warn", "info", "debug"};
    if (level > cfg.log_level) return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fprintf(stderr, "peerpigeon %s: %s\n", names[level], line);
}

/* ---- configuration ---- */

static int parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    if (!*s) return -1;
    uint64_t v = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9') return -1;
        v = v * 10 + (uint64_t)(*s - '0');
        if (v > max) return -1;
    }
    if (v < min) return -1;
    *out = v;
    return 0;
}

static int parse_bool(const char *s, int *out)
{
    static const char *yes[] = {"true", "1", "yes", "on"};
    static const char *no[] = {"false", "0", "no", "off", ""};
    for (size_t i = 0; i < sizeof yes / sizeof *yes; i++)
        if (!strcasecmp(s, yes[i])) return *out = 1, 0;
    for (size_t i = 0; i < sizeof no / sizeof *no; i++)
        if (!strcasecmp(s, no[i])) return *out = 0, 0;
    return -1;
}

static int copy_str(char *dst, size_t cap, const char *s)
{
    size_t n = strlen(s);
    if (n >= cap) return -1;
    memcpy(dst, s, n + 1);
    return 0;
}

/* Apply one setting; returns NULL or what is wrong with the value. */
static const char *config_set(const char *name, const char *v)
{
    uint64_t u;
    if (!strcmp(name, "PORT")) {
        if (parse_uint(v, 0, 65535, &u)) return "a port number 0-65535";
        cfg.port = (int)u;
    } else if (!strcmp(name, "HOST")) {
        if (!*v || copy_str(cfg.host, sizeof cfg.host, v)) return "a host name or address";
    } else if (!strcmp(name, "MAX_CONNECTIONS")) {
        if (parse_uint(v, 1, 1000000, &u)) return "a whole number 1-1000000";
        cfg.max_connections = (uint32_t)u;
    } else if (!strcmp(name, "CORS_ORIGIN")) {
        for (const char *p = v; *p; p++)
            if ((unsigned char)*p < 0x20 || *p == 0x7f)
                return "an origin without control characters";
        if (copy_str(cfg.cors_origin, sizeof cfg.cors_origin, v)) return "an origin (< 256 bytes)";
    } else if (!strcmp(name, "IS_HUB")) {
        if (parse_bool(v, &cfg.is_hub)) return "true/false, 1/0 or yes/no";
    } else if (!strcmp(name, "HUB_MESH_NAMESPACE")) {
        if (!*v || copy_str(cfg.hub_ns, sizeof cfg.hub_ns, v)) return "a name of 1-256 bytes";
    } else if (!strcmp(name, "BOOTSTRAP_HUBS")) {
        if (copy_str(cfg.bootstrap_hubs, sizeof cfg.bootstrap_hubs, v)) return "a shorter list";
    } else if (!strcmp(name, "AUTH_TOKEN")) {
        if (copy_str(cfg.auth_token, sizeof cfg.auth_token, v)) return "a token < 256 bytes";
    } else if (!strcmp(name, "MAX_MESSAGE_SIZE")) {
        if (parse_uint(v, 1024, 64u << 20, &u)) return "a byte count 1024-67108864";
        cfg.max_message_size = (size_t)u;
    } else if (!strcmp(name, "PING_INTERVAL")) {
        /* seconds, or milliseconds with an "ms" suffix (tests use short intervals) */
        char tmp[32];
        size_t n = strlen(v);
        int ms = n > 2 && !strcmp(v + n - 2, "ms");
        if (n >= sizeof tmp) return "seconds (1-86400) or milliseconds with ms";
        memcpy(tmp, v, n + 1);
        if (ms) tmp[n - 2] = 0;
        if (parse_uint(tmp, ms ? 100 : 1, ms ? 86400000 : 86400, &u))
            return "seconds (1-86400) or milliseconds with ms";
        cfg.ping_interval_ms = (uint32_t)(ms ? u : u * 1000);
    } else if (!strcmp(name, "LOG_LEVEL")) {
        static const char *lv[] = {"error", "warn", "info", "debug"};
        size_t i;
        for (i = 0; i < 4 && strcasecmp(v, lv[i]); i++) {
        }
        if (i == 4) return "error, warn, info or debug";
        cfg.log_level = (int)i;
    } else if (!strcmp(name, "HUB_PEER_ID")) {
        if (*v && !peer_id_valid(v, strlen(v))) return "40 hex digits";
        memcpy(cfg.hub_id, v, strlen(v) + 1);
    }
    return NULL;
}

static const struct option_row {
    const char *env, *flag, *help;
} options[] = {
    {"PORT", "--port", "TCP port; if busy, the next up to +10 (default 3000)"},
    {"HOST", "--host", "bind address or name (default localhost)"},
    {"MAX_CONNECTIONS", "--max-connections", "WebSocket connections at once (default 1000)"},
    {"CORS_ORIGIN", "--cors-origin", "Access-Control-Allow-Origin (default *)"},
    {"IS_HUB", "--is-hub", "hub mode: true/false (default false)"},
    {"HUB_MESH_NAMESPACE", "--hub-mesh-namespace", "network of hubs (default pigeonhub-mesh)"},
    {"BOOTSTRAP_HUBS", "--bootstrap-hubs", "comma-separated ws:// URLs of hubs to dial"},
    {"AUTH_TOKEN", "--auth-token", "token WebSocket clients must present (default none)"},
    {"MAX_MESSAGE_SIZE", "--max-message-size", "bytes per WebSocket message (default 1048576)"},
    {"PING_INTERVAL", "--ping-interval", "seconds between pings, or Nms (default 30)"},
    {"LOG_LEVEL", "--log-level", "error, warn, info or debug (default info)"},
    {"HUB_PEER_ID", "--hub-peer-id", "fixed 40-hex hub id (default random)"},
};
#define NOPTIONS (sizeof options / sizeof *options)

static void usage(FILE *f)
{
    fprintf(f, "usage: peerpigeon [--option value]...\n"
               "PeerPigeon WebSocket signalling and hub server " PP_VERSION ".\n"
               "Each option is also read from the environment variable shown; flags win.\n\n");
    for (size_t i = 0; i < NOPTIONS; i++)
        fprintf(f, "  %-22s %-20s %s\n", options[i].flag, options[i].env, options[i].help);
    fprintf(f, "  %-22s %-20s %s\n  %-22s %-20s %s\n", "--help", "", "this text", "--version", "",
            "print the version");
}

static void config_die(const char *name, const char *v, const char *want)
{
    fprintf(stderr, "peerpigeon: invalid %s '%s': expected %s\n", name, v, want);
    exit(2);
}

static void config_load(int argc, char **argv)
{
    const char *err;
    config_defaults();
    for (size_t i = 0; i < NOPTIONS; i++) {
        const char *v = getenv(options[i].env);
        if (v && (err = config_set(options[i].env, v))) config_die(options[i].env, v, err);
    }
    for (int a = 1; a < argc; a++) {
        const char *arg = argv[a];
        if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
            usage(stdout);
            exit(0);
        }
        if (!strcmp(arg, "--version")) {
            printf("peerpigeon " PP_VERSION "\n");
            exit(0);
        }
        const char *eq = strchr(arg, '=');
        size_t flen = eq ? (size_t)(eq - arg) : strlen(arg);
        size_t i;
        for (i = 0; i < NOPTIONS; i++)
            if (strlen(options[i].flag) == flen && !strncmp(arg, options[i].flag, flen)) break;
        if (i == NOPTIONS) {
            fprintf(stderr, "peerpigeon: unknown option '%s' (see --help)\n", arg);
            exit(2);
        }
        const char *v = eq ? eq + 1 : NULL;
        if (!v) {
            if (a + 1 >= argc) {
                fprintf(stderr, "peerpigeon: %s needs a value\n", options[i].flag);
                exit(2);
            }
            v = argv[++a];
        }
        if ((err = config_set(options[i].env, v))) config_die(options[i].flag, v, err);
    }
}

/* ---- buffers: allocated when data is pending, kept while the connection is busy (an empty
 * one is freed at the next tick), sized to what is pending: a fan-out to 20,000 peers costs
 * 20,000 small buffers for one turn, not 20,000 big ones ---- */

struct buf {
    uint8_t *p;
    uint32_t off, len, cap; /* data is p[off..len) */
};

static size_t freed_bytes; /* since the last tick: glibc is asked to give back big releases */

static void buf_free(struct buf *b)
{
    freed_bytes += b->cap;
    free(b->p);
    memset(b, 0, sizeof *b);
}

/* Make room for `extra` more bytes, never growing past `max` in all. -1 if it cannot. */
static int buf_reserve(struct buf *b, size_t extra, size_t max)
{
    if (b->off && b->off == b->len) b->off = b->len = 0;
    if ((size_t)b->cap - b->len >= extra) return 0;
    size_t used = b->len - b->off;
    if (used + extra > max) return -1;
    if (b->off && (size_t)b->cap - used >= extra) {
        memmove(b->p, b->p + b->off, used);
        b->off = 0;
        b->len = (uint32_t)used;
        return 0;
    }
    size_t cap = b->cap ? b->cap : BUF_MIN;
    while (cap - used < extra)
        cap *= 2;
    if (cap > max + BUF_MIN) cap = max + BUF_MIN;
    uint8_t *np = malloc(cap);
    if (!np) return -1;
    if (used) memcpy(np, b->p + b->off, used);
    buf_free(b);
    b->p = np;
    b->len = (uint32_t)used;
    b->cap = (uint32_t)cap;
    return 0;
}

static void buf_put(struct buf *b, const void *p, size_t n)
{
    memcpy(b->p + b->len, p, n);
    b->len += (uint32_t)n;
}

/* ---- connections ---- */

enum { K_LISTEN, K_HTTP, K_WS, K_DIAL, K_UDP };
enum { S_OPEN, S_CLOSING, S_DEAD };

struct conn {
    int fd;
    uint8_t kind;
    uint8_t state;
    uint8_t dirty;     /* on the dirty list: output to flush this turn */
    uint8_t want_out;  /* EPOLLOUT registered */
    uint8_t shut;      /* shutdown(SHUT_WR) done */
    uint8_t keep;      /* HTTP: keep-alive after this answer */
    uint8_t handshake; /* K_DIAL: 0 connecting, 1 waiting for 101, 2 open */
    uint8_t counted;   /* counts in ws_open */
    uint32_t burst;    /* extra queue allowance (conn_expect) until the queue drains */
    struct ws_reader wr;
    struct buf rbuf, wbuf, msg;
    uint64_t last_heard, last_ping, since;
    struct conn *next_dirty, *next_dead;
    const char *why; /* why it died (S_DEAD) */
    struct peer *peer;
    void *hublink;
};

static struct conn **conns; /* by fd */
static int conns_cap;
static int conns_top; /* highest fd in use + 1 */
static int epfd = -1;
static struct conn *dirty_head, *dead_head;
static uint32_t ws_open; /* open accepted WebSocket connections */
static uint8_t scratch[SCRATCH_SIZE];
static char *response; /* RESPONSE_MAX bytes, for HTTP answers */
static int reserve_fd = -1;

static void conn_gone(struct conn *c, const char *why);
static void flush_dirty(void);

/* The queue cap: fixed, plus what the owner announced it is about to queue in one go (a
 * discovery list of a big network, a hub sync) until the queue drains. */
static size_t wbuf_max(const struct conn *c)
{
    return WBUF_BASE + 2 * cfg.max_message_size + c->burst;
}

void conn_expect(struct conn *c, size_t bytes)
{
    /* the largest burst, not the sum and not counting what is queued: a client that never reads
     * runs into the cap at its second burst */
    if (bytes > UINT32_MAX) bytes = UINT32_MAX;
    if (bytes > c->burst) c->burst = (uint32_t)bytes;
}

static size_t rbuf_max(const struct conn *c)
{
    if (c->kind == K_HTTP || (c->kind == K_DIAL && c->handshake < 2))
        return HTTP_MAX_HEAD + HTTP_MAX_BODY;
    return cfg.max_message_size + WS_MAX_HEADER;
}

static void conn_set_events(struct conn *c, int out)
{
    struct epoll_event ev = {.events = EPOLLIN | (out ? EPOLLOUT : 0), .data.ptr = c};
    c->want_out = (uint8_t)out;
    epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

static struct conn *conn_new(int fd, int kind, uint32_t events)
{
    if (fd >= conns_cap) {
        close(fd);
        return NULL;
    }
    struct conn *c = calloc(1, sizeof *c);
    if (!c) {
        close(fd);
        return NULL;
    }
    c->fd = fd;
    c->kind = (uint8_t)kind;
    c->since = c->last_heard = c->last_ping = now_ms;
    struct epoll_event ev = {.events = events, .data.ptr = c};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
        close(fd);
        free(c);
        return NULL;
    }
    conns[fd] = c;
    if (fd >= conns_top) conns_top = fd + 1;
    return c;
}

static void mark_dirty(struct conn *c)
{
    if (c->dirty) return;
    c->dirty = 1;
    c->next_dirty = dirty_head;
    dirty_head = c;
}

int conn_is_open(const struct conn *c)
{
    return c->state == S_OPEN;
}

struct peer *conn_peer(const struct conn *c)
{
    return c->peer;
}

uint64_t conn_last_heard(const struct conn *c)
{
    return c->last_heard;
}

void *conn_hublink(const struct conn *c)
{
    return c->hublink;
}

/* A client frame's masking key (RFC 6455 5.3): xorshift64* seeded from the OS once, so that
 * hub links do not pay a syscall per message. */
static void mask_key(uint8_t out[4])
{
    static uint64_t s;
    while (!s && getrandom(&s, sizeof s, 0) != sizeof s) {
    }
    s ^= s >> 12;
    s ^= s << 25;
    s ^= s >> 27;
    uint32_t v = (uint32_t)((s * 0x2545f4914f6cdd1dull) >> 32);
    memcpy(out, &v, 4);
}

/* Queue a frame: header (masked when we are the client) + the parts. */
static int conn_queue_frame(struct conn *c, int op, const struct iovec *iov, int n)
{
    size_t len = 0;
    for (int i = 0; i < n; i++)
        len += iov[i].iov_len;
    if (buf_reserve(&c->wbuf, len + WS_MAX_HEADER, wbuf_max(c))) {
        log_msg(LOG_WARN, "fd %d: output queue over %zu bytes: slow reader cut off", c->fd,
                wbuf_max(c));
        conn_gone(c, "slow reader");
        return -1;
    }
    uint8_t hdr[WS_MAX_HEADER], mask[4];
    int client = c->kind == K_DIAL;
    if (client) mask_key(mask);
    size_t hl = ws_frame_header(hdr, op, 1, len, client ? mask : NULL);
    buf_put(&c->wbuf, hdr, hl);
    uint64_t off = 0;
    for (int i = 0; i < n; i++) {
        uint8_t *dst = c->wbuf.p + c->wbuf.len;
        buf_put(&c->wbuf, iov[i].iov_base, iov[i].iov_len);
        if (client) ws_mask(dst, iov[i].iov_len, mask, off);
        off += iov[i].iov_len;
    }
    mark_dirty(c);
    return 0;
}

int conn_send_iov(struct conn *c, const struct iovec *iov, int n)
{
    if (c->state != S_OPEN) return -1;
    return conn_queue_frame(c, WS_OP_TEXT, iov, n);
}

int conn_send(struct conn *c, const char *msg, size_t len)
{
    struct iovec iov = {(void *)msg, len};
    return conn_send_iov(c, &iov, 1);
}

int conn_send_raw(struct conn *c, const void *p, size_t len)
{
    if (c->state != S_OPEN) return -1;
    if (buf_reserve(&c->wbuf, len, wbuf_max(c))) {
        conn_gone(c, "slow reader");
        return -1;
    }
    buf_put(&c->wbuf, p, len);
    mark_dirty(c);
    return 0;
}

/* Tell the owner (peer.c or hub.c) once that this connection is over. */
static void conn_detach(struct conn *c, const char *why)
{
    if (c->counted) {
        c->counted = 0;
        ws_open--;
    }
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
    /* the buffers stay: a caller up the stack may still be reading them; conn_readable drops
     * rbuf once the connection is no longer open, the rest goes with the connection */
}

static void conn_end(struct conn *c, uint16_t code, const char *reason, const char *why)
{
    if (c->state != S_OPEN) return;
    conn_detach(c, why);
    if (c->kind == K_UDP) { /* nothing to say goodbye with */
        conn_gone(c, why);
        return;
    }
    c->state = S_CLOSING;
    c->since = now_ms;
    if (c->kind == K_WS || (c->kind == K_DIAL && c->handshake == 2)) {
        uint8_t body[2 + WS_MAX_CONTROL];
        size_t rl = strlen(reason);
        if (rl > WS_MAX_CONTROL - 2) rl = WS_MAX_CONTROL - 2;
        body[0] = (uint8_t)(code >> 8);
        body[1] = (uint8_t)code;
        memcpy(body + 2, reason, rl);
        struct iovec iov = {body, rl + 2};
        conn_queue_frame(c, WS_OP_CLOSE, &iov, 1);
    }
    mark_dirty(c);
}

void conn_close(struct conn *c, uint16_t code, const char *reason)
{
    conn_end(c, code, reason, reason);
}

/* Immediate end (EOF, reset, slow reader): no close frame. The owner is told at the end of the
 * batch (conn_reap), not here: this may be called from inside peer.c's walk over a network,
 * which must not see members vanish under it. */
static void conn_gone(struct conn *c, const char *why)
{
    if (c->state == S_DEAD) return;
    c->state = S_DEAD;
    c->why = why;
    c->next_dead = dead_head;
    dead_head = c;
}

/* Tell the owners of dead connections, flush what that queued, repeat until nothing new died,
 * then free them all. */
static void conn_reap(void)
{
    for (;;) {
        int told = 0;
        flush_dirty();
        for (struct conn *c = dead_head; c; c = c->next_dead)
            if (c->peer || c->hublink || c->counted) {
                conn_detach(c, c->why);
                told = 1;
            }
        if (!told) break;
    }
    while (dead_head) {
        struct conn *c = dead_head;
        dead_head = c->next_dead;
        conns[c->fd] = NULL;
        close(c->fd);
        buf_free(&c->rbuf);
        buf_free(&c->wbuf);
        buf_free(&c->msg);
        free(c);
    }
}

static void conn_flush(struct conn *c)
{
    while (c->wbuf.off < c->wbuf.len) {
        ssize_t n = send(c->fd, c->wbuf.p + c->wbuf.off, c->wbuf.len - c->wbuf.off, MSG_NOSIGNAL);
        if (n > 0) {
            c->wbuf.off += (uint32_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (!c->want_out) conn_set_events(c, 1);
            return;
        } else {
            conn_gone(c, "write error");
            return;
        }
    }
    /* keep the memory until a tick passes with nothing queued: a busy connection reuses it
     * (freeing per flush made the heap grow and shrink every loop turn) */
    c->wbuf.off = c->wbuf.len = 0;
    c->burst = 0;
    if (c->want_out) conn_set_events(c, 0);
    if (c->state == S_CLOSING && !c->shut) {
        shutdown(c->fd, SHUT_WR);
        c->shut = 1;
    }
}

static void flush_dirty(void)
{
    while (dirty_head) {
        struct conn *c = dirty_head;
        dirty_head = c->next_dirty;
        c->dirty = 0;
        if (c->state != S_DEAD) conn_flush(c);
    }
}

/* ---- HTTP ---- */

static void read_rss(uint64_t *rss)
{
    *rss = 0;
    int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    char b[128];
    ssize_t n = read(fd, b, sizeof b - 1);
    close(fd);
    if (n <= 0) return;
    b[n] = 0;
    /* "size resident ...": the second field, in pages */
    const char *p = strchr(b, ' ');
    uint64_t pages = 0;
    for (p = p ? p + 1 : b + n; *p >= '0' && *p <= '9'; p++)
        pages = pages * 10 + (uint64_t)(*p - '0');
    *rss = pages * (uint64_t)sysconf(_SC_PAGESIZE);
}

static void http_answer(struct conn *c, int status, const char *body, const char *extra)
{
    size_t n = http_write_response(response, RESPONSE_MAX, status, "text/plain; charset=utf-8",
                                   body, strlen(body), cfg.cors_origin, c->keep, extra);
    conn_send_raw(c, response, n);
}

/* Refuse and close after the answer: for requests we cannot keep reading after. */
static void http_fail(struct conn *c, int status, const char *body)
{
    c->keep = 0;
    http_answer(c, status, body, NULL);
    conn_end(c, 0, "", "http");
}

static int token_ok(const struct http_request *req)
{
    const char *t = NULL;
    size_t tl = 0;
    char dec[256];
    const struct http_header *h = http_header_get(req, "authorization");
    if (h && h->value_len > 7 && !strncasecmp(h->value, "Bearer ", 7)) {
        t = h->value + 7;
        tl = h->value_len - 7;
    } else if (req->query && http_query_get(req->query, req->query_len, "token", &t, &tl)) {
        long d = http_url_decode(t, tl, dec, sizeof dec);
        if (d < 0) return 0;
        t = dec;
        tl = (size_t)d;
    }
    if (!t) return 0;
    /* constant time in the token's contents: always walk the configured token */
    size_t want = strlen(cfg.auth_token);
    unsigned diff = (unsigned)(tl != want);
    for (size_t i = 0; i < want; i++)
        diff |= (unsigned char)cfg.auth_token[i] ^ (unsigned char)(i < tl ? t[i] : 0);
    return diff == 0;
}

static void ws_upgrade(struct conn *c, const struct http_request *req)
{
    const struct http_header *ver = http_header_get(req, "sec-websocket-version");
    const struct http_header *key = http_header_get(req, "sec-websocket-key");
    if (!ver || ver->value_len != 2 || memcmp(ver->value, "13", 2)) {
        c->keep = 0;
        http_answer(c, 426, "WebSocket version 13 required\n", "Sec-WebSocket-Version: 13\r\n");
        conn_end(c, 0, "", "http");
        return;
    }
    if (!key || !ws_key_valid(key->value, key->value_len)) {
        http_fail(c, 400, "Bad Sec-WebSocket-Key\n");
        return;
    }
    if (req->method_len != 3 || memcmp(req->method, "GET", 3) || req->minor_version != 1) {
        http_fail(c, 400, "WebSocket upgrade needs GET and HTTP/1.1\n");
        return;
    }
    if (cfg.auth_token[0] && !token_ok(req)) {
        http_fail(c, 401, "Unauthorized\n");
        return;
    }
    char accept[29];
    ws_accept_key(key->value, key->value_len, accept);
    char head[160];
    int hl = snprintf(head, sizeof head,
                      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                      "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
                      accept);
    conn_send_raw(c, head, (size_t)hl);
    c->kind = K_WS;
    c->last_heard = c->last_ping = now_ms;
    c->counted = 1;
    ws_open++;

    char id[64];
    const char *v;
    size_t vl;
    long idl = -1;
    if (req->query && http_query_get(req->query, req->query_len, "peerId", &v, &vl))
        idl = http_url_decode(v, vl, id, sizeof id);
    if (idl < 0 || !peer_id_valid(id, (size_t)idl)) {
        conn_end(c, WS_CLOSE_POLICY, "Invalid peerId format", "refused");
        return;
    }
    if (ws_open > cfg.max_connections) {
        conn_end(c, WS_CLOSE_POLICY, "Maximum connections reached", "refused");
        return;
    }
    const char *why = NULL;
    struct peer *p = peer_open(c, id, &why);
    if (!p) {
        conn_end(c, WS_CLOSE_POLICY, why, "refused");
        return;
    }
    c->peer = p;
    char msg[160];
    int ml = snprintf(msg, sizeof msg,
                      "{\"type\":\"connected\",\"data\":{\"peerId\":\"%s\"},\"fromPeerId\":"
                      "\"system\",\"timestamp\":%llu}",
                      id, (unsigned long long)wall_ms());
    conn_send(c, msg, (size_t)ml);
}

static void http_route(struct conn *c, const struct http_request *req)
{
    uint64_t rss;
    read_rss(&rss);
    struct http_info info = {
        .is_hub = cfg.is_hub,
        .hub_id = cfg.is_hub ? cfg.hub_id : "",
        .hub_ns = cfg.hub_ns,
        .host = cfg.host,
        .port = bound_port,
        .connections = ws_open,
        .peers = peer_count(),
        .hubs = peer_hub_count(),
        .networks = network_count(),
        .max_connections = cfg.max_connections,
        .bootstrap_total = hub_links_total(),
        .bootstrap_connected = hub_links_connected(),
        .uptime_ms = now_ms - start_ms,
        .rss = rss,
        .now_wall_ms = wall_ms(),
        .cors = cfg.cors_origin,
        .write_hubs = peer_write_hubs,
        .write_bootstrap = hub_write_bootstrap,
    };
    size_t n = http_respond(req, &info, c->keep, response, RESPONSE_MAX);
    conn_send_raw(c, response, n);
}

static size_t ws_process(struct conn *c, uint8_t *p, size_t n);

static size_t http_process(struct conn *c, uint8_t *p, size_t n)
{
    size_t used = 0;
    while (used < n && c->state == S_OPEN && c->kind == K_HTTP) {
        struct http_request req;
        int r = http_parse_request((const char *)p + used, n - used, &req);
        if (r == HTTP_INCOMPLETE) break;
        if (r == HTTP_BAD) {
            http_fail(c, 400, "Bad Request\n");
            return n;
        }
        if (r == HTTP_TOO_LARGE) {
            http_fail(c, 431, "Request Header Fields Too Large\n");
            return n;
        }
        const struct http_header *te = http_header_get(&req, "transfer-encoding");
        const struct http_header *cl = http_header_get(&req, "content-length");
        uint64_t body = 0;
        if (te) {
            http_fail(c, 400, "Transfer-Encoding not supported\n");
            return n;
        }
        if (cl) {
            char num[24];
            if (cl->value_len == 0 || cl->value_len >= sizeof num) {
                http_fail(c, cl->value_len >= sizeof num ? 413 : 400, "Bad Content-Length\n");
                return n;
            }
            memcpy(num, cl->value, cl->value_len);
            num[cl->value_len] = 0;
            if (parse_uint(num, 0, UINT64_MAX / 10, &body)) {
                http_fail(c, 400, "Bad Content-Length\n");
                return n;
            }
            if (body > HTTP_MAX_BODY) {
                http_fail(c, 413, "Payload Too Large\n");
                return n;
            }
        }
        if (n - used - (size_t)r < body) break; /* wait for the whole body, then skip it */
        used += (size_t)r + (size_t)body;
        c->last_heard = now_ms;
        const struct http_header *conn_h = http_header_get(&req, "connection");
        const struct http_header *up = http_header_get(&req, "upgrade");
        if (req.minor_version == 1)
            c->keep = !(conn_h && http_has_token(conn_h->value, conn_h->value_len, "close"));
        else
            c->keep = conn_h && http_has_token(conn_h->value, conn_h->value_len, "keep-alive");
        if (up && http_has_token(up->value, up->value_len, "websocket") && conn_h &&
            http_has_token(conn_h->value, conn_h->value_len, "upgrade")) {
            ws_upgrade(c, &req);
            if (c->kind == K_WS && c->state == S_OPEN)
                return used + ws_process(c, p + used, n - used);
            return n;
        }
        http_route(c, &req);
        if (!c->keep) conn_end(c, 0, "", "http");
    }
    return used;
}

/* ---- WebSocket frames (both sides) ---- */

static void ws_dispatch(struct conn *c, const uint8_t *msg, size_t len)
{
    if (c->peer)
        peer_on_message(c->peer, (const char *)msg, len);
    else if (c->hublink)
        hub_on_message(c, (const char *)msg, len);
}

static void ws_control(struct conn *c, const struct ws_frame *f, uint8_t *pl)
{
    if (f->opcode == WS_OP_PING) {
        struct iovec iov = {pl, (size_t)f->payload_len};
        conn_queue_frame(c, WS_OP_PONG, &iov, 1);
    } else if (f->opcode == WS_OP_CLOSE) {
        /* RFC 6455 5.5.1: answer with the same code; no code given -> empty close */
        char reason[WS_MAX_CONTROL + 1] = "disconnected";
        uint16_t code = WS_CLOSE_NORMAL;
        if (f->payload_len >= 2) {
            code = (uint16_t)(pl[0] << 8 | pl[1]);
            if (f->payload_len > 2) {
                memcpy(reason, pl + 2, f->payload_len - 2);
                reason[f->payload_len - 2] = 0;
            }
        }
        int empty = f->payload_len == 0;
        conn_detach(c, reason);
        c->state = S_CLOSING;
        c->since = now_ms;
        uint8_t body[2] = {(uint8_t)(code >> 8), (uint8_t)code};
        struct iovec iov = {body, empty ? 0 : 2};
        conn_queue_frame(c, WS_OP_CLOSE, &iov, 1);
    }
}

static size_t ws_process(struct conn *c, uint8_t *p, size_t n)
{
    size_t used = 0;
    while (c->state == S_OPEN) {
        struct ws_frame f;
        uint16_t code = 0;
        const char *reason = "";
        int h = ws_frame_parse(p + used, n - used, c->kind == K_WS, cfg.max_message_size, &f, &code,
                               &reason);
        if (h == WS_INCOMPLETE) break;
        if (h == WS_ERROR) {
            log_msg(LOG_DEBUG, "fd %d: frame refused: %u %s", c->fd, code, reason);
            conn_end(c, code, reason, "protocol error");
            return n;
        }
        if (n - used - (size_t)h < f.payload_len) break;
        uint8_t *pl = p + used + h;
        if (f.masked) ws_mask(pl, (size_t)f.payload_len, f.mask, 0);
        used += (size_t)h + (size_t)f.payload_len;
        c->last_heard = now_ms;
        int r = ws_reader_frame(&c->wr, &f, pl, cfg.max_message_size, &code, &reason);
        if (r == WS_ERROR) {
            conn_end(c, code, reason, "protocol error");
            return n;
        }
        if (r == WS_R_CONTROL) {
            ws_control(c, &f, pl);
        } else if (r == WS_R_MORE || c->msg.p) {
            if (buf_reserve(&c->msg, (size_t)f.payload_len, cfg.max_message_size)) {
                conn_end(c, WS_CLOSE_TOO_BIG, "message too big", "protocol error");
                return n;
            }
            buf_put(&c->msg, pl, (size_t)f.payload_len);
            if (r == WS_R_MESSAGE) {
                ws_dispatch(c, c->msg.p + c->msg.off, c->msg.len - c->msg.off);
                buf_free(&c->msg);
            }
        } else {
            ws_dispatch(c, pl, (size_t)f.payload_len);
        }
    }
    return used;
}

/* ---- outbound hub links: the client side of the handshake ---- */

struct conn *conn_dial(int fd, void *hublink)
{
    struct conn *c = conn_new(fd, K_DIAL, EPOLLIN | EPOLLOUT);
    if (!c) return NULL;
    c->want_out = 1;
    c->hublink = hublink;
    return c;
}

static size_t dial_process(struct conn *c, uint8_t *p, size_t n)
{
    if (c->handshake == 2) return ws_process(c, p, n);
    /* the 101 answer: find the end of its head */
    size_t end = 0;
    for (size_t i = 3; i < n; i++)
        if (p[i] == '\n' && p[i - 1] == '\r' && p[i - 2] == '\n' && p[i - 3] == '\r') {
            end = i + 1;
            break;
        }
    if (!end) {
        if (n >= HTTP_MAX_HEAD) conn_end(c, 0, "", "bad handshake answer");
        return n >= HTTP_MAX_HEAD ? n : 0;
    }
    if (hub_on_handshake(c, (const char *)p, end) < 0) {
        conn_gone(c, "bad handshake answer");
        return n;
    }
    c->handshake = 2;
    c->last_heard = c->last_ping = now_ms;
    hub_on_open(c);
    return end + ws_process(c, p + end, n - end);
}

static void dial_writable(struct conn *c)
{
    int err = 0;
    socklen_t el = sizeof err;
    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
    if (err) {
        log_msg(LOG_DEBUG, "fd %d: connect failed: %s", c->fd, strerror(err));
        conn_gone(c, "connect failed");
        return;
    }
    c->handshake = 1;
    conn_set_events(c, 0);
    hub_on_connect(c);
}

/* ---- DNS queries of hub.c: a connected UDP socket, one datagram = one answer ---- */

struct conn *conn_udp(int fd, void *hublink)
{
    struct conn *c = conn_new(fd, K_UDP, EPOLLIN);
    if (!c) return NULL;
    c->hublink = hublink;
    return c;
}

int conn_udp_send(struct conn *c, const void *p, size_t len)
{
    if (c->state != S_OPEN || c->kind != K_UDP) return -1;
    ssize_t n;
    do
        n = send(c->fd, p, len, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    return n == (ssize_t)len ? 0 : -1;
}

static void udp_readable(struct conn *c)
{
    for (int i = 0; i < READS_PER_TURN && c->state == S_OPEN; i++) {
        ssize_t n = recv(c->fd, scratch, sizeof scratch, 0);
        if (n < 0) {
            if (errno == EINTR) continue;
            /* ECONNREFUSED: the ICMP port unreachable of a server that is not there */
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                conn_gone(c, errno == ECONNREFUSED ? "connection refused" : "socket error");
            return;
        }
        hub_on_dns(c, scratch, (size_t)n); /* n == 0 is an empty datagram, not an EOF */
    }
}

/* ---- reading ---- */

static size_t conn_process(struct conn *c, uint8_t *p, size_t n)
{
    switch (c->kind) {
    case K_HTTP:
        return http_process(c, p, n);
    case K_WS:
        return ws_process(c, p, n);
    default:
        return dial_process(c, p, n);
    }
}

static void conn_readable(struct conn *c)
{
    for (int i = 0; i < READS_PER_TURN && c->state != S_DEAD; i++) {
        int direct = c->rbuf.p == NULL || c->rbuf.len == 0;
        uint8_t *dst = scratch;
        size_t room = sizeof scratch;
        if (!direct) {
            size_t want = rbuf_max(c) - (c->rbuf.len - c->rbuf.off);
            if (want > 4096) want = 4096; /* room to read into; a big frame grows it by doubling */
            if (want == 0 || buf_reserve(&c->rbuf, want, rbuf_max(c))) {
                conn_gone(c, "read buffer");
                return;
            }
            dst = c->rbuf.p + c->rbuf.len;
            room = c->rbuf.cap - c->rbuf.len;
        }
        ssize_t n = recv(c->fd, dst, room, 0);
        if (n == 0) {
            conn_gone(c, c->state == S_OPEN ? "disconnected" : "closed");
            return;
        }
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK) conn_gone(c, "connection reset");
            return;
        }
        if (c->state != S_OPEN) continue; /* closing: discard until EOF */
        if (direct) {
            size_t used = conn_process(c, scratch, (size_t)n);
            if (used < (size_t)n && c->state == S_OPEN) {
                if (buf_reserve(&c->rbuf, (size_t)n - used, rbuf_max(c))) {
                    conn_gone(c, "read buffer");
                    return;
                }
                buf_put(&c->rbuf, scratch + used, (size_t)n - used);
            }
        } else {
            c->rbuf.len += (uint32_t)n;
            size_t used = conn_process(c, c->rbuf.p + c->rbuf.off, c->rbuf.len - c->rbuf.off);
            c->rbuf.off += (uint32_t)used;
            if (c->state != S_OPEN) {
                buf_free(&c->rbuf);
            } else if (c->rbuf.off == c->rbuf.len) {
                c->rbuf.off = c->rbuf.len = 0; /* empty: kept for the next partial frame */
            }
        }
        if ((size_t)n < room) return;
    }
}

/* ---- accepting ---- */

static int listen_fds[MAX_LISTEN];
static int nlisten;

static void accept_all(int lfd)
{
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            if ((errno == EMFILE || errno == ENFILE) && reserve_fd >= 0) {
                /* shed: free a descriptor to accept and close the newcomer */
                close(reserve_fd);
                fd = accept(lfd, NULL, NULL);
                if (fd >= 0) close(fd);
                reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
                log_msg(LOG_WARN, "out of file descriptors: connection shed");
            }
            return;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        conn_new(fd, K_HTTP, EPOLLIN);
    }
}

static int listen_on(const struct addrinfo *ai, int port)
{
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    int one = 1, zero = 0;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (ai->ai_family == AF_INET6) {
        /* "::" serves IPv4 too; a specific v6 address only itself */
        const struct sockaddr_in6 *a6 = (const void *)ai->ai_addr;
        int any = IN6_IS_ADDR_UNSPECIFIED(&a6->sin6_addr);
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, any ? &zero : &one, sizeof one);
    }
    struct sockaddr_storage sa;
    memcpy(&sa, ai->ai_addr, ai->ai_addrlen);
    if (sa.ss_family == AF_INET6)
        ((struct sockaddr_in6 *)&sa)->sin6_port = htons((uint16_t)port);
    else
        ((struct sockaddr_in *)&sa)->sin_port = htons((uint16_t)port);
    if (bind(fd, (struct sockaddr *)&sa, ai->ai_addrlen) < 0 || listen(fd, 4096) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

static int bound_port_of(int fd)
{
    struct sockaddr_storage sa;
    socklen_t sl = sizeof sa;
    getsockname(fd, (struct sockaddr *)&sa, &sl);
    return ntohs(sa.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&sa)->sin6_port
                                          : ((struct sockaddr_in *)&sa)->sin_port);
}

static int open_listeners(void)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV},
                    *res;
    int rc = getaddrinfo(cfg.host, "0", &hints, &res);
    if (rc) {
        fprintf(stderr, "peerpigeon: cannot resolve HOST '%s': %s\n", cfg.host, gai_strerror(rc));
        return -1;
    }
    /* if "::" is offered, it covers 0.0.0.0 too: keep only the v6 wildcard */
    int have_v6_any = 0;
    for (struct addrinfo *a = res; a; a = a->ai_next)
        if (a->ai_family == AF_INET6 &&
            IN6_IS_ADDR_UNSPECIFIED(&((struct sockaddr_in6 *)a->ai_addr)->sin6_addr))
            have_v6_any = 1;
    int last = cfg.port == 0 ? 0 : cfg.port + PORT_PROBE;
    if (last > 65535) last = 65535;
    for (int port = cfg.port; port <= last && nlisten == 0; port++) {
        for (struct addrinfo *a = res; a && nlisten < MAX_LISTEN; a = a->ai_next) {
            if (a->ai_family != AF_INET && a->ai_family != AF_INET6) continue;
            if (have_v6_any && a->ai_family == AF_INET) continue;
            int dup = 0;
            for (struct addrinfo *b = res; b != a; b = b->ai_next)
                if (b->ai_addrlen == a->ai_addrlen &&
                    !memcmp(b->ai_addr, a->ai_addr, a->ai_addrlen))
                    dup = 1;
            if (dup) continue;
            int want = nlisten ? bound_port : port;
            int fd = listen_on(a, want);
            if (fd < 0) {
                if (nlisten == 0 && errno == EADDRINUSE) {
                    log_msg(LOG_WARN, "port %d in use, trying the next", port);
                    break;
                }
                char host[64];
                getnameinfo(a->ai_addr, a->ai_addrlen, host, sizeof host, NULL, 0, NI_NUMERICHOST);
                log_msg(nlisten ? LOG_WARN : LOG_ERROR, "cannot listen on %s port %d: %s", host,
                        want, strerror(errno));
                if (nlisten == 0) continue;
                continue;
            }
            if (nlisten == 0) bound_port = bound_port_of(fd);
            listen_fds[nlisten++] = fd;
            char host[64];
            getnameinfo(a->ai_addr, a->ai_addrlen, host, sizeof host, NULL, 0, NI_NUMERICHOST);
            log_msg(LOG_INFO, "listening on %s port %d", host, bound_port);
        }
    }
    freeaddrinfo(res);
    if (nlisten == 0) {
        fprintf(stderr, "peerpigeon: could not listen on %s ports %d-%d\n", cfg.host, cfg.port,
                last);
        return -1;
    }
    for (int i = 0; i < nlisten; i++)
        conn_new(listen_fds[i], K_LISTEN, EPOLLIN);
    return 0;
}

/* ---- timers ---- */

static uint64_t tick_ms(void)
{
    uint64_t t = cfg.ping_interval_ms / 4;
    return t < 50 ? 50 : t > 1000 ? 1000 : t;
}

static void housekeeping(void)
{
    static const uint8_t nothing[1];
    while (conns_top > 0 && !conns[conns_top - 1])
        conns_top--;
    for (int fd = 0; fd < conns_top; fd++) {
        struct conn *c = conns[fd];
        if (!c || c->kind == K_LISTEN || c->state == S_DEAD) continue;
        if (c->kind == K_UDP) {
            if (now_ms - c->since >= DNS_TIMEOUT_MS) conn_gone(c, "no answer (timeout)");
            continue;
        }
        if (c->wbuf.p && c->wbuf.len == 0) buf_free(&c->wbuf);
        if (c->rbuf.p && c->rbuf.len == 0) buf_free(&c->rbuf);
        if (c->state == S_CLOSING) {
            if (now_ms - c->since >= CLOSE_GRACE_MS) conn_gone(c, "closed");
        } else if (c->kind == K_HTTP) {
            if (now_ms - c->last_heard >= HTTP_IDLE_MS) conn_gone(c, "idle");
        } else if (c->kind == K_DIAL && c->handshake < 2) {
            if (now_ms - c->since >= HUB_HANDSHAKE_MS) conn_gone(c, "handshake timeout");
        } else if (now_ms - c->last_heard >= 2ull * cfg.ping_interval_ms) {
            conn_end(c, WS_CLOSE_GOING_AWAY, "ping timeout", "timeout");
        } else if (now_ms - c->last_ping >= cfg.ping_interval_ms) {
            struct iovec iov = {(void *)nothing, 0};
            c->last_ping = now_ms;
            conn_queue_frame(c, WS_OP_PING, &iov, 1);
        }
    }
#ifdef __GLIBC__
    /* after a storm (a fan-out to thousands) glibc keeps the freed heap; hand it back */
    if (freed_bytes >= (8u << 20)) malloc_trim(0);
#endif
    freed_bytes = 0;
    hub_tick();
}

/* ---- main ---- */

static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

static int setup(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    getrlimit(RLIMIT_NOFILE, &rl);
    conns_cap = rl.rlim_cur > 4000000 ? 4000000 : (int)rl.rlim_cur;
    if ((uint64_t)cfg.max_connections + 64 > (uint64_t)conns_cap)
        log_msg(LOG_WARN, "MAX_CONNECTIONS %u is above the file descriptor limit %d",
                cfg.max_connections, conns_cap);
    conns = calloc((size_t)conns_cap, sizeof *conns);
    response = malloc(RESPONSE_MAX);
    epfd = epoll_create1(EPOLL_CLOEXEC);
    if (!conns || !response || epfd < 0 || peer_init(cfg.max_connections)) {
        fprintf(stderr, "peerpigeon: out of memory\n");
        return -1;
    }
    reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (cfg.is_hub && !cfg.hub_id[0]) {
        uint8_t r[PEER_ID_LEN / 2];
        if (getrandom(r, sizeof r, 0) != (ssize_t)sizeof r) return -1;
        for (size_t i = 0; i < sizeof r; i++)
            sprintf(cfg.hub_id + 2 * i, "%02x", r[i]);
    }
    return 0;
}

int main(int argc, char **argv)
{
    config_load(argc, argv);
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    now_ms = start_ms = mono_ms();
    if (setup() < 0) return 1;
    const char *herr = hub_init();
    if (herr) {
        fprintf(stderr, "peerpigeon: invalid BOOTSTRAP_HUBS: %s\n", herr);
        return 2;
    }
    if (open_listeners() < 0) return 1;
    log_msg(LOG_INFO, "peerpigeon " PP_VERSION " ready: port %d, max %u connections%s%s",
            bound_port, cfg.max_connections, cfg.is_hub ? ", hub " : "",
            cfg.is_hub ? cfg.hub_id : "");

    struct epoll_event evs[EPOLL_BATCH];
    uint64_t next_tick = now_ms + tick_ms();
    while (!stop_flag) {
        int timeout = next_tick > now_ms ? (int)(next_tick - now_ms) : 0;
        int n = epoll_wait(epfd, evs, EPOLL_BATCH, timeout);
        now_ms = mono_ms();
        if (n < 0 && errno != EINTR) {
            log_msg(LOG_ERROR, "epoll_wait: %s", strerror(errno));
            break;
        }
        for (int i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;
            if (c->state == S_DEAD) continue;
            if (c->kind == K_LISTEN) {
                accept_all(c->fd);
                continue;
            }
            if ((evs[i].events & EPOLLOUT) && c->kind == K_DIAL && c->handshake == 0) {
                dial_writable(c);
                continue;
            }
            if (c->kind == K_UDP) {
                udp_readable(c);
                continue;
            }
            if (evs[i].events & EPOLLOUT) mark_dirty(c);
            if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) conn_readable(c);
        }
        if (now_ms >= next_tick) {
            housekeeping();
            next_tick = now_ms + tick_ms();
        }
        flush_dirty();
        conn_reap();
    }
    log_msg(LOG_INFO, "stopping");
    for (int fd = 0; fd < conns_cap; fd++)
        if (conns[fd] && conns[fd]->kind != K_LISTEN)
            conn_end(conns[fd], WS_CLOSE_GOING_AWAY, "server shutting down", "shutdown");
    flush_dirty();
    for (int fd = 0; fd < conns_cap; fd++)
        if (conns[fd]) conn_gone(conns[fd], "shutdown");
    conn_reap();
    hub_free();
    free(conns);
    free(response);
    close(epfd);
    return 0;
}
