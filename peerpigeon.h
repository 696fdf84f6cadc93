/* peerpigeon.h - what the loop in peerpigeon.c offers the other modules: the configuration,
 * the clock, logging, and connections (accepted WebSocket peers and the outbound hub links of
 * hub.c) with a queue-a-message / close-later API. A connection is owned by peerpigeon.c: it is
 * created there and freed there, at the end of an epoll batch, never in the middle of one. */
#ifndef PEERPIGEON_H
#define PEERPIGEON_H
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#define PEER_ID_LEN 40
#define MAX_NETWORK_NAME 256    /* bytes of a decoded networkName; longer -> error */
#define MAX_ANNOUNCE_DATA 16384 /* bytes of announce `data` kept per peer; more -> error */
#define MAX_BOOTSTRAP_HUBS 32
#define MAX_TYPE_LEN 63   /* bytes of a message type we act on; longer ones are unknown */
#define MAX_REASON_LEN 63 /* bytes of a peer-disconnected reason relayed between hubs */
#define MAX_URL 1024

enum log_level { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG };

struct config {
    int port;
    char host[256];
    uint32_t max_connections;
    char cors_origin[256];
    int is_hub;
    char hub_ns[MAX_NETWORK_NAME + 1];
    char bootstrap_hubs[MAX_BOOTSTRAP_HUBS * MAX_URL];
    char auth_token[256];
    size_t max_message_size;
    uint32_t ping_interval_ms;
    int log_level;
    char hub_id[PEER_ID_LEN + 1];
};

extern struct config cfg;
extern int bound_port;  /* the port actually listened on */
extern uint64_t now_ms; /* monotonic clock, ms, updated once per loop turn */
uint64_t wall_ms(void); /* ms since the epoch */

void log_msg(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

struct conn;
struct peer;

/* Queue one unfragmented WebSocket message made of the concatenation of iov[0..n) (text frame),
 * coalesced with whatever else is queued and written at the end of the loop turn. A connection
 * whose queue would exceed its cap is a slow reader and is cut off (returns -1). Messages to a
 * closing connection are dropped (returns -1). */
int conn_send_iov(struct conn *c, const struct iovec *iov, int n);
/* About `bytes` more are to be queued at once (a discovery list, a hub sync): the queue cap
 * grows by that until the queue has drained, so a big network is no "slow reader". Bursts do
 * not add up: a client that never reads is still cut off at the next one. */
void conn_expect(struct conn *c, size_t bytes);
int conn_send(struct conn *c, const char *msg, size_t len);
/* Start the close handshake: queue a close frame (code, reason), stop reading messages, close
 * the socket once the frame is out and the peer answered (or after a grace period). The peer
 * (if any) has already been told via peer_on_close before this returns. */
void conn_close(struct conn *c, uint16_t code, const char *reason);
int conn_is_open(const struct conn *c);
struct peer *conn_peer(const struct conn *c);
uint64_t conn_last_heard(const struct conn *c);

/* Outbound hub links (hub.c): a client-side connection that the loop reads and writes like any
 * other; hub.c is told of each event. */
struct conn *conn_dial(int fd, void *hublink); /* fd already connecting, non-blocking */
void *conn_hublink(const struct conn *c);
/* Queue raw bytes (the HTTP upgrade request) - the only non-frame output. */
int conn_send_raw(struct conn *c, const void *p, size_t len);

/* DNS queries of hub.c: fd is a non-blocking UDP socket already connected to the nameserver.
 * Each datagram read goes to hub_on_dns; after DNS_TIMEOUT_MS (hub.h) the loop ends it. However
 * it ends (timeout, socket error, conn_close, shutdown), hub_on_dns_close is told once, and the
 * connection is freed at the end of the batch. NULL if it cannot be registered (fd closed). */
struct conn *conn_udp(int fd, void *hublink);
/* Send one datagram now (not queued). 0, or -1 if it was not sent whole. */
int conn_udp_send(struct conn *c, const void *p, size_t len);

#endif
