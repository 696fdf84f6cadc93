/* peer.c - the peer registry and the signalling rules of PROTOCOL.md section 3.
 * Peers (by id), networks (by name) and remote peers (learnt from other hubs) live in
 * fixed-size open-addressing tables sized from MAX_CONNECTIONS, with a per-process random hash
 * seed; a network holds its members as intrusive lists. Messages are built once into one
 * scratch buffer and queued; a fan-out builds the common text once and only the target differs.
 * Sockets are not touched here: the connection layer queues, closes and frees. */
#include "peer.h"
#include "conn.h"
#include "ws.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#define GLOBAL "global"
#define GLOBAL_LEN 6
#define SCRATCH_EXTRA 4096 /* envelope around a forwarded `data` */
#define REMOTE_PER_CONN 4  /* remote peers kept: 4 x MAX_CONNECTIONS */
#define DUP_GRACE_MS 2000  /* a connection pinged for its id must answer within this */
#define HUBS_LISTED 256    /* entries in /hubs and /hubstats (totalHubs counts them all) */
/* Message rates per connection (hub links are not limited): a burst, then so many per second
 * (GCRA). Over a rate the message is dropped and the first time an `error` says which limit;
 * RATE_STRIKES drops within RATE_WINDOW_MS close the connection (1008 "Rate limit exceeded").
 * The npm client and browsers stay far below: one announce per connection and network, a
 * ping every few seconds, tens of signals per WebRTC connection. */
static const struct {
    uint16_t burst, per_s;
} rates[PEER_RATE_N] = {{5, 1}, {5, 1}, {100, 50}, {2000, 1000}, {30, 5}};
const char *const peer_rate_names[PEER_RATE_N] = {"announce", "goodbye", "ping", "signal",
                                                  "error"};
#define RATE_STRIKES 20
#define RATE_WINDOW_MS 10000
/* bytes of one peer-discovered, to size a burst (typical extra data is small; the fixed queue
 * cap absorbs the rest) */
#define DISCOVERED_EST(net_len) (320 + 6 * (net_len))

struct network {
    struct peer *local, *remote; /* members: connected here / learnt from hubs */
    uint32_t nlocal, nremote;
    size_t len;
    char name[]; /* decoded, NUL-terminated, no NUL inside */
};

struct peer {
    char id[PEER_ID_LEN + 1];
    /* the small fields fill the bytes after the id: 176 bytes in all (a 192-byte heap chunk) */
    uint8_t is_hub;     /* announced as a hub (a claim: shown as isHub, not flooded as a client) */
    uint8_t may_hub;    /* a claim gives hub rights (hub mode; HUB_SECRET presented if set) */
    uint8_t hub_rights; /* its fromPeerId and peer-discovered are honoured */
    uint8_t remote;     /* learnt from a hub; conn is the link */
    uint8_t strikes;    /* messages over a rate within RATE_WINDOW_MS */
    uint8_t over;       /* too many: closed once its message is handled */
    uint64_t probe_at;  /* mono ms of the ping sent when a newcomer claimed its id, or 0 */
    struct conn *conn;
    struct network *net;
    struct peer *prev, *next; /* in net's list */
    char *extra;              /* announce data minus peerId/isHub: `,"k":v...` */
    char *shadow_net;         /* remote, but hidden by a local peer of the same id: its network */
    void *origin;             /* remote: the hub it is connected to (hub.c's), NULL = conn */
    uint64_t seq;             /* its announcement's origin sequence (hub mode; 0 = unknown) */
    uint32_t extra_len;
    uint32_t ann_hash;         /* of its last announce (network, hub flag, data): a repeat is quiet */
    uint32_t tat[PEER_RATE_N]; /* GCRA: when each allowance is whole again (loop ms, 32 bits) */
    uint32_t strike_at;        /* loop ms of the last message over a rate */
    uint64_t connected_at, registered_at, last_activity; /* wall ms */
};

/* ---- open-addressing tables: linear probing, backward-shift deletion, no tombstones ---- */

struct table {
    void **e;
    uint32_t *h;
    uint32_t mask, count, max;
    uint32_t cap_max; /* slots it may grow to (twice max, a power of two) */
    const char *(*key)(const void *e, size_t *len);
};

static uint64_t seed;
static struct peer_config conf;
static struct peer_stats stats;
static uint64_t extra_bytes, remote_bytes; /* announce data kept; remote entries (the budget) */

const char *const peer_type_names[PEER_T_N] = {
    "announce", "offer",         "answer",          "ice-candidate",     "ping",      "pong",
    "goodbye",  "cleanup",       "peer-discovered", "peer-disconnected", "connected", "error",
    "hub-info", "hub-heartbeat", "other",           "invalid",
};

const struct peer_stats *peer_stats(void)
{
    return &stats;
}

int peer_type_index(const char *t, size_t tl)
{
    for (int i = 0; i < PEER_T_OTHER; i++)
        if (peer_type_is(t, tl, peer_type_names[i])) return i;
    return PEER_T_OTHER;
}
static const struct peer_hooks *hooks; /* hub mode, or NULL */

uint64_t peer_hash(const char *p, size_t n)
{
    uint64_t h = seed ^ (n * 0x9e3779b97f4a7c15ull);
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = (h ^ w) * 0xff51afd7ed558ccdull;
        h ^= h >> 32;
        p += 8;
        n -= 8;
    }
    uint64_t w = 0;
    memcpy(&w, p, n);
    h = (h ^ w) * 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 29;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 32;
    return h;
}

static uint32_t hash(const char *p, size_t n)
{
    return (uint32_t)peer_hash(p, n);
}

/* A table starts small and doubles while it is half full, up to twice its max: its memory
 * follows what it holds (a table sized for MAX_CONNECTIONS from the start cost ~165 B per
 * peer at 19,000 peers: every page of it is touched). Growing is an allocation per doubling,
 * never per message. */
#define TABLE_START 1024

static int table_init(struct table *t, uint32_t max, const char *(*key)(const void *, size_t *))
{
    uint32_t cap = 16;
    while (cap < 2 * max)
        cap *= 2;
    t->cap_max = cap;
    if (cap > TABLE_START) cap = TABLE_START;
    t->e = calloc(cap, sizeof *t->e);
    t->h = calloc(cap, sizeof *t->h);
    t->mask = cap - 1;
    t->count = 0;
    t->max = max;
    t->key = key;
    return t->e && t->h ? 0 : -1;
}

