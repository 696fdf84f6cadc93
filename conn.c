/* conn.c - the connection layer (see conn.h). Every socket is non-blocking and level-triggered;
 * reads go to one shared scratch buffer and only a partial frame or head is kept per
 * connection; writes are queued per connection and flushed once per loop turn (one send for
 * everything queued). Connections are freed only at the end of an epoll batch, after their
 * owners were told. Frames are parsed by ws.c, answer heads by http.c. */
#include "conn.h"
#include "http.h"
#include "json.h"
#include "ws.h"
#ifdef PP_TLS
#include "tls.h"
#endif

#include <errno.h>
#include <fcntl.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define EPOLL_BATCH 256
#define READS_PER_TURN 8 /* recv calls per readable connection per turn (fairness) */
#define SCRATCH_SIZE 65536
#define BUF_MIN 512 /* smallest per-connection buffer; grows by doubling */
#ifndef WBUF_BASE
#define WBUF_BASE (1u << 20) /* queued output cap: 1 MiB (or one max message + 64 KiB) */
#endif
#define PAUSE_MIN (64u << 10) /* a connection that caused this much output lately is a producer */
/* queued within one loop turn past this, the queues are written out before more is read: a
 * burst of announces into a big network (each newcomer's discovery list) no longer piles up a
 * whole epoll batch of lists (5,000 peers joining at once peaked at ~740 MB) */
#define FLUSH_EARLY (64u << 20) /* at most an eighth of MAX_MEMORY */
#define BIG_INPUT (64u << 10) /* a read buffer past this counts against the input budget */
#define ADDR_SLOTS_MAX 65536   /* addresses tracked for the per-address limits */
#define WBUF_KEEP (256u << 10) /* an output buffer this big is freed as soon as it is empty */
#define HTTP_IDLE_MS 10000     /* an HTTP connection silent this long is closed */
#define CLOSE_GRACE_MS 2000    /* after our close frame / last answer, wait this long for EOF */
#define MAX_TICKS 4

static struct conn_config conf;
static uint64_t now;
static struct conn_stats stats;

const char *const conn_end_names[CONN_END_N] = {
    "eof",     "reset",        "close_frame", "server",    "slow_reader", "protocol",
    "too_big", "ping_timeout", "idle",        "handshake", "dns",         "shutdown",
    "overload",
};
const char *const conn_kind_names[CONN_KIND_N] = {"http", "websocket", "hub_link", "dns"};

const struct conn_stats *conn_stats(void)
{
    return &stats;
}

/* ---- clock and logging ---- */

uint64_t conn_now_ms(void)
{
    return now;
}

static uint64_t wall_now; /* read with the monotonic clock, once per loop turn (0: not running) */

static uint64_t realtime_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

uint64_t conn_wall_ms(void)
{
    /* a fan-out to thousands stamps every message: one clock read per turn, not per message */
    return wall_now ? wall_now : realtime_ms();
}

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void conn_set_log_level(int level)
{
    conf.log_level = level;
}

/* An RFC 3339 UTC timestamp with milliseconds, and a space; "" under journald, which stamps
 * each line itself (it sets JOURNAL_STREAM for the services it captures). */
static const char *log_stamp(char out[64])
{
    static int journald = -1;
    if (journald < 0) journald = getenv("JOURNAL_STREAM") != NULL;
    if (journald) return "";
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    snprintf(out, 64, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
    return out;
}

#define LOG_BURST 50
#define LOG_WINDOW_MS 10000
#define LOG_SLOTS 64

static int log_json;

void conn_set_log_json(int on)
{
    log_json = on;
}

/* Per event (by the address of its name): lines printed in the current window, and held back.
 * Returns 0 to hold this line back, else 1 with *held set to what was held back before it. */
static int log_allow(const char *event, uint64_t *held)
{
    static struct {
        const char *event;
        uint64_t start, lines, held;
    } slot[LOG_SLOTS];
    size_t i = ((uintptr_t)event >> 3) % LOG_SLOTS;
    uint64_t t = mono_ms();
    if (slot[i].event != event || t - slot[i].start >= LOG_WINDOW_MS) {
        *held = slot[i].event == event ? slot[i].held : 0;
        slot[i].event = event;
        slot[i].start = t;
        slot[i].lines = 1;
        slot[i].held = 0;
        return 1;
    }
    if (slot[i].lines >= LOG_BURST) {
        slot[i].held++;
        return 0;
    }
    slot[i].lines++;
    *held = 0;
    return 1;
}

void conn_log(int level, const char *event, const char *fmt, ...)
{
    static const char *names[] = {"error", "warn", "info", "debug"};
    if (level > conf.log_level) return;
    uint64_t held;
    if (!log_allow(event, &held)) return;
    char line[1024], stamp[64];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if (held && (size_t)n < sizeof line)
        snprintf(line + n, sizeof line - (size_t)n, " (%llu more held back)",
                 (unsigned long long)held);
    if (!log_json) {
        fprintf(stderr, "%speerpigeon %s [%s] %s\n", log_stamp(stamp), names[level], event, line);
        return;
    }
    char out[2600];
    struct json_writer w;
    json_writer_init(&w, out, sizeof out - 1);
    const char *ts = log_stamp(stamp);
    JSON_LIT(&w, "{");
    if (*ts) {
        JSON_LIT(&w, "\"time\":");
        json_write_str(&w, ts, strlen(ts) - 1);
        JSON_LIT(&w, ",");
    }
    JSON_LIT(&w, "\"level\":\"");
    json_write_raw(&w, names[level], strlen(names[level]));
    JSON_LIT(&w, "\",\"event\":");
    json_write_str(&w, event, strlen(event));
    JSON_LIT(&w, ",\"msg\":");
    json_write_str(&w, line, strlen(line));
    JSON_LIT(&w, "}\n");
    if (!w.overflow) fwrite(w.p, 1, w.len, stderr);
}

/* xorshift64*, for when the OS gives no randomness (and for masking keys, which need no
 * secrecy beyond what RFC 6455 10.3 asks: unpredictable to the page, not to the world) */
static uint64_t xs_next(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545f4914f6cdd1dull;
}

static uint64_t fallback_seed(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t s = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30) ^ (uint64_t)getpid() << 48 ^
                 (uint64_t)(uintptr_t)&ts;
    return s ? s : 0x9e3779b97f4a7c15ull;
}

void conn_random(void *p, size_t n)
{
    static uint64_t fb;
    uint8_t *o = p;
    size_t got = 0;
    for (int tries = 0; got < n && tries < 3; tries++) {
        ssize_t r = getrandom(o + got, n - got, GRND_NONBLOCK);
        if (r > 0) got += (size_t)r;
    }
    if (got == n) return;
    if (!fb) {
        fb = fallback_seed();
        conn_log(LOG_WARN, "random", "getrandom failed: using a clock-seeded generator");
    }
    for (; got < n; got++)
        o[got] = (uint8_t)(xs_next(&fb) >> 56);
}

