/* peerpigeon.c - the top: configuration (environment and flags), the listening sockets, the
 * HTTP routes and the WebSocket upgrade policy, and main. Below it: peer.c (registry and
 * signalling), hub.c (hub mode), the connection layer conn.c (the loop), and the pure modules
 * http.c, ws.c, json.c, dns.c. */
#include "conn.h"
#include "dns.h"
#include "http.h"
#include "hub.h"
#include "json.h"
#include "peer.h"
#include "ws.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#ifndef PP_VERSION
#define PP_VERSION "dev"
#endif

#define MAX_LISTEN 8
#define PORT_PROBE 10 /* PORT busy: try up to PORT+10 (both reference servers do) */
#define RESPONSE_MAX (256u << 10)

struct config {
    int port;
    char host[256];
    uint32_t max_connections;
    char cors_origin[256];
    int is_hub;
    char hub_ns[MAX_NETWORK_NAME + 1];
    char bootstrap_hubs[MAX_BOOTSTRAP_HUBS * MAX_URL];
    char auth_token[256];
    char hub_secret[256]; /* HUB_SECRET: hub rights only with it (dialled links always) */
    size_t max_message_size;
    uint32_t ping_interval_ms;
    int log_level;
    int log_json;    /* LOG_FORMAT=json */
    int trust_proxy; /* TRUST_PROXY: the client's address from X-Forwarded-For (proxies only) */
    uint8_t proxies[CONN_MAX_PROXIES][16]; /* TRUST_PROXY as a list: these besides loopback */
    int nproxies;
    char hub_id[PEER_ID_LEN + 1];
    uint64_t max_memory;       /* MAX_MEMORY; 0 until set or derived */
    int max_memory_set;        /* given (else derived from the cgroup / RAM) */
    uint32_t max_http;         /* MAX_HTTP_CONNECTIONS; 0 = derived */
    int64_t per_ip;            /* MAX_CONNECTIONS_PER_IP; -1 = default */
    int64_t connect_rate;      /* CONNECT_RATE_PER_IP; -1 = default */
    int rate_limits;           /* RATE_LIMITS */
};

static struct config cfg; /* zero here, defaults set by config_defaults: keeps 33 KB out of .data */

static void config_defaults(void)
{
    cfg.port = 3000;
    strcpy(cfg.host, "localhost");
    cfg.max_connections = 1000;
    strcpy(cfg.cors_origin, "*");
    strcpy(cfg.hub_ns, "pigeonhub-mesh");
    cfg.max_message_size = 1u << 20;
    cfg.ping_interval_ms = 30000;
    cfg.log_level = LOG_INFO;
    cfg.per_ip = cfg.connect_rate = -1;
    cfg.rate_limits = 1;
}

static int bound_port;
static int health_check; /* --health-check: be the client, not the server */
static uint64_t start_ms;
static volatile int stop_flag;
static char *response; /* RESPONSE_MAX bytes, for HTTP answers */

/* Refusals before a peer exists, for /metrics and the log. */
enum {
    REFUSE_BAD_REQUEST,  /* 400: malformed head, bad Content-Length, chunked */
    REFUSE_TOO_LARGE,    /* 413 body, 431 head */
    REFUSE_VERSION,      /* 426 */
    REFUSE_BAD_KEY,      /* 400 Sec-WebSocket-Key, not GET over HTTP/1.1 */
    REFUSE_UNAUTHORIZED, /* 401 */
    REFUSE_PEER_ID,      /* 1008 Invalid peerId format */
    REFUSE_LIMIT,        /* 1008 Maximum connections reached */
    REFUSE_N
};
static const char *const refuse_names[REFUSE_N] = {
    "bad_request",  "too_large", "ws_version",      "ws_key",
    "unauthorized", "peer_id",   "max_connections",
};
static uint64_t refused[REFUSE_N];

/* Count a refusal and log it (rate-limited by conn_log) with the address it came from. */
static void refuse(struct conn *c, int why)
{
    char addr[64];
    refused[why]++;
    conn_peer_addr(c, addr, sizeof addr);
    conn_log(LOG_INFO, "refused", "%s: %s", addr, refuse_names[why]);
}

/* ---- configuration ---- */

static int parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    if (!*s) return -1;
    uint64_t v = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9') return -1;
        uint64_t d = (uint64_t)(*s - '0');
        if (v > (max - d) / 10) return -1; /* before the multiply: no wrap-around */
        v = v * 10 + d;
    }
    if (v < min) return -1;
    *out = v;
    return 0;
}

static int parse_bool(const char *s, int *out)
{
    static const char *yes[] = {"true", "1", "yes", "on"};
    static const char *no[] = {"false", "0", "no", "off", ""};
    for (size_t i = 0; i < sizeof yes / sizeof *yes; i++)
        if (!strcasecmp(s, yes[i])) return *out = 1, 0;
    for (size_t i = 0; i < sizeof no / sizeof *no; i++)
        if (!strcasecmp(s, no[i])) return *out = 0, 0;
    return -1;
}

static int has_ctl(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f) return 1;
    return 0;
}

static int copy_str(char *dst, size_t cap, const char *s)
{
    size_t n = strlen(s);
    if (n >= cap) return -1;
    memcpy(dst, s, n + 1);
    return 0;
}

