/* conn.h - the connection layer, the bottom of the server: the clock, logging, per-connection
 * buffers, the single-threaded epoll loop, accepted / dialled / UDP connections, reading request
 * heads, answer heads and WebSocket frames, queued output flushed once per loop turn, close and
 * reap, and per-connection deadlines (HTTP idle, close grace, pings, dial and DNS timeouts).
 *
 * It knows nothing of PeerPigeon. It calls upward only through a table of handlers and one
 * opaque owner pointer per connection (set by whoever owns it: the HTTP server, the registry,
 * a hub link). A connection is freed here, at the end of an epoll batch, never in the middle of
 * one; its owner is told exactly once that it is over (`closed`), and must not use it after. */
#ifndef CONN_H
#define CONN_H
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

enum { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG };

struct conn;
struct http_response;

/* What the owner of a connection is told. Any handler may be NULL (nothing to tell). */
struct conn_handlers {
    /* Server side before the upgrade: bytes p[0..n) arrived (a partial head is kept and offered
     * again with more). Returns how many were used; after conn_accept_ws the rest are frames. */
    size_t (*data)(struct conn *c, void *owner, const char *p, size_t n);
    /* A complete WebSocket message (text or binary); msg is writable scratch. */
    void (*message)(struct conn *c, void *owner, char *msg, size_t len);
    /* Dialled: TCP is up; queue the upgrade request (conn_send_raw). */
    void (*connected)(struct conn *c, void *owner);
    /* Dialled: the answer head, parsed. 0 = WebSocket open (`open` follows), -1 = refuse. */
    int (*handshake)(struct conn *c, void *owner, const struct http_response *res);
    void (*open)(struct conn *c, void *owner);
    /* UDP: one datagram (an empty one is not an EOF). */
    void (*datagram)(struct conn *c, void *owner, const uint8_t *p, size_t n);
    /* Over, for any reason (close frame, EOF, reset, timeout, slow reader, conn_close). Once. */
    void (*closed)(struct conn *c, void *owner, const char *why);
};

#define CONN_MAX_PROXIES 8
struct conn_config {
    size_t max_message_size; /* bytes per WebSocket message, both directions */
    uint32_t ping_interval_ms;
    int log_level;
    /* MAX_MEMORY: the budget of buffers and peer state (0 = none). Output queues are capped at
     * 1/8 of it each, input being assembled and each class charged from above at 1/4 in all;
     * past 1/2 producers are not read, past 7/8 newcomers get 503 and the biggest producer is
     * shed (1013). */
    uint64_t max_memory;
    uint32_t max_http;   /* connections not upgraded, at once (0 = no limit): else 503 */
    uint32_t per_addr;   /* connections per address (IPv4, IPv6 /64) at once: else 429 */
    uint32_t addr_rate;  /* new connections per second per address, after a burst of */
    uint32_t addr_burst; /* ... this many (0 rate = no limit): else 429 */
    /* not limited per address: loopback and these (16-byte keys, conn_addr_key) */
    uint8_t proxies[CONN_MAX_PROXIES][16];
    int nproxies;
    /* text messages reach `message` without the UTF-8 check: every owner validates them as
     * JSON (which checks UTF-8) and calls conn_text_valid when that fails */
    int defer_utf8;
};

/* ---- counters, for /metrics ---- */

