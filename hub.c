/* hub.c - hub mode (PROTOCOL.md section 5). Outbound links to BOOTSTRAP_HUBS are client-side
 * WebSocket connections owned by the loop like any other; this file parses the URLs, dials
 * (non-blocking connect; numeric hosts, localhost and /etc/hosts need no lookup, other names
 * one non-blocking UDP query via dns.c), checks the 101 answer, retries forever with jittered
 * backoff, and
 * speaks the hub protocol on both outbound links and inbound hub connections: peers flooded
 * with split horizon and state-based dedup, signals routed by where the target was learnt,
 * with a hop limit and a dedup window. wss:// is dialled only by the TLS build (make TLS=1:
 * conn_dial_tls; this file never sees the TLS engine); the default build reports it. */
#include "hub.h"
#include "conn.h"
#include "dns.h"
#include "http.h"
#include "peer.h"
#include "ws.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define BACKOFF_MIN_MS 1000
#define BACKOFF_MAX_MS 30000
#define MAX_INBOUND_HUBS 256
#define HUB_MAX_HOPS 8   /* a relayed signal crosses at most this many hubs */
#define DEDUP_SLOTS 8192 /* recent relayed signals remembered */
#define DEDUP_WINDOW_MS 5000
#define TOMB_SLOTS 4096 /* recent withdrawals remembered */
#define TOMB_MS 60000
#define TOMB_MSG_EST 320       /* bytes of one replayed withdrawal, to size the burst */
#define HUB_HEARTBEAT_MS 1000  /* each hub of ours floods a heartbeat this often */
#define ORIGIN_TIMEOUT_MS 4000 /* a hub unheard this long on every path: its clients are gone */
#define MAX_ORIGINS 256        /* hubs of ours in the mesh whose clients we keep */
#define SEQ_SKEW_MS 60000      /* an originSeq further ahead of our clock than this is refused */
#define RESYNC_AGAIN_MS 2000   /* a hub given up and heard again: a second sync round after */

struct link {
    char uri[MAX_URL];
    char host[256];
    char target[MAX_URL + 64]; /* path?query&peerId=<hub id> */
    int port;
    const char *unsupported; /* why it is never dialled, or NULL */
    struct conn *c;
    struct conn *dns;    /* a name lookup in flight (conn_udp), or NULL */
    uint16_t qid, qtype; /* the query on `dns` */
    int dns_resent;      /* the query went out a second time */
    uint64_t dns_sent;   /* mono ms */
    int open;
    int peer_caches;       /* the other side is peerpigeon-c: it replays peers itself */
    uint32_t npeers;       /* peers learnt over it with no origin (a JS hub's clients) */
    uint32_t attempt;      /* attempts since the last successful open */
    uint64_t last_attempt; /* wall ms */
    uint64_t next_try;     /* mono ms */
    char key[25];
#ifdef PP_TLS
    char tls_error[320]; /* the last TLS failure of this link, for /hubstats */
#endif
};

static struct link links[MAX_BOOTSTRAP_HUBS];
static int nlinks;
static struct conn *inbound[MAX_INBOUND_HUBS];
static uint8_t inbound_ours[MAX_INBOUND_HUBS];    /* said hub-info: speaks the mesh protocol */
static uint32_t inbound_npeers[MAX_INBOUND_HUBS]; /* peers it taught us (a JS hub's clients) */
static int ninbound;

/* A hub of ours in the mesh (an origin): each hub is the only authority on its own clients.
 * Its heartbeats (flooded, deduplicated by sequence) say it is alive and which link is the
 * freshest way to it; its clients are kept until it withdraws them, restarts without them
 * (`since`), or goes unheard on every path for ORIGIN_TIMEOUT_MS. A link going down changes
 * routes, never membership. */
struct origin {
    char id[PEER_ID_LEN + 1];
    uint8_t used, alive;
    uint64_t hb_seq; /* its latest heartbeat */
    uint64_t since;  /* the first sequence of its current run */
    uint64_t heard;  /* mono ms */
    struct conn *via;
    uint32_t npeers; /* its clients we keep (at most conf.remote_quota) */
};
static struct origin origins[MAX_ORIGINS];
static struct hub_stats stats;
static int norigins;
static uint64_t hb_seq, hb_since, hb_next; /* our own heartbeats */
static uint64_t resync_due;                /* mono ms of a second round of hub-sync, or 0 */
static struct {
    uint64_t h;
    uint64_t at;
} seen[DEDUP_SLOTS];

/* Peers that left, by id hash: the sequence of the announcement withdrawn. A peer-discovered
 * still travelling round a ring of hubs after the withdrawal carries that sequence or an older
 * one and is dropped, so it cannot bring the peer back as a ghost. */
static struct {
    uint64_t h;
    uint64_t seq;
    uint64_t at;
    char id[PEER_ID_LEN];     /* whose */
    char origin[PEER_ID_LEN]; /* the hub that withdrew it: replayed to hubs of ours on link open */
} tombs[TOMB_SLOTS];

static char *out;
static size_t out_cap;
static struct hub_config conf;
static int port_self; /* the port we listen on */

static void hub_tick(void *arg);
static void heartbeat_send(void);
static void origins_expire(void);
static void resync_all(void);
static void hub_on_connect(struct conn *c, void *owner);
static int hub_on_handshake(struct conn *c, void *owner, const struct http_response *res);
static void hub_on_open(struct conn *c, void *owner);
static void hub_on_message(struct conn *c, void *owner, char *msg, size_t len);
static void hub_on_close(struct conn *c, void *owner, const char *why);
static void hub_on_dns(struct conn *c, void *owner, const uint8_t *buf, size_t len);
static void hub_on_dns_close(struct conn *c, void *owner, const char *why);
static void hub_local_announced(struct peer *p);
static void hub_local_left(struct peer *p, const char *net, const char *reason);
static void hub_peer_is_hub(struct peer *p);
static void hub_peer_gone(struct peer *p);
static void hub_remote_dropped(struct peer *r);
static void hub_remote_revealed(struct peer *r);
static void hub_remote_gone(struct peer *r);
static void hub_relay_signal(struct conn *from, const char *type, size_t type_len,
                             const char *from_id, const char *target, const char *net,
                             size_t net_len, const struct json_val *data);
static int hub_handle(struct conn *from, const char *type, size_t tl, const struct json_val *root);

static const struct conn_handlers link_handlers = {
    .connected = hub_on_connect,
    .handshake = hub_on_handshake,
    .open = hub_on_open,
    .message = hub_on_message,
    .closed = hub_on_close,
};
static const struct conn_handlers dns_handlers = {
    .datagram = hub_on_dns,
    .closed = hub_on_dns_close,
};
static const struct peer_hooks hooks = {
    .announced = hub_local_announced,
    .left = hub_local_left,
    .hub_joined = hub_peer_is_hub,
    .hub_gone = hub_peer_gone,
    .remote_dropped = hub_remote_dropped,
    .remote_revealed = hub_remote_revealed,
    .remote_gone = hub_remote_gone,
    .relay = hub_relay_signal,
    .handle = hub_handle,
};