/* Apply one setting; returns NULL or what is wrong with the value. */
static const char *config_set(const char *name, const char *v)
{
    uint64_t u;
    if (!strcmp(name, "PORT")) {
        if (parse_uint(v, 0, 65535, &u)) return "a port number 0-65535";
        cfg.port = (int)u;
    } else if (!strcmp(name, "HOST")) {
        if (!*v || copy_str(cfg.host, sizeof cfg.host, v)) return "a host name or address";
    } else if (!strcmp(name, "MAX_CONNECTIONS")) {
        if (parse_uint(v, 1, 1000000, &u)) return "a whole number 1-1000000";
        cfg.max_connections = (uint32_t)u;
    } else if (!strcmp(name, "CORS_ORIGIN")) {
        if (has_ctl(v)) return "an origin without control characters";
        if (copy_str(cfg.cors_origin, sizeof cfg.cors_origin, v)) return "an origin (< 256 bytes)";
    } else if (!strcmp(name, "IS_HUB")) {
        if (parse_bool(v, &cfg.is_hub)) return "true/false, 1/0 or yes/no";
    } else if (!strcmp(name, "HUB_MESH_NAMESPACE")) {
        if (!*v || copy_str(cfg.hub_ns, sizeof cfg.hub_ns, v)) return "a name of 1-256 bytes";
    } else if (!strcmp(name, "BOOTSTRAP_HUBS")) {
        if (copy_str(cfg.bootstrap_hubs, sizeof cfg.bootstrap_hubs, v)) return "a shorter list";
    } else if (!strcmp(name, "AUTH_TOKEN")) {
        /* it goes into the upgrade requests we send to other hubs: a CR/LF would add headers */
        if (has_ctl(v)) return "a token without control characters";
        if (copy_str(cfg.auth_token, sizeof cfg.auth_token, v)) return "a token < 256 bytes";
    } else if (!strcmp(name, "MAX_MESSAGE_SIZE")) {
        if (parse_uint(v, 1024, 64u << 20, &u)) return "a byte count 1024-67108864";
        cfg.max_message_size = (size_t)u;
    } else if (!strcmp(name, "PING_INTERVAL")) {
        /* seconds, or milliseconds with an "ms" suffix (tests use short intervals) */
        char tmp[32];
        size_t n = strlen(v);
        int ms = n > 2 && !strcmp(v + n - 2, "ms");
        if (n >= sizeof tmp) return "seconds (1-86400) or milliseconds with ms";
        memcpy(tmp, v, n + 1);
        if (ms) tmp[n - 2] = 0;
        if (parse_uint(tmp, ms ? 100 : 1, ms ? 86400000 : 86400, &u))
            return "seconds (1-86400) or milliseconds with ms";
        cfg.ping_interval_ms = (uint32_t)(ms ? u : u * 1000);
    } else if (!strcmp(name, "LOG_LEVEL")) {
        static const char *lv[] = {"error", "warn", "info", "debug"};
        size_t i;
        for (i = 0; i < 4 && strcasecmp(v, lv[i]); i++) {
        }
        if (i == 4) return "error, warn, info or debug";
        cfg.log_level = (int)i;
    } else if (!strcmp(name, "HUB_SECRET")) {
        /* sent in our upgrade requests and compared in a path: no control characters, no '/' */
        if (has_ctl(v) || strchr(v, '/') || strchr(v, ' '))
            return "a secret without control characters, spaces or '/'";
        if (copy_str(cfg.hub_secret, sizeof cfg.hub_secret, v)) return "a secret < 256 bytes";
    } else if (!strcmp(name, "LOG_FORMAT")) {
        if (strcasecmp(v, "text") && strcasecmp(v, "json")) return "text or json";
        cfg.log_json = !strcasecmp(v, "json");
    } else if (!strcmp(name, "TRUST_PROXY")) {
        cfg.nproxies = 0;
        if (!parse_bool(v, &cfg.trust_proxy)) return NULL;
        /* a list of proxy addresses (loopback is always one) */
        const char *e = "true/false, or a comma-separated list of proxy IP addresses";
        char tmp[64];
        for (const char *q = v; *q;) {
            const char *comma = strchr(q, ',');
            size_t n = comma ? (size_t)(comma - q) : strlen(q);
            while (n && *q == ' ')
                q++, n--;
            while (n && q[n - 1] == ' ')
                n--;
            if (!n || n >= sizeof tmp || cfg.nproxies == CONN_MAX_PROXIES) return e;
            memcpy(tmp, q, n);
            tmp[n] = 0;
            struct sockaddr_storage sa;
            if (dns_parse_addr(tmp, &sa)) return e;
            conn_addr_key(&sa, cfg.proxies[cfg.nproxies++]);
            q += (comma ? (size_t)(comma - q) + 1 : strlen(q));
        }
        cfg.trust_proxy = 1;
    } else if (!strcmp(name, "MAX_MEMORY")) {
        /* bytes, or with K, M, G (powers of 1024) */
        char tmp[32];
        size_t n = strlen(v), mul = 1;
        if (n >= sizeof tmp || !n) return "bytes, or a number with K, M or G (e.g. 512M)";
        memcpy(tmp, v, n + 1);
        char suf = (char)(tmp[n - 1] | 0x20);
        if (suf == 'k' || suf == 'm' || suf == 'g') {
            mul = suf == 'k' ? 1u << 10 : suf == 'm' ? 1u << 20 : 1u << 30;
            tmp[n - 1] = 0;
        }
        if (parse_uint(tmp, 1, (1ull << 50) / mul, &u) || u * mul < (16u << 20))
            return "bytes (at least 16M), or a number with K, M or G (e.g. 512M)";
        cfg.max_memory = u * mul;
        cfg.max_memory_set = 1;
    } else if (!strcmp(name, "MAX_HTTP_CONNECTIONS")) {
        if (parse_uint(v, 1, 1000000, &u)) return "a whole number 1-1000000";
        cfg.max_http = (uint32_t)u;
    } else if (!strcmp(name, "MAX_CONNECTIONS_PER_IP")) {
        if (parse_uint(v, 0, 65535, &u)) return "a whole number 0-65535 (0: no limit)";
        cfg.per_ip = (int64_t)u;
    } else if (!strcmp(name, "CONNECT_RATE_PER_IP")) {
        if (parse_uint(v, 0, 1000, &u)) return "connections per second 0-1000 (0: no limit)";
        cfg.connect_rate = (int64_t)u;
    } else if (!strcmp(name, "RATE_LIMITS")) {
        if (parse_bool(v, &cfg.rate_limits)) return "true/false, 1/0 or yes/no";
    } else if (!strcmp(name, "HUB_PEER_ID")) {
        if (*v && !peer_id_valid(v, strlen(v))) return "40 hex digits";
        memcpy(cfg.hub_id, v, strlen(v) + 1);
    }
    return NULL;
}