/* ---- buffers: allocated when data is pending, kept while the connection is busy (an empty
 * one is freed at the next tick), sized to what is pending: a fan-out to 20,000 peers costs
 * 20,000 small buffers for one turn, not 20,000 big ones ---- */

struct buf {
    uint8_t *p;
    uint32_t off, len, cap; /* data is p[off..len) */
    uint8_t in;             /* a read buffer: counts as input being assembled */
};

static size_t freed_bytes; /* since the last tick: glibc is asked to give back big releases */
/* The memory budget's accounting: buffer capacities (output queues; input being assembled),
 * connection records, and what the layers above charge (announce data, remote peers). */
static uint64_t mem_out, mem_in, mem_conns, mem_charged;

static void buf_free(struct buf *b)
{
    freed_bytes += b->cap;
    *(b->in ? &mem_in : &mem_out) -= b->cap;
    free(b->p);
    uint8_t in = b->in;
    memset(b, 0, sizeof *b);
    b->in = in;
}

/* Make room for `extra` more bytes, never growing past `max` in all. -1 if it cannot. */
static int buf_reserve(struct buf *b, size_t extra, size_t max)
{
    if (b->off && b->off == b->len) b->off = b->len = 0;
    /* a buffer exists once reserved, even for 0 bytes (an empty first fragment): buf_put and
     * the message-in-progress test (msg.p) need it */
    if (b->p && (size_t)b->cap - b->len >= extra) return 0;
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
    *(b->in ? &mem_in : &mem_out) += cap;
    return 0;
}

static void buf_put(struct buf *b, const void *p, size_t n)
{
    if (!n) return; /* an empty part (no data, no extra) may come with a NULL base */
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
    uint8_t dirty;       /* on the dirty list: output to flush this turn */
    uint8_t want_out;    /* EPOLLOUT registered */
    uint8_t shut;        /* shutdown(SHUT_WR) done */
    uint8_t handshake;   /* K_DIAL: 0 connecting, 1 waiting for 101, 2 open */
    uint8_t counted;     /* counts in ws_open */
    uint8_t told;        /* the owner was told it is over */
    uint8_t paused;      /* K_LISTEN: out of descriptors, not polled until the next tick */
    uint8_t rpaused;     /* not read: a producer held back (memory, or a slow receiver) */
    uint8_t bulk;        /* carries many peers' traffic (a hub link): see conn_set_bulk */
    uint8_t throttled;   /* queued to a receiver past half its cap since the last tick */
    uint8_t again;       /* K_HTTP: on the again list (its answer is out: the next request) */
    uint8_t counted_http; /* counts in http_open */
    uint8_t ended;        /* CONN_END_* + 1 once it ended: the first cause counts */
    int32_t addr_slot;   /* its entry in the per-address table + 1, or 0 */
    uint32_t caused;     /* bytes it made us queue to others lately (halved every tick) */
    int err;             /* errno behind its end, or 0 */
    uint32_t burst;      /* extra queue allowance (conn_expect) until the queue drains */
    uint32_t timeout_ms; /* K_DIAL: handshake, K_UDP: lifetime */
    struct ws_reader wr;
    struct buf rbuf, wbuf, msg;
    uint64_t last_heard, last_ping, since;
    struct conn *next_dirty, *next_dead, *next_again;
    const char *why; /* why it died (S_DEAD) */
    const struct conn_handlers *h;
    void *owner;
#ifdef PP_TLS
    struct tls *tls; /* K_DIAL over TLS: every byte goes through this engine */
#endif
};

#ifdef PP_TLS
#define TLS_CONN(c) ((c)->tls != NULL)
#define TLS_HELD(c) ((c)->tls && tls_has_data((c)->tls)) /* decrypted, not yet read */
#else
#define TLS_CONN(c) 0
#define TLS_HELD(c) 0
#endif

static struct conn **conns; /* by fd */
static int conns_cap;
static int conns_top; /* highest fd in use + 1 */
static int epfd = -1;
static struct conn *dirty_head, *dead_head, *again_head;
static struct conn *cur_src; /* whose message is being handled */
static uint32_t ws_open;     /* open accepted WebSocket connections */
static uint32_t http_open;   /* accepted connections not (yet) upgraded */
static size_t queued_turn;   /* bytes queued since the last flush */
static size_t flush_early;   /* FLUSH_EARLY, or less for a small budget */
static uint8_t scratch[SCRATCH_SIZE];
static int reserve_fd = -1;
static struct {
    void (*fn)(void *);
    void *arg;
} ticks[MAX_TICKS];
static int nticks;

static void conn_gone(struct conn *c, const char *why);
static void http_uncount(struct conn *c);
static void conn_end(struct conn *c, uint16_t code, const char *reason, const char *why);
static void flush_dirty(void);
static int conn_queue_frame(struct conn *c, int op, const struct iovec *iov, int n);

/* Remember why c ended, the first time. */
static void ended(struct conn *c, int cause)
{
    if (!c->ended) c->ended = (uint8_t)(cause + 1);
}

/* The cause behind one of the loop's own `why` strings (the owner's close is "server"). */
static int cause_of(const char *why)
{
    static const struct {
        const char *why;
        int cause;
    } t[] = {
        {"disconnected", CONN_END_EOF},
        {"closed", CONN_END_EOF},
        {"connection reset", CONN_END_RESET},
        {"socket error", CONN_END_RESET},
        {"write error", CONN_END_RESET},
        {"slow reader", CONN_END_SLOW_READER},
        {"protocol error", CONN_END_PROTOCOL},
        {"read buffer", CONN_END_TOO_BIG},
        {"timeout", CONN_END_PING_TIMEOUT},
        {"idle", CONN_END_IDLE},
        {"bad handshake answer", CONN_END_HANDSHAKE},
        {"connect failed", CONN_END_HANDSHAKE},
        {"handshake timeout", CONN_END_HANDSHAKE},
        {"no answer (timeout)", CONN_END_DNS},
        {"connection refused", CONN_END_DNS},
        {"shutdown", CONN_END_SHUTDOWN},
        {"server overloaded", CONN_END_OVERLOAD},
#ifdef PP_TLS
        {"TLS handshake failed", CONN_END_HANDSHAKE},
        {"TLS error", CONN_END_PROTOCOL},
#endif
    };
    for (size_t i = 0; i < sizeof t / sizeof *t; i++)
        if (!strcmp(why, t[i].why)) return t[i].cause;
    return CONN_END_SERVER;
}

static int kind_of(const struct conn *c)
{
    switch (c->kind) {
    case K_WS:
        return CONN_KIND_WS;
    case K_DIAL:
        return CONN_KIND_LINK;
    case K_UDP:
        return CONN_KIND_DNS;
    default:
        return CONN_KIND_HTTP;
    }
}

uint32_t conn_count(void)
{
    uint32_t n = 0;
    for (int fd = 0; fd < conns_top; fd++)
        n += conns[fd] && conns[fd]->kind != K_LISTEN;
    return n;
}

uint64_t conn_queued_bytes(void)
{
    uint64_t n = 0;
    for (int fd = 0; fd < conns_top; fd++)
        if (conns[fd]) n += conns[fd]->wbuf.len - conns[fd]->wbuf.off;
    return n;
}

