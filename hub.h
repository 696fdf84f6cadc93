/* hub.c - hub mode (PROTOCOL.md section 5): outbound links to BOOTSTRAP_HUBS as client-side
 * WebSocket connections in the same loop, retried forever with backoff; the hub-to-hub
 * messages on those links and on inbound hub connections; relaying signals between hubs with
 * a dedup window and a hop limit. */
#ifndef HUB_H
#define HUB_H
#include <stddef.h>
#include <stdint.h>
#include "json.h"

#define HUB_HANDSHAKE_MS 10000 /* connect + 101 answer must take less */
#define DNS_TIMEOUT_MS 2000    /* a name lookup (A, then AAAA if need be) must take less */
#define DNS_RETRY_MS 1000      /* no answer yet: the query is sent once more */

struct conn;
struct peer;

/* Parse BOOTSTRAP_HUBS (cfg); NULL if fine, else what is wrong (exit 2). */
const char *hub_init(void);
void hub_free(void);
/* Called every loop tick: dial the links that are due. */
void hub_tick(void);

/* Loop events on an outbound link. */
void hub_on_connect(struct conn *c);                                /* TCP up: send the upgrade */
int hub_on_handshake(struct conn *c, const char *head, size_t len); /* 101 answer; -1 = refuse */
void hub_on_open(struct conn *c);                                   /* WebSocket open */
void hub_on_message(struct conn *c, const char *msg, size_t len);
void hub_on_close(struct conn *c, void *link); /* link gone, any reason */
/* Loop events on a link's DNS query socket (conn_udp). */
void hub_on_dns(struct conn *c, const uint8_t *buf, size_t len);    /* one datagram */
void hub_on_dns_close(struct conn *c, void *link, const char *why); /* ended, any reason */

uint32_t hub_links_total(void);
uint32_t hub_links_connected(void);
void hub_write_bootstrap(struct json_writer *w); /* /hubstats array */

/* Hooks from peer.c (hub mode only; they do nothing otherwise). */
void hub_local_announced(struct peer *p); /* a local client announced */
void hub_local_left(struct peer *p, const char *net, const char *reason);
void hub_peer_is_hub(struct peer *p);    /* an inbound connection announced as a hub */
void hub_peer_gone(struct peer *p);      /* ...and went */
void hub_remote_dropped(struct peer *r); /* a remote peer dropped with its link */
/* a remote peer hidden by a local one of the same id is what the network knows now */
void hub_remote_revealed(struct peer *r);
/* Signalling for a target that is not local: relay it (hub mode). */
void hub_relay_signal(struct conn *from, const char *type, size_t type_len, const char *from_id,
                      const char *target, const char *net, size_t net_len,
                      const struct json_val *data);
/* A message with hub rights (inbound hub peer or outbound link): peer-discovered,
 * peer-disconnected and relayed signals. Returns 1 if handled. */
int hub_handle(struct conn *from, const char *type, size_t type_len, const struct json_val *root);
#endif