static const struct option_row {
    const char *env, *flag, *help;
} options[] = {
    {"PORT", "--port", "TCP port; if busy, the next up to +10 (default 3000)"},
    {"HOST", "--host", "bind address or name (default localhost)"},
    {"MAX_CONNECTIONS", "--max-connections", "WebSocket connections at once (default 1000)"},
    {"CORS_ORIGIN", "--cors-origin", "Access-Control-Allow-Origin (default *)"},
    {"IS_HUB", "--is-hub", "hub mode: true/false (default false)"},
    {"HUB_MESH_NAMESPACE", "--hub-mesh-namespace", "network of hubs (default pigeonhub-mesh)"},
    {"BOOTSTRAP_HUBS", "--bootstrap-hubs", "comma-separated ws:// URLs of hubs to dial"},
    {"AUTH_TOKEN", "--auth-token", "token WebSocket clients must present (default none)"},
    {"MAX_MESSAGE_SIZE", "--max-message-size", "bytes per WebSocket message (default 1048576)"},
    {"PING_INTERVAL", "--ping-interval", "seconds between pings, or Nms (default 30)"},
    {"LOG_LEVEL", "--log-level", "error, warn, info or debug (default info)"},
    {"HUB_PEER_ID", "--hub-peer-id", "fixed 40-hex hub id (default random)"},
    {"HUB_SECRET", "--hub-secret", "hub rights need it (path /hub/<secret>); default: open"},
    {"LOG_FORMAT", "--log-format", "text or json: one JSON object per line (default text)"},
    {"TRUST_PROXY", "--trust-proxy",
     "client address from X-Forwarded-For of loopback (true) or listed proxies (default false)"},
    {"MAX_MEMORY", "--max-memory", "memory budget, e.g. 512M (default: half the RAM or cgroup)"},
    {"MAX_HTTP_CONNECTIONS", "--max-http-connections",
     "connections not yet upgraded, at once (default MAX_CONNECTIONS/4, at least 256)"},
    {"MAX_CONNECTIONS_PER_IP", "--max-connections-per-ip",
     "connections per address or IPv6 /64 (default 256; 0: none)"},
    {"CONNECT_RATE_PER_IP", "--connect-rate-per-ip",
     "new connections per second per address, after a burst of the above (default 10)"},
    {"RATE_LIMITS", "--rate-limits", "message rate limits per connection (default true)"},
};
#define NOPTIONS (sizeof options / sizeof *options)

static void usage(FILE *f)
{
    fprintf(f, "usage: peerpigeon [--option value]...\n"
               "PeerPigeon WebSocket signalling and hub server " PP_VERSION ".\n"
               "Each option is also read from the environment variable shown; flags win.\n\n");
    for (size_t i = 0; i < NOPTIONS; i++)
        fprintf(f, "  %-22s %-20s %s\n", options[i].flag, options[i].env, options[i].help);
    fprintf(f, "  %-22s %-20s %s\n  %-22s %-20s %s\n", "--help", "", "this text", "--version", "",
            "print the version");
    fprintf(f, "  %-22s %-20s %s\n", "--health-check", "",
            "ask GET /health of the server at HOST:PORT; exit 0 if 200 (container HEALTHCHECK)");
}

static void config_die(const char *name, const char *v, const char *want)
{
    fprintf(stderr, "peerpigeon: invalid %s '%s': expected %s\n", name, v, want);
    exit(2);
}

static void config_load(int argc, char **argv)
{
    const char *err;
    config_defaults();
    for (size_t i = 0; i < NOPTIONS; i++) {
        const char *v = getenv(options[i].env);
        if (v && (err = config_set(options[i].env, v))) config_die(options[i].env, v, err);
    }
    for (int a = 1; a < argc; a++) {
        const char *arg = argv[a];
        if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
            usage(stdout);
            exit(0);
        }
        if (!strcmp(arg, "--version")) {
            printf("peerpigeon " PP_VERSION "\n");
            exit(0);
        }
        if (!strcmp(arg, "--health-check")) {
            health_check = 1;
            continue;
        }
        const char *eq = strchr(arg, '=');
        size_t flen = eq ? (size_t)(eq - arg) : strlen(arg);
        size_t i;
        for (i = 0; i < NOPTIONS; i++)
            if (strlen(options[i].flag) == flen && !strncmp(arg, options[i].flag, flen)) break;
        if (i == NOPTIONS) {
            fprintf(stderr, "peerpigeon: unknown option '%s' (see --help)\n", arg);
            exit(2);
        }
        const char *v = eq ? eq + 1 : NULL;
        if (!v) {
            if (a + 1 >= argc) {
                fprintf(stderr, "peerpigeon: %s needs a value\n", options[i].flag);
                exit(2);
            }
            v = argv[++a];
        }
        if ((err = config_set(options[i].env, v))) config_die(options[i].flag, v, err);
    }
}

/* ---- HTTP ---- */

static uint64_t read_rss(void)
{
    int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    if (fd < 0) { /* no /proc (a bare container root): the peak, which the kernel keeps */
        struct rusage ru;
        return getrusage(RUSAGE_SELF, &ru) ? 0 : (uint64_t)ru.ru_maxrss * 1024;
    }
    char b[128];
    ssize_t n = read(fd, b, sizeof b - 1);
    close(fd);
    if (n <= 0) return 0;
    b[n] = 0;
    /* "size resident ...": the second field, in pages */
    const char *p = strchr(b, ' ');
    uint64_t pages = 0;
    for (p = p ? p + 1 : b + n; *p >= '0' && *p <= '9'; p++)
        pages = pages * 10 + (uint64_t)(*p - '0');
    return pages * (uint64_t)sysconf(_SC_PAGESIZE);
}

/* Descriptors open: /proc/self/fd, else what the loop knows it holds. */
static int open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d) return conn_open_fds();
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        n += e->d_name[0] != '.';
    closedir(d);
    return n - 1; /* the directory's own descriptor */
}

static void http_answer(struct conn *c, int status, const char *body, const char *extra, int keep)
{
    size_t n = http_write_response(response, RESPONSE_MAX, status, "text/plain; charset=utf-8",
                                   body, strlen(body), cfg.cors_origin, keep, extra);
    conn_send_raw(c, response, n);
}

/* Refuse and close after the answer: for requests we cannot keep reading after. */
static void http_fail(struct conn *c, int status, const char *body)
{
    http_answer(c, status, body, NULL, 0);
    conn_close(c, 0, "http");
}

/* Constant time in the contents of t: always walks the whole of want. */
static int secret_eq(const char *t, size_t tl, const char *want)
{
    size_t wl = strlen(want);
    unsigned diff = (unsigned)(tl != wl);
    for (size_t i = 0; i < wl; i++)
        diff |= (unsigned char)want[i] ^ (unsigned char)(i < tl ? t[i] : 0);
    return diff == 0;
}

/* May this upgrade become a hub? In hub mode: without HUB_SECRET anyone may (open, as the JS
 * and Go servers); with it, only a request that shows it: the path /hub/<secret> (what a JS
 * hub dials unchanged, with ?peerId= appended), the X-Hub-Secret header (what our dialler
 * sends) or ?hubSecret=. */
static int hub_secret_ok(const struct http_request *req)
{
    if (!cfg.is_hub) return 0;
    if (!cfg.hub_secret[0]) return 1;
    const struct http_header *h = http_header_get(req, "x-hub-secret");
    if (h) return secret_eq(h->value, h->value_len, cfg.hub_secret);
    if (req->path_len > 5 && !memcmp(req->path, "/hub/", 5))
        return secret_eq(req->path + 5, req->path_len - 5, cfg.hub_secret);
    const char *v;
    size_t vl;
    char dec[256];
    if (req->query && http_query_get(req->query, req->query_len, "hubSecret", &v, &vl)) {
        long d = http_url_decode(v, vl, dec, sizeof dec);
        return d >= 0 && secret_eq(dec, (size_t)d, cfg.hub_secret);
    }
    return 0;
}