static int table_grow(struct table *t)
{
    uint32_t cap = (t->mask + 1) * 2, m = cap - 1;
    void **e = calloc(cap, sizeof *e);
    uint32_t *h = calloc(cap, sizeof *h);
    if (!e || !h) {
        free(e);
        free(h);
        return -1;
    }
    for (uint32_t i = 0; i <= t->mask; i++) {
        if (!t->e[i]) continue;
        uint32_t j = t->h[i] & m;
        while (e[j])
            j = (j + 1) & m;
        e[j] = t->e[i];
        h[j] = t->h[i];
    }
    free(t->e);
    free(t->h);
    t->e = e;
    t->h = h;
    t->mask = m;
    return 0;
}

static void *table_find(const struct table *t, const char *k, size_t n)
{
    uint32_t h = hash(k, n);
    for (uint32_t i = h & t->mask;; i = (i + 1) & t->mask) {
        if (!t->e[i]) return NULL;
        size_t kl;
        const char *kk;
        if (t->h[i] == h && (kk = t->key(t->e[i], &kl), kl == n) && !memcmp(kk, k, n))
            return t->e[i];
    }
}

static int table_add(struct table *t, void *e)
{
    if (t->count >= t->max) return -1;
    /* half full: double (out of memory: go on while a slot stays free for the probes) */
    if (2 * (t->count + 1) > t->mask + 1 && t->mask + 1 < t->cap_max && table_grow(t) &&
        t->count + 1 >= t->mask)
        return -1;
    size_t n;
    const char *k = t->key(e, &n);
    uint32_t h = hash(k, n), i = h & t->mask;
    while (t->e[i])
        i = (i + 1) & t->mask;
    t->e[i] = e;
    t->h[i] = h;
    t->count++;
    return 0;
}

static void table_del_at(struct table *t, uint32_t i)
{
    t->e[i] = NULL;
    t->count--;
    /* shift later members of the cluster back so that lookups never stop short */
    for (uint32_t j = (i + 1) & t->mask; t->e[j]; j = (j + 1) & t->mask) {
        uint32_t home = t->h[j] & t->mask;
        if (((j - home) & t->mask) >= ((j - i) & t->mask)) {
            t->e[i] = t->e[j];
            t->h[i] = t->h[j];
            t->e[j] = NULL;
            i = j;
        }
    }
}

static void table_del(struct table *t, const void *e)
{
    size_t n;
    const char *k = t->key(e, &n);
    for (uint32_t i = hash(k, n) & t->mask; t->e[i]; i = (i + 1) & t->mask)
        if (t->e[i] == e) {
            table_del_at(t, i);
            return;
        }
}

static const char *peer_key(const void *e, size_t *len)
{
    *len = PEER_ID_LEN;
    return ((const struct peer *)e)->id;
}

static const char *net_key(const void *e, size_t *len)
{
    *len = ((const struct network *)e)->len;
    return ((const struct network *)e)->name;
}

static struct table peers, remotes, networks;
static struct conn_pool peer_recs = {.size = sizeof(struct peer)};

static void remote_free(struct peer *r, const char *reason);
static void net_unlink(struct peer *p);
static uint64_t peer_next_seq(void);
static void remote_reveal(struct peer *r, int quiet);
static uint32_t nhubs, nnets_local;
static char *out; /* message scratch: max message + envelope */
static size_t out_cap;

static void peer_on_message(struct conn *c, void *owner, char *msg, size_t len);
static void peer_on_close(struct conn *c, void *owner, const char *why);
static const struct conn_handlers peer_handlers = {
    .message = peer_on_message,
    .closed = peer_on_close,
};

int peer_init(const struct peer_config *cfg)
{
    conf = *cfg;
    uint32_t max_connections = cfg->max_connections;
    conn_random(&seed, sizeof seed);
    out_cap = cfg->max_message_size + SCRATCH_EXTRA + MAX_ANNOUNCE_DATA;
    out = malloc(out_cap);
    uint32_t nremote = max_connections * REMOTE_PER_CONN;
    if (!out || table_init(&peers, max_connections + 16, peer_key) ||
        table_init(&remotes, nremote, peer_key) ||
        table_init(&networks, max_connections + nremote + 16, net_key))
        return -1;
    return 0;
}

void peer_set_hooks(const struct peer_hooks *h)
{
    hooks = h;
}

void peer_free(void)
{
    hooks = NULL; /* quietly: nobody is told of what goes now */
    for (uint32_t i = 0; remotes.e && i <= remotes.mask;) {
        struct peer *r = remotes.e[i];
        if (r) {
            table_del_at(&remotes, i);
            if (r->net) net_unlink(r);
            remote_free(r, NULL);
        } else {
            i++;
        }
    }
    free(peers.e);
    free(peers.h);
    free(remotes.e);
    free(remotes.h);
    free(networks.e);
    free(networks.h);
    free(out);
    memset(&peers, 0, sizeof peers);
    memset(&remotes, 0, sizeof remotes);
    memset(&networks, 0, sizeof networks);
    out = NULL;
}

const char *peer_id(const struct peer *p)
{
    return p->id;
}

struct conn *peer_conn(const struct peer *p)
{
    return p->conn;
}

int peer_has_hub_rights(const struct peer *p)
{
    return p->hub_rights;
}

const char *peer_network(const struct peer *p)
{
    /* a hidden remote peer is in no network here, but is one of shadow_net where it lives */
    return p->net ? p->net->name : p->shadow_net ? p->shadow_net : GLOBAL;
}

uint32_t peer_count(void)
{
    return peers.count;
}

uint32_t peer_hub_count(void)
{
    return nhubs;
}

uint32_t peer_remote_count(void)
{
    return remotes.count;
}

uint32_t peer_network_count(void)
{
    return nnets_local;
}

struct peer *peer_find(const char *id)
{
    return table_find(&peers, id, PEER_ID_LEN);
}

/* ---- networks ---- */

static struct network *net_get(const char *name, size_t len)
{
    struct network *n = table_find(&networks, name, len);
    if (n) return n;
    n = calloc(1, sizeof *n + len + 1);
    if (!n) return NULL;
    memcpy(n->name, name, len);
    n->len = len;
    if (table_add(&networks, n)) {
        free(n);
        return NULL;
    }
    return n;
}

static void net_link(struct network *n, struct peer *p)
{
    struct peer **head = p->remote ? &n->remote : &n->local;
    if (!p->remote && n->nlocal++ == 0) nnets_local++;
    if (p->remote) n->nremote++;
    p->net = n;
    p->prev = NULL;
    p->next = *head;
    if (*head) (*head)->prev = p;
    *head = p;
}

static void net_unlink(struct peer *p)
{
    struct network *n = p->net;
    struct peer **head = p->remote ? &n->remote : &n->local;
    if (p->prev)
        p->prev->next = p->next;
    else
        *head = p->next;
    if (p->next) p->next->prev = p->prev;
    p->net = NULL;
    p->prev = p->next = NULL;
    if (!p->remote && --n->nlocal == 0) nnets_local--;
    if (p->remote) n->nremote--;
    if (n->nlocal == 0 && n->nremote == 0) {
        table_del(&networks, n);
        free(n);
    }
}