int conn_open_fds(void)
{
    /* what the loop itself holds: its connections (listeners too), the epoll set, the spare
     * descriptor and stdio */
    int n = 0;
    for (int fd = 0; fd < conns_top; fd++)
        n += conns[fd] != NULL;
    return n + 1 + (reserve_fd >= 0) + 3;
}

/* ---- pools ---- */

#if defined(__SANITIZE_ADDRESS__)
#define POOL_HEAP 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define POOL_HEAP 1
#endif
#endif
#define POOL_SLAB (256u << 10)

void *conn_pool_get(struct conn_pool *p)
{
#ifdef POOL_HEAP
    void *r = calloc(1, p->size);
#else
    size_t sz = (p->size + 15) & ~(size_t)15;
    if (!p->free) { /* a new slab, threaded onto the free list */
        uint8_t *s = mmap(NULL, POOL_SLAB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (s == MAP_FAILED) return NULL;
        for (size_t off = 0; off + sz <= POOL_SLAB; off += sz) {
            *(void **)(void *)(s + off) = p->free;
            p->free = s + off;
        }
    }
    void *r = p->free;
    p->free = *(void **)r;
    memset(r, 0, p->size);
#endif
    if (r) p->used++;
    return r;
}

void conn_pool_put(struct conn_pool *p, void *r)
{
    if (!r) return;
    p->used--;
#ifdef POOL_HEAP
    free(r);
#else
    *(void **)r = p->free;
    p->free = r;
#endif
}

static struct conn_pool conn_recs = {.size = sizeof(struct conn)};

/* ---- the memory budget ---- */

uint64_t conn_mem_used(void)
{
    return mem_out + mem_in + mem_conns + mem_charged;
}

uint64_t conn_mem_budget(void)
{
    return conf.max_memory;
}

void conn_mem_charge(int64_t bytes)
{
    mem_charged += (uint64_t)bytes;
}

int conn_mem_room(uint64_t share_used, uint64_t bytes)
{
    return !conf.max_memory || share_used + bytes <= conf.max_memory / 4;
}

/* Past half the budget, producers are held back; past 7/8, newcomers are refused and the
 * biggest producer is shed. */
static int mem_pressed(void)
{
    return conf.max_memory && conn_mem_used() > conf.max_memory / 2;
}

static int mem_critical(void)
{
    return conf.max_memory && conn_mem_used() > conf.max_memory / 8 * 7;
}

void conn_set_bulk(struct conn *c, int on)
{
    c->bulk = (uint8_t)(on != 0);
}

/* ---- per-address limits: open connections and a connect rate (GCRA) per address (IPv4, or
 * an IPv6 /64); loopback and trusted proxies are not limited ---- */

struct addr_slot {
    uint8_t key[16];
    uint32_t tat;   /* when its connect allowance is whole again (loop ms, 32 bits) */
    uint16_t conns; /* open connections from it */
    uint8_t used;
};
static struct addr_slot *addrs;
static uint32_t addrs_mask, addrs_count;
static uint64_t addr_seed;

static int addr_exempt(const uint8_t k[16])
{
    static const uint8_t v4lo[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 1};
    static const uint8_t v6lo[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    if (!memcmp(k, v4lo, 16) || !memcmp(k, v6lo, 16)) return 1;
    for (int i = 0; i < conf.nproxies; i++)
        if (!memcmp(k, conf.proxies[i], 16)) return 1;
    return 0;
}

int conn_addr_key(const void *addr, uint8_t k[16])
{
    const struct sockaddr *sa = addr;
    memset(k, 0, 16);
    if (sa->sa_family == AF_INET) {
        k[10] = k[11] = 0xff;
        memcpy(k + 12, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
        return 0;
    }
    if (sa->sa_family == AF_INET6) {
        memcpy(k, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, 16);
        return 0;
    }
    return -1;
}

static uint32_t addr_hash(const uint8_t k[16])
{
    uint64_t a, b;
    memcpy(&a, k, 8);
    memcpy(&b, k + 8, 8);
    uint64_t h = (a ^ addr_seed) * 0x9e3779b97f4a7c15ull;
    h = (h ^ (h >> 29) ^ b) * 0xbf58476d1ce4e5b9ull;
    return (uint32_t)(h ^ (h >> 32));
}

/* The slot of key k (IPv6 cut to its /64 unless it is an IPv4-mapped address), or -1 when the
 * table is full (then nothing is limited: it is sized for far more addresses than
 * connections). */
static int addr_slot_of(const uint8_t key[16])
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    uint8_t k[16];
    memcpy(k, key, 16);
    if (memcmp(k, mapped, 12)) memset(k + 8, 0, 8);
    if (!addrs) {
        uint32_t cap = 64;
        uint32_t want = conns_cap < ADDR_SLOTS_MAX / 2 ? (uint32_t)conns_cap * 2 : ADDR_SLOTS_MAX;
        while (cap < want)
            cap *= 2;
        addrs = calloc(cap, sizeof *addrs);
        if (!addrs) return -1;
        addrs_mask = cap - 1;
        conn_random(&addr_seed, sizeof addr_seed);
    }
    for (uint32_t i = addr_hash(k) & addrs_mask;; i = (i + 1) & addrs_mask) {
        struct addr_slot *a = &addrs[i];
        if (a->used && !memcmp(a->key, k, 16)) return (int)i;
        if (!a->used) {
            if (addrs_count >= addrs_mask / 4 * 3) return -1;
            memcpy(a->key, k, 16);
            a->used = 1;
            a->conns = 0;
            a->tat = (uint32_t)now;
            addrs_count++;
            return (int)i;
        }
    }
}

/* Backward-shift deletion: the entries after i that hashed at or before it move up. */
static void addr_del_at(uint32_t i)
{
    addrs[i].used = 0;
    addrs_count--;
    for (uint32_t j = (i + 1) & addrs_mask; addrs[j].used; j = (j + 1) & addrs_mask) {
        uint32_t home = addr_hash(addrs[j].key) & addrs_mask;
        if (((j - home) & addrs_mask) >= ((j - i) & addrs_mask)) {
            addrs[i] = addrs[j];
            addrs[j].used = 0;
            i = j;
        }
    }
}

/* Every tick: an address with no connection whose allowance is whole again is forgotten. */
static void addr_sweep(void)
{
    if (!addrs) return;
    uint32_t n32 = (uint32_t)now;
    for (uint32_t i = 0; i <= addrs_mask; i++) {
        struct addr_slot *a = &addrs[i];
        while (a->used && (int32_t)(a->tat - n32) <= 0) {
            a->tat = n32;
            if (a->conns) break;
            addr_del_at(i); /* an entry may have moved into i: look again */
        }
    }
}

/* Count one connection against `key`: CONN_ADDR_OK with *slot = its entry + 1 (0: not
 * counted, exempt or the table full), or a refusal (counted in the stats). */
static int addr_take(const uint8_t key[16], int32_t *slot)
{
    *slot = 0;
    if (addr_exempt(key)) return CONN_ADDR_OK;
    int i = addr_slot_of(key);
    if (i < 0) return CONN_ADDR_OK;
    struct addr_slot *a = &addrs[i];
    uint32_t n32 = (uint32_t)now;
    if ((int32_t)(a->tat - n32) < 0) a->tat = n32;
    if (conf.per_addr && a->conns >= conf.per_addr) {
        stats.refused[CONN_REFUSE_PER_ADDR]++;
        return CONN_ADDR_TOO_MANY;
    }
    if (conf.addr_rate) {
        uint32_t t = 1000 / conf.addr_rate ? 1000 / conf.addr_rate : 1;
        uint32_t burst = conf.addr_burst ? conf.addr_burst : 1;
        if (a->tat - n32 > t * (burst - 1)) {
            stats.refused[CONN_REFUSE_ADDR_RATE]++;
            return CONN_ADDR_TOO_FAST;
        }
        a->tat += t;
    }
    a->conns++;
    *slot = i + 1;
    return CONN_ADDR_OK;
}

static void addr_untake(int32_t slot)
{
    if (slot && addrs[slot - 1].conns) addrs[slot - 1].conns--;
}

int conn_claim_addr(struct conn *c, const uint8_t key[16])
{
    if (c->addr_slot) return CONN_ADDR_OK;
    return addr_take(key, &c->addr_slot);
}

static void addr_release(struct conn *c)
{
    addr_untake(c->addr_slot);
    c->addr_slot = 0;
}

int conn_from_proxy(const struct conn *c)
{
    struct sockaddr_storage sa;
    socklen_t sl = sizeof sa;
    uint8_t k[16];
    if (getpeername(c->fd, (struct sockaddr *)&sa, &sl) || conn_addr_key(&sa, k)) return 0;
    return addr_exempt(k);
}

int conn_init(const struct conn_config *cfg)
{
    conf = *cfg;
    flush_early = FLUSH_EARLY;
    if (conf.max_memory && flush_early > conf.max_memory / 8) flush_early = conf.max_memory / 8;
    now = mono_ms();
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    getrlimit(RLIMIT_NOFILE, &rl);
    conns_cap = rl.rlim_cur > 4000000 ? 4000000 : (int)rl.rlim_cur;
    conns = calloc((size_t)conns_cap, sizeof *conns);
    epfd = epoll_create1(EPOLL_CLOEXEC);
    return conns && epfd >= 0 ? 0 : -1;
}

int conn_fd_limit(void)
{
    return conns_cap;
}

int conn_on_tick(void (*fn)(void *arg), void *arg)
{
    if (nticks == MAX_TICKS) return -1;
    ticks[nticks].fn = fn;
    ticks[nticks++].arg = arg;
    return 0;
}

/* The queue cap: fixed, plus what the owner announced it is about to queue in one go (a
 * discovery list of a big network, a hub sync) until the queue drains. */
static size_t wbuf_max(const struct conn *c)
{
    /* room for one message of the largest size on top of some traffic, no more: 200 clients
     * that never read hold at most ~200 MiB */
    size_t cap = conf.max_message_size + WS_MAX_HEADER + (64u << 10);
    if (cap < WBUF_BASE) cap = WBUF_BASE;
    if (conf.max_memory && cap > conf.max_memory / 8) cap = conf.max_memory / 8;
    return cap + c->burst;
}

void conn_expect(struct conn *c, size_t bytes)
{
    /* the largest burst, not the sum and not counting what is queued: a client that never reads
     * runs into the cap at its second burst */
    if (bytes > UINT32_MAX) bytes = UINT32_MAX;
    if (bytes > c->burst) c->burst = (uint32_t)bytes;
    /* sized once: growing by doubling would copy the queue over and over (a discovery list of
     * a thousand peers took ~10 reallocations); a failure here is met again when queueing */
    if (c->state == S_OPEN && bytes > BUF_MIN) buf_reserve(&c->wbuf, bytes, wbuf_max(c));
}

static size_t rbuf_max(const struct conn *c)
{
    if (c->kind == K_HTTP || (c->kind == K_DIAL && c->handshake < 2))
        return HTTP_MAX_HEAD + HTTP_MAX_BODY;
    return conf.max_message_size + WS_MAX_HEADER;
}

static void conn_set_events(struct conn *c, uint32_t events)
{
    /* not read while held back, nor an HTTP connection while its answer is going out (one
     * answer in flight: the next pipelined request waits) */
    if (c->rpaused || (c->kind == K_HTTP && c->wbuf.len > c->wbuf.off)) events &= ~EPOLLIN;
    struct epoll_event ev = {.events = events, .data.ptr = c};
    c->want_out = (events & EPOLLOUT) != 0;
    epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

int conn_text_valid(struct conn *c, const char *msg, size_t len)
{
    if (!c->wr.defer_utf8 || c->wr.msg_op != WS_OP_TEXT ||
        ws_utf8(WS_UTF8_OK, (const uint8_t *)msg, len) == WS_UTF8_OK)
        return 1;
    conn_end(c, WS_CLOSE_BAD_DATA, "invalid UTF-8", "protocol error");
    return 0;
}

static struct conn *conn_new(int fd, int kind, uint32_t events)
{
    if (fd >= conns_cap) {
        close(fd);
        return NULL;
    }
    struct conn *c = conn_pool_get(&conn_recs);
    if (!c) {
        close(fd);
        return NULL;
    }
    c->fd = fd;
    c->kind = (uint8_t)kind;
    c->rbuf.in = c->msg.in = 1;
    c->wr.defer_utf8 = (uint8_t)(conf.defer_utf8 != 0);
    mem_conns += sizeof *c;
    c->since = c->last_heard = c->last_ping = now;
    struct epoll_event ev = {.events = events, .data.ptr = c};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
        close(fd);
        conn_pool_put(&conn_recs, c);
        mem_conns -= sizeof *c;
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

void conn_set_owner(struct conn *c, const struct conn_handlers *h, void *owner)
{
    c->h = h;
    c->owner = owner;
}

void *conn_owner(const struct conn *c)
{
    return c->owner;
}

int conn_is_open(const struct conn *c)
{
    return c->state == S_OPEN;
}

uint64_t conn_last_heard(const struct conn *c)
{
    return c->last_heard;
}

void conn_ping(struct conn *c)
{
    static const uint8_t nothing[1];
    struct iovec iov = {(void *)nothing, 0};
    if (c->state != S_OPEN || (c->kind != K_WS && !(c->kind == K_DIAL && c->handshake == 2)))
        return;
    c->last_ping = now;
    conn_queue_frame(c, WS_OP_PING, &iov, 1);
}

int conn_error(const struct conn *c)
{
    return c->err;
}

/* "203.0.113.7:52114", "[2001:db8::1]:443" (sa NULL: "?:0") */
static void sa_text(const struct sockaddr_storage *sa, char *out, size_t cap)
{
    char host[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (sa && sa->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const void *)sa;
        inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
        port = ntohs(a->sin6_port);
    } else if (sa && sa->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const void *)sa;
        inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
        port = ntohs(a->sin_port);
    }
    snprintf(out, cap, strchr(host, ':') ? "[%s]:%d" : "%s:%d", host, port);
}

void conn_peer_addr(const struct conn *c, char *out, size_t cap)
{
    struct sockaddr_storage sa;
    socklen_t sl = sizeof sa;
    sa_text(getpeername(c->fd, (struct sockaddr *)&sa, &sl) == 0 ? &sa : NULL, out, cap);
}

uint32_t conn_ws_count(void)
{
    return ws_open;
}

void conn_accept_ws(struct conn *c)
{
    http_uncount(c);
    c->kind = K_WS;
    c->last_heard = c->last_ping = now;
    c->counted = 1;
    ws_open++;
}

/* A client frame's masking key (RFC 6455 5.3): seeded from the OS once, so that hub links do
 * not pay a syscall per message. */
static void mask_key(uint8_t out[4])
{
    static uint64_t s;
    while (!s)
        conn_random(&s, sizeof s);
    uint32_t v = (uint32_t)(xs_next(&s) >> 32);
    memcpy(out, &v, 4);
}

/* len bytes are queued to c while cur_src's message is handled: they count as cur_src's load,
 * and feeding a receiver past half its cap holds cur_src back until the next tick. */
static inline void attribute(struct conn *c, size_t len)
{
    if (!cur_src || cur_src == c) return;
    cur_src->caused = cur_src->caused + len > UINT32_MAX ? UINT32_MAX : cur_src->caused + (uint32_t)len;
    if (c->wbuf.len - c->wbuf.off > wbuf_max(c) / 2) cur_src->throttled = 1;
}

/* Queue a frame: header (masked when we are the client) + the parts. */
static int conn_queue_frame(struct conn *c, int op, const struct iovec *iov, int n)
{
    size_t len = 0;
    for (int i = 0; i < n; i++)
        len += iov[i].iov_len;
    if (buf_reserve(&c->wbuf, len + WS_MAX_HEADER, wbuf_max(c))) {
        conn_log(LOG_WARN, "conn.slow_reader",
                 "fd %d: output queue over %zu bytes: slow reader cut off", c->fd, wbuf_max(c));
        conn_gone(c, "slow reader");
        return -1;
    }
    attribute(c, len);
    queued_turn += len;
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
    attribute(c, len);
    buf_put(&c->wbuf, p, len);
    mark_dirty(c);
    return 0;
}

/* Tell the owner once that this connection is over. */
static void conn_detach(struct conn *c, const char *why)
{
    if (c->counted) {
        c->counted = 0;
        ws_open--;
    }
    if (c->told) return;
    c->told = 1;
    const struct conn_handlers *h = c->h;
    void *owner = c->owner;
    c->h = NULL;
    c->owner = NULL;
    if (h && h->closed) h->closed(c, owner, why);
    /* the buffers stay: a caller up the stack may still be reading them; conn_readable drops
     * rbuf once the connection is no longer open, the rest goes with the connection */
}

/* An HTTP connection counts toward max_http while it may still send requests. */
static void http_uncount(struct conn *c)
{
    if (!c->counted_http) return;
    c->counted_http = 0;
    http_open--;
}

static void conn_end(struct conn *c, uint16_t code, const char *reason, const char *why)
{
    if (c->state != S_OPEN) return;
    http_uncount(c);
    ended(c, cause_of(why));
    conn_detach(c, why);
    if (c->kind == K_UDP) { /* nothing to say goodbye with */
        conn_gone(c, why);
        return;
    }
    c->state = S_CLOSING;
    c->since = now;
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
    if (c->state == S_OPEN) ended(c, CONN_END_SERVER);
    conn_end(c, code, reason, reason);
}

/* Immediate end (EOF, reset, slow reader): no close frame. The owner is told at the end of the
 * batch (conn_reap), not here: this may be called from inside an owner's walk over its
 * connections (a fan-out to a network), which must not see members vanish under it. */
static void conn_gone(struct conn *c, const char *why)
{
    if (c->state == S_DEAD) return;
    ended(c, cause_of(why));
    c->state = S_DEAD;
    c->why = why;
    c->next_dead = dead_head;
    dead_head = c;
}

/* Tell the owners of dead connections (which may queue messages, and so cut off more slow
 * readers), flush, repeat until nothing new died, then free them all. */
static void conn_reap(void)
{
    for (;;) {
        int told = 0;
        flush_dirty();
        for (struct conn *c = dead_head; c; c = c->next_dead)
            if (!c->told || c->counted) {
                conn_detach(c, c->why);
                told = 1;
            }
        if (!told) break;
    }
    while (dead_head) {
        struct conn *c = dead_head;
        dead_head = c->next_dead;
        if (c->kind != K_LISTEN)
            stats.ended[kind_of(c)][c->ended ? c->ended - 1 : CONN_END_SERVER]++;
        conns[c->fd] = NULL;
        close(c->fd);
        buf_free(&c->rbuf);
        buf_free(&c->wbuf);
        buf_free(&c->msg);
        addr_release(c);
        http_uncount(c);
        for (struct conn **a = &again_head; c->again && *a; a = &(*a)->next_again)
            if (*a == c) {
                *a = c->next_again;
                break;
            }
        if (cur_src == c) cur_src = NULL;
        mem_conns -= sizeof *c;
#ifdef PP_TLS
        tls_free(c->tls);
#endif
        conn_pool_put(&conn_recs, c);
    }
}

#ifdef PP_TLS
/* A TLS failure (r == TLS_FAIL: tls_why says what) or a socket error ends c at once. */
static void tls_gone(struct conn *c, ssize_t r)
{
    if (r != TLS_FAIL) {
        c->err = errno;
        conn_gone(c, "write error");
    } else {
        conn_gone(c, tls_ready(c->tls) ? "TLS error" : "TLS handshake failed");
    }
}

/* conn_flush through the engine: the queue goes in as the engine takes it (nothing during the
 * handshake), its records out as the socket takes them; EPOLLOUT only while records wait for
 * the socket. Closing: once the queue is out, a close_notify, then shutdown. */
static void flush_tls(struct conn *c)
{
    size_t len = c->wbuf.len - c->wbuf.off;
    ssize_t n = tls_write(c->tls, c->fd, len ? c->wbuf.p + c->wbuf.off : NULL, len);
    if (n < 0) {
        tls_gone(c, n);
        return;
    }
    c->wbuf.off += (uint32_t)n;
    stats.bytes_out += (uint64_t)n;
    if (c->wbuf.off == c->wbuf.len) {
        if (c->wbuf.cap > WBUF_KEEP) buf_free(&c->wbuf);
        c->wbuf.off = c->wbuf.len = 0;
        c->burst = 0;
        if (c->state == S_CLOSING && !c->shut) {
            tls_close_notify(c->tls);
            if (tls_write(c->tls, c->fd, NULL, 0) < 0) {
                conn_gone(c, "closed");
                return;
            }
        }
    }
    int out = tls_wants_out(c->tls);
    if (out != c->want_out) conn_set_events(c, out ? EPOLLIN | EPOLLOUT : EPOLLIN);
    if (c->state == S_CLOSING && !c->shut && !out && c->wbuf.len == 0) {
        shutdown(c->fd, SHUT_WR);
        c->shut = 1;
    }
}
#endif

static void conn_flush(struct conn *c)
{
#ifdef PP_TLS
    if (c->tls) {
        flush_tls(c);
        return;
    }
#endif
    while (c->wbuf.off < c->wbuf.len) {
        ssize_t n = send(c->fd, c->wbuf.p + c->wbuf.off, c->wbuf.len - c->wbuf.off, MSG_NOSIGNAL);
        if (n > 0) {
            c->wbuf.off += (uint32_t)n;
            stats.bytes_out += (uint64_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (!c->want_out) conn_set_events(c, EPOLLIN | EPOLLOUT);
            return;
        } else {
            c->err = errno;
            conn_gone(c, "write error");
            return;
        }
    }
    /* keep a small buffer until a tick passes with nothing queued: a busy connection reuses it
     * (freeing per flush made the heap grow and shrink every loop turn); a big one (a discovery
     * list, a sync) goes now, so that RSS follows what is pending, not what once was: kept until
     * the tick, 5,000 peers joining one network held gigabytes */
    if (c->wbuf.cap > WBUF_KEEP) buf_free(&c->wbuf);
    c->wbuf.off = c->wbuf.len = 0;
    c->burst = 0;
    if (c->want_out) conn_set_events(c, EPOLLIN);
    if (c->kind == K_HTTP && c->state == S_OPEN && c->rbuf.len > c->rbuf.off && !c->again) {
        c->again = 1; /* its answer is out: the next pipelined request, next turn */
        c->next_again = again_head;
        again_head = c;
    }
    if (c->state == S_CLOSING && !c->shut) {
        shutdown(c->fd, SHUT_WR);
        c->shut = 1;
    }
}

static void flush_dirty(void)
{
    queued_turn = 0;
    while (dirty_head) {
        struct conn *c = dirty_head;
        dirty_head = c->next_dirty;
        c->dirty = 0;
        if (c->state != S_DEAD) conn_flush(c);
    }
}

/* ---- WebSocket frames (both sides) ---- */

static void ws_dispatch(struct conn *c, uint8_t *msg, size_t len)
{
    cur_src = c;
    if (c->h && c->h->message) c->h->message(c, c->owner, (char *)msg, len);
    cur_src = NULL;
}

/* Input being assembled (a big frame, a fragmented message) is held within a quarter of the
 * memory budget: past it, a connection wanting more gets 1013 "try again later". */
static int input_room(const struct buf *b, size_t extra)
{
    size_t used = b->len - b->off;
    if (used + extra <= BIG_INPUT || (size_t)b->cap - b->len >= extra) return 1;
    return conn_mem_room(mem_in, used + extra > b->cap ? used + extra - b->cap : 0);
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
        ended(c, CONN_END_CLOSE_FRAME);
        conn_detach(c, reason);
        c->state = S_CLOSING;
        c->since = now;
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
        int h = ws_frame_parse(p + used, n - used, c->kind == K_WS, conf.max_message_size, &f,
                               &code, &reason);
        if (h == WS_INCOMPLETE) break;
        if (h == WS_ERROR) {
            conn_log(LOG_DEBUG, "conn.protocol", "fd %d: frame refused: %u %s", c->fd, code,
                     reason);
            conn_end(c, code, reason, "protocol error");
            return n;
        }
        if (n - used - (size_t)h < f.payload_len) break;
        uint8_t *pl = p + used + h;
        if (f.masked) ws_mask(pl, (size_t)f.payload_len, f.mask, 0);
        used += (size_t)h + (size_t)f.payload_len;
        c->last_heard = now;
        int r = ws_reader_frame(&c->wr, &f, pl, conf.max_message_size, &code, &reason);
        if (r == WS_ERROR) {
            conn_end(c, code, reason, "protocol error");
            return n;
        }
        if (r == WS_R_CONTROL) {
            ws_control(c, &f, pl);
        } else if (r == WS_R_MORE || c->msg.p) {
            if (!input_room(&c->msg, (size_t)f.payload_len)) {
                stats.refused[CONN_REFUSE_MEMORY]++;
                conn_end(c, WS_CLOSE_TRY_AGAIN, "Server busy: try again later", "server overloaded");
                return n;
            }
            if (buf_reserve(&c->msg, (size_t)f.payload_len, conf.max_message_size)) {
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

/* ---- HTTP, server side: the owner parses; after an upgrade the rest is frames ---- */

static size_t http_process(struct conn *c, uint8_t *p, size_t n)
{
    if (c->wbuf.len > c->wbuf.off) return 0; /* an answer in flight: the next request waits */
    size_t used = c->h && c->h->data ? c->h->data(c, c->owner, (const char *)p, n) : n;
    if (used > n) used = n;
    if (used) c->last_heard = now;
    if (c->kind == K_WS && c->state == S_OPEN) used += ws_process(c, p + used, n - used);
    return c->state == S_OPEN ? used : n;
}

/* ---- outbound connections: the client side of the handshake ---- */

struct conn *conn_dial(int fd, const struct conn_handlers *h, void *owner, uint32_t timeout_ms)
{
    struct conn *c = conn_new(fd, K_DIAL, EPOLLIN | EPOLLOUT);
    if (!c) return NULL;
    c->want_out = 1;
    c->h = h;
    c->owner = owner;
    c->timeout_ms = timeout_ms;
    return c;
}

static size_t dial_process(struct conn *c, uint8_t *p, size_t n)
{
    if (c->handshake == 2) return ws_process(c, p, n);
    struct http_response res;
    int r = http_parse_response((const char *)p, n, &res);
    if (r == HTTP_INCOMPLETE) return 0;
    if (r < 0 || !c->h || !c->h->handshake || c->h->handshake(c, c->owner, &res) < 0) {
        conn_gone(c, "bad handshake answer");
        return n;
    }
    c->handshake = 2;
    c->last_heard = c->last_ping = now;
    if (c->h && c->h->open) c->h->open(c, c->owner);
    return (size_t)r + ws_process(c, p + r, n - (size_t)r);
}

static void dial_writable(struct conn *c)
{
    int err = 0;
    socklen_t el = sizeof err;
    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
    if (err) {
        c->err = err;
        conn_gone(c, "connect failed");
        return;
    }
    c->handshake = 1;
    conn_set_events(c, EPOLLIN);
#ifdef PP_TLS
    if (c->tls) mark_dirty(c); /* the ClientHello goes out with the first flush */
#endif
    if (c->h && c->h->connected) c->h->connected(c, c->owner);
}

#ifdef PP_TLS
struct conn *conn_dial_tls(int fd, const struct conn_handlers *h, void *owner, uint32_t timeout_ms,
                           const char *server_name, const char **why)
{
    static int told;
    const char *path;
    size_t n;
    if (!told && !tls_load_anchors(&path, &n)) {
        told = 1;
        conn_log(LOG_INFO, "hub.tls", "%zu trust anchors from %s", n, path);
    }
    struct tls *t = tls_client_new(server_name, why);
    if (!t) {
        close(fd);
        return NULL;
    }
    struct conn *c = conn_dial(fd, h, owner, timeout_ms);
    if (!c) {
        *why = "cannot register the socket";
        tls_free(t);
        return NULL;
    }
    c->tls = t;
    return c;
}

const char *conn_tls_error(const struct conn *c)
{
    return c->tls ? tls_why(c->tls) : NULL;
}
#endif

/* ---- UDP: a connected socket, one datagram = one answer ---- */

struct conn *conn_udp(int fd, const struct conn_handlers *h, void *owner, uint32_t timeout_ms)
{
    struct conn *c = conn_new(fd, K_UDP, EPOLLIN);
    if (!c) return NULL;
    c->h = h;
    c->owner = owner;
    c->timeout_ms = timeout_ms;
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
        stats.bytes_in += (uint64_t)n;
        if (c->h && c->h->datagram) c->h->datagram(c, c->owner, scratch, (size_t)n);
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

/* recv, or through the TLS engine: >0 bytes, 0 EOF, -1 errno (a TLS failure ends c here) */
static ssize_t conn_recv(struct conn *c, void *dst, size_t room)
{
#ifdef PP_TLS
    if (c->tls) {
        ssize_t n = tls_read(c->tls, c->fd, dst, room);
        mark_dirty(c); /* the handshake may have moved on: what waits in the queue can go */
        if (n == TLS_FAIL) {
            tls_gone(c, n);
            errno = EAGAIN;
            return -1;
        }
        return n;
    }
#endif
    return recv(c->fd, dst, room, 0);
}

static void conn_readable(struct conn *c)
{
    /* past READS_PER_TURN only to drain what the TLS engine already decrypted: no event would
     * come for it */
    for (int i = 0; (i < READS_PER_TURN || TLS_HELD(c)) && c->state != S_DEAD; i++) {
        int direct = c->rbuf.p == NULL || c->rbuf.len == 0;
        uint8_t *dst = scratch;
        size_t room = sizeof scratch;
        if (!direct) {
            size_t want = rbuf_max(c) - (c->rbuf.len - c->rbuf.off);
            if (want > 4096) want = 4096; /* room to read into; a big frame grows it by doubling */
            if (want && !input_room(&c->rbuf, want)) {
                stats.refused[CONN_REFUSE_MEMORY]++;
                conn_end(c, WS_CLOSE_TRY_AGAIN, "Server busy: try again later", "server overloaded");
                buf_free(&c->rbuf);
                return;
            }
            if (want == 0 || buf_reserve(&c->rbuf, want, rbuf_max(c))) {
                conn_gone(c, "read buffer");
                return;
            }
            dst = c->rbuf.p + c->rbuf.len;
            room = c->rbuf.cap - c->rbuf.len;
        }
        ssize_t n = conn_recv(c, dst, room);
        if (n == 0) {
            conn_gone(c, c->state == S_OPEN ? "disconnected" : "closed");
            return;
        }
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK) {
                c->err = errno;
                conn_gone(c, "connection reset");
            }
            return;
        }
        stats.bytes_in += (uint64_t)n;
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
        if ((size_t)n < room && !TLS_CONN(c)) return; /* TLS: one record per read */
    }
}

/* ---- holding producers back ---- */

/* A producer (it made us queue PAUSE_MIN bytes lately) is not read while memory is past half
 * the budget, or, unless it is a hub link, until the next tick after it queued to a receiver
 * whose queue was past half its cap (only those who feed a slow receiver wait for it):
 * the load waits in its socket (TCP backpressure on the sender), not in our queues, and the
 * receivers it floods are not cut off for it. */
static int held_back(const struct conn *c)
{
    if (c->caused < PAUSE_MIN || c->state != S_OPEN) return 0;
    return mem_pressed() || (c->throttled && !c->bulk && c->kind != K_DIAL);
}

static void hold(struct conn *c)
{
    c->rpaused = 1;
    stats.held++;
    conn_set_events(c, c->want_out ? EPOLLOUT : 0);
}

static void conn_readable(struct conn *c);

static void release(struct conn *c)
{
    c->rpaused = 0;
    conn_set_events(c, EPOLLIN | (c->want_out ? EPOLLOUT : 0));
    if (TLS_HELD(c)) conn_readable(c); /* decrypted already: no event would come for it */
}

/* Past 7/8 of the budget: the biggest producer goes (1013), one per loop turn. */
static void shed_producer(void)
{
    struct conn *top = NULL;
    for (int fd = 0; fd < conns_top; fd++) {
        struct conn *c = conns[fd];
        if (c && c->state == S_OPEN && c->caused >= PAUSE_MIN && (!top || c->caused > top->caused))
            top = c;
    }
    if (!top) return;
    stats.shed_memory++;
    conn_log(LOG_WARN, "limit.memory",
             "memory %llu of %llu bytes: fd %d shed, the biggest producer (%u bytes lately)",
             (unsigned long long)conn_mem_used(), (unsigned long long)conf.max_memory, top->fd,
             top->caused);
    conn_end(top, WS_CLOSE_TRY_AGAIN, "Server overloaded: try again later", "server overloaded");
}

/* ---- accepting ---- */

/* Refused at accept, before anything is kept for it: the answer (a fresh socket takes it
 * whole), what the client already sent read and dropped (so that the close is a FIN, not a
 * reset that could destroy the answer), and the descriptor closed at once: a flood of refused
 * connections holds no descriptor. */
static void refuse_fd(int fd, const struct sockaddr_storage *sa, int status, const char *text)
{
    char body[128], head[512], addr[64];
    int bl = snprintf(body, sizeof body, "%s\n", text);
    size_t hl = http_write_response(head, sizeof head, status, "text/plain; charset=utf-8", body,
                                    (size_t)bl, NULL, 0, "Retry-After: 1\r\n");
    sa_text(sa, addr, sizeof addr);
    conn_log(LOG_INFO, "refused", "%s: %s", addr, text);
    if (hl && send(fd, head, hl, MSG_NOSIGNAL | MSG_DONTWAIT) > 0) stats.bytes_out += hl;
    shutdown(fd, SHUT_WR);
    for (int i = 0; i < 4 && recv(fd, scratch, sizeof scratch, MSG_DONTWAIT) > 0; i++) {
    }
    close(fd);
}

int conn_listen(int fd, const struct conn_handlers *h, void *owner)
{
    struct conn *c = conn_new(fd, K_LISTEN, EPOLLIN);
    if (!c) return -1;
    c->h = h;
    c->owner = owner;
    return 0;
}

static void accept_all(struct conn *l)
{
    for (;;) {
        struct sockaddr_storage sa;
        socklen_t sl = sizeof sa;
        int fd = accept4(l->fd, (struct sockaddr *)&sa, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            if (errno != EMFILE && errno != ENFILE) return;
            if (reserve_fd >= 0) {
                /* shed: free a descriptor to accept and close the newcomer */
                close(reserve_fd);
                fd = accept(l->fd, NULL, NULL);
                if (fd >= 0) close(fd);
                if (fd >= 0) stats.shed++;
                reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
                conn_log(LOG_WARN, "limit.fds", "out of file descriptors: connection shed");
            }
            if (reserve_fd < 0 && !l->paused) {
                /* nothing to shed with: the listener stays readable and the loop would spin on
                 * it, so it is not polled until the next tick */
                conn_set_events(l, 0);
                l->paused = 1;
                conn_log(LOG_WARN, "limit.fds",
                         "out of file descriptors: not accepting until one is free");
            }
            return;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        stats.accepted++;
        uint8_t key[16];
        int32_t slot = 0;
        int r = conn_addr_key(&sa, key) ? CONN_ADDR_OK : addr_take(key, &slot);
        const char *no = NULL;
        int status = 503;
        if (mem_critical()) {
            stats.refused[CONN_REFUSE_MEMORY]++;
            no = "Server busy: memory budget reached, try again later";
        } else if (conf.max_http && http_open >= conf.max_http) {
            stats.refused[CONN_REFUSE_HTTP]++;
            no = "Server busy: too many HTTP connections, try again later";
        } else if (r != CONN_ADDR_OK) {
            status = 429;
            no = r == CONN_ADDR_TOO_MANY ? "Too many connections from your address"
                                         : "Connecting too fast from your address";
        }
        if (no) {
            addr_untake(slot);
            refuse_fd(fd, &sa, status, no);
            continue;
        }
        struct conn *c = conn_new(fd, K_HTTP, EPOLLIN);
        if (!c) {
            addr_untake(slot);
            continue;
        }
        conn_set_owner(c, l->h, l->owner);
        c->addr_slot = slot;
        c->counted_http = 1;
        http_open++;
    }
}

/* ---- timers ---- */

static uint64_t tick_ms(void)
{
    uint64_t t = conf.ping_interval_ms / 4;
    return t < 50 ? 50 : t > 1000 ? 1000 : t;
}

static void housekeeping(void)
{
    static const uint8_t nothing[1];
    while (conns_top > 0 && !conns[conns_top - 1])
        conns_top--;
    if (reserve_fd < 0) reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    addr_sweep();
    for (int fd = 0; fd < conns_top; fd++) {
        struct conn *c = conns[fd];
        if (!c || c->state == S_DEAD) continue;
        c->caused >>= 1;
        c->throttled = 0;
        if (c->rpaused && !held_back(c)) release(c);
        if (c->kind == K_LISTEN) {
            if (c->paused) {
                c->paused = 0;
                conn_set_events(c, EPOLLIN);
            }
            continue;
        }
        if (c->kind == K_UDP) {
            if (now - c->since >= c->timeout_ms) conn_gone(c, "no answer (timeout)");
            continue;
        }
        if (c->wbuf.p && c->wbuf.len == 0) buf_free(&c->wbuf);
        if (c->rbuf.p && c->rbuf.len == 0) buf_free(&c->rbuf);
        if (c->state == S_CLOSING) {
            if (now - c->since >= CLOSE_GRACE_MS) conn_gone(c, "closed");
        } else if (c->kind == K_HTTP) {
            if (now - c->last_heard >= HTTP_IDLE_MS) conn_gone(c, "idle");
        } else if (c->kind == K_DIAL && c->handshake < 2) {
            if (now - c->since >= c->timeout_ms) conn_gone(c, "handshake timeout");
        } else if (now - c->last_heard >= 2ull * conf.ping_interval_ms) {
            conn_end(c, WS_CLOSE_GOING_AWAY, "ping timeout", "timeout");
        } else if (now - c->last_ping >= conf.ping_interval_ms) {
            struct iovec iov = {(void *)nothing, 0};
            c->last_ping = now;
            conn_queue_frame(c, WS_OP_PING, &iov, 1);
        }
    }
#ifdef __GLIBC__
    /* after a storm (a fan-out to thousands) glibc keeps the freed heap; hand it back */
    if (freed_bytes >= (8u << 20)) malloc_trim(0);
#endif
    freed_bytes = 0;
    for (int i = 0; i < nticks; i++)
        ticks[i].fn(ticks[i].arg);
}

/* ---- the loop ---- */

void conn_run(volatile int *stop)
{
    /* one descriptor kept back, to accept and shed a newcomer when the limit is reached; opened
     * after the listeners, so that a limit too tight for it still leaves the server serving */
    reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (reserve_fd < 0)
        conn_log(LOG_WARN, "limit.fds",
                 "no spare file descriptor (%s): at the limit, newcomers wait in the "
                 "backlog instead of being shed",
                 strerror(errno));
    struct epoll_event evs[EPOLL_BATCH];
    now = mono_ms();
    wall_now = realtime_ms();
    uint64_t next_tick = now + tick_ms();
    while (!*stop) {
        int timeout = next_tick > now && !again_head ? (int)(next_tick - now) : 0;
        int n = epoll_wait(epfd, evs, EPOLL_BATCH, timeout);
        now = mono_ms();
        wall_now = realtime_ms();
        if (n < 0 && errno != EINTR) {
            conn_log(LOG_ERROR, "loop", "epoll_wait: %s", strerror(errno));
            break;
        }
        for (int i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;
            if (c->state == S_DEAD) continue;
            if (c->kind == K_LISTEN) {
                accept_all(c);
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
            if (!(evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))) continue;
            if (!c->rpaused && held_back(c))
                hold(c);
            else if (!c->rpaused || (evs[i].events & (EPOLLHUP | EPOLLERR)))
                conn_readable(c);
            if (queued_turn > flush_early) flush_dirty();
        }
        /* HTTP connections whose answer went out: their next pipelined request */
        struct conn *again = again_head;
        again_head = NULL;
        for (struct conn *c = again, *next; c; c = next) {
            next = c->next_again;
            c->again = 0;
            if (c->state == S_OPEN && c->rbuf.len > c->rbuf.off) {
                size_t used = conn_process(c, c->rbuf.p + c->rbuf.off, c->rbuf.len - c->rbuf.off);
                c->rbuf.off += (uint32_t)used;
                if (c->state != S_OPEN)
                    buf_free(&c->rbuf);
                else if (c->rbuf.off == c->rbuf.len)
                    c->rbuf.off = c->rbuf.len = 0;
            }
        }
        if (now >= next_tick) {
            housekeeping();
            next_tick = now + tick_ms();
        }
        flush_dirty();
        conn_reap();
        if (mem_critical()) shed_producer();
    }
    for (int fd = 0; fd < conns_top; fd++)
        if (conns[fd] && conns[fd]->kind != K_LISTEN)
            conn_end(conns[fd], WS_CLOSE_GOING_AWAY, "server shutting down", "shutdown");
    flush_dirty();
    for (int fd = 0; fd < conns_top; fd++)
        if (conns[fd]) conn_gone(conns[fd], "shutdown");
    conn_reap();
    free(conns);
    conns = NULL;
    close(epfd);
    if (reserve_fd >= 0) close(reserve_fd);
}