static int token_ok(const struct http_request *req)
{
    const char *t = NULL;
    size_t tl = 0;
    char dec[256];
    const struct http_header *h = http_header_get(req, "authorization");
    if (h && h->value_len > 7 && !strncasecmp(h->value, "Bearer ", 7)) {
        t = h->value + 7;
        tl = h->value_len - 7;
    } else if (req->query && http_query_get(req->query, req->query_len, "token", &t, &tl)) {
        long d = http_url_decode(t, tl, dec, sizeof dec);
        if (d < 0) return 0;
        t = dec;
        tl = (size_t)d;
    }
    if (!t) return 0;
    return secret_eq(t, tl, cfg.auth_token);
}

/* The client's address as our proxy forwarded it (TRUST_PROXY, and the request came from the
 * proxy): the last entry of X-Forwarded-For (the one our proxy added; what comes before it is
 * the client's say), or X-Real-IP. Into out (NUL-terminated); 0, or -1 if there is none or
 * it is not an IP address. */
static int forwarded_addr(struct conn *c, const struct http_request *req, char out[64],
                          uint8_t key[16])
{
    if (!cfg.trust_proxy || !conn_from_proxy(c)) return -1;
    const struct http_header *h = http_header_get(req, "x-forwarded-for");
    if (!h) h = http_header_get(req, "x-real-ip");
    if (!h) return -1;
    const char *v = h->value;
    size_t vl = h->value_len;
    const char *comma = memrchr(v, ',', vl);
    if (comma) {
        vl -= (size_t)(comma + 1 - v);
        v = comma + 1;
    }
    while (vl && *v == ' ')
        v++, vl--;
    while (vl && v[vl - 1] == ' ')
        vl--;
    if (!vl || vl >= 64) return -1;
    memcpy(out, v, vl);
    out[vl] = 0;
    struct sockaddr_storage sa;
    return dns_parse_addr(out, &sa) ? -1 : conn_addr_key(&sa, key);
}

/* A client connecting, at debug: its id and address (the one its proxy saw when trusted). */
static void client_log(struct conn *c, const char *id, const char *fwd)
{
    char addr[64];
    conn_peer_addr(c, addr, sizeof addr);
    if (fwd)
        conn_log(LOG_DEBUG, "client.connect", "%.8s from %s (via %s)", id, fwd, addr);
    else
        conn_log(LOG_DEBUG, "client.connect", "%.8s from %s", id, addr);
}

/* The upgrade policy: version 13, a valid key, GET over HTTP/1.1, the token; then the peer id
 * and the connection limit are told in a close frame, as the JS server does. */
static void ws_upgrade(struct conn *c, const struct http_request *req)
{
    const struct http_header *ver = http_header_get(req, "sec-websocket-version");
    const struct http_header *key = http_header_get(req, "sec-websocket-key");
    if (!ver || ver->value_len != 2 || memcmp(ver->value, "13", 2)) {
        refuse(c, REFUSE_VERSION);
        http_answer(c, 426, "WebSocket version 13 required\n", "Sec-WebSocket-Version: 13\r\n", 0);
        conn_close(c, 0, "http");
        return;
    }
    if (!key || !ws_key_valid(key->value, key->value_len)) {
        refuse(c, REFUSE_BAD_KEY);
        http_fail(c, 400, "Bad Sec-WebSocket-Key\n");
        return;
    }
    if (req->method_len != 3 || memcmp(req->method, "GET", 3) || req->minor_version != 1) {
        refuse(c, REFUSE_BAD_KEY);
        http_fail(c, 400, "WebSocket upgrade needs GET and HTTP/1.1\n");
        return;
    }
    if (cfg.auth_token[0] && !token_ok(req)) {
        refuse(c, REFUSE_UNAUTHORIZED);
        http_fail(c, 401, "Unauthorized\n");
        return;
    }
    /* behind our proxy: the per-address limits apply to the address it forwards */
    char fwd[64];
    uint8_t fkey[16];
    int forwarded = forwarded_addr(c, req, fwd, fkey) == 0;
    int a = forwarded ? conn_claim_addr(c, fkey) : CONN_ADDR_OK;
    if (a != CONN_ADDR_OK) { /* counted by the connection layer */
        const char *text = a == CONN_ADDR_TOO_MANY ? "Too many connections from your address\n"
                                                   : "Connecting too fast from your address\n";
        conn_log(LOG_INFO, "refused", "%s: %.*s", fwd, (int)strlen(text) - 1, text);
        http_answer(c, 429, text, "Retry-After: 1\r\n", 0);
        conn_close(c, 0, "http");
        return;
    }
    char accept[29];
    ws_accept_key(key->value, key->value_len, accept);
    char head[160];
    int hl = snprintf(head, sizeof head,
                      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                      "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
                      accept);
    conn_send_raw(c, head, (size_t)hl);
    conn_accept_ws(c);

    char id[64];
    const char *v;
    size_t vl;
    long idl = -1;
    if (req->query && http_query_get(req->query, req->query_len, "peerId", &v, &vl))
        idl = http_url_decode(v, vl, id, sizeof id);
    if (idl < 0 || !peer_id_valid(id, (size_t)idl)) {
        refuse(c, REFUSE_PEER_ID);
        conn_close(c, WS_CLOSE_POLICY, "Invalid peerId format");
        return;
    }
    if (conn_ws_count() > cfg.max_connections) {
        refuse(c, REFUSE_LIMIT);
        conn_close(c, WS_CLOSE_POLICY, "Maximum connections reached");
        return;
    }
    client_log(c, id, forwarded ? fwd : NULL);
    const char *why = NULL;
    if (!peer_open(c, id, hub_secret_ok(req), &why))
        conn_close(c, WS_CLOSE_POLICY, why); /* else it said connected */
}

/* ---- /metrics: the Prometheus text format (version 0.0.4) ---- */

static void metric_head(struct json_writer *w, const char *name, const char *type, const char *help)
{
    JSON_LIT(w, "# HELP peerpigeon_");
    json_write_raw(w, name, strlen(name));
    json_write_raw(w, " ", 1);
    json_write_raw(w, help, strlen(help));
    JSON_LIT(w, "\n# TYPE peerpigeon_");
    json_write_raw(w, name, strlen(name));
    json_write_raw(w, " ", 1);
    json_write_raw(w, type, strlen(type));
    JSON_LIT(w, "\n");
}

