/* fake_conn.h - the test-only controls of test/fake_conn.c, a connection layer that implements
 * every function of conn.h without sockets or epoll, for unit tests and fuzz targets of peer.c
 * and hub.c. It keeps the real layer's rules: the owner of a connection is told exactly once
 * (`closed`); conn_close tells it at once and the connection is closing (nothing more is
 * delivered or accepted); an immediate end (EOF, reset, slow reader) only marks it dead and the
 * owner is told at the end of the batch (fake_reap), which then frees every connection that is
 * not open. The test is the loop: it sets the clock, delivers messages, runs ticks and reaps.
 *
 * Every message queued is checked (a JSON object with a string "type", to a known connection
 * that is not closing; on a dialled one only after its handshake) and recorded per connection.
 * A broken rule is a violation: reported on stderr with what was wrong, counted, and (unless
 * fake_set_abort(0)) an abort. socket() and connect() are replaced too, so that hub.c dials
 * nothing real: a socket is a /dev/null descriptor, a TCP connect is "in progress". */
#ifndef FAKE_CONN_H
#define FAKE_CONN_H
#include <stddef.h>
#include <stdint.h>

struct conn;

#define FAKE_EPOCH_MS 1700000000000ull /* conn_wall_ms() = FAKE_EPOCH_MS + conn_now_ms() */
#define FAKE_MAX_CONNS 4096            /* connections at once (conn_fd_limit) */

enum { FAKE_HTTP, FAKE_WS, FAKE_DIAL, FAKE_UDP }; /* fake_kind */
enum { FAKE_OPEN, FAKE_CLOSING, FAKE_DEAD };      /* fake_state */

/* ---- the loop ---- */

void fake_set_now(uint64_t ms); /* the monotonic clock (conn_now_ms), starts at 0 */
void fake_advance(uint64_t ms);
void fake_seed(uint64_t seed); /* conn_random's generator (deterministic; seeded 1 at start) */
void fake_tick(void);          /* run the conn_on_tick callbacks */
void fake_ticks_clear(void);   /* forget them (before a second hub_init) */
/* The deadlines of the real layer's housekeeping: a UDP connection past its timeout and a dial
 * past its handshake timeout end (dead); a WebSocket silent for two ping intervals is closed
 * 1001 "ping timeout" (its owner told "timeout"); a closing one is dead after 2 s. */
void fake_expire(void);
/* The end of a batch: tell the owners of dead connections (which may kill more: repeat), then
 * free every connection that is not open. Pointers to them are invalid afterwards. */
void fake_reap(void);
/* What conn_run does when stopped: close every connection 1001 "server shutting down", then
 * reap. Afterwards no connection is left. */
void fake_shutdown(void);

/* ---- connections ---- */

int fake_nconns(void);            /* connections not yet freed */
struct conn *fake_conn_at(int i); /* 0 <= i < fake_nconns(), in no particular order */
int fake_known(const struct conn *c);
int fake_kind(const struct conn *c);
int fake_state(const struct conn *c);
int fake_dial_stage(const struct conn *c); /* FAKE_DIAL: 0 connecting, 1 asked, 2 open */
/* conn_close's code and reason (0 and NULL if not closed by it), and what the owner was told
 * (NULL if not yet). The strings are the caller's (mostly literals): read them before reaping. */
uint16_t fake_close_code(const struct conn *c);
const char *fake_close_reason(const struct conn *c);
const char *fake_told(const struct conn *c);

/* What peerpigeon.c's ws_upgrade does for a client with query peerId `id`: a new connection,
 * conn_accept_ws, "Invalid peerId format" unless 40 hex, "Maximum connections reached" if
 * conn_ws_count() is over the limit, peer_open, on refusal conn_close(1008, reason), else the
 * "connected" message. Returns the connection (closing if refused; see fake_close_reason), or
 * NULL if FAKE_MAX_CONNS are in use. */
struct conn *fake_client(const char *id);
void fake_set_max_connections(uint32_t n); /* MAX_CONNECTIONS for fake_client (1000) */
void fake_set_may_hub(int on); /* fake_client's peers may become hubs (1: an open hub) */

