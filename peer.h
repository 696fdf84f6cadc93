/* peer.c - the peer registry and the signalling rules of PROTOCOL.md section 3: fixed-size
 * open-addressing hash tables of peers (by id) and networks (by name), networks as intrusive
 * lists, announce / offer / answer / ice-candidate / ping / goodbye / cleanup, and
 * peer-disconnected on every way a peer leaves. Fan-out messages are serialised once. Peers
 * learnt from other hubs (hub.c) live here too, marked remote, in their own table. */
#ifndef PEER_H
#define PEER_H
#include <stddef.h>
#include <stdint.h>
#include "json.h"
#include "peerpigeon.h"

struct conn;
struct peer;

/* Size the tables from max_connections; returns 0, or -1 when out of memory. */
int peer_init(uint32_t max_connections);

/* A WebSocket connection was upgraded with query peerId `id` (already checked: 40 hex).
 * Applies the connection limit and the duplicate rule (which may close the old connection).
 * Returns the new peer, or NULL with *reason set (the caller closes with 1008). */
struct peer *peer_open(struct conn *c, const char *id, const char **reason);

/* A complete text or binary message from the peer's connection. msg is writable scratch. */
void peer_on_message(struct peer *p, const char *msg, size_t len);

/* The connection is going (close frame, reset, timeout, replaced, error): tell the network,
 * forget and free the peer. Called exactly once, by the loop. */
void peer_on_close(struct peer *p, const char *reason);

const char *peer_id(const struct peer *p);
struct conn *peer_conn(const struct peer *p);
int peer_has_hub_rights(const struct peer *p);

/* Counts for /health and /stats. */
uint32_t peer_count(void);     /* connected peers */
uint32_t peer_hub_count(void); /* connected peers that announced as hubs */
uint32_t network_count(void);  /* non-empty networks */
/* The JSON array of /hubs. */
void peer_write_hubs(struct json_writer *w);

/* For hub.c. Messages built by hub.c use these to reach local peers. */
struct peer *peer_find(const char *id);
/* A peer of another hub, learnt over link `via`: remember it and tell the local peers of its
 * network. Returns the new entry (the caller floods it on), or NULL if known, local, a hub, or
 * over the limit. */
struct peer *peer_remote_add(struct conn *via, const char *id, const char *net, size_t net_len,
                             const struct json_val *data, uint64_t seq);
/* Drop a remote peer (it left); tells local peers. Returns 1 if it was known. */
int peer_remote_remove(const char *id, const char *reason);
/* Drop every remote peer learnt over `via` (the link went down); hub_remote_dropped is told of
 * each. */
void peer_remote_drop_link(struct conn *via);
/* A remote peer, or NULL. */
struct peer *peer_remote_find(const char *id);
/* The link a remote peer was learnt from, or NULL. */
struct conn *peer_remote_link(const char *id);
/* Forward a signal (offer/answer/ice-candidate) to a local target if its network is net:
 * returns 1 if delivered, 0 if the target is not connected here, -1 if it is but in another
 * network. data may be NULL (no data key). */
int peer_forward(const char *type, size_t type_len, const char *from, const char *target,
                 const char *net, size_t net_len, const struct json_val *data);
/* Write a signal as delivered: {type, data (verbatim), fromPeerId, targetPeerId, networkName,
 * hubHops (when hops >= 0), timestamp}. */
void peer_write_signal(struct json_writer *w, const char *type, size_t type_len, const char *from,
                       const char *target, const char *net, size_t net_len,
                       const struct json_val *data, int hops);
/* Announcement sequence numbers (hub mode): each local announce gets a new one, increasing
 * across restarts; remote entries keep the one their origin gave. */
uint64_t peer_next_seq(void);
uint64_t peer_seq(const struct peer *p);
void peer_set_seq(struct peer *p, uint64_t seq);
/* 1 if s[0..n) is a peer id: 40 hex digits. */
int peer_id_valid(const char *s, size_t n);
/* The peer id in string member `key` of obj into id: 0, or -1 if absent or not 40 hex. */
int peer_msg_id(const struct json_val *obj, const char *key, char id[PEER_ID_LEN + 1]);
/* A message's networkName (decoded, NUL-terminated) or "global" if absent or null: 0, or -1 if
 * it is not a string of 1..MAX_NETWORK_NAME bytes without NUL. */
int peer_msg_network(const struct json_val *root, char *name, size_t *len);
/* Network name of a peer ("global" if it never announced). */
const char *peer_network(const struct peer *p);
int peer_is_hub(const struct peer *p);
/* Call fn for each announced client peer (not hubs): local ones, then (if remote) those learnt
 * from hubs; e.g. to sync a new link. */
void peer_each(void (*fn)(struct peer *p, void *arg), void *arg, int remote);
/* About how many bytes of peer-discovered peer_each (net NULL) or peer_each_in(net) sends. */
size_t peer_sync_bytes(const char *net, size_t net_len);
/* The same for the client peers of one network. */
void peer_each_in(const char *net, size_t net_len, void (*fn)(struct peer *p, void *arg),
                  void *arg);
/* The link a remote peer came over (NULL for local peers). */
struct conn *peer_via(const struct peer *p);
/* Write the whole peer-discovered message about p (to target, or without targetPeerId when
 * NULL). Returns the offset of the target id in the output (0 when none). */
size_t peer_write_discovered(struct json_writer *w, const struct peer *p, const char *target);
#endif