/* One sample; labels is `k="v",...` or NULL (label values here are fixed names, no escaping). */
static void metric(struct json_writer *w, const char *name, const char *labels, uint64_t v)
{
    JSON_LIT(w, "peerpigeon_");
    json_write_raw(w, name, strlen(name));
    if (labels) {
        JSON_LIT(w, "{");
        json_write_raw(w, labels, strlen(labels));
        JSON_LIT(w, "}");
    }
    JSON_LIT(w, " ");
    json_write_u64(w, v);
    JSON_LIT(w, "\n");
}

static void metric1(struct json_writer *w, const char *name, const char *type, const char *help,
                    uint64_t v)
{
    metric_head(w, name, type, help);
    metric(w, name, NULL, v);
}

/* A family with one label over names[0..n): only the values seen (or all when all). */
static void metric_by(struct json_writer *w, const char *name, const char *type, const char *help,
                      const char *label, const char *const *names, const uint64_t *v, int n)
{
    char l[96];
    metric_head(w, name, type, help);
    for (int i = 0; i < n; i++) {
        snprintf(l, sizeof l, "%s=\"%s\"", label, names[i]);
        metric(w, name, l, v[i]);
    }
}

static void write_metrics(struct json_writer *w)
{
    const struct conn_stats *cs = conn_stats();
    const struct peer_stats *ps = peer_stats();
    metric_head(w, "build_info", "gauge", "Version of this server; always 1.");
    metric(w, "build_info", "version=\"" PP_VERSION "\",server=\"peerpigeon-c\"", 1);
    metric1(w, "uptime_seconds", "gauge", "Seconds since start.",
            (conn_now_ms() - start_ms) / 1000);
    metric1(w, "connections_accepted_total", "counter", "TCP connections accepted.", cs->accepted);
    metric1(w, "connections_shed_total", "counter",
            "Connections accepted and closed at once at the file descriptor limit.", cs->shed);
    metric_head(w, "connections_closed_total", "counter",
                "Connections ended, by kind and by the first cause.");
    for (int k = 0; k < CONN_KIND_N; k++)
        for (int e = 0; e < CONN_END_N; e++) {
            if (!cs->ended[k][e]) continue;
            char l[96];
            snprintf(l, sizeof l, "kind=\"%s\",reason=\"%s\"", conn_kind_names[k],
                     conn_end_names[e]);
            metric(w, "connections_closed_total", l, cs->ended[k][e]);
        }
    metric1(w, "received_bytes_total", "counter", "Bytes read from sockets.", cs->bytes_in);
    metric1(w, "sent_bytes_total", "counter", "Bytes written to sockets.", cs->bytes_out);
    metric_by(w, "messages_received_total", "counter",
              "WebSocket messages from peers (hubs among them), by type.", "type", peer_type_names,
              ps->in, PEER_T_N);
    metric_by(w, "messages_sent_total", "counter", "Messages queued to peers, by type.", "type",
              peer_type_names, ps->out, PEER_T_N);
    static const char *const conn_refuse_names[CONN_REFUSE_N] = {"memory", "http_connections",
                                                                 "per_ip", "connect_rate_ip"};
    uint64_t rf[REFUSE_N + CONN_REFUSE_N + 2];
    const char *rn[REFUSE_N + CONN_REFUSE_N + 2];
    int nr = 0;
    for (int i = 0; i < REFUSE_N; i++, nr++) {
        rf[nr] = refused[i];
        rn[nr] = refuse_names[i];
    }
    for (int i = 0; i < CONN_REFUSE_N; i++, nr++) {
        rf[nr] = cs->refused[i];
        rn[nr] = conn_refuse_names[i];
    }
    rf[nr] = ps->refused_duplicate;
    rn[nr++] = "duplicate_peer_id";
    rf[nr] = ps->refused_full;
    rn[nr++] = "peer_table_full";
    metric_by(w, "refused_total", "counter", "Requests and connections refused, by reason.",
              "reason", rn, rf, nr);
    metric_by(w, "rate_limited_total", "counter",
              "Messages dropped over a connection's rate, by kind.", "kind", peer_rate_names,
              ps->rate_limited, PEER_RATE_N);
    metric1(w, "announce_repeats_total", "counter",
            "Announces identical to the last one (not broadcast again).", ps->repeats);
    metric1(w, "held_back_total", "counter",
            "Times a producer was not read (memory past half the budget, or a receiver's queue "
            "past half its cap).",
            cs->held);
    metric1(w, "shed_memory_total", "counter",
            "Producers closed (1013) with memory past 7/8 of the budget.", cs->shed_memory);
    metric1(w, "remote_peers_refused_total", "counter",
            "Remote peers not kept for the memory budget.", ps->remote_refused);
    metric1(w, "memory_budget_bytes", "gauge", "MAX_MEMORY.", conn_mem_budget());
    metric1(w, "memory_accounted_bytes", "gauge",
            "What the budget counts: buffers, connections, announce data, remote peers.",
            conn_mem_used());
    metric1(w, "peers_replaced_total", "counter",
            "Silent old connections closed for a new one with the same peer id.", ps->replaced);
    metric1(w, "connections", "gauge", "Open connections (HTTP, WebSocket, hub links, DNS).",
            conn_count());
    metric1(w, "websocket_connections", "gauge", "Open accepted WebSocket connections.",
            conn_ws_count());
    metric1(w, "peers", "gauge", "Connected peers.", peer_count());
    metric1(w, "hub_peers", "gauge", "Connected peers that announced as hubs.", peer_hub_count());
    metric1(w, "networks", "gauge", "Networks with a connected peer.", peer_network_count());
    metric1(w, "remote_peers", "gauge", "Peers of other hubs kept.", peer_remote_count());
    metric1(w, "queued_output_bytes", "gauge", "Output queued and not yet written.",
            conn_queued_bytes());
    metric1(w, "resident_memory_bytes", "gauge", "Resident set size.", read_rss());
    metric1(w, "open_fds", "gauge", "File descriptors open.", (uint64_t)open_fds());
    metric1(w, "max_fds", "gauge", "File descriptor limit.", (uint64_t)conn_fd_limit());
    if (!cfg.is_hub) return;
    const struct hub_stats *hs = hub_stats();
    metric1(w, "hub_links", "gauge", "Bootstrap hub links configured.", hub_links_total());
    metric1(w, "hub_links_up", "gauge", "Bootstrap hub links open.", hub_links_connected());
    metric1(w, "hub_origins_alive", "gauge", "Hubs of ours heard from lately.",
            hub_origins_alive());
    metric1(w, "hub_dials_total", "counter", "Outbound hub link attempts.", hs->dials);
    metric1(w, "hub_links_opened_total", "counter", "Outbound hub links that opened.",
            hs->links_opened);
    metric1(w, "hub_relayed_signals_total", "counter", "Signals sent on to other hubs.",
            hs->relayed);
    metric1(w, "hub_floods_discovered_total", "counter", "peer-discovered sent to hubs.",
            hs->floods_discovered);
    metric1(w, "hub_floods_disconnected_total", "counter", "peer-disconnected sent to hubs.",
            hs->floods_disconnected);
    metric1(w, "hub_heartbeats_received_total", "counter", "New heartbeats heard.",
            hs->heartbeats_in);
    metric1(w, "hub_heartbeats_sent_total", "counter", "Heartbeats sent (own and forwarded).",
            hs->heartbeats_out);
    metric1(w, "hub_origins_expired_total", "counter",
            "Hubs given up as unreachable (their peers dropped).", hs->origins_expired);
}