/* The outbound link on connection c, or NULL (an inbound hub is a peer's connection). */
static struct link *link_of(const struct conn *c)
{
    for (int i = 0; i < nlinks; i++)
        if (links[i].c == c) return &links[i];
    return NULL;
}

/* A relayed signal's hubHops: a whole number below the limit, else the limit (dropped): an
 * overflowing, negative or fractional count must not reset it. */
static unsigned hops_of(const struct json_val *v)
{
    unsigned n = 0;
    if (v->type != JSON_NUMBER) return 0; /* absent in spirit: JS hubs may not send it */
    for (size_t i = 0; i < v->len; i++) {
        if (v->p[i] < '0' || v->p[i] > '9') return HUB_MAX_HOPS;
        n = n * 10 + (unsigned)(v->p[i] - '0');
        if (n >= HUB_MAX_HOPS) return HUB_MAX_HOPS;
    }
    return n;
}

/* ---- URLs ---- */

static const char *parse_url(struct link *l, const char *s, size_t n)
{
    if (n >= MAX_URL) return "URL too long";
    memcpy(l->uri, s, n);
    l->uri[n] = 0;
    const char *p = l->uri;
    int wss = !strncmp(p, "wss://", 6);
    if (wss) {
#ifndef PP_TLS
        l->unsupported = "wss:// needs the TLS build of peerpigeon-c (make TLS=1), or a TLS "
                         "proxy in front of the remote hub dialled with ws://";
#endif
        p += 6;
    } else if (!strncmp(p, "ws://", 5)) {
        p += 5;
    } else {
        return "only ws:// URLs can be dialled";
    }
    const char *h = p, *he;
    if (*p == '[') {
        he = strchr(p, ']');
        if (!he) return "unclosed [ in host";
        h = p + 1;
        p = he + 1;
    } else {
        while (*p && *p != ':' && *p != '/' && *p != '?') {
            if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                  (*p >= '0' && *p <= '9') || *p == '.' || *p == '-' || *p == '_'))
                return "bad character in host";
            p++;
        }
        he = p;
    }
    if (he == h || (size_t)(he - h) >= sizeof l->host) return "missing or too long host";
    memcpy(l->host, h, (size_t)(he - h));
    l->host[he - h] = 0;
#ifdef PP_TLS
    unsigned char ip[16];
    if (wss && (inet_pton(AF_INET, l->host, ip) == 1 || inet_pton(AF_INET6, l->host, ip) == 1))
        l->unsupported = "wss:// to an IP address: the TLS build checks the certificate by host "
                         "name only; dial the name the certificate is for";
#endif
    l->port = wss ? 443 : 80;
    if (*p == ':') {
        long port = 0;
        p++;
        if (*p < '0' || *p > '9') return "bad port";
        while (*p >= '0' && *p <= '9') {
            port = port * 10 + (*p++ - '0');
            if (port > 65535) return "bad port";
        }
        if (port == 0) return "bad port";
        l->port = (int)port;
    }
    const char *path = *p == '/' ? p : "/";
    const char *query = *p == '?' ? p : strchr(p, '?');
    if (*p && *p != '/' && *p != '?') return "junk after the port";
    for (const char *q = p; *q; q++)
        if ((unsigned char)*q <= 0x20 || (unsigned char)*q >= 0x7f || *q == '#')
            return "bad character in path";
    size_t plen = query ? (size_t)(query - path) : strlen(path);
    if (*p == '?') plen = 0;
    int n2 =
        snprintf(l->target, sizeof l->target, "%.*s%s%s%speerId=%s", (int)plen, plen ? path : "/",
                 query ? query : "", query ? "" : "?", query && query[1] ? "&" : "", conf.id);
    if (n2 < 0 || (size_t)n2 >= sizeof l->target) return "URL too long";
    return NULL;
}

const char *hub_init(const struct hub_config *cfg)
{
    static char err[MAX_URL + 128];
    conf = *cfg;
    if (!conf.auth_token) conf.auth_token = "";
    if (!conf.hub_secret) conf.hub_secret = "";
    if (!conf.remote_quota) conf.remote_quota = 1000;
    out_cap = cfg->max_message_size + 8192;
    out = malloc(out_cap);
    if (!out) return "out of memory";
    const char *s = conf.bootstrap;
    while (*s) {
        while (*s == ',' || *s == ' ')
            s++;
        const char *e = s;
        while (*e && *e != ',')
            e++;
        size_t n = (size_t)(e - s);
        while (n && s[n - 1] == ' ')
            n--;
        if (n) {
            if (nlinks == MAX_BOOTSTRAP_HUBS) return "too many URLs (at most 32)";
            struct link *l = &links[nlinks];
            const char *why = parse_url(l, s, n);
            if (why) {
                snprintf(err, sizeof err, "'%.*s': %s", (int)n, s, why);
                return err;
            }
            if (l->unsupported)
                conn_log(LOG_WARN, "hub.config", "bootstrap hub %s not dialled: %s", l->uri,
                         l->unsupported);
            nlinks++;
        }
        s = e;
    }
    peer_set_hooks(&hooks);
    hb_since = hb_seq = conn_wall_ms() << 10; /* every announcement of this run is later */
    if (conn_on_tick(hub_tick, NULL)) return "no timer left";
    return NULL;
}

void hub_set_port(int port)
{
    port_self = port;
}

void hub_free(void)
{
    for (int i = 0; i < norigins; i++) /* no peer may keep a pointer into the table */
        if (origins[i].used) peer_remote_drop_origin(&origins[i], UINT64_MAX, "shutdown");
    peer_set_hooks(NULL);
    nlinks = ninbound = norigins = 0;
    memset(origins, 0, sizeof origins);
    free(out);
    out = NULL;
}

/* ---- dialling ---- */

static uint32_t backoff_ms(uint32_t attempt)
{
    uint32_t base = BACKOFF_MIN_MS << (attempt < 5 ? attempt : 5);
    if (base > BACKOFF_MAX_MS) base = BACKOFF_MAX_MS;
    uint32_t r;
    conn_random(&r, sizeof r);
    uint32_t d = base * 3 / 4 + r % (base / 2 + 1); /* +-25% so hubs restarted together spread */
    return d > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : d;
}

static socklen_t sa_len(const struct sockaddr_storage *sa)
{
    return sa->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
}

