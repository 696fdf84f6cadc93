/* hub.c - hub mode (PROTOCOL.md section 5): outbound links to BOOTSTRAP_HUBS as client-side
 * WebSocket connections in the same loop, retried forever with backoff; the hub-to-hub
 * messages on those links and on inbound hub connections; relaying signals between hubs with
 * a dedup window and a hop limit.
 *
 * It sits on peer.c (whose hooks it installs) and on the connection layer (its links and their
 * DNS queries are connections with handler tables of their own). */
#ifndef HUB_H
#define HUB_H
#include <stddef.h>
#include <stdint.h>
#include "json.h"

#define MAX_BOOTSTRAP_HUBS 32
#define MAX_URL 1024
#define HUB_HANDSHAKE_MS 10000 /* connect + 101 answer must take less */
#define DNS_TIMEOUT_MS 2000    /* a name lookup (A, then AAAA if need be) must take less */
#define DNS_RETRY_MS 1000      /* no answer yet: the query is sent once more */

struct hub_config {
    const char *id;         /* this hub's 40-hex peer id */
    const char *ns;         /* HUB_MESH_NAMESPACE */
    const char *bootstrap;  /* BOOTSTRAP_HUBS: comma-separated ws:// URLs */
    const char *auth_token; /* sent as Bearer when dialling ("" = none) */
    const char *hub_secret; /* sent as X-Hub-Secret when dialling ("" = none) */
    const char *host;       /* announced to the hubs we dial */
    uint32_t remote_quota;  /* peers one hub (or one JS hub's link) may teach us (0: 1000) */
    size_t max_message_size;
};

/* Turn hub mode on: parse the URLs, install the registry hooks, dial on every tick. The
 * strings must outlive hub.c. NULL if fine, else what is wrong with BOOTSTRAP_HUBS (exit 2). */
const char *hub_init(const struct hub_config *cfg);
/* The port this server listens on: announced to other hubs; a URL that points at it on a
 * loopback address is this server and is skipped. */
void hub_set_port(int port);
void hub_free(void);

/* Counters, for /metrics. */
struct hub_stats {
    uint64_t dials, links_opened;                    /* outbound attempts, links that opened */
    uint64_t relayed;                                /* signals sent on to hubs */
    uint64_t floods_discovered, floods_disconnected; /* announcements and withdrawals sent */
    uint64_t heartbeats_in, heartbeats_out;          /* new heartbeats heard; copies sent */
    uint64_t origins_expired;                        /* hubs given up as unreachable */
};
const struct hub_stats *hub_stats(void);
uint32_t hub_origins_alive(void); /* hubs of ours heard from lately */
uint32_t hub_links_total(void);
uint32_t hub_links_connected(void);
void hub_write_bootstrap(struct json_writer *w); /* /hubstats array */
#endif