static void http_route(struct conn *c, const struct http_request *req, int keep)
{
    struct http_info info = {
        .is_hub = cfg.is_hub,
        .hub_open = cfg.is_hub && !cfg.hub_secret[0],
        .hub_id = cfg.is_hub ? cfg.hub_id : "",
        .hub_ns = cfg.hub_ns,
        .host = cfg.host,
        .port = bound_port,
        .connections = conn_ws_count(),
        .peers = peer_count(),
        .hubs = peer_hub_count(),
        .networks = peer_network_count(),
        .max_connections = cfg.max_connections,
        .bootstrap_total = cfg.is_hub ? hub_links_total() : 0,
        .bootstrap_connected = cfg.is_hub ? hub_links_connected() : 0,
        .uptime_ms = conn_now_ms() - start_ms,
        .rss = read_rss,
        .now_wall_ms = conn_wall_ms(),
        .cors = cfg.cors_origin,
        .write_hubs = peer_write_hubs,
        .write_bootstrap = hub_write_bootstrap,
        .write_metrics = write_metrics,
    };
    size_t n = http_respond(req, &info, keep, response, RESPONSE_MAX);
    conn_send_raw(c, response, n);
}

/* Requests on an accepted connection, pipelined ones in order: one per call, the connection
 * layer offers the rest again once the answer is out. Returns the bytes used (whole requests
 * with their bodies); after an upgrade the connection layer reads the rest as frames. */
static size_t http_on_data(struct conn *c, void *owner, const char *p, size_t n)
{
    size_t used = 0;
    (void)owner;
    while (used < n && conn_is_open(c)) {
        struct http_request req;
        int r = http_parse_request(p + used, n - used, &req);
        if (r == HTTP_INCOMPLETE) break;
        if (r == HTTP_BAD) {
            refuse(c, REFUSE_BAD_REQUEST);
            http_fail(c, 400, "Bad Request\n");
            return n;
        }
        if (r == HTTP_TOO_LARGE) {
            refuse(c, REFUSE_TOO_LARGE);
            http_fail(c, 431, "Request Header Fields Too Large\n");
            return n;
        }
        uint64_t body = 0;
        if (http_header_get(&req, "transfer-encoding")) {
            refuse(c, REFUSE_BAD_REQUEST);
            http_fail(c, 400, "Transfer-Encoding not supported\n");
            return n;
        }
        if (http_content_length(req.headers, req.num_headers, &body)) {
            refuse(c, REFUSE_BAD_REQUEST);
            http_fail(c, 400, "Bad Content-Length\n");
            return n;
        }
        if (body > HTTP_MAX_BODY) {
            refuse(c, REFUSE_TOO_LARGE);
            http_fail(c, 413, "Payload Too Large\n");
            return n;
        }
        if (n - used - (size_t)r < body) break; /* wait for the whole body, then skip it */
        used += (size_t)r + (size_t)body;
        const struct http_header *conn_h = http_header_get(&req, "connection");
        const struct http_header *up = http_header_get(&req, "upgrade");
        int keep;
        if (req.minor_version == 1)
            keep = !(conn_h && http_has_token(conn_h->value, conn_h->value_len, "close"));
        else
            keep = conn_h && http_has_token(conn_h->value, conn_h->value_len, "keep-alive");
        if (up && http_has_token(up->value, up->value_len, "websocket") && conn_h &&
            http_has_token(conn_h->value, conn_h->value_len, "upgrade")) {
            ws_upgrade(c, &req);
            return used; /* the rest, if any, is frames (or dropped if refused) */
        }
        http_route(c, &req, keep);
        if (!keep) conn_close(c, 0, "http");
        break; /* one answer in flight: the next request once this one is out */
    }
    return used;
}

static const struct conn_handlers http_handlers = {.data = http_on_data};

/* ---- listening ---- */

/* A blocking DNS lookup at start (HOST is a name that /etc/hosts does not know): the A
 * record, else the AAAA one, from the first nameserver, each asked twice 1 s apart. No libc
 * resolver is linked in: this and dns.c are the whole of it. */