/* ---- building messages ---- */

void peer_write_end(struct json_writer *w)
{
    /* the same millisecond for a whole fan-out: its text is written once */
    static uint64_t ms = UINT64_MAX;
    static char end[48];
    static size_t n;
    uint64_t t = conn_wall_ms();
    if (t != ms) {
        struct json_writer e;
        json_writer_init(&e, end, sizeof end);
        JSON_LIT(&e, ",\"timestamp\":");
        json_write_u64(&e, t);
        JSON_LIT(&e, "}");
        ms = t;
        n = e.len;
    }
    json_write_raw(w, end, n);
}

static int rate_ok(struct peer *p, int which);

static void send_error_now(struct peer *p, const char *text)
{
    struct json_writer w;
    char buf[1024];
    json_writer_init(&w, buf, sizeof buf);
    JSON_LIT(&w, "{\"type\":\"error\",\"error\":");
    json_write_str(&w, text, strlen(text));
    peer_write_end(&w);
    if (!w.overflow && conn_send(p->conn, w.p, w.len) == 0) stats.out[PEER_T_ERROR]++;
}

/* Error replies have a rate too: a client sending nothing but bad messages is closed. */
static void send_error(struct peer *p, const char *text)
{
    if (rate_ok(p, PEER_RATE_ERROR)) send_error_now(p, text);
}

/* The rates: 1 if the message may go on. Over a rate: dropped; the first time an error says
 * which limit, and so many drops close the connection once the message is handled. */
static int rate_ok(struct peer *p, int which)
{
    if (!conf.rate_limits || p->hub_rights) return 1;
    uint32_t n = (uint32_t)conn_now_ms(), t = 1000u / rates[which].per_s;
    uint32_t lead = p->tat[which] - n;
    if ((int32_t)lead < 0 || lead > (1u << 30)) lead = 0, p->tat[which] = n; /* whole again */
    if (lead <= t * (rates[which].burst - 1u)) {
        p->tat[which] += t;
        return 1;
    }
    stats.rate_limited[which]++;
    if (n - p->strike_at > RATE_WINDOW_MS) p->strikes = 0;
    p->strike_at = n;
    if (p->strikes < 255) p->strikes++;
    if (p->strikes == 1) {
        char text[200];
        snprintf(text, sizeof text,
                 "Rate limit: at most %u %s messages at once, then %u per second; this one was "
                 "dropped, and going on closes the connection",
                 rates[which].burst, peer_rate_names[which], rates[which].per_s);
        send_error_now(p, text);
        conn_log(LOG_INFO, "limit.rate", "%.8s: over the %s rate", p->id, peer_rate_names[which]);
    } else if (p->strikes == RATE_STRIKES) {
        p->over = 1;
    }
    return 0;
}

/* The JS server's answer to a type it does not route; the real client expects this text. */
static void send_not_routed(struct peer *p, const char *type, size_t tl)
{
    char text[256];
    snprintf(text, sizeof text,
             "Signaling server does not route '%.*s' messages. Use WebRTC data channels for "
             "peer-to-peer communication.",
             (int)tl, type);
    send_error(p, text);
}

/* The tail of a message about a peer: `targetPeerId` for a client (its offset returned), or
 * for hubs which announcement this is (originSeq, see hub.c's tombstones) and, to hubs of ours,
 * whose client it is (originHub). */
static size_t write_addressee(struct json_writer *w, const char *target, uint64_t seq,
                              const char *origin_hub)
{
    if (target) {
        JSON_LIT(w, ",\"targetPeerId\":\"");
        size_t at = w->len;
        json_write_raw(w, target, PEER_ID_LEN);
        JSON_LIT(w, "\"");
        return at;
    }
    if (seq) {
        JSON_LIT(w, ",\"originSeq\":");
        json_write_u64(w, seq);
    }
    if (origin_hub) {
        JSON_LIT(w, ",\"originHub\":\"");
        json_write_raw(w, origin_hub, PEER_ID_LEN);
        JSON_LIT(w, "\"");
    }
    return 0;
}

size_t peer_write_discovered(struct json_writer *w, const struct peer *p, const char *target,
                             const char *origin_hub)
{
    JSON_LIT(w, "{\"type\":\"peer-discovered\",\"data\":{\"peerId\":\"");
    json_write_raw(w, p->id, PEER_ID_LEN);
    if (p->is_hub)
        JSON_LIT(w, "\",\"isHub\":true");
    else
        JSON_LIT(w, "\",\"isHub\":false");
    if (p->extra_len) json_write_raw(w, p->extra, p->extra_len);
    JSON_LIT(w, "},\"networkName\":");
    const char *net = peer_network(p);
    json_write_str(w, net, p->net ? p->net->len : strlen(net));
    JSON_LIT(w, ",\"fromPeerId\":\"system\"");
    size_t at = write_addressee(w, target, p->seq, origin_hub);
    peer_write_end(w);
    return at;
}

/* Send w's message (built with the first recipient's id at id_at) to every local member of n
 * except `skip`: the text is built once, only the 40-byte target differs. */
static void fan_out(struct network *n, const struct peer *skip, const char *msg, size_t len,
                    size_t id_at, int type)
{
    struct iovec iov[3] = {
        {(void *)msg, id_at}, {NULL, PEER_ID_LEN}, {(void *)(msg + id_at + PEER_ID_LEN), 0}};
    iov[2].iov_len = len - id_at - PEER_ID_LEN;
    for (struct peer *q = n->local; q; q = q->next) {
        if (q == skip) continue;
        iov[1].iov_base = q->id;
        if (conn_send_iov(q->conn, iov, 3) == 0) stats.out[type]++;
    }
}

/* Build a message about p for network members with a placeholder target, then fan it out. */
static void announce_to_network(struct peer *p)
{
    static const char zeros[PEER_ID_LEN + 1] = "0000000000000000000000000000000000000000";
    struct json_writer w;
    json_writer_init(&w, out, out_cap);
    size_t at = peer_write_discovered(&w, p, zeros, NULL);
    if (!w.overflow) fan_out(p->net, p, w.p, w.len, at, PEER_T_DISCOVERED);
}

