/* peer.c - the peer registry and the signalling rules of PROTOCOL.md section 3: fixed-size
 * open-addressing hash tables of peers (by id) and networks (by name), networks as intrusive
 * lists, announce / offer / answer / ice-candidate / ping / goodbye / cleanup, and
 * peer-disconnected on every way a peer leaves. Fan-out messages are serialised once. Peers
 * learnt from other hubs live here too, marked remote, in their own table.
 *
 * It sits on the connection layer (conn.h): a peer owns its connection through conn_set_owner
 * and hears of its messages and its end through a handler table. Hub mode reaches it only
 * through the hooks that hub.c installs (peer_set_hooks); without them it is a plain server. */
#ifndef PEER_H
#define PEER_H
#include <stddef.h>
#include <stdint.h>
#include "json.h"

#define PEER_ID_LEN 40
#define MAX_NETWORK_NAME 256    /* bytes of a decoded networkName; longer -> error */
#define MAX_ANNOUNCE_DATA 16384 /* bytes of announce `data` kept per peer; more -> error */
#define MAX_TYPE_LEN 63         /* bytes of a message type we act on; longer ones are unknown */
#define MAX_REASON_LEN 63       /* bytes of a peer-disconnected reason relayed between hubs */

struct conn;
struct peer;

struct peer_config {
    uint32_t max_connections;  /* sizes the tables */
    size_t max_message_size;   /* sizes the message scratch */
    uint32_t ping_interval_ms; /* an old connection heard from within it keeps its id */
    const char *hub_ns;        /* announcing into it makes a peer a hub */
    int rate_limits;           /* RATE_LIMITS: message rates per connection (hub links free) */
};

/* Size the tables; 0, or -1 when out of memory. */
int peer_init(const struct peer_config *cfg);
void peer_free(void); /* every peer must be gone */

/* What hub mode is told (hub.c installs them; NULL = not a hub). */
struct peer_hooks {
    void (*announced)(struct peer *p); /* a local client announced */
    void (*left)(struct peer *p, const char *net, const char *reason); /* ...left net */
    void (*hub_joined)(struct peer *p);      /* an inbound connection announced as a hub */
    void (*hub_gone)(struct peer *p);        /* ...and went */
    void (*remote_dropped)(struct peer *r);  /* a remote peer dropped with its link */
    void (*remote_revealed)(struct peer *r); /* a remote peer hidden by a local one is visible */
    void (*remote_gone)(struct peer *r);     /* an entry of a remote peer is about to be freed */
    /* a signal for a target that is not local */
    void (*relay)(struct conn *from, const char *type, size_t type_len, const char *from_id,
                  const char *target, const char *net, size_t net_len, const struct json_val *data);
    /* a message with hub rights; 1 if handled */
    int (*handle)(struct conn *from, const char *type, size_t type_len,
                  const struct json_val *root);
};
void peer_set_hooks(const struct peer_hooks *h);

/* A WebSocket connection was upgraded with query peerId `id` (already checked: 40 hex).
 * Applies the duplicate rule (which may close the old connection). may_hub: an announce as a
 * hub gives it hub rights (hub mode, and HUB_SECRET presented when one is set); else a claim
 * is only a flag. Returns the new peer, which now owns c (its messages and its end go to
 * peer.c; it is sent "connected"), or NULL with *reason set (the caller closes with 1008). */
struct peer *peer_open(struct conn *c, const char *id, int may_hub, const char **reason);

const char *peer_id(const struct peer *p);
struct conn *peer_conn(const struct peer *p);
int peer_has_hub_rights(const struct peer *p);

/* ---- counters, for /metrics ---- */
/* Message types counted in and out (PEER_T_OTHER: any other, PEER_T_INVALID: not JSON, not an
 * object, no string type). */
enum {
    PEER_T_ANNOUNCE,
    PEER_T_OFFER,
    PEER_T_ANSWER,
    PEER_T_ICE,
    PEER_T_PING,
    PEER_T_PONG,
    PEER_T_GOODBYE,
    PEER_T_CLEANUP,
    PEER_T_DISCOVERED,
    PEER_T_DISCONNECTED,
    PEER_T_CONNECTED,
    PEER_T_ERROR,
    PEER_T_HUB_INFO,
    PEER_T_HEARTBEAT,
    PEER_T_OTHER,
    PEER_T_INVALID,
    PEER_T_N
};
extern const char *const peer_type_names[PEER_T_N];
int peer_type_index(const char *type, size_t type_len);
/* The message rates of a connection: a message over one is dropped. */
enum { PEER_RATE_ANNOUNCE, PEER_RATE_GOODBYE, PEER_RATE_PING, PEER_RATE_SIGNAL, PEER_RATE_ERROR,
       PEER_RATE_N };
extern const char *const peer_rate_names[PEER_RATE_N];
struct peer_stats {
    uint64_t in[PEER_T_N];  /* messages from connected peers (hubs among them), by type */
    uint64_t out[PEER_T_N]; /* messages queued to connected peers, by type */
    uint64_t refused_duplicate, refused_full, replaced;
    uint64_t rate_limited[PEER_RATE_N]; /* messages dropped over a rate */
    uint64_t repeats;        /* announces identical to the last one: not broadcast */
    uint64_t remote_refused; /* remote peers not kept for the memory budget */
};
const struct peer_stats *peer_stats(void);
uint32_t peer_remote_count(void); /* peers of other hubs kept (hidden ones too) */

/* Counts for /health and /stats. */
uint32_t peer_count(void);         /* connected peers */
uint32_t peer_hub_count(void);     /* connected peers with hub rights */
uint32_t peer_network_count(void); /* networks with a connected peer */
/* The JSON array of /hubs. */
void peer_write_hubs(struct json_writer *w);

/* ---- for hub.c ---- */