/* Without waiting on the network: a numeric address,
 * localhost, then /etc/hosts (a file read). 0 with *sa set (port included), -1 for "ask DNS". */
static int resolve_now(const struct link *l, struct sockaddr_storage *sa)
{
    memset(sa, 0, sizeof *sa);
    if (dns_parse_addr(l->host, sa) == 0) {
        /* numeric */
    } else if (!strcasecmp(l->host, "localhost")) {
        struct sockaddr_in *in = (struct sockaddr_in *)sa;
        in->sin_family = AF_INET;
        in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    } else if (dns_hosts_lookup(l->host, sa)) {
        return -1;
    }
    dns_set_port(sa, (uint16_t)l->port);
    return 0;
}

static int is_self(const struct sockaddr_storage *sa, int port)
{
    if (port != port_self) return 0;
    if (sa->ss_family == AF_INET) {
        uint32_t a = ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr);
        return (a >> 24) == 127 || a == 0;
    }
    const struct in6_addr *a6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;
    return IN6_IS_ADDR_LOOPBACK(a6) || IN6_IS_ADDR_UNSPECIFIED(a6);
}

/* The TCP half of an attempt, once the address is known. */
static void connect_to(struct link *l, const struct sockaddr_storage *sa)
{
    if (is_self(sa, l->port)) {
        conn_log(LOG_WARN, "hub.config", "bootstrap hub %s is this server: skipped", l->uri);
        l->unsupported = "points at this server";
        return;
    }
    int fd = socket(sa->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return;
    if (connect(fd, (const struct sockaddr *)sa, sa_len(sa)) < 0 && errno != EINPROGRESS) {
        conn_log(LOG_DEBUG, "hub.connect", "bootstrap hub %s: connect: %s", l->uri,
                 strerror(errno));
        close(fd);
        return;
    }
#ifdef PP_TLS
    if (!strncmp(l->uri, "wss://", 6)) {
        const char *why = "";
        l->c = conn_dial_tls(fd, &link_handlers, l, HUB_HANDSHAKE_MS, l->host, &why);
        if (!l->c) {
            snprintf(l->tls_error, sizeof l->tls_error, "%s", why);
            conn_log(LOG_WARN, "hub.tls", "bootstrap hub %s: cannot start TLS: %s; next in %llu ms",
                     l->uri, why, (unsigned long long)(l->next_try - conn_now_ms()));
            return;
        }
    } else
#endif
        l->c = conn_dial(fd, &link_handlers, l, HUB_HANDSHAKE_MS);
    conn_log(LOG_DEBUG, "hub.dial", "bootstrap hub %s: dialling (attempt %u)", l->uri, l->attempt);
}

/* Send (or resend) the query of type l->qtype with id l->qid. */
static int dns_send(struct link *l)
{
    uint8_t q[DNS_MAX_QUERY];
    int n = dns_query_build(l->host, l->qid, l->qtype, q, sizeof q);
    l->dns_sent = conn_now_ms();
    return n < 0 ? -1 : conn_udp_send(l->dns, q, (size_t)n);
}

static void dns_new_query(struct link *l, uint16_t qtype)
{
    uint16_t id;
    conn_random(&id, sizeof id);
    l->qid = id;
    l->qtype = qtype;
    l->dns_resent = 0;
    if (dns_send(l)) conn_close(l->dns, 0, "cannot send the query");
}

/* The name needs DNS: one UDP socket to the first nameserver, in the loop like any connection.
 * The answer (hub_on_dns) or its end (hub_on_dns_close) continues the attempt. */
static void dns_start(struct link *l)
{
    struct sockaddr_storage ns;
    if (dns_nameserver(&ns) < 0) {
        conn_log(LOG_WARN, "hub.dns",
                 "bootstrap hub %s: cannot resolve %s: PP_DNS_PORT is not 1-65535", l->uri,
                 l->host);
        return;
    }
    int fd = socket(ns.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        conn_log(LOG_WARN, "hub.dns", "bootstrap hub %s: DNS socket: %s", l->uri, strerror(errno));
        return;
    }
    /* connected: the kernel drops datagrams from anyone but the nameserver */
    if (connect(fd, (struct sockaddr *)&ns, sa_len(&ns)) < 0) {
        conn_log(LOG_WARN, "hub.dns", "bootstrap hub %s: DNS server: %s", l->uri, strerror(errno));
        close(fd);
        return;
    }
    l->dns = conn_udp(fd, &dns_handlers, l, DNS_TIMEOUT_MS);
    if (!l->dns) return;
    conn_log(LOG_DEBUG, "hub.dns", "bootstrap hub %s: resolving %s (attempt %u)", l->uri, l->host,
             l->attempt);
    dns_new_query(l, DNS_QTYPE_A);
}

static void dial(struct link *l)
{
    stats.dials++;
    l->attempt++;
    l->last_attempt = conn_wall_ms();
    l->next_try = conn_now_ms() + backoff_ms(l->attempt - 1);
    struct sockaddr_storage sa;
    if (resolve_now(l, &sa) == 0)
        connect_to(l, &sa);
    else
        dns_start(l);
}

static const char *dns_why(int rc)
{
    switch (rc) {
    case DNS_E_TRUNCATED:
        return "truncated answer (no TCP fallback)";
    case DNS_E_NXDOMAIN:
        return "no such name";
    case DNS_E_SERVER:
        return "server failure";
    case DNS_E_NODATA:
        return "no address";
    default:
        return "bad answer";
    }
}

static void hub_on_dns(struct conn *c, void *owner, const uint8_t *buf, size_t len)
{
    struct link *l = owner;
    if (!l || l->dns != c) return;
    struct sockaddr_storage sa;
    int rc = dns_answer_parse(buf, len, l->qid, l->qtype, l->host, &sa);
    if (rc == DNS_E_MALFORMED || rc == DNS_E_MISMATCH) {
        /* not the answer to our query (garbage, stale, spoofed): wait for the real one */
        conn_log(LOG_DEBUG, "hub.dns", "bootstrap hub %s: DNS datagram ignored (%s)", l->uri,
                 rc == DNS_E_MISMATCH ? "not our query" : "malformed");
        return;
    }
    if (rc == DNS_E_NODATA && l->qtype == DNS_QTYPE_A) {
        dns_new_query(l, DNS_QTYPE_AAAA);
        return;
    }
    l->dns = NULL; /* so that hub_on_dns_close below knows the lookup is settled */
    conn_close(c, 0, "resolved");
    if (rc != DNS_OK) {
        conn_log(LOG_WARN, "hub.dns", "bootstrap hub %s: cannot resolve %s: %s", l->uri, l->host,
                 dns_why(rc));
        return;
    }
    dns_set_port(&sa, (uint16_t)l->port);
    connect_to(l, &sa);
}

static void hub_on_dns_close(struct conn *c, void *owner, const char *why)
{
    struct link *l = owner;
    if (l->dns != c) return;
    l->dns = NULL;
    conn_log(LOG_WARN, "hub.dns", "bootstrap hub %s: cannot resolve %s: %s", l->uri, l->host, why);
}

static void hub_tick(void *arg)
{
    (void)arg;
    if (conn_now_ms() >= hb_next) {
        hb_next = conn_now_ms() + HUB_HEARTBEAT_MS;
        heartbeat_send();
    }
    origins_expire();
    if (resync_due && conn_now_ms() >= resync_due) {
        resync_due = 0;
        resync_all();
    }
    for (int i = 0; i < nlinks; i++) {
        struct link *l = &links[i];
        if (l->dns && !l->dns_resent && conn_now_ms() - l->dns_sent >= DNS_RETRY_MS) {
            l->dns_resent = 1; /* a lost datagram: one retry of the same query */
            if (dns_send(l)) conn_close(l->dns, 0, "cannot send the query");
        }
        if (!l->unsupported && !l->c && !l->dns && conn_now_ms() >= l->next_try) dial(l);
    }
}

static void hub_on_connect(struct conn *c, void *owner)
{
    struct link *l = owner;
    uint8_t nonce[16];
    conn_random(nonce, sizeof nonce);
    ws_base64_encode(nonce, sizeof nonce, l->key);
    char req[MAX_URL * 2 + 512];
    int ipv6 = strchr(l->host, ':') != NULL;
    int n = snprintf(req, sizeof req,
                     "GET %s HTTP/1.1\r\nHost: %s%s%s:%d\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                     "Sec-WebSocket-Version: 13\r\n%s%s%s%s%s%s\r\n",
                     l->target, ipv6 ? "[" : "", l->host, ipv6 ? "]" : "", l->port, l->key,
                     conf.auth_token[0] ? "Authorization: Bearer " : "", conf.auth_token,
                     conf.auth_token[0] ? "\r\n" : "", conf.hub_secret[0] ? "X-Hub-Secret: " : "",
                     conf.hub_secret, conf.hub_secret[0] ? "\r\n" : "");
    conn_send_raw(c, req, (size_t)n);
}

/* The 101 answer (RFC 6455 4.1): status 101, Upgrade: websocket, Connection: upgrade, the
 * accept value for our key, no extension or subprotocol we did not ask for. */
static int hub_on_handshake(struct conn *c, void *owner, const struct http_response *res)
{
    struct link *l = owner;
    (void)c;
    if (res->status != 101) {
        conn_log(LOG_WARN, "hub.handshake", "bootstrap hub %s: no upgrade: HTTP/1.%d %03d %.*s",
                 l->uri, res->minor_version, res->status, (int)res->reason_len, res->reason);
        return -1;
    }
    char accept[29];
    ws_accept_key(l->key, strlen(l->key), accept);
    const struct http_header *h = res->headers;
    size_t n = res->num_headers;
    const struct http_header *up = http_header_find(h, n, "upgrade");
    const struct http_header *co = http_header_find(h, n, "connection");
    const struct http_header *acc = http_header_find(h, n, "sec-websocket-accept");
    if (!up || !http_has_token(up->value, up->value_len, "websocket") || !co ||
        !http_has_token(co->value, co->value_len, "upgrade") || !acc || acc->value_len != 28 ||
        memcmp(acc->value, accept, 28) || http_header_find(h, n, "sec-websocket-extensions") ||
        http_header_find(h, n, "sec-websocket-protocol")) {
        conn_log(LOG_WARN, "hub.handshake", "bootstrap hub %s: bad handshake answer", l->uri);
        return -1;
    }
    return 0;
}

/* ---- sending to hubs ---- */

/* Every open hub connection but `except`: outbound links, then inbound hubs. Returns how
 * many it was queued to. */
static int to_hubs(struct conn *except, const char *msg, size_t len)
{
    int n = 0;
    for (int i = 0; i < nlinks; i++)
        if (links[i].open && links[i].c != except) n += conn_send(links[i].c, msg, len) == 0;
    for (int i = 0; i < ninbound; i++)
        if (inbound[i] != except) n += conn_send(inbound[i], msg, len) == 0;
    return n;
}

/* A hub connection that speaks our mesh protocol (heartbeats, originHub): it said hub-info. */
static int is_ours(const struct conn *c)
{
    const struct link *l = link_of(c);
    if (l) return l->peer_caches;
    for (int i = 0; i < ninbound; i++)
        if (inbound[i] == c) return inbound_ours[i];
    return 0;
}

/* The same, to our hubs only (heartbeats mean nothing to a JS hub). */
static int to_our_hubs(struct conn *except, const char *msg, size_t len)
{
    int n = 0;
    for (int i = 0; i < nlinks; i++)
        if (links[i].open && links[i].peer_caches && links[i].c != except)
            n += conn_send(links[i].c, msg, len) == 0;
    for (int i = 0; i < ninbound; i++)
        if (inbound_ours[i] && inbound[i] != except) n += conn_send(inbound[i], msg, len) == 0;
    return n;
}

/* ---- origins: the hubs of ours whose clients we know, how fresh, and the way to them ---- */

static struct origin *origin_find(const char *id)
{
    for (int i = 0; i < norigins; i++)
        if (origins[i].used && !memcmp(origins[i].id, id, PEER_ID_LEN)) return &origins[i];
    return NULL;
}

/* Find or make the record of hub `id` (NULL if the table is full of live hubs). */
static struct origin *origin_get(const char *id)
{
    struct origin *o = origin_find(id);
    if (o) return o;
    for (int i = 0; i < MAX_ORIGINS && !o; i++)
        if (!origins[i].used || (!origins[i].alive && conn_now_ms() - origins[i].heard > TOMB_MS))
            o = &origins[i];
    if (!o) {
        conn_log(LOG_WARN, "limit.hubs",
                 "hub %.8s: more than %d hubs in the mesh; its peers ride on links", id,
                 MAX_ORIGINS);
        return NULL;
    }
    if (o->used) peer_remote_drop_origin(o, UINT64_MAX, "hub disconnected");
    memset(o, 0, sizeof *o);
    memcpy(o->id, id, PEER_ID_LEN);
    o->used = o->alive = 1;
    o->heard = conn_now_ms();
    if (o - origins >= norigins) norigins = (int)(o - origins) + 1;
    return o;
}

/* The hub a peer's clients should be reached through, as written in floods: its origin, or us
 * (for our own clients, and for those a JS hub told us of: we are their origin to our hubs). */
static const char *origin_name(const struct peer *p)
{
    const struct origin *o = peer_origin(p);
    return o ? o->id : conf.id;
}

/* A link is gone: routes through it are forgotten until the next heartbeat finds another. */
static void origins_unroute(const struct conn *c)
{
    for (int i = 0; i < norigins; i++)
        if (origins[i].via == c) origins[i].via = NULL;
}

/* The count a remote peer is charged to: its origin hub, or the JS hub link it came over. */
static uint32_t *quota_of(struct conn *via, struct origin *o)
{
    if (o) return &o->npeers;
    struct link *l = via ? link_of(via) : NULL;
    if (l) return &l->npeers;
    for (int i = 0; via && i < ninbound; i++)
        if (inbound[i] == via) return &inbound_npeers[i];
    return NULL;
}

static void hub_remote_gone(struct peer *r)
{
    uint32_t *q = quota_of(peer_via(r), peer_origin(r));
    if (q && *q) (*q)--;
}

/* An originSeq (or heartbeat sequence) ahead of our clock by more than the skew: refused, so
 * that 2^64-1 cannot make an entry or a tombstone that nothing newer can ever replace. */
static int seq_from_future(uint64_t seq)
{
    return seq > ((conn_wall_ms() + SEQ_SKEW_MS) << 10);
}

/* Word of origin o came over `from`. If we had given it up (unheard for ORIGIN_TIMEOUT_MS)
 * and dropped its peers, the hub this came from never did, so it floods nothing new: ask it
 * for what it knows. */
/* Ask every hub of ours for a sync (hub-sync). After a cut, the hub asked first may itself
 * still be relearning what it lost, so a second round follows RESYNC_AGAIN_MS later. */
static void resync_all(void)
{
    static const char ask[] = "{\"type\":\"hub-sync\",\"fromPeerId\":\"system\"}";
    to_our_hubs(NULL, ask, sizeof ask - 1);
}

static void origin_heard(struct origin *o, struct conn *from)
{
    (void)from;
    o->heard = conn_now_ms();
    if (o->alive) return;
    o->alive = 1;
    resync_all();
    resync_due = conn_now_ms() + RESYNC_AGAIN_MS;
}

static void heartbeat_send(void)
{
    uint64_t s = conn_wall_ms() << 10;
    hb_seq = s > hb_seq ? s : hb_seq + 1;
    char msg[256];
    int n = snprintf(msg, sizeof msg,
                     "{\"type\":\"hub-heartbeat\",\"originHub\":\"%s\",\"seq\":%llu,\"since\":%llu,"
                     "\"fromPeerId\":\"system\"}",
                     conf.id, (unsigned long long)hb_seq, (unsigned long long)hb_since);
    stats.heartbeats_out += (uint64_t)to_our_hubs(NULL, msg, (size_t)n);
}

/* Origins unheard on every path for ORIGIN_TIMEOUT_MS are gone, and their clients with them. */
static void origins_expire(void)
{
    for (int i = 0; i < norigins; i++) {
        struct origin *o = &origins[i];
        if (!o->used || !o->alive || conn_now_ms() - o->heard < ORIGIN_TIMEOUT_MS) continue;
        o->alive = 0;
        o->via = NULL;
        stats.origins_expired++;
        conn_log(LOG_INFO, "hub.origin.lost", "hub %.8s unreachable for %d ms: its peers are gone",
                 o->id, ORIGIN_TIMEOUT_MS);
        peer_remote_drop_origin(o, UINT64_MAX, "hub disconnected");
    }
}

/* A number member of root, or 0. */
static uint64_t msg_u64(const struct json_val *root, const char *key)
{
    struct json_val v;
    if (!peer_msg_get(root, key, &v) || v.type != JSON_NUMBER || *v.p == '-') return 0;
    return strtoull(v.p, NULL, 10);
}

/* A message's originSeq, or 0. */
static uint64_t msg_seq(const struct json_val *root)
{
    return msg_u64(root, "originSeq");
}

/* The origin named by a message from `from`: only our hubs' word counts (what a JS hub relays
 * it is the origin of). NULL: none, or not ours; *self set when our own name came back. */
static struct origin *msg_origin(struct conn *from, const struct json_val *root, int *self)
{
    char id[PEER_ID_LEN + 1];
    *self = 0;
    if (!is_ours(from) || peer_msg_id(root, "originHub", id)) return NULL;
    if (!strcmp(id, conf.id)) {
        *self = 1;
        return NULL;
    }
    return origin_get(id);
}

static void on_heartbeat(struct conn *from, const struct json_val *root)
{
    int self;
    struct origin *o = msg_origin(from, root, &self);
    if (!o) return;
    uint64_t seq = msg_u64(root, "seq"), since = msg_u64(root, "since");
    if (seq_from_future(seq) || seq_from_future(since) || since > seq) return;
    if (since > o->since) {
        /* a run we had not heard from: what was announced before it (a previous run's peers,
         * maybe learnt from a neighbour while it was down) is gone with the old process */
        peer_remote_drop_origin(o, since, "hub restarted");
        o->since = since;
    }

    if (seq <= o->hb_seq) return; /* seen: came round another way */
    stats.heartbeats_in++;
    o->hb_seq = seq;
    o->via = from; /* the first copy came the quickest way */
    origin_heard(o, from);
    struct json_writer w;
    char buf[256];
    json_writer_init(&w, buf, sizeof buf);
    json_write_raw(&w, root->p, root->len);
    if (!w.overflow) stats.heartbeats_out += (uint64_t)to_our_hubs(from, w.p, w.len);
}

/* ---- tombstones ---- */

static void tomb_put(const char *id, uint64_t seq, const char *origin)
{
    if (!seq) return;
    uint64_t h = peer_hash(id, PEER_ID_LEN);
    size_t i = (size_t)(h % TOMB_SLOTS);
    if (tombs[i].h == h && tombs[i].seq > seq && conn_now_ms() - tombs[i].at < TOMB_MS) return;
    tombs[i].h = h;
    tombs[i].seq = seq;
    tombs[i].at = conn_now_ms();
    memcpy(tombs[i].id, id, PEER_ID_LEN);
    memcpy(tombs[i].origin, origin, PEER_ID_LEN);
}

/* A hub of ours linked up: the withdrawals of the last TOMB_MS, which it may have missed while
 * the mesh was cut in two (a withdrawal is flooded once; a sync only adds). */
static void tombs_replay(struct conn *to)
{
    size_t n = 0;
    for (size_t i = 0; i < TOMB_SLOTS; i++)
        n += tombs[i].seq && conn_now_ms() - tombs[i].at < TOMB_MS;
    conn_expect(to, n * TOMB_MSG_EST);
    for (size_t i = 0; i < TOMB_SLOTS; i++) {
        if (!tombs[i].seq || conn_now_ms() - tombs[i].at >= TOMB_MS) continue;
        char id[PEER_ID_LEN + 1], origin[PEER_ID_LEN + 1];
        memcpy(id, tombs[i].id, PEER_ID_LEN);
        memcpy(origin, tombs[i].origin, PEER_ID_LEN);
        id[PEER_ID_LEN] = origin[PEER_ID_LEN] = 0;
        struct json_writer w;
        json_writer_init(&w, out, out_cap);
        peer_write_disconnected(&w, id, 0, "disconnected", "global", 6, NULL, tombs[i].seq, origin);
        if (!w.overflow) conn_send(to, w.p, w.len);
    }
}

/* The sequence of the last withdrawal of id still remembered, or 0. */
static uint64_t tomb_get(const char *id)
{
    uint64_t h = peer_hash(id, PEER_ID_LEN);
    size_t i = (size_t)(h % TOMB_SLOTS);
    return tombs[i].h == h && conn_now_ms() - tombs[i].at < TOMB_MS ? tombs[i].seq : 0;
}

/* ---- floods ---- */

static void send_discovered(struct peer *p, void *arg)
{
    struct conn *to = arg;
    if (peer_via(p) == to) return; /* split horizon: never tell a hub its own peers */
    struct json_writer w;
    json_writer_init(&w, out, out_cap);
    peer_write_discovered(&w, p, NULL, origin_name(p));
    if (!w.overflow) conn_send(to, w.p, w.len);
}

static void flood_discovered(struct conn *except, const struct peer *p)
{
    struct json_writer w;
    json_writer_init(&w, out, out_cap);
    peer_write_discovered(&w, p, NULL, origin_name(p));
    if (!w.overflow) stats.floods_discovered += (uint64_t)to_hubs(except, w.p, w.len);
}

static void flood_disconnected(struct conn *except, const char *id, const char *net, size_t nl,
                               const char *reason, uint64_t seq, const char *origin)
{
    struct json_writer w;
    json_writer_init(&w, out, out_cap);
    peer_write_disconnected(&w, id, 0, reason, net, nl, NULL, seq, origin);
    if (!w.overflow) stats.floods_disconnected += (uint64_t)to_hubs(except, w.p, w.len);
}

static const char hub_hello[] = "{\"type\":\"hub-info\",\"data\":{\"server\":\"peerpigeon-c\","
                                "\"cachesPeers\":true},\"fromPeerId\":\"system\"}";

static void hub_on_open(struct conn *c, void *owner)
{
    struct link *l = owner;
    l->open = 1;
    l->attempt = 0;
    l->peer_caches = 0;
    stats.links_opened++;
    conn_log(LOG_INFO, "hub.link.up", "bootstrap hub %s: connected", l->uri);
    struct json_writer w;
    json_writer_init(&w, out, out_cap);
    JSON_LIT(&w, "{\"type\":\"announce\",\"networkName\":");
    json_write_str(&w, conf.ns, strlen(conf.ns));
    JSON_LIT(&w, ",\"data\":{\"isHub\":true,\"port\":");
    json_write_u64(&w, (uint64_t)port_self);
    JSON_LIT(&w, ",\"host\":");
    json_write_str(&w, conf.host, strlen(conf.host));
    JSON_LIT(&w, ",\"capabilities\":[\"signaling\",\"relay\"],\"timestamp\":");
    json_write_u64(&w, conn_wall_ms());
    JSON_LIT(&w, "}}");
    conn_send(c, w.p, w.len);
    /* before the sync: a hub of ours then reads our floods as ours (originHub); a JS hub
     * answers it with an error, which is ignored */
    conn_send(c, hub_hello, sizeof hub_hello - 1);
    conn_expect(c, peer_sync_bytes(NULL, 0));
    peer_each(send_discovered, c, 1);
}

static void hub_on_close(struct conn *c, void *owner, const char *why)
{
    struct link *l = owner;
    if (l->attempt == 0) l->next_try = conn_now_ms() + backoff_ms(0);
    uint64_t wait = l->next_try > conn_now_ms() ? l->next_try - conn_now_ms() : 0;
    const char *detail = conn_error(c) ? strerror(conn_error(c)) : why;
#ifdef PP_TLS
    const char *te = conn_tls_error(c);
    if (te) {
        snprintf(l->tls_error, sizeof l->tls_error, "%s", te);
        conn_log(LOG_WARN, "hub.tls", "bootstrap hub %s: %s: %s", l->uri, why, te);
        detail = te;
    }
#endif
    if (l->open)
        conn_log(LOG_INFO, "hub.link.down",
                 "bootstrap hub %s: disconnected (%s); redial in %llu ms", l->uri, detail,
                 (unsigned long long)wait);
    else
        conn_log(LOG_INFO, "hub.link.retry",
                 "bootstrap hub %s: attempt %u failed (%s); next in %llu ms", l->uri, l->attempt,
                 detail, (unsigned long long)wait);
    l->open = 0;
    l->c = NULL;
    origins_unroute(c);
    peer_remote_drop_link(c);
    l->npeers = 0;
}

static void hub_peer_is_hub(struct peer *p)
{
    struct conn *c = peer_conn(p);
    if (ninbound == MAX_INBOUND_HUBS) {
        conn_log(LOG_WARN, "limit.hubs", "hub %.8s: too many inbound hubs; it gets no relays",
                 peer_id(p));
        return;
    }
    inbound_ours[ninbound] = 0;
    inbound_npeers[ninbound] = 0;
    inbound[ninbound++] = c;
    char addr[64];
    conn_peer_addr(c, addr, sizeof addr);
    conn_log(LOG_INFO, "hub.inbound.up", "hub %.8s linked from %s", peer_id(p), addr);
    /* tell a peerpigeon-c dialler that we replay peers to late joiners (JS hubs do not) and
     * speak the mesh protocol */
    conn_send(c, hub_hello, sizeof hub_hello - 1);
    conn_expect(c, peer_sync_bytes(NULL, 0));
    peer_each(send_discovered, c, 1);
}

static void hub_peer_gone(struct peer *p)
{
    struct conn *c = peer_conn(p);
    origins_unroute(c);
    for (int i = 0; i < ninbound; i++)
        if (inbound[i] == c) {
            conn_log(LOG_INFO, "hub.inbound.down", "hub %.8s unlinked", peer_id(p));
            inbound[i] = inbound[--ninbound];
            inbound_ours[i] = inbound_ours[ninbound];
            inbound_npeers[i] = inbound_npeers[ninbound];
            return;
        }
}

static void hub_local_announced(struct peer *p)
{
    flood_discovered(NULL, p);
}

static void hub_local_left(struct peer *p, const char *net, const char *reason)
{
    tomb_put(peer_id(p), peer_seq(p), conf.id); /* echoes of its announcement are stale now */
    flood_disconnected(NULL, peer_id(p), net, strlen(net), reason, peer_seq(p), conf.id);
}

/* Flood a remote peer on to every other hub (split horizon: not back where it came from). */
static void hub_remote_revealed(struct peer *r)
{
    flood_discovered(peer_via(r), r);
}

/* A peer a JS hub told us of went with that link: we were its origin to our hubs. */
static void hub_remote_dropped(struct peer *r)
{
    const char *net = peer_network(r);
    flood_disconnected(peer_via(r), peer_id(r), net, strlen(net), "hub disconnected", peer_seq(r),
                       conf.id);
}

/* ---- signals between hubs ---- */

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

/* 1 if this signal was seen within the window; records it either way. */
static int dedup(const char *type, size_t tl, const char *from, const char *target,
                 const struct json_val *data)
{
    uint64_t h = fnv(0xcbf29ce484222325ull, type, tl);
    h = fnv(h, from, PEER_ID_LEN);
    h = fnv(h, target, PEER_ID_LEN);
    if (data) h = fnv(h, data->p, data->len);
    size_t i = (size_t)(h % DEDUP_SLOTS);
    int dup = seen[i].h == h && conn_now_ms() - seen[i].at < DEDUP_WINDOW_MS;
    seen[i].h = h;
    seen[i].at = conn_now_ms();
    return dup;
}

/* The way to a remote target: the freshest path to its origin hub, or the link it was learnt
 * over (JS hubs); NULL if unknown. */
static struct conn *route_to(const char *target)
{
    struct peer *r = peer_remote_entry(target);
    if (!r) return NULL;
    struct origin *o = peer_origin(r);
    return o && o->via ? o->via : peer_via(r); /* no heartbeat yet: where it was learnt */
}

static void relay(struct conn *from, const char *type, size_t tl, const char *from_id,
                  const char *target, const char *net, size_t nl, const struct json_val *data,
                  unsigned hops)
{
    if (hops >= HUB_MAX_HOPS) return;
    struct json_writer w;
    json_writer_init(&w, out, out_cap);
    peer_write_signal(&w, type, tl, from_id, target, net, nl, data, (int)hops + 1);
    if (w.overflow) return;
    struct conn *via = route_to(target);
    if (via && via != from && conn_is_open(via))
        stats.relayed += conn_send(via, w.p, w.len) == 0;
    else if (hops == 0 || peer_remote_entry(target)) /* an unknown target: one copy per hub */
        stats.relayed += (uint64_t)to_hubs(from, w.p, w.len);
}

static void hub_relay_signal(struct conn *from, const char *type, size_t type_len,
                             const char *from_id, const char *target, const char *net,
                             size_t net_len, const struct json_val *data)
{
    dedup(type, type_len, from_id, target, data); /* so that an echo from a hub is dropped */
    relay(from, type, type_len, from_id, target, net, net_len, data, 0);
}

static void on_discovered(struct conn *from, const struct json_val *root,
                          const struct json_val *data)
{
    char id[PEER_ID_LEN + 1], net[MAX_NETWORK_NAME + 1];
    size_t nl;
    if (data->type != JSON_OBJECT || peer_msg_id(data, "peerId", id) ||
        peer_msg_network(root, net, &nl) || !strcmp(id, conf.id))
        return;
    int self;
    struct origin *o = msg_origin(from, root, &self);
    if (self) return; /* our own flood, back round a ring */
    /* an announcement no newer than one withdrawn, or than the local peer's own (our
     * announcement coming back round a ring), or from before its hub restarted, is stale */
    uint64_t seq = msg_seq(root), tomb = tomb_get(id);
    struct peer *lp = peer_find(id);
    if (seq_from_future(seq)) return;
    if (tomb && (!seq || seq <= tomb)) return; /* an absent one is no newer either */
    if (seq && lp && seq <= peer_seq(lp)) return;
    if (o && seq && seq < o->since) return;
    if (o) origin_heard(o, from);
    /* a quota per teller: one hub (or one JS hub's link) cannot fill the table */
    struct peer *was = peer_remote_entry(id);
    struct conn *was_via = was ? peer_via(was) : NULL;
    struct origin *was_o = was ? peer_origin(was) : NULL;
    uint32_t *q = quota_of(from, o);
    int recharge = !was || was_o != o || (!o && was_via != from);
    if (recharge && q && *q >= conf.remote_quota) {
        conn_log(LOG_WARN, "limit.remote_peers",
                 "hub link: more than %u peers from one hub: %.8s not kept", conf.remote_quota, id);
        return;
    }
    struct peer *r = peer_remote_add(from, o, id, net, nl, data, seq);
    if (!r) return;
    if (recharge && peer_remote_entry(id) == r) {
        /* charged to its new teller; a replaced entry was uncharged by remote_gone */
        if (was == r) {
            uint32_t *old = quota_of(was_via, was_o);
            if (old && *old) (*old)--;
        }
        if (q) (*q)++;
    }
    flood_discovered(from, r);
    /* a JS hub tells its late joiners nothing of the peers we pushed: when it reports a new
     * peer of N, replay ours of N on its link (peerpigeon-c hubs say hub-info) */
    struct link *l = link_of(from);
    if (l && !l->peer_caches && !peer_remote_hidden(r)) {
        conn_expect(from, peer_sync_bytes(net, nl));
        peer_each_in(net, nl, send_discovered, from);
    }
}

static void on_disconnected(struct conn *from, const struct json_val *root,
                            const struct json_val *data)
{
    char id[PEER_ID_LEN + 1];
    /* matched by peerId only: JS hubs may name the wrong network after a goodbye */
    if (data->type != JSON_OBJECT || peer_msg_id(data, "peerId", id)) return;
    struct json_val rv;
    char why[MAX_REASON_LEN + 1] = "disconnected";
    if (peer_msg_get(data, "reason", &rv) && rv.type == JSON_STRING &&
        json_str_unescape(&rv, why, sizeof why) < 0)
        strcpy(why, "disconnected");
    int self;
    struct origin *o = msg_origin(from, root, &self);
    if (self) return;
    uint64_t seq = msg_seq(root);
    struct peer *r = peer_remote_entry(id);
    /* only its origin withdraws a peer (a JS hub: what it told us of): an old hub that let go of
     * a peer that moved does not take it from its new one */
    if (r && (peer_origin(r) != o || (!o && peer_via(r) != from))) r = NULL;
    if (seq_from_future(seq)) return;
    if (!r) {
        /* not held here (learnt and lost while cut off, or moved on): a hub of ours' withdrawal
         * is still passed on, once (the tombstone deduplicates), so that hubs beyond that hold
         * it hear of it; nothing else plants a tombstone for what it did not teach */
        if (o && seq && seq > tomb_get(id)) {
            tomb_put(id, seq, o->id);
            flood_disconnected(from, id, "global", 6, why, seq, o->id);
        }
        return;
    }
    if (seq && seq < peer_seq(r)) return; /* withdraws an older announcement */
    tomb_put(id, seq ? seq : peer_seq(r), origin_name(r));
    /* flooded on even when hidden behind our local peer: our hubs may know it visible */
    const char *rnet = peer_network(r);
    flood_disconnected(from, id, rnet, strlen(rnet), why, seq ? seq : peer_seq(r), origin_name(r));
    peer_remote_remove(id, why); /* a hidden entry (see peer_remote_add) goes quietly */
}

/* A full sync on request (hub-sync) costs a dump of every peer: at most one per connection
 * per SYNC_EVERY_MS, so that asking cannot amplify. */
#define SYNC_EVERY_MS 1500
static int sync_allowed(struct conn *c)
{
    static struct {
        struct conn *c;
        uint64_t at;
    } last[64];
    size_t i = ((uintptr_t)c >> 4) % 64;
    if (last[i].c == c && conn_now_ms() - last[i].at < SYNC_EVERY_MS) return 0;
    last[i].c = c;
    last[i].at = conn_now_ms();
    return 1;
}

static int hub_handle(struct conn *from, const char *type, size_t tl, const struct json_val *root)
{
    char id[PEER_ID_LEN + 1], net[MAX_NETWORK_NAME + 1];
    size_t nl;
    struct json_val data;
    int has_data = peer_msg_get(root, "data", &data);
    if (peer_type_is(type, tl, "peer-discovered")) {
        if (has_data) on_discovered(from, root, &data);
        return 1;
    }
    if (peer_type_is(type, tl, "peer-disconnected")) {
        if (has_data) on_disconnected(from, root, &data);
        return 1;
    }
    if (peer_type_is(type, tl, "hub-heartbeat")) {
        on_heartbeat(from, root);
        return 1;
    }
    if (peer_type_is(type, tl, "hub-sync")) {
        if (is_ours(from) && sync_allowed(from)) {
            conn_expect(from, peer_sync_bytes(NULL, 0));
            peer_each(send_discovered, from, 1);
        }
        return 1;
    }
    if (peer_type_is(type, tl, "hub-info")) {
        struct link *l = link_of(from);
        int was = is_ours(from);
        if (l) l->peer_caches = 1;
        for (int i = 0; !l && i < ninbound; i++)
            if (inbound[i] == from) inbound_ours[i] = 1;
        if (!was && is_ours(from)) tombs_replay(from);
        return 1;
    }
    if (peer_type_is(type, tl, "offer") || peer_type_is(type, tl, "answer") ||
        peer_type_is(type, tl, "ice-candidate")) {
        char target[PEER_ID_LEN + 1];
        struct json_val hv;
        unsigned hops = 0;
        if (peer_msg_id(root, "targetPeerId", target) || peer_msg_network(root, net, &nl)) return 1;
        if (peer_msg_id(root, "fromPeerId", id)) return 1; /* a hub must say who it is from */
        /* and it must be a peer of the hubs behind that link: never one of ours; from a JS hub
         * (or anyone who does not speak our mesh protocol), one it told us of; a hub of ours
         * may also relay for a peer not announced yet (flooded with the signal) */
        struct peer *fr = peer_remote_entry(id), *lp = peer_find(id);
        if (lp && !peer_moved(lp)) return 1;
        if (fr ? !peer_origin(fr) && peer_via(fr) != from && !is_ours(from) : !is_ours(from))
            return 1;
        if (!strcmp(target, conf.id)) return 1; /* WebRTC to the hub itself: not ours */
        if (peer_msg_get(root, "hubHops", &hv)) hops = hops_of(&hv);
        const struct json_val *dp = has_data ? &data : NULL;
        if (dedup(type, tl, id, target, dp)) return 1;
        if (peer_forward(type, tl, id, target, net, nl, dp) == 0)
            relay(from, type, tl, id, target, net, nl, dp, hops);
        return 1;
    }
    return 0;
}

/* ---- outbound link messages ---- */

static void hub_on_message(struct conn *c, void *owner, char *msg, size_t len)
{
    struct json_val root;
    char type[MAX_TYPE_LEN + 1];
    size_t tl;
    int long_type;
    const char *err;
    (void)owner;
    if (peer_msg_parse(msg, len, &root, type, &tl, &long_type, &err)) {
        conn_text_valid(c, msg, len); /* 1007 when it is not even UTF-8 */
        return;
    }
    if (long_type) return;
    if (!hub_handle(c, type, tl, &root))
        conn_log(LOG_DEBUG, "hub.message", "hub link: '%.*s' ignored", (int)tl, type);
}

/* ---- reporting ---- */

const struct hub_stats *hub_stats(void)
{
    return &stats;
}

uint32_t hub_origins_alive(void)
{
    uint32_t n = 0;
    for (int i = 0; i < norigins; i++)
        n += origins[i].used && origins[i].alive;
    return n;
}

uint32_t hub_links_total(void)
{
    return (uint32_t)nlinks;
}

uint32_t hub_links_connected(void)
{
    uint32_t n = 0;
    for (int i = 0; i < nlinks; i++)
        n += links[i].open ? 1u : 0u;
    return n;
}

void hub_write_bootstrap(struct json_writer *w)
{
    JSON_LIT(w, "[");
    for (int i = 0; i < nlinks; i++) {
        const struct link *l = &links[i];
        if (i) JSON_LIT(w, ",");
        JSON_LIT(w, "{\"uri\":");
        json_write_str(w, l->uri, strlen(l->uri));
        int wss = !strncmp(l->uri, "wss://", 6);
        if (wss)
            JSON_LIT(w, ",\"scheme\":\"wss\"");
        else
            JSON_LIT(w, ",\"scheme\":\"ws\"");
#ifdef PP_TLS
        if (wss && !l->unsupported) {
            JSON_LIT(w, ",\"tlsError\":");
            if (l->tls_error[0])
                json_write_str(w, l->tls_error, strlen(l->tls_error));
            else
                JSON_LIT(w, "null");
        }
#endif
        JSON_LIT(w, ",\"connected\":");
        json_write_bool(w, l->open);
        JSON_LIT(w, ",\"lastAttempt\":");
        json_write_u64(w, l->last_attempt);
        JSON_LIT(w, ",\"attemptNumber\":");
        json_write_u64(w, l->attempt);
        if (l->unsupported) {
            JSON_LIT(w, ",\"error\":");
            json_write_str(w, l->unsupported, strlen(l->unsupported));
        }
        JSON_LIT(w, "}");
    }
    JSON_LIT(w, "]");
}