size_t peer_write_disconnected(struct json_writer *w, const char *id, int is_hub,
                               const char *reason, const char *net, size_t net_len,
                               const char *target, uint64_t seq, const char *origin_hub)
{
    JSON_LIT(w, "{\"type\":\"peer-disconnected\",\"data\":{\"peerId\":\"");
    json_write_raw(w, id, PEER_ID_LEN);
    if (is_hub)
        JSON_LIT(w, "\",\"isHub\":true");
    else
        JSON_LIT(w, "\",\"isHub\":false");
    JSON_LIT(w, ",\"reason\":");
    json_write_str(w, reason, strlen(reason));
    JSON_LIT(w, "},\"networkName\":");
    json_write_str(w, net, net_len);
    JSON_LIT(w, ",\"fromPeerId\":\"system\"");
    size_t at = write_addressee(w, target, seq, origin_hub);
    peer_write_end(w);
    return at;
}

static void disconnected_to_network(struct network *n, const struct peer *p, const char *reason)
{
    struct json_writer w;
    json_writer_init(&w, out, out_cap);
    /* the target is a placeholder: fan_out puts each member's id there */
    size_t at =
        peer_write_disconnected(&w, p->id, p->is_hub, reason, n->name, n->len, p->id, 0, NULL);
    if (!w.overflow) fan_out(n, p, w.p, w.len, at, PEER_T_DISCONNECTED);
}

/* ---- membership ---- */

/* quiet: the network is not told (the peer is still a member, now through another hub) */
static void leave_network_as(struct peer *p, const char *reason, int quiet)
{
    struct network *n = p->net;
    if (!n) return;
    char name[MAX_NETWORK_NAME + 1];
    memcpy(name, n->name, n->len + 1);
    net_unlink(p); /* may free n: only its copy of the name is used after this */
    struct network *still = table_find(&networks, name, strlen(name));
    if (still && !quiet) disconnected_to_network(still, p, reason);
    if (!p->remote && !p->is_hub && hooks) hooks->left(p, name, reason);
}

static void leave_network(struct peer *p, const char *reason)
{
    leave_network_as(p, reason, 0);
}

static void extra_free(struct peer *p)
{
    extra_bytes -= p->extra_len;
    conn_mem_charge(-(int64_t)p->extra_len);
    free(p->extra);
    p->extra = NULL;
    p->extra_len = 0;
}

/* Copy an announce `data` object's members except peerId and isHub as `,"k":v...`: 0, -1 too
 * large, -2 over the memory budget's share for announce data. */
static int set_extra(struct peer *p, const struct json_val *data)
{
    /* the old data stays until the new one is known to fit: a refused re-announce changes
     * nothing */
    size_t pos = 0, total = 0;
    struct json_val k, v;
    if (data && data->type == JSON_OBJECT)
        while (json_next(data, &pos, &k, &v))
            if (!json_str_eq(&k, "peerId", 6) && !json_str_eq(&k, "isHub", 5))
                total += k.len + v.len + 2;
    if (total > MAX_ANNOUNCE_DATA) return -1;
    if (total > p->extra_len && !conn_mem_room(extra_bytes, total - p->extra_len)) return -2;
    char *extra = total ? malloc(total) : NULL;
    if (total && !extra) return -1;
    char *o = extra;
    pos = 0;
    while (total && json_next(data, &pos, &k, &v)) {
        if (json_str_eq(&k, "peerId", 6) || json_str_eq(&k, "isHub", 5)) continue;
        *o++ = ',';
        memcpy(o, k.p, k.len);
        o += k.len;
        *o++ = ':';
        memcpy(o, v.p, v.len);
        o += v.len;
    }
    extra_free(p);
    p->extra = extra;
    p->extra_len = (uint32_t)total;
    extra_bytes += total;
    conn_mem_charge((int64_t)total);
    return 0;
}

/* The announcer's discovery list: a peer-discovered for every other member of its network, as
 * peer_write_discovered writes it, but from pieces straight into its queue: what is the same
 * for the whole list (the network name, escaped once; the addressee; the end) is written once,
 * each member adds only its id and data. */
static void send_list(struct peer *to)
{
    static const char head[] = "{\"type\":\"peer-discovered\",\"data\":{\"peerId\":\"";
    static const char hub_t[] = "\",\"isHub\":true", hub_f[] = "\",\"isHub\":false";
    struct network *n = to->net;
    char mid[96 + 6 * MAX_NETWORK_NAME], end[64];
    struct json_writer m, e;
    json_writer_init(&m, mid, sizeof mid);
    JSON_LIT(&m, "},\"networkName\":");
    json_write_str(&m, n->name, n->len);
    JSON_LIT(&m, ",\"fromPeerId\":\"system\"");
    write_addressee(&m, to->id, 0, NULL);
    json_writer_init(&e, end, sizeof end);
    peer_write_end(&e);
    if (m.overflow || e.overflow) return;
    conn_expect(to->conn, (size_t)(n->nlocal + n->nremote) * DISCOVERED_EST(n->len));
    struct iovec iov[6] = {{(void *)head, sizeof head - 1}, {NULL, PEER_ID_LEN}, {NULL, 0},
                           {NULL, 0}, {mid, m.len}, {end, e.len}};
    for (int remote = 0; remote < 2; remote++)
        for (struct peer *q = remote ? n->remote : n->local; q; q = q->next) {
            if (q == to) continue;
            iov[1].iov_base = q->id;
            iov[2] = q->is_hub ? (struct iovec){(void *)hub_t, sizeof hub_t - 1}
                               : (struct iovec){(void *)hub_f, sizeof hub_f - 1};
            iov[3] = (struct iovec){q->extra, q->extra_len};
            if (conn_send_iov(to->conn, iov, 6) == 0) stats.out[PEER_T_DISCOVERED]++;
        }
}

int peer_msg_network(const struct json_val *root, char *name, size_t *len)
{
    struct json_val v;
    if (!peer_msg_get(root, "networkName", &v) || v.type == JSON_NULL) {
        memcpy(name, GLOBAL, GLOBAL_LEN + 1);
        *len = GLOBAL_LEN;
        return 0;
    }
    if (v.type != JSON_STRING) return -1;
    long n = json_str_unescape(&v, name, MAX_NETWORK_NAME + 1);
    if (n <= 0 || memchr(name, 0, (size_t)n)) return -1;
    *len = (size_t)n;
    return 0;
}