/* Why a connection ended: the first cause counts. */
enum {
    CONN_END_EOF,         /* the other side closed the TCP connection */
    CONN_END_RESET,       /* reset or socket error */
    CONN_END_CLOSE_FRAME, /* the other side sent a WebSocket close */
    CONN_END_SERVER,      /* closed by us: answered, refused, replaced, resolved */
    CONN_END_SLOW_READER, /* its output queue overflowed */
    CONN_END_PROTOCOL,    /* a frame or message refused (1002, 1007, 1009) */
    CONN_END_TOO_BIG,     /* a partial frame or head over its buffer cap */
    CONN_END_PING_TIMEOUT,
    CONN_END_IDLE,      /* HTTP: silent for 10 s */
    CONN_END_HANDSHAKE, /* dial: connect failed, bad or no 101 in time */
    CONN_END_DNS,       /* a lookup that got no answer in time, or was refused */
    CONN_END_SHUTDOWN,
    CONN_END_OVERLOAD, /* shed or refused for the memory budget (1013) */
    CONN_END_N
};
/* Refusals of the connection layer. */
enum {
    CONN_REFUSE_MEMORY,    /* 503 at accept, 1013 for input past the budget */
    CONN_REFUSE_HTTP,      /* 503: max_http */
    CONN_REFUSE_PER_ADDR,  /* 429: per_addr */
    CONN_REFUSE_ADDR_RATE, /* 429: addr_rate */
    CONN_REFUSE_N
};
enum { CONN_KIND_HTTP, CONN_KIND_WS, CONN_KIND_LINK, CONN_KIND_DNS, CONN_KIND_N };
extern const char *const conn_end_names[CONN_END_N];   /* "eof", "reset", ... */
extern const char *const conn_kind_names[CONN_KIND_N]; /* "http", "websocket", ... */
struct conn_stats {
    uint64_t accepted, shed; /* connections accepted; shed at the descriptor limit */
    uint64_t bytes_in, bytes_out;
    uint64_t ended[CONN_KIND_N][CONN_END_N];
    uint64_t refused[CONN_REFUSE_N];
    uint64_t held;        /* times a producer was held back (not read) */
    uint64_t shed_memory; /* producers shed past 7/8 of the budget */
};
const struct conn_stats *conn_stats(void);
uint32_t conn_count(void);        /* open connections, listeners not counted */
uint64_t conn_queued_bytes(void); /* output queued and not yet written, all connections */
int conn_open_fds(void);          /* descriptors open in the process (-1 if unknown) */

/* ---- the memory budget (conn_config.max_memory) ---- */

uint64_t conn_mem_used(void);   /* what the budget counts now */
uint64_t conn_mem_budget(void); /* 0: none */
/* The layers above charge what they keep (announce data, remote peers): +bytes, -bytes. */
void conn_mem_charge(int64_t bytes);
/* May a class that holds share_used bytes take `bytes` more? Each class gets a quarter. */
int conn_mem_room(uint64_t share_used, uint64_t bytes);
/* c carries many peers' traffic (a hub link): it is not held back for one slow receiver (only
 * when memory is short). */
void conn_set_bulk(struct conn *c, int on);

/* ---- pools of fixed-size records ----
 * Long-lived records (a connection, a peer) come from slabs of their own, mapped apart from the
 * heap: the heap's short-lived buffers (discovery lists, queues) then cannot pin the pages of
 * an idle peer after they are freed, and no record pays a malloc header. Slabs are kept once
 * mapped (the next peak reuses them). The sanitizer builds use calloc/free, so that a use after
 * free is still caught. */
struct conn_pool {
    size_t size;  /* bytes per record (set before first use) */
    void *free;   /* free list */
    uint32_t used;
};
void *conn_pool_get(struct conn_pool *p); /* zeroed, or NULL out of memory */
void conn_pool_put(struct conn_pool *p, void *rec);

/* ---- per-address limits ---- */

enum { CONN_ADDR_OK, CONN_ADDR_TOO_MANY, CONN_ADDR_TOO_FAST };
/* A socket address (struct sockaddr_in or _in6) as a 16-byte key (IPv4 mapped). 0, or -1. */
int conn_addr_key(const void *sockaddr, uint8_t key[16]);
/* Count c against the address `key` (the TCP peer's at accept; the one a trusted proxy
 * forwarded, at the upgrade). A connection counts against one address at most. */
int conn_claim_addr(struct conn *c, const uint8_t key[16]);
/* c's TCP peer is loopback or a listed proxy. */
int conn_from_proxy(const struct conn *c);

/* ---- clock and logging ---- */

uint64_t conn_now_ms(void);  /* monotonic ms, read once per loop turn */
uint64_t conn_wall_ms(void); /* ms since the epoch (in the loop: read once per turn) */
/* One line per event: `<RFC 3339 UTC time> peerpigeon <level> [<event>] <message>` (no time
 * under journald, which stamps lines itself), or with json one object per line: {"time",
 * "level", "event", "msg"}. `event` is a stable name (a string literal, e.g. "hub.link.up").
 * Each event prints at most LOG_BURST lines per LOG_WINDOW_MS; what is held back is counted on
 * its next line, so that a flood of refusals cannot flood the log. */