static int host_dns(const char *name, struct sockaddr_storage *out)
{
    struct sockaddr_storage ns;
    if (dns_nameserver(&ns) < 0) return -1;
    int fd = socket(ns.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    socklen_t nl = ns.ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    int rc = connect(fd, (struct sockaddr *)&ns, nl);
    static const uint16_t types[2] = {DNS_QTYPE_A, DNS_QTYPE_AAAA};
    for (int t = 0; t < 2 && rc == 0; t++) {
        uint16_t id;
        uint8_t q[DNS_MAX_QUERY], a[1500];
        conn_random(&id, sizeof id);
        int ql = dns_query_build(name, id, types[t], q, sizeof q);
        if (ql < 0) break;
        for (int try = 0; try < 2; try++) {
            if (send(fd, q, (size_t)ql, 0) != ql) break;
            struct pollfd pf = {.fd = fd, .events = POLLIN};
            for (;;) { /* answers not to our question are skipped */
                if (poll(&pf, 1, 1000) <= 0) break;
                ssize_t n = recv(fd, a, sizeof a, 0);
                if (n < 0) break;
                int r = dns_answer_parse(a, (size_t)n, id, types[t], name, out);
                if (r == DNS_OK) {
                    close(fd);
                    return 0;
                }
                if (r != DNS_E_MISMATCH && r != DNS_E_MALFORMED) {
                    try = 2; /* a real "no": the next type */
                    break;
                }
            }
        }
    }
    close(fd);
    return -1;
}

/* HOST's addresses into out[0..max): a numeric address; a name from /etc/hosts (every
 * address it lists); "localhost" is 127.0.0.1 even without /etc/hosts (an empty container
 * root has none), as the hub dialler treats it; else one address from DNS. How many, or -1. */
static int host_addrs(struct sockaddr_storage *out, int max)
{
    if (dns_parse_addr(cfg.host, &out[0]) == 0) return 1;
    int n = dns_hosts_all_in("/etc/hosts", cfg.host, out, max);
    if (n > 0) return n;
    if (!strcasecmp(cfg.host, "localhost")) return dns_parse_addr("127.0.0.1", &out[0]) ? -1 : 1;
    return host_dns(cfg.host, &out[0]) ? -1 : 1;
}

static socklen_t addr_len(const struct sockaddr_storage *sa)
{
    return sa->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
}

/* --health-check: GET /health from the server at HOST:PORT (a wildcard HOST is asked on
 * loopback); 0 if it answers 200 within 3 s, else 1. For a container's HEALTHCHECK, where
 * there is no curl. */
static int health_check_run(void)
{
    if (!strcmp(cfg.host, "0.0.0.0") || !strcmp(cfg.host, "::") || !cfg.host[0])
        strcpy(cfg.host, cfg.host[0] == ':' ? "::1" : "127.0.0.1");
    struct sockaddr_storage addrs[MAX_LISTEN];
    int na = host_addrs(addrs, MAX_LISTEN);
    if (na < 0) {
        fprintf(stderr, "peerpigeon: health check: cannot resolve %s\n", cfg.host);
        return 1;
    }
    int ok = 0;
    for (int i = 0; i < na && !ok; i++) {
        int fd = socket(addrs[i].ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) continue;
        struct timeval tv = {3, 0};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        struct sockaddr_storage sa = addrs[i];
        dns_set_port(&sa, (uint16_t)cfg.port);
        static const char req[] = "GET /health HTTP/1.1\r\nHost: localhost\r\n"
                                  "Connection: close\r\n\r\n";
        char buf[2048];
        size_t n = 0;
        if (connect(fd, (struct sockaddr *)&sa, addr_len(&sa)) == 0 &&
            send(fd, req, sizeof req - 1, MSG_NOSIGNAL) == (ssize_t)(sizeof req - 1)) {
            ssize_t r;
            while (n < sizeof buf && (r = recv(fd, buf + n, sizeof buf - n, 0)) > 0)
                n += (size_t)r;
            struct http_response hr;
            ok = http_parse_response(buf, n, &hr) > 0 && hr.status == 200;
        }
        close(fd);
    }
    if (!ok) fprintf(stderr, "peerpigeon: health check of %s port %d failed\n", cfg.host, cfg.port);
    return ok ? 0 : 1;
}

static int listen_on(const struct sockaddr_storage *ai, int port)
{
    int fd = socket(ai->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    int one = 1, zero = 0;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (ai->ss_family == AF_INET6) {
        /* "::" serves IPv4 too; a specific v6 address only itself */
        const struct sockaddr_in6 *a6 = (const void *)ai;
        int any = IN6_IS_ADDR_UNSPECIFIED(&a6->sin6_addr);
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, any ? &zero : &one, sizeof one);
    }
    struct sockaddr_storage sa = *ai;
    dns_set_port(&sa, (uint16_t)port);
    if (bind(fd, (struct sockaddr *)&sa, addr_len(&sa)) < 0 || listen(fd, 4096) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}
/* The numeric text of an address (inet_ntop: getnameinfo would bring a resolver along). */
static void addr_text(const struct sockaddr *sa, char *out, size_t cap)
{
    const void *a = sa->sa_family == AF_INET6
                        ? (const void *)&((const struct sockaddr_in6 *)sa)->sin6_addr
                        : (const void *)&((const struct sockaddr_in *)sa)->sin_addr;
    if (!inet_ntop(sa->sa_family, a, out, (socklen_t)cap)) snprintf(out, cap, "?");
}

static int listen_fds[MAX_LISTEN];
static int nlisten;

static int bound_port_of(int fd)
{
    struct sockaddr_storage sa;
    socklen_t sl = sizeof sa;
    getsockname(fd, (struct sockaddr *)&sa, &sl);
    return ntohs(sa.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&sa)->sin6_port
                                          : ((struct sockaddr_in *)&sa)->sin_port);
}

static int open_listeners(void)
{
    struct sockaddr_storage res[MAX_LISTEN];
    int nres = host_addrs(res, MAX_LISTEN);
    if (nres < 0) {
        fprintf(stderr,
                "peerpigeon: cannot resolve HOST '%s': not an address, not in /etc/hosts, and "
                "no answer from DNS\n",
                cfg.host);
        return -1;
    }
    /* if "::" is offered, it covers 0.0.0.0 too: keep only the v6 wildcard */
    int have_v6_any = 0;
    for (int i = 0; i < nres; i++)
        if (res[i].ss_family == AF_INET6 &&
            IN6_IS_ADDR_UNSPECIFIED(&((struct sockaddr_in6 *)&res[i])->sin6_addr))
            have_v6_any = 1;
    int last = cfg.port == 0 ? 0 : cfg.port + PORT_PROBE;
    if (last > 65535) last = 65535;
    for (int port = cfg.port; port <= last && nlisten == 0; port++) {
        for (int i = 0; i < nres && nlisten < MAX_LISTEN; i++) {
            const struct sockaddr_storage *a = &res[i];
            if (have_v6_any && a->ss_family == AF_INET) continue;
            int dup = 0;
            for (int j = 0; j < i; j++)
                if (res[j].ss_family == a->ss_family && !memcmp(&res[j], a, addr_len(a)))
                    dup = 1;
            if (dup) continue;
            int want = nlisten ? bound_port : port;
            int fd = listen_on(a, want);
            if (fd < 0) {
                if (nlisten == 0 && errno == EADDRINUSE) {
                    conn_log(LOG_WARN, "listen", "port %d in use, trying the next", port);
                    break;
                }
                char host[64];
                addr_text((const struct sockaddr *)a, host, sizeof host);
                conn_log(nlisten ? LOG_WARN : LOG_ERROR, "listen",
                         "cannot listen on %s port %d: %s", host, want, strerror(errno));
                if (nlisten == 0) continue;
                continue;
            }
            if (nlisten == 0) bound_port = bound_port_of(fd);
            listen_fds[nlisten++] = fd;
            char host[64];
            addr_text((const struct sockaddr *)a, host, sizeof host);
            conn_log(LOG_INFO, "listen", "listening on %s port %d", host, bound_port);
        }
    }
    if (nlisten == 0) {
        fprintf(stderr, "peerpigeon: could not listen on %s ports %d-%d\n", cfg.host, cfg.port,
                last);
        return -1;
    }
    for (int i = 0; i < nlisten; i++)
        if (conn_listen(listen_fds[i], &http_handlers, NULL)) return -1;
    return 0;
}

/* ---- main ---- */

static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

/* A number from a one-line file (cgroup limits), or 0 ("max", absent, unreadable). */
static uint64_t file_u64(const char *path)
{
    char b[64] = "";
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    int ok = fgets(b, sizeof b, f) != NULL;
    fclose(f);
    uint64_t v = 0;
    for (const char *q = b; ok && *q >= '0' && *q <= '9'; q++)
        v = v < UINT64_MAX / 10 - 10 ? v * 10 + (uint64_t)(*q - '0') : UINT64_MAX;
    return v;
}

/* MAX_MEMORY unset: half of the memory this process may use (the cgroup's memory.max, as a
 * systemd unit's MemoryMax or a container's --memory set it, or the machine's RAM), so that
 * a 1 GB VM gets 512 MiB and the rest stays for the kernel's socket buffers and the heap's
 * slack; 512 MiB when neither can be read. */
static uint64_t memory_default(const char **from)
{
    uint64_t lim = 0, ram = 0;
    char line[512], path[600];
    FILE *f = fopen("/proc/self/cgroup", "r");
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "0::", 3)) {
            line[strcspn(line, "\n")] = 0;
            snprintf(path, sizeof path, "/sys/fs/cgroup%s/memory.max", line + 3);
            lim = file_u64(path);
        }
    if (f) fclose(f);
    if (!lim) lim = file_u64("/sys/fs/cgroup/memory.max");
    if (!lim) lim = file_u64("/sys/fs/cgroup/memory/memory.limit_in_bytes"); /* cgroup v1 */
    if (lim >= (1ull << 50)) lim = 0;                                       /* v1: no limit */
    f = fopen("/proc/meminfo", "r");
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "MemTotal:", 9)) ram = strtoull(line + 9, NULL, 10) << 10;
    if (f) fclose(f);
    *from = lim && (!ram || lim < ram) ? "half the cgroup's memory.max" : "half the RAM";
    uint64_t have = lim && (!ram || lim < ram) ? lim : ram;
    if (!have) {
        *from = "neither the cgroup limit nor the RAM could be read";
        return 512u << 20;
    }
    return have / 2 < (16u << 20) ? 16u << 20 : have / 2;
}