/* A WebSocket message arrives: the owner's `message` handler gets a malloc'd copy of exactly
 * len bytes (so ASan sees an overread). Only to an open connection (a dial once open); sets
 * conn_last_heard. 0 if delivered, -1 if not. */
int fake_deliver(struct conn *c, const char *json_text);
int fake_deliver_n(struct conn *c, const char *p, size_t len);
/* An immediate end (EOF, reset, "connect failed", ...): dead, the owner told at fake_reap. */
void fake_drop(struct conn *c, const char *why);
/* The next message queued on c makes it a slow reader: conn_send returns -1, c is dead. */
void fake_set_slow(struct conn *c);

/* ---- dialled connections (hub links) and UDP (DNS) ---- */

/* TCP is up: stage 1 and the `connected` handler (which queues the upgrade request). */
void fake_connected(struct conn *c);
/* The Sec-WebSocket-Key of the request queued on c ("" if none yet). */
const char *fake_ws_key(const struct conn *c);
const char *fake_request(const struct conn *c); /* the whole request (NUL-terminated) or "" */
/* The answer head p[0..len) arrives on a dial at stage 1: parsed with http_parse_response, then
 * the `handshake` handler and, if it accepts, stage 2 and the `open` handler. A head that does
 * not parse or is refused ends the connection (dead, "bad handshake answer"). 0 if open, -1 if
 * refused, -2 if incomplete or not at stage 1. Needs http.c and ws.c linked. */
int fake_answer(struct conn *c, const char *p, size_t len);
/* fake_answer with a valid 101 for the key of the request (ok), or one with a wrong
 * Sec-WebSocket-Accept (!ok). */
int fake_handshake(struct conn *c, int ok);
/* A datagram arrives on a UDP connection: the `datagram` handler. */
void fake_datagram(struct conn *c, const void *p, size_t n);
/* The last datagram sent on c (conn_udp_send), or NULL. */
const uint8_t *fake_udp_last(const struct conn *c, size_t *len);
void fake_fail_connect(int on);  /* connect() refuses (ECONNREFUSED) */
void fake_fail_udp_send(int on); /* conn_udp_send fails */

/* ---- what was sent ---- */

void fake_set_record(int on); /* keep every message queued (default on) */
/* Messages queued on c of type `type` (NULL = any) since the last fake_clear. */
int fake_count(const struct conn *c, const char *type);
/* The text of the last (fake_last) or i-th (fake_nth, 0 = oldest) such message, NUL-terminated,
 * valid until fake_clear or the connection is freed; NULL if none. */
const char *fake_last(const struct conn *c, const char *type);
const char *fake_nth(const struct conn *c, const char *type, int i);
void fake_clear(struct conn *c);
void fake_clear_all(void);
/* Called with every message queued (after the checks; also for those dropped as the connection
 * is dead or slow), e.g. for a fuzz target's own invariants. NULL = none. */
void fake_on_send(void (*fn)(struct conn *c, const char *msg, size_t len));

/* ---- rules and logs ---- */

void fake_set_abort(int on); /* abort on a violation (default on) */
int fake_violations(void);   /* broken rules so far */
/* conn_log always formats its line (the format and arguments are checked); with recording on
 * the last line is kept; with echo on lines up to the level of conn_set_log_level go to stderr. */
void fake_log_record(int on);
void fake_log_echo(int on);
const char *fake_log_last(void);      /* "" if none */
int fake_pings(const struct conn *c); /* conn_ping calls on c */
int fake_bulk(const struct conn *c);      /* conn_set_bulk on c */
void fake_set_budget(uint64_t bytes);    /* conn_mem_budget (0: none) */
uint64_t fake_mem_charged(void);         /* the sum of conn_mem_charge */
void fake_pong(struct conn *c);       /* c answers: heard now */

/* ---- message helpers for the unit tests ---- */
/* JSON written with ' for " (test text only: none of it needs a real '): a rotating buffer */
const char *fake_q(const char *s);
/* deliver printf-formatted JSON written with ' for " to c */
void fake_sendq(struct conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* 1 if s is not NULL and holds needle (written with ' for ") */
int fake_has(const char *s, const char *needle);
/* string member key of message s (top level, or in data when in_data) equals want */
int fake_str_member(const char *s, int in_data, const char *key, const char *want);
#endif