void conn_log(int level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void conn_set_log_level(int level);
void conn_set_log_json(int on);

/* ---- the loop ---- */

/* Raise the fd limit, size the fd table, create the epoll set. 0, or -1 out of memory. */
int conn_init(const struct conn_config *cfg);
int conn_fd_limit(void); /* connections the fd table can hold */
/* A listening socket (non-blocking): accepted connections start with handlers h and owner. */
int conn_listen(int fd, const struct conn_handlers *h, void *owner);
/* Called once per tick (every ping interval / 4, 50 ms to 1 s). At most 4. */
int conn_on_tick(void (*fn)(void *arg), void *arg);
/* Run until *stop is set; then close every connection (1001 "server shutting down") and free
 * everything. */
void conn_run(volatile int *stop);

/* n random bytes from the OS; if it keeps failing, from a generator seeded from the clock
 * (logged once) rather than looping or using uninitialised bytes. */
void conn_random(void *p, size_t n);

/* ---- one connection ---- */

void conn_set_owner(struct conn *c, const struct conn_handlers *h, void *owner);
void *conn_owner(const struct conn *c);
int conn_is_open(const struct conn *c);
uint64_t conn_last_heard(const struct conn *c);
/* In `message`, when the owner's validation of the message failed: 1 if it is a binary
 * message or valid UTF-8; else c is closed 1007 (RFC 6455 8.1) and 0. */
int conn_text_valid(struct conn *c, const char *msg, size_t len);
/* Ping it now (a WebSocket ping; any frame back, the pong included, counts as heard). */
void conn_ping(struct conn *c);
/* The errno behind the end of c (connect, read, write), or 0. */
int conn_error(const struct conn *c);
/* The address of the other end ("203.0.113.7:52114", "[2001:db8::1]:443") into out. */
void conn_peer_addr(const struct conn *c, char *out, size_t cap);
/* Server side: the 101 is queued; from now on the bytes are WebSocket frames. Such connections
 * are counted by conn_ws_count. */
void conn_accept_ws(struct conn *c);
uint32_t conn_ws_count(void);

/* Queue one unfragmented text message made of iov[0..n), coalesced with whatever else is
 * queued and written at the end of the loop turn. A connection whose queue would exceed its cap
 * is a slow reader and is cut off (-1). Messages to a closing connection are dropped (-1). */
int conn_send_iov(struct conn *c, const struct iovec *iov, int n);
int conn_send(struct conn *c, const char *msg, size_t len);
/* Raw bytes (HTTP answers, the upgrade request). */
int conn_send_raw(struct conn *c, const void *p, size_t len);
/* About `bytes` more are to be queued at once (a discovery list, a hub sync): the queue cap
 * grows by that until the queue has drained, so a big network is no "slow reader". Bursts do
 * not add up: a client that never reads is still cut off at the next one. */
void conn_expect(struct conn *c, size_t bytes);
/* Start the close: the owner is told now (`closed`, why = reason); a WebSocket gets a close
 * frame (code, reason), an HTTP connection only what is queued; the socket is closed once that
 * is out and the peer answered, or after a grace period. Nothing more is read or sent. */
void conn_close(struct conn *c, uint16_t code, const char *reason);

/* Client side: fd is a non-blocking TCP socket already connecting. The handshake (connect, the
 * request, the 101 answer) must be done within timeout_ms. NULL if it cannot be registered (fd
 * closed). */
struct conn *conn_dial(int fd, const struct conn_handlers *h, void *owner, uint32_t timeout_ms);
#ifdef PP_TLS
/* The TLS build (make TLS=1): as conn_dial, with TLS between the socket and the WebSocket: once
 * TCP is up, `connected` queues the upgrade as usual and it goes out when the TLS handshake is
 * done (SNI and the certificate check with server_name, the chain against the trust anchors of
 * tls_load_anchors), all within timeout_ms. NULL with *why set if no engine can be had (no
 * trust anchors, out of memory; fd closed). */
struct conn *conn_dial_tls(int fd, const struct conn_handlers *h, void *owner, uint32_t timeout_ms,
                           const char *server_name, const char **why);
/* Why TLS failed on c (a bad certificate, an alert, a protocol error), or NULL; valid until its
 * `closed` returns. A TLS failure ends the connection with why = "TLS handshake failed" (before
 * the handshake was through) or "TLS error". */
const char *conn_tls_error(const struct conn *c);
#endif
/* A connected non-blocking UDP socket: datagrams go to `datagram`; after timeout_ms it ends. */
struct conn *conn_udp(int fd, const struct conn_handlers *h, void *owner, uint32_t timeout_ms);
/* Send one datagram now (not queued). 0, or -1 if it was not sent whole. */
int conn_udp_send(struct conn *c, const void *p, size_t len);

#endif