static void on_announce(struct peer *p, const struct json_val *root)
{
    char name[MAX_NETWORK_NAME + 1];
    size_t nl;
    if (peer_msg_network(root, name, &nl)) {
        send_error(p, "announce: networkName must be a non-empty string of at most 256 bytes");
        return;
    }
    struct json_val data;
    int has_data = peer_msg_get(root, "data", &data);
    struct json_val ih;
    int is_hub = (has_data && data.type == JSON_OBJECT && peer_msg_get(&data, "isHub", &ih) &&
                  ih.type == JSON_TRUE) ||
                 (nl == strlen(conf.hub_ns) && !memcmp(name, conf.hub_ns, nl));
    int se = set_extra(p, has_data ? &data : NULL);
    if (se) {
        send_error(p, se == -2 ? "announce: data refused: the server's memory for announce data "
                                 "is full, try again later"
                               : "announce: data too large");
        return;
    }
    /* the same announce again (network, hub flag, data): the announcer gets its list, nobody
     * else hears of it */
    uint64_t hh = peer_hash(name, nl) ^
                  peer_hash(p->extra ? p->extra : "", p->extra_len) * 0x9e3779b97f4a7c15ull ^
                  (uint64_t)is_hub;
    uint32_t h = (uint32_t)(hh ^ (hh >> 32));
    int repeat = p->net && p->ann_hash == h && p->net->len == nl &&
                 !memcmp(p->net->name, name, nl) && is_hub == p->is_hub &&
                 !table_find(&remotes, p->id, PEER_ID_LEN);
    p->ann_hash = h;
    if (repeat) {
        stats.repeats++;
        send_list(p);
        return;
    }
    if (p->net && (p->net->len != nl || memcmp(p->net->name, name, nl)))
        leave_network(p, "network changed");
    if (!p->net) {
        struct network *n = net_get(name, nl);
        if (!n) {
            send_error(p, "announce: too many networks");
            return;
        }
        net_link(n, p);
    } else if (is_hub != p->is_hub) {
        /* other hubs knew it as a client: withdraw that, hubs are not flooded */
        if (is_hub && hooks) hooks->left(p, p->net->name, "became a hub");
    }
    /* it was known as a peer of another hub: it moved here. Its old network hears it left
     * (unless it is this one, which knows it already); the entry goes either way, so that the
     * old hub's later withdrawal does not report this live local peer gone. */
    struct peer *was = table_find(&remotes, p->id, PEER_ID_LEN);
    if (was && !was->shadow_net) {
        table_del(&remotes, was);
        if (hooks && hooks->remote_gone) hooks->remote_gone(was);
        if (was->net == p->net)
            net_unlink(was);
        else
            leave_network(was, "network changed");
        remote_free(was, NULL);
    }
    p->is_hub = (uint8_t)is_hub;
    p->registered_at = conn_wall_ms();
    conn_log(LOG_DEBUG, "client.announce", "%.8s announced in %s%s", p->id, p->net->name,
             is_hub ? " as a hub" : "");
    p->seq = peer_next_seq();
    announce_to_network(p);
    send_list(p);
    if (is_hub && p->may_hub && hooks && !p->hub_rights) {
        p->hub_rights = 1;
        conn_set_bulk(p->conn, 1);
        nhubs++;
        hooks->hub_joined(p);
    } else if (!is_hub && p->hub_rights) { /* no longer a hub: nothing it taught stays */
        p->hub_rights = 0;
        conn_set_bulk(p->conn, 0);
        nhubs--;
        hooks->hub_gone(p);
        peer_remote_drop_link(p->conn);
    }
    if (!is_hub && hooks) hooks->announced(p);
}

/* A signal as delivered is head, `data` verbatim, tail: {type, data, fromPeerId, targetPeerId,
 * networkName, hubHops (when hops >= 0), timestamp}. */
static void signal_head(struct json_writer *w, const char *type, size_t type_len, int has_data)
{
    JSON_LIT(w, "{\"type\":");
    json_write_str(w, type, type_len);
    if (has_data) JSON_LIT(w, ",\"data\":");
}

static void signal_tail(struct json_writer *w, const char *from, const char *target,
                        const char *net, size_t net_len, int hops)
{
    JSON_LIT(w, ",\"fromPeerId\":\"");
    json_write_raw(w, from, PEER_ID_LEN);
    JSON_LIT(w, "\",\"targetPeerId\":\"");
    json_write_raw(w, target, PEER_ID_LEN);
    JSON_LIT(w, "\",\"networkName\":");
    json_write_str(w, net, net_len);
    if (hops >= 0) {
        JSON_LIT(w, ",\"hubHops\":");
        json_write_u64(w, (uint64_t)hops);
    }
    peer_write_end(w);
}

void peer_write_signal(struct json_writer *w, const char *type, size_t type_len, const char *from,
                       const char *target, const char *net, size_t net_len,
                       const struct json_val *data, int hops)
{
    signal_head(w, type, type_len, data != NULL);
    if (data) json_write_raw(w, data->p, data->len);
    signal_tail(w, from, target, net, net_len, hops);
}

int peer_forward(const char *type, size_t type_len, const char *from, const char *target,
                 const char *net, size_t net_len, const struct json_val *data)
{
    struct peer *q = peer_find(target);
    if (!q || peer_moved(q)) return 0; /* moved: its hub now is another one */
    const char *qn = peer_network(q);
    if (strlen(qn) != net_len || memcmp(qn, net, net_len)) return -1;
    /* the envelope around the verbatim data span, straight into the target's queue: the data
     * is copied once (a type is at most 63 bytes, 6 per byte escaped; a name 256) */
    char head[32 + 6 * MAX_TYPE_LEN], tail[256 + 6 * MAX_NETWORK_NAME];
    struct json_writer h, t;
    json_writer_init(&h, head, sizeof head);
    signal_head(&h, type, type_len, data != NULL);
    json_writer_init(&t, tail, sizeof tail);
    signal_tail(&t, from, target, net, net_len, -1);
    if (h.overflow || t.overflow) return -1;
    struct iovec iov[3] = {{head, h.len}, {NULL, 0}, {tail, t.len}};
    if (data) iov[1] = (struct iovec){(void *)data->p, data->len};
    if (conn_send_iov(q->conn, iov, 3) == 0) stats.out[peer_type_index(type, type_len)]++;
    return 1;
}

static uint64_t peer_next_seq(void)
{
    /* wall-clock based so that a restarted hub's announcements still count as newer */
    static uint64_t last;
    uint64_t s = conn_wall_ms() << 10;
    last = s > last ? s : last + 1;
    return last;
}

uint64_t peer_seq(const struct peer *p)
{
    return p->seq;
}

int peer_id_valid(const char *s, size_t n)
{
    if (n != PEER_ID_LEN) return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f') ||
              (s[i] >= 'A' && s[i] <= 'F')))
            return 0;
    return 1;
}

int peer_msg_id(const struct json_val *obj, const char *key, char id[PEER_ID_LEN + 1])
{
    struct json_val v;
    if (!peer_msg_get(obj, key, &v) || v.type != JSON_STRING) return -1;
    long n = json_str_unescape(&v, id, PEER_ID_LEN + 1);
    return n == PEER_ID_LEN && peer_id_valid(id, PEER_ID_LEN) ? 0 : -1;
}