struct peer *peer_find(const char *id);
/* A peer of another hub: announcement `seq` (0 = none, from a JS hub) of the hub `origin`
 * (hub.c's opaque record; NULL = the link itself, as for a JS hub), learnt over link `via`.
 * Remember it and tell the local peers of its network, or, when this announcement is newer than
 * the one known (it moved to another hub, re-announced), take its route and data. Returns the
 * entry when it is new or changed (the caller floods it on; it may be hidden behind a local
 * peer of the same id), or NULL if it is no news, a hub, or over the limit. */
struct peer *peer_remote_add(struct conn *via, void *origin, const char *id, const char *net,
                             size_t net_len, const struct json_val *data, uint64_t seq);
/* Drop a remote peer (it left); tells local peers. Returns 1 if it was known. */
int peer_remote_remove(const char *id, const char *reason);
/* The link `via` went down: remote peers with an origin hub lose this route only (their hub may
 * still be reached another way); those without (learnt from a JS hub) are dropped, and the
 * remote_dropped hook is told of each. */
void peer_remote_drop_link(struct conn *via);
/* Drop the remote peers of `origin` announced before sequence `before` (UINT64_MAX: all): the
 * hub is unreachable, or restarted without them. Local peers are told (reason). */
void peer_remote_drop_origin(void *origin, uint64_t before, const char *reason);
struct peer *peer_remote_find(const char *id);  /* a visible remote peer, or NULL */
struct peer *peer_remote_entry(const char *id); /* visible or hidden, or NULL */
int peer_remote_hidden(const struct peer *r);   /* hidden behind a local peer of its id */
/* A local peer announced more recently at another hub (its connection here lingers, maybe
 * half-open): signals for it go there, and it may speak through our hubs. */
int peer_moved(const struct peer *p);
void *peer_origin(const struct peer *r); /* a remote peer's origin (NULL: its link) */
/* Forward a signal (offer/answer/ice-candidate) to a local target if its network is net:
 * returns 1 if delivered, 0 if the target is not connected here, -1 if it is but in another
 * network. data may be NULL (no data key). */
int peer_forward(const char *type, size_t type_len, const char *from, const char *target,
                 const char *net, size_t net_len, const struct json_val *data);
/* Announcement sequence (hub mode): each local announce gets a new one, increasing across
 * restarts; remote entries keep the one their origin gave. */
uint64_t peer_seq(const struct peer *p);
const char *peer_network(const struct peer *p); /* "global" if it never announced */
/* Call fn for each announced client peer (not hubs): local ones, then (if remote) those learnt
 * from hubs; e.g. to sync a new link. */
void peer_each(void (*fn)(struct peer *p, void *arg), void *arg, int remote);
/* The same for the client peers of one network. */
void peer_each_in(const char *net, size_t net_len, void (*fn)(struct peer *p, void *arg),
                  void *arg);
/* About how many bytes of peer-discovered peer_each (net NULL) or peer_each_in(net) sends. */
size_t peer_sync_bytes(const char *net, size_t net_len);
struct conn *peer_via(const struct peer *p); /* the link a remote peer came over; NULL if local */
/* A seeded hash of s[0..n) (this process's seed: not predictable from outside). */
uint64_t peer_hash(const char *s, size_t n);

/* ---- messages ---- */

/* The preamble of every message: valid JSON, an object, a string "type". 0 with *root and
 * type[0..*type_len) (NUL-terminated; a type too long to act on is cut to its first bytes and
 * *long_type set), or -1 with *err saying what is wrong. */
int peer_msg_parse(const char *msg, size_t len, struct json_val *root, char type[MAX_TYPE_LEN + 1],
                   size_t *type_len, int *long_type, const char **err);
/* json_get, answered from the members json_parse recorded when obj is the message being
 * handled (no rescan, whatever the key order); any other object is scanned. */
int peer_msg_get(const struct json_val *obj, const char *key, struct json_val *out);
/* 1 if type[0..tl) is s. */
int peer_type_is(const char *type, size_t tl, const char *s);
/* 1 if s[0..n) is a peer id: 40 hex digits. */
int peer_id_valid(const char *s, size_t n);
/* The peer id in string member `key` of obj into id: 0, or -1 if absent or not 40 hex. */
int peer_msg_id(const struct json_val *obj, const char *key, char id[PEER_ID_LEN + 1]);
/* A message's networkName (decoded, NUL-terminated) or "global" if absent or null: 0, or -1 if
 * it is not a string of 1..MAX_NETWORK_NAME bytes without NUL. */
int peer_msg_network(const struct json_val *root, char *name, size_t *len);
/* `,"timestamp":<now>}`: the end of every message we build. */
void peer_write_end(struct json_writer *w);
/* Write a signal as delivered: {type, data (verbatim), fromPeerId, targetPeerId, networkName,
 * hubHops (when hops >= 0), timestamp}. */
void peer_write_signal(struct json_writer *w, const char *type, size_t type_len, const char *from,
                       const char *target, const char *net, size_t net_len,
                       const struct json_val *data, int hops);
/* Write the whole peer-discovered message about p: to target, or to hubs (target NULL: with
 * originSeq, and originHub when origin_hub is not NULL). Returns the offset of the target id in
 * the output (0 when none). */
size_t peer_write_discovered(struct json_writer *w, const struct peer *p, const char *target,
                             const char *origin_hub);
/* Write a peer-disconnected about peer id of net: to `target` (its offset returned), or to hubs
 * (target NULL: with originSeq when seq is not 0, originHub when origin_hub is not NULL). */
size_t peer_write_disconnected(struct json_writer *w, const char *id, int is_hub,
                               const char *reason, const char *net, size_t net_len,
                               const char *target, uint64_t seq, const char *origin_hub);
#endif