static const char *mem_from; /* where the memory budget came from, for the ready line */

static int setup(void)
{
    mem_from = "MAX_MEMORY";
    /* the derived limits; the log says where the budget came from */
    if (!cfg.max_memory_set) cfg.max_memory = memory_default(&mem_from);
    if (!cfg.max_http) cfg.max_http = cfg.max_connections / 4 > 256 ? cfg.max_connections / 4 : 256;
    if (cfg.per_ip < 0) cfg.per_ip = 256;
    if (cfg.connect_rate < 0) cfg.connect_rate = 10;
    struct conn_config cc = {.max_message_size = cfg.max_message_size,
                             .ping_interval_ms = cfg.ping_interval_ms,
                             .log_level = cfg.log_level,
                             .max_memory = cfg.max_memory,
                             .max_http = cfg.max_http,
                             .per_addr = (uint32_t)cfg.per_ip,
                             .addr_rate = (uint32_t)cfg.connect_rate,
                             .addr_burst = cfg.per_ip ? (uint32_t)cfg.per_ip : 256,
                             .defer_utf8 = 1,
                             .nproxies = cfg.nproxies};
    memcpy(cc.proxies, cfg.proxies, sizeof cc.proxies);
    struct peer_config pc = {.max_connections = cfg.max_connections,
                             .max_message_size = cfg.max_message_size,
                             .ping_interval_ms = cfg.ping_interval_ms,
                             .hub_ns = cfg.hub_ns,
                             .rate_limits = cfg.rate_limits};
    response = malloc(RESPONSE_MAX);
    if (conn_init(&cc) || !response || peer_init(&pc)) {
        fprintf(stderr, "peerpigeon: out of memory\n");
        return -1;
    }
    if ((uint64_t)cfg.max_connections + 64 > (uint64_t)conn_fd_limit())
        conn_log(LOG_WARN, "config",
                 "MAX_CONNECTIONS %u needs %u file descriptors (64 spare), the limit is %d",
                 cfg.max_connections, cfg.max_connections + 64, conn_fd_limit());
    if (cfg.is_hub && !cfg.hub_id[0]) {
        uint8_t r[PEER_ID_LEN / 2];
        conn_random(r, sizeof r);
        for (size_t i = 0; i < sizeof r; i++)
            sprintf(cfg.hub_id + 2 * i, "%02x", r[i]);
    }
    return 0;
}

int main(int argc, char **argv)
{
    config_load(argc, argv);
    if (health_check) return health_check_run();
    conn_set_log_level(cfg.log_level);
    conn_set_log_json(cfg.log_json);
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    if (setup() < 0) return 1;
    start_ms = conn_now_ms();
    if (cfg.is_hub) {
        struct hub_config hc = {.id = cfg.hub_id,
                                .ns = cfg.hub_ns,
                                .bootstrap = cfg.bootstrap_hubs,
                                .auth_token = cfg.auth_token,
                                .hub_secret = cfg.hub_secret,
                                .remote_quota =
                                    cfg.max_connections > 1000 ? cfg.max_connections : 1000,
                                .host = cfg.host,
                                .max_message_size = cfg.max_message_size};
        const char *herr = hub_init(&hc);
        if (herr) {
            fprintf(stderr, "peerpigeon: invalid BOOTSTRAP_HUBS: %s\n", herr);
            return 2;
        }
        if (!cfg.hub_secret[0])
            conn_log(LOG_WARN, "config",
                     "no HUB_SECRET: any client that announces as a hub gets hub rights (every "
                     "peer of every network, relays); set one for a public hub");
    } else if (cfg.bootstrap_hubs[0]) {
        conn_log(LOG_WARN, "config", "BOOTSTRAP_HUBS ignored: IS_HUB is off");
    }
    if (open_listeners() < 0) return 1;
    if (cfg.is_hub) hub_set_port(bound_port);
    conn_log(LOG_INFO, "ready",
             "peerpigeon " PP_VERSION " ready: port %d, max %u connections, memory budget %llu "
             "MiB (%s)%s%s",
             bound_port, cfg.max_connections, (unsigned long long)(cfg.max_memory >> 20),
             mem_from, cfg.is_hub ? ", hub " : "", cfg.is_hub ? cfg.hub_id : "");
    conn_run(&stop_flag);
    conn_log(LOG_INFO, "shutdown", "stopped");
    if (cfg.is_hub) hub_free();
    peer_free();
    free(response);
    return 0;
}