static void on_signal(struct peer *p, const char *type, size_t tl, const struct json_val *root)
{
    char target[PEER_ID_LEN + 1], name[MAX_NETWORK_NAME + 1];
    size_t nl;
    struct json_val tv;
    if (!peer_msg_get(root, "targetPeerId", &tv) || tv.type == JSON_NULL) {
        send_error(p, "Missing targetPeerId");
        return;
    }
    if (peer_msg_id(root, "targetPeerId", target)) {
        send_error(p, "targetPeerId must be 40 hex digits");
        return;
    }
    if (peer_msg_network(root, name, &nl)) {
        send_error(p, "networkName must be a non-empty string of at most 256 bytes");
        return;
    }
    struct json_val data;
    const struct json_val *dp = peer_msg_get(root, "data", &data) ? &data : NULL;
    int r = peer_forward(type, tl, p->id, target, name, nl, dp);
    if (r == 0 && hooks)
        hooks->relay(p->conn, type, tl, p->id, target, name, nl, dp);
    else if (r <= 0)
        conn_log(LOG_DEBUG, "signal.dropped", "%.8s: %.*s for %.8s dropped: %s", p->id, (int)tl,
                 type, target, r ? "other network" : "not connected");
}

static void on_goodbye(struct peer *p)
{
    struct network *n = p->net;
    if (!n) return;
    struct json_writer w;
    json_writer_init(&w, out, out_cap);
    JSON_LIT(&w, "{\"type\":\"goodbye\",\"fromPeerId\":\"");
    json_write_raw(&w, p->id, PEER_ID_LEN);
    JSON_LIT(&w, "\",\"networkName\":");
    json_write_str(&w, n->name, n->len);
    peer_write_end(&w);
    if (w.overflow) return;
    for (struct peer *q = n->local; q; q = q->next)
        if (q != p && conn_send(q->conn, w.p, w.len) == 0) stats.out[PEER_T_GOODBYE]++;
    leave_network(p, "goodbye");
}

int peer_type_is(const char *t, size_t tl, const char *s)
{
    return strlen(s) == tl && !memcmp(t, s, tl);
}

/* The members of the message being handled, as json_parse recorded them. */
static struct {
    const char *p;
    size_t len;
    struct json_obj obj;
} cur;

int peer_msg_get(const struct json_val *obj, const char *key, struct json_val *val)
{
    if (obj->p == cur.p && obj->len == cur.len && cur.p)
        return json_obj_get(&cur.obj, obj, key, val);
    return json_get(obj, key, val);
}

int peer_msg_parse(const char *msg, size_t len, struct json_val *root, char type[MAX_TYPE_LEN + 1],
                   size_t *type_len, int *long_type, const char **err)
{
    struct json_val tv;
    *long_type = 0;
    /* one pass: validated, and the root's members recorded for peer_msg_get */
    cur.p = NULL;
    if (json_parse(msg, len, root, &cur.obj)) {
        *err = root->type == JSON_NONE
                   ? "Invalid message: not valid JSON (or nested deeper than 32 levels)"
                   : "Invalid message: expected a JSON object";
        return -1;
    }
    cur.p = root->p;
    cur.len = root->len;
    if (!peer_msg_get(root, "type", &tv) || tv.type != JSON_STRING) {
        *err = "Invalid message: missing string 'type'";
        return -1;
    }
    long tl = json_str_unescape(&tv, type, MAX_TYPE_LEN + 1);
    if (tl < 0) {
        /* too long for any routed type: only an error names it, by its first bytes of raw
         * JSON text, cut at a UTF-8 character boundary (the buffer holds nothing usable) */
        size_t raw = tv.len - 2, n = raw < MAX_TYPE_LEN ? raw : MAX_TYPE_LEN;
        if (n < raw)
            while (n && ((unsigned char)tv.p[1 + n] & 0xC0) == 0x80)
                n--;
        memcpy(type, tv.p + 1, n);
        type[n] = 0;
        tl = (long)n;
        *long_type = 1;
    }
    *type_len = (size_t)tl;
    return 0;
}

static void peer_on_message(struct conn *c, void *owner, char *msg, size_t len)
{
    struct peer *p = owner;
    struct json_val root;
    char type[MAX_TYPE_LEN + 1];
    size_t t;
    int long_type;
    const char *err;
    (void)c;
    if (peer_msg_parse(msg, len, &root, type, &t, &long_type, &err)) {
        stats.in[PEER_T_INVALID]++;
        if (!conn_text_valid(c, msg, len)) return; /* closed 1007 (p is gone) */
        send_error(p, err);
        goto done;
    }
    stats.in[long_type ? PEER_T_OTHER : peer_type_index(type, t)]++;
    p->last_activity = conn_wall_ms();
    if (p->hub_rights && hooks && hooks->handle(p->conn, type, t, &root)) return;
    if (peer_type_is(type, t, "announce")) {
        if (rate_ok(p, PEER_RATE_ANNOUNCE)) on_announce(p, &root);
    } else if (peer_type_is(type, t, "offer") || peer_type_is(type, t, "answer") ||
               peer_type_is(type, t, "ice-candidate")) {
        if (rate_ok(p, PEER_RATE_SIGNAL)) on_signal(p, type, t, &root);
    } else if (peer_type_is(type, t, "ping")) {
        if (!rate_ok(p, PEER_RATE_PING)) goto done;
        char buf[192];
        uint64_t ts = conn_wall_ms();
        int n =
            snprintf(buf, sizeof buf,
                     "{\"type\":\"pong\",\"data\":{\"timestamp\":%llu},\"fromPeerId\":\"system\","
                     "\"targetPeerId\":\"%s\",\"timestamp\":%llu}",
                     (unsigned long long)ts, p->id, (unsigned long long)ts);
        if (conn_send(p->conn, buf, (size_t)n) == 0) stats.out[PEER_T_PONG]++;
    } else if (peer_type_is(type, t, "goodbye")) {
        if (rate_ok(p, PEER_RATE_GOODBYE)) on_goodbye(p);
    } else if (peer_type_is(type, t, "cleanup") || peer_type_is(type, t, "peer-discovered")) {
        /* cleanup: accepted, no reply; peer-discovered from a client: ignored (JS) */
    } else {
        send_not_routed(p, type, t);
    }
done:
    if (p->over) {
        conn_log(LOG_INFO, "limit.rate", "%.8s: closed: %d messages over its rates", p->id,
                 RATE_STRIKES);
        conn_close(c, WS_CLOSE_POLICY, "Rate limit exceeded"); /* frees p */
    }
}

/* ---- connections ---- */

struct peer *peer_open(struct conn *c, const char *id, int may_hub, const char **reason)
{
    struct peer *old = peer_find(id);
    if (old) {
        /* The id is taken. The old connection keeps it while it answers: a newcomer is
         * refused, and unless the old one was heard just now it is pinged; a newcomer that
         * comes back after DUP_GRACE_MS replaces it only if that ping went unanswered (a
         * half-open socket after a network change). An idle, healthy client answers, so its id
         * cannot be taken over by retrying. A connection dropped in this batch (EOF, slow
         * reader) stays registered until the loop reaps it: no second entry for its id. */
        uint64_t now = conn_now_ms(), heard = conn_last_heard(old->conn);
        /* the clock is read once per loop turn: a pong on loopback can come back within the
         * millisecond of the ping, so "heard at probe_at" counts as an answer */
        int unanswered =
            old->probe_at && heard < old->probe_at && now - old->probe_at >= DUP_GRACE_MS;
        if (!conn_is_open(old->conn) || !unanswered) {
            if (conn_is_open(old->conn) && now - heard >= DUP_GRACE_MS &&
                (!old->probe_at || heard >= old->probe_at)) {
                conn_ping(old->conn);
                old->probe_at = now ? now : 1;
            }
            *reason = "Peer already connected";
            stats.refused_duplicate++;
            conn_log(LOG_INFO, "refused", "%.8s: Peer already connected", id);
            return NULL;
        }
        /* the old one did not answer: it gives way; its close touches only itself */
        conn_close(old->conn, WS_CLOSE_GOING_AWAY, "Replaced by a new connection");
        stats.replaced++;
        conn_log(LOG_INFO, "peer.replaced", "%.8s: an unanswering connection replaced by a new one",
                 id);
    }
    struct peer *p = conn_pool_get(&peer_recs);
    if (!p) {
        *reason = "Server out of memory";
        return NULL;
    }
    memcpy(p->id, id, PEER_ID_LEN);
    p->conn = c;
    p->may_hub = (uint8_t)(may_hub != 0);
    for (int i = 0; i < PEER_RATE_N; i++)
        p->tat[i] = (uint32_t)conn_now_ms(); /* every allowance whole */
    p->connected_at = p->last_activity = conn_wall_ms();
    if (table_add(&peers, p)) {
        conn_pool_put(&peer_recs, p);
        *reason = "Maximum connections reached";
        stats.refused_full++;
        conn_log(LOG_WARN, "limit.peers", "%.8s: peer table full", id);
        return NULL;
    }
    conn_set_owner(c, &peer_handlers, p);
    char msg[160];
    int ml = snprintf(msg, sizeof msg,
                      "{\"type\":\"connected\",\"data\":{\"peerId\":\"%.40s\"},\"fromPeerId\":"
                      "\"system\",\"timestamp\":%llu}",
                      id, (unsigned long long)conn_wall_ms());
    if (conn_send(c, msg, (size_t)ml) == 0) stats.out[PEER_T_CONNECTED]++;
    /* A peer known from another hub may connect here (it moved, its old connection may still be
     * open there): the remote entry stays until this one announces (on_announce). */
    return p;
}

static void peer_on_close(struct conn *c, void *owner, const char *reason)
{
    struct peer *p = owner;
    (void)c;
    conn_log(LOG_DEBUG, "client.leave", "%.8s left (%s)", p->id, reason);
    /* moved to another hub while this connection lingered (half-open): for the network it never
     * left, so it is not told it did */
    struct peer *r = table_find(&remotes, p->id, PEER_ID_LEN);
    int moved = r && r->shadow_net && p->net && !p->is_hub && !strcmp(r->shadow_net, p->net->name);
    leave_network_as(p, reason, moved);
    table_del(&peers, p);
    if (p->hub_rights) {
        nhubs--;
        if (hooks) hooks->hub_gone(p);
        peer_remote_drop_link(p->conn);
    }
    r = table_find(&remotes, p->id, PEER_ID_LEN);
    if (r && r->shadow_net) remote_reveal(r, moved);
    extra_free(p);
    conn_pool_put(&peer_recs, p);
}

void peer_write_hubs(struct json_writer *w)
{
    int first = 1;
    JSON_LIT(w, "[");
    for (uint32_t i = 0, n = 0; i <= peers.mask; i++) {
        const struct peer *p = peers.e[i];
        if (!p || !p->hub_rights || !p->net) continue;
        /* anyone can announce as a hub: list at most HUBS_LISTED, and stop while an entry
         * (announce data is at most MAX_ANNOUNCE_DATA) still surely fits */
        if (n++ == HUBS_LISTED || w->cap - w->len < 2 * MAX_ANNOUNCE_DATA + 1024) break;
        if (!first) JSON_LIT(w, ",");
        first = 0;
        JSON_LIT(w, "{\"peerId\":\"");
        json_write_raw(w, p->id, PEER_ID_LEN);
        JSON_LIT(w, "\",\"registeredAt\":");
        json_write_u64(w, p->registered_at);
        JSON_LIT(w, ",\"lastActivity\":");
        json_write_u64(w, p->last_activity);
        JSON_LIT(w, ",\"networkName\":");
        json_write_str(w, p->net->name, p->net->len);
        JSON_LIT(w, ",\"data\":{\"peerId\":\"");
        json_write_raw(w, p->id, PEER_ID_LEN);
        JSON_LIT(w, "\",\"isHub\":true");
        json_write_raw(w, p->extra, p->extra_len);
        JSON_LIT(w, "},\"connectedAt\":");
        json_write_u64(w, p->connected_at);
        JSON_LIT(w, "}");
    }
    JSON_LIT(w, "]");
}

void peer_each(void (*fn)(struct peer *p, void *arg), void *arg, int remote)
{
    for (uint32_t i = 0; i <= peers.mask; i++) {
        struct peer *p = peers.e[i];
        if (p && p->net && !p->is_hub) fn(p, arg);
    }
    for (uint32_t i = 0; remote && i <= remotes.mask; i++) {
        struct peer *r = remotes.e[i];
        if (r && !r->shadow_net) fn(r, arg);
    }
}

size_t peer_sync_bytes(const char *net, size_t net_len)
{
    if (!net) return (size_t)(peers.count + remotes.count) * DISCOVERED_EST(MAX_NETWORK_NAME / 4);
    struct network *n = table_find(&networks, net, net_len);
    return n ? (size_t)(n->nlocal + n->nremote) * DISCOVERED_EST(net_len) : 0;
}

void peer_each_in(const char *net, size_t net_len, void (*fn)(struct peer *p, void *arg), void *arg)
{
    struct network *n = table_find(&networks, net, net_len);
    for (struct peer *q = n ? n->local : NULL; q; q = q->next)
        if (!q->is_hub) fn(q, arg);
    for (struct peer *q = n ? n->remote : NULL; q; q = q->next)
        fn(q, arg);
}

struct conn *peer_via(const struct peer *p)
{
    return p->remote ? p->conn : NULL;
}

/* ---- peers of other hubs ---- */

static int remote_in(const struct peer *r, const char *net, size_t net_len)
{
    const char *name = r->shadow_net ? r->shadow_net : r->net->name;
    return strlen(name) == net_len && !memcmp(name, net, net_len);
}

/* Is an announcement of sequence seq no news for the entry r of the same network? Sequences
 * of one origin are exact, those of different origins wall-clock based, so a peer that moved
 * announced later is newer. JS hubs send none (0): an unsequenced announcement never changes a
 * known entry (as before origins), which also keeps their echoes from taking a peer over. */
static int remote_stale(const struct peer *r, uint64_t seq)
{
    if (!seq) return 1;
    return r->seq && seq <= r->seq;
}

struct peer *peer_remote_add(struct conn *via, void *origin, const char *id, const char *net,
                             size_t net_len, const struct json_val *data, uint64_t seq)
{
    struct json_val ih;
    if (data && data->type == JSON_OBJECT && peer_msg_get(data, "isHub", &ih) &&
        ih.type == JSON_TRUE)
        return NULL;
    struct peer *r = table_find(&remotes, id, PEER_ID_LEN);
    if (r && remote_in(r, net, net_len) && remote_stale(r, seq)) return NULL;
    if (r && remote_in(r, net, net_len)) {
        /* the same peer, newer: it moved to another hub, or re-announced. The network knows it
         * already; the route and the data change. */
        if (set_extra(r, data)) return NULL;
        r->conn = via;
        r->origin = origin;
        r->seq = seq;
        return r;
    }
    if (r && seq && r->seq && seq <= r->seq) return NULL; /* an older one of another network */
    /* unsequenced (a JS hub): only who taught an entry may move it to another network */
    if (r && !seq && !(r->origin == origin && (origin || r->conn == via))) return NULL;
    if (r) peer_remote_remove(id, "network changed");
    if (!conn_mem_room(remote_bytes, sizeof *r)) {
        stats.remote_refused++;
        conn_log(LOG_WARN, "limit.memory", "remote peer %.8s not kept: memory budget", id);
        return NULL;
    }
    r = conn_pool_get(&peer_recs);
    if (!r) return NULL;
    remote_bytes += sizeof *r;
    conn_mem_charge((int64_t)sizeof *r);
    memcpy(r->id, id, PEER_ID_LEN);
    r->remote = 1;
    r->conn = via;
    r->origin = origin;
    r->seq = seq;
    r->connected_at = r->registered_at = r->last_activity = conn_wall_ms();
    if (peer_find(id)) {
        /* it is connected here too: its old connection, maybe half-open, after it moved to
         * another hub. Keep the entry hidden; when the local one goes, the network learns where
         * the peer lives now (peer_on_close). The caller still floods it: other hubs must
         * learn where it went. */
        r->shadow_net = malloc(net_len + 1);
        if (!r->shadow_net || set_extra(r, data) || table_add(&remotes, r)) {
            remote_free(r, NULL);
            return NULL;
        }
        memcpy(r->shadow_net, net, net_len);
        r->shadow_net[net_len] = 0;
        return r;
    }
    struct network *n = net_get(net, net_len);
    if (!n || set_extra(r, data) || table_add(&remotes, r)) {
        if (n && !n->nlocal && !n->nremote) {
            table_del(&networks, n);
            free(n);
        }
        remote_free(r, NULL);
        conn_log(LOG_WARN, "limit.remote_peers", "remote peer %.8s not kept: limit reached", id);
        return NULL;
    }
    net_link(n, r);
    announce_to_network(r);
    return r;
}

static void remote_free(struct peer *r, const char *reason)
{
    if (r->net) leave_network(r, reason);
    free(r->shadow_net);
    extra_free(r);
    remote_bytes -= sizeof *r;
    conn_mem_charge(-(int64_t)sizeof *r);
    conn_pool_put(&peer_recs, r);
}

/* The local peer of r's id is gone: r is what the network should now know (quiet: it knows
 * already, the peer only moved). */
static void remote_reveal(struct peer *r, int quiet)
{
    struct network *n = net_get(r->shadow_net, strlen(r->shadow_net));
    if (!n) {
        table_del(&remotes, r);
        if (hooks && hooks->remote_gone) hooks->remote_gone(r);
        remote_free(r, NULL);
        return;
    }
    free(r->shadow_net);
    r->shadow_net = NULL;
    net_link(n, r);
    if (!quiet) announce_to_network(r);
    if (hooks) hooks->remote_revealed(r);
}

int peer_remote_remove(const char *id, const char *reason)
{
    struct peer *r = table_find(&remotes, id, PEER_ID_LEN);
    if (!r) return 0;
    table_del(&remotes, r);
    if (hooks && hooks->remote_gone) hooks->remote_gone(r);
    remote_free(r, reason);
    return 1;
}

void peer_remote_drop_link(struct conn *via)
{
    for (uint32_t i = 0; i <= remotes.mask;) {
        struct peer *r = remotes.e[i];
        if (r && r->conn == via && r->origin) {
            r->conn = NULL; /* its hub may still be reached another way: a route, not membership */
            i++;
        } else if (r && r->conn == via) {
            table_del_at(&remotes, i); /* a later entry may shift into i: look again */
            if (!r->shadow_net && hooks) hooks->remote_dropped(r);
            if (hooks && hooks->remote_gone) hooks->remote_gone(r);
            remote_free(r, "hub disconnected");
        } else {
            i++;
        }
    }
}

struct peer *peer_remote_find(const char *id)
{
    struct peer *r = table_find(&remotes, id, PEER_ID_LEN);
    return r && !r->shadow_net ? r : NULL;
}

void peer_remote_drop_origin(void *origin, uint64_t before, const char *reason)
{
    for (uint32_t i = 0; i <= remotes.mask;) {
        struct peer *r = remotes.e[i];
        if (r && r->origin == origin && r->seq < before) {
            table_del_at(&remotes, i); /* a later entry may shift into i: look again */
            if (hooks && hooks->remote_gone) hooks->remote_gone(r);
            remote_free(r, reason);
        } else {
            i++;
        }
    }
}

int peer_moved(const struct peer *p)
{
    const struct peer *r = p->remote ? NULL : table_find(&remotes, p->id, PEER_ID_LEN);
    return r && r->shadow_net && r->seq > p->seq;
}

struct peer *peer_remote_entry(const char *id)
{
    return table_find(&remotes, id, PEER_ID_LEN);
}

int peer_remote_hidden(const struct peer *r)
{
    return r->shadow_net != NULL;
}

void *peer_origin(const struct peer *r)
{
    return r->origin;
}
