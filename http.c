/* http.c - HTTP/1.1 for the signalling port. The request- and response-head parsers are pure
 * functions that return views into the caller's buffer (picohttpparser's contract) and reject a
 * bad byte the moment it arrives, so a peer cannot make us wait for the rest of a head already
 * known to be invalid. Also: header, Content-Length, token-list and query lookups,
 * percent-decoding, the response writer. No allocation; bodies are the caller's business. */
#include "http.h"
#include "json.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* tchar of RFC 9110 5.6.2: the bytes of a method or header-name token. */
static int is_tchar(unsigned char c)
{
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return 1;
    return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* A request-target byte: visible ASCII only (RFC 3986 has no raw controls, spaces or 8-bit). */
static int is_target_char(unsigned char c)
{
    return c > 0x20 && c < 0x7f;
}

/* field-vchar / obs-text plus SP and HTAB (RFC 9110 5.5): every byte but the controls. */
static int is_value_char(unsigned char c)
{
    return c == '\t' || (c >= 0x20 && c != 0x7f);
}

static int lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

static int eq_nocase(const char *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (lower((unsigned char)a[i]) != lower((unsigned char)b[i])) return 0;
    return 1;
}

/* Consume a CRLF at *pp. A bare LF is refused (RFC 9112 2.2 lets us): a proxy in front that
 * splits lines on LF alone would frame a different request than we do, which is smuggling.
 * 1 = consumed, 0 = the bytes ran out, -1 = something else is there. */
static int eat_eol(const char **pp, const char *end)
{
    const char *p = *pp;
    if (p == end) return 0;
    if (*p != '\r') return -1;
    if (++p == end) return 0;
    if (*p != '\n') return -1;
    *pp = p + 1;
    return 1;
}

/* Splits the request-target into path and query, dropping any fragment (RFC 9112 3.2 never
 * sends one, but a sloppy client might). */
static void split_target(struct http_request *req, const char *t, size_t n)
{
    size_t i = 0;
    while (i < n && t[i] != '?' && t[i] != '#')
        i++;
    req->path = t;
    req->path_len = i;
    req->query = NULL;
    req->query_len = 0;
    if (i < n && t[i] == '?') {
        size_t q = ++i;
        while (i < n && t[i] != '#')
            i++;
        req->query = t + q;
        req->query_len = i - q;
    }
}

/* header-fields, then the empty line, from p on (RFC 9112 5). Shared by requests and responses;
 * returns the head length from buf, short_rc when the bytes run out, or HTTP_BAD/TOO_LARGE. */
static int parse_headers(const char *buf, const char *p, const char *end, int short_rc,
                         struct http_header *hs, size_t *num)
{
    int r;
    *num = 0;
    for (;;) {
        if ((r = eat_eol(&p, end)) == 1) return (int)(p - buf);
        if (r == 0) return short_rc;
        /* a line starting with whitespace is obs-fold (or junk): RFC 9112 5.2 lets us refuse */
        if (!is_tchar((unsigned char)*p)) return HTTP_BAD;
        if (*num == HTTP_MAX_HEADERS) return HTTP_TOO_LARGE;
        struct http_header *h = &hs[*num];

        h->name = p;
        while (p < end && is_tchar((unsigned char)*p))
            p++;
        if (p == end) return short_rc;
        if (*p != ':') /* RFC 9112 5.1: no whitespace between name and colon */
            return HTTP_BAD;
        h->name_len = (size_t)(p - h->name);
        p++;

        while (p < end && (*p == ' ' || *p == '\t'))
            p++;
        h->value = p;
        while (p < end && is_value_char((unsigned char)*p))
            p++;
        const char *vend = p;
        if ((r = eat_eol(&p, end)) <= 0) return r < 0 ? HTTP_BAD : short_rc;
        while (vend > h->value && (vend[-1] == ' ' || vend[-1] == '\t'))
            vend--;
        h->value_len = (size_t)(vend - h->value);
        (*num)++;
    }
}

/* "HTTP/1.0" or "HTTP/1.1" at *pp, checked byte by byte so "HTTP/2" fails at once. Sets
 * *minor; returns 1, 0 when the bytes run out, -1 on anything else. */
static int eat_version(const char **pp, const char *end, int *minor)
{
    static const char ver[] = "HTTP/1.";
    const char *p = *pp;
    for (size_t i = 0; i < sizeof ver - 1; i++, p++) {
        if (p == end) return 0;
        if (*p != ver[i]) return -1;
    }
    if (p == end) return 0;
    if (*p != '0' && *p != '1') return -1;
    *minor = *p++ - '0';
    *pp = p;
    return 1;
}

int http_parse_request(const char *buf, size_t len, struct http_request *req)
{
    /* Never look past HTTP_MAX_HEAD: running out of bytes there means the head is too big,
     * running out before it means "call again". */
    const char *p = buf, *end = buf + (len < HTTP_MAX_HEAD ? len : HTTP_MAX_HEAD);
    const int short_rc = len >= HTTP_MAX_HEAD ? HTTP_TOO_LARGE : HTTP_INCOMPLETE;
    int r;

    req->num_headers = 0;

    /* RFC 9112 2.2: ignore at least one empty line before the request-line. */
    while ((r = eat_eol(&p, end)) == 1)
        ;
    if (r == 0) return short_rc;
    if (*p == '\r') return HTTP_BAD; /* a bare LF falls to the method check below */

    /* method SP */
    req->method = p;
    while (p < end && is_tchar((unsigned char)*p))
        p++;
    if (p == end) return short_rc;
    if (p == req->method || *p != ' ') return HTTP_BAD;
    req->method_len = (size_t)(p - req->method);
    p++;

    /* request-target SP: origin-form or '*' (asterisk-form); absolute-form is not served. */
    const char *target = p;
    if (p == end) return short_rc;
    if (*p != '/' && *p != '*') return HTTP_BAD;
    if (*p++ == '*') {
        if (p == end) return short_rc;
        if (*p != ' ') return HTTP_BAD;
    }
    while (p < end && is_target_char((unsigned char)*p))
        p++;
    if (p == end) return short_rc;
    if (*p != ' ') return HTTP_BAD;
    split_target(req, target, (size_t)(p - target));
    p++;

    if ((r = eat_version(&p, end, &req->minor_version)) <= 0) return r < 0 ? HTTP_BAD : short_rc;
    if ((r = eat_eol(&p, end)) <= 0) return r < 0 ? HTTP_BAD : short_rc;
    return parse_headers(buf, p, end, short_rc, req->headers, &req->num_headers);
}

/* The status-line of RFC 9112 4: version SP 3DIGIT [SP reason-phrase], up to its CRLF. */
static int parse_status_line(const char **pp, const char *end, struct http_response *res)
{
    const char *p = *pp;
    int r;
    if ((r = eat_version(&p, end, &res->minor_version)) <= 0) return r;
    if (p == end) return 0;
    if (*p++ != ' ') return -1;
    res->status = 0;
    for (int i = 0; i < 3; i++, p++) {
        if (p == end) return 0;
        if (*p < '0' || *p > '9') return -1;
        res->status = res->status * 10 + (*p - '0');
    }
    /* the reason is optional, but its SP is not when there is one: "1010" is not "101" */
    if (p == end) return 0;
    if (*p == ' ')
        p++;
    else if (*p != '\r')
        return -1;
    res->reason = p;
    while (p < end && is_value_char((unsigned char)*p))
        p++;
    res->reason_len = (size_t)(p - res->reason);
    if ((r = eat_eol(&p, end)) <= 0) return r;
    *pp = p;
    return 1;
}

int http_parse_response(const char *buf, size_t len, struct http_response *res)
{
    const char *p = buf, *end = buf + (len < HTTP_MAX_HEAD ? len : HTTP_MAX_HEAD);
    const int short_rc = len >= HTTP_MAX_HEAD ? HTTP_TOO_LARGE : HTTP_INCOMPLETE;
    int r;

    res->num_headers = 0;
    if ((r = parse_status_line(&p, end, res)) <= 0) return r < 0 ? HTTP_BAD : short_rc;
    return parse_headers(buf, p, end, short_rc, res->headers, &res->num_headers);
}

const struct http_header *http_header_find(const struct http_header *h, size_t n, const char *name)
{
    size_t len = strlen(name);
    for (size_t i = 0; i < n; i++)
        if (h[i].name_len == len && eq_nocase(h[i].name, name, len)) return &h[i];
    return NULL;
}

const struct http_header *http_header_get(const struct http_request *req, const char *name)
{
    return http_header_find(req->headers, req->num_headers, name);
}

/* A Content-Length value: 1*DIGIT (RFC 9110 8.6) that fits. 0 = ok, -1 = not a length. */
static int parse_length(const char *s, size_t n, uint64_t *v)
{
    *v = 0;
    if (n == 0) return -1;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        unsigned d = (unsigned)(s[i] - '0');
        /* checked before the multiply, which would wrap silently */
        if (*v > (UINT64_MAX - d) / 10) return -1;
        *v = *v * 10 + d;
    }
    return 0;
}

/* Every Content-Length, not just the first: a proxy that reads another one than we do would
 * frame the body differently (smuggling). */
int http_content_length(const struct http_header *h, size_t n, uint64_t *len)
{
    int seen = 0;
    *len = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t v;
        if (h[i].name_len != 14 || !eq_nocase(h[i].name, "content-length", 14)) continue;
        if (parse_length(h[i].value, h[i].value_len, &v) < 0 || (seen && v != *len)) {
            *len = 0;
            return -1;
        }
        *len = v;
        seen = 1;
    }
    return 0;
}

int http_has_token(const char *value, size_t len, const char *token)
{
    size_t tlen = strlen(token);
    size_t i = 0;
    if (tlen == 0) return 0;
    while (i < len) {
        size_t s = i, e;
        while (i < len && value[i] != ',')
            i++;
        e = i++; /* skip the comma */
        while (s < e && (value[s] == ' ' || value[s] == '\t'))
            s++;
        while (e > s && (value[e - 1] == ' ' || value[e - 1] == '\t'))
            e--;
        if (e - s == tlen && eq_nocase(value + s, token, tlen)) return 1;
    }
    return 0;
}

/* Keys are compared raw (still encoded) and case-sensitively: peerId is not PEERID. */
int http_query_get(const char *query, size_t len, const char *key, const char **val, size_t *vlen)
{
    size_t klen = strlen(key);
    size_t i = 0;
    if (query == NULL || klen == 0) return 0;
    while (i < len) {
        size_t s = i, eq;
        while (i < len && query[i] != '&')
            i++;
        for (eq = s; eq < i && query[eq] != '='; eq++)
            ;
        if (eq - s == klen && memcmp(query + s, key, klen) == 0) {
            size_t v = eq < i ? eq + 1 : i;
            *val = query + v;
            *vlen = i - v;
            return 1;
        }
        i++; /* skip the '&' */
    }
    return 0;
}

static int hex_val(unsigned char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    c = (unsigned char)lower(c);
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

/* %00 is refused as a bad escape: callers use the output as a C string, and a NUL inside a
 * peer id or network name would silently cut it short. */
long http_url_decode(const char *in, size_t len, char *out, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c == '+') {
            c = ' ';
        } else if (c == '%') {
            int hi, lo;
            if (len - i < 3 || (hi = hex_val((unsigned char)in[i + 1])) < 0 ||
                (lo = hex_val((unsigned char)in[i + 2])) < 0)
                return -1;
            c = (unsigned char)(hi << 4 | lo);
            if (c == 0) return -1;
            i += 2;
        }
        if (n == cap) return -1;
        out[n++] = (char)c;
    }
    if (n < cap) out[n] = '\0';
    return (long)n;
}

/* The response writer appends into a fixed buffer and remembers the first overflow. */
struct out {
    char *buf;
    size_t cap, len;
    int full;
};

static void put(struct out *o, const char *s, size_t n)
{
    if (o->full || n > o->cap - o->len) {
        o->full = 1;
        return;
    }
    if (n) memcpy(o->buf + o->len, s, n);
    o->len += n;
}

static void put_str(struct out *o, const char *s)
{
    put(o, s, strlen(s));
}

static void put_uint(struct out *o, unsigned long long v)
{
    char tmp[24];
    size_t i = sizeof tmp;
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    put(o, tmp + i, sizeof tmp - i);
}

/* RFC 9110 8.6: no Content-Length on a 1xx or 204 response; every other header as promised. */
size_t http_write_response(char *out, size_t cap, int status, const char *ctype, const char *body,
                           size_t body_len, const char *cors, int keep_alive, const char *extra)
{
    struct out o = {out, cap, 0, 0};
    if (status < 100 || status > 999) return 0;
    put_str(&o, "HTTP/1.1 ");
    put_uint(&o, (unsigned)status);
    put_str(&o, " ");
    put_str(&o, http_status_text(status));
    put_str(&o, "\r\n");
    if (ctype) {
        put_str(&o, "Content-Type: ");
        put_str(&o, ctype);
        put_str(&o, "\r\n");
    }
    if (status >= 200 && status != 204) {
        put_str(&o, "Content-Length: ");
        put_uint(&o, body_len);
        put_str(&o, "\r\n");
    }
    if (cors) {
        put_str(&o, "Access-Control-Allow-Origin: ");
        put_str(&o, cors);
        put_str(&o, "\r\n");
    }
    put_str(&o, keep_alive ? "Connection: keep-alive\r\n" : "Connection: close\r\n");
    if (extra) put_str(&o, extra);
    put_str(&o, "\r\n");
    if (body_len) put(&o, body, body_len);
    return o.full ? 0 : o.len;
}

const char *http_status_text(int status)
{
    switch (status) {
    case 101:
        return "Switching Protocols";
    case 200:
        return "OK";
    case 204:
        return "No Content";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 413:
        return "Content Too Large";
    case 426:
        return "Upgrade Required";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 503:
        return "Service Unavailable";
    default:
        return "Unknown";
    }
}

/* ---- endpoints ---- */

#define BODY_MAX (192u << 10) /* JSON answers; /hubs lists as many hubs as fit */

static int path_is(const struct http_request *req, const char *p)
{
    return req->path_len == strlen(p) && !memcmp(req->path, p, req->path_len);
}

/* ISO 8601 UTC with milliseconds, as JavaScript's toISOString. */
static void write_iso(struct json_writer *w, uint64_t ms)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    char b[40];
    gmtime_r(&t, &tm);
    int n = snprintf(b, sizeof b, "\"%04d-%02d-%02dT%02d:%02d:%02d.%03uZ\"", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     (unsigned)(ms % 1000));
    json_write_raw(w, b, (size_t)n);
}

/* ,"connections":N,"peers":N,"hubs":N,"networks":N - shared by /health and /stats */
static void write_counts(struct json_writer *w, const struct http_info *in)
{
    JSON_LIT(w, ",\"connections\":");
    json_write_u64(w, in->connections);
    JSON_LIT(w, ",\"peers\":");
    json_write_u64(w, in->peers);
    JSON_LIT(w, ",\"hubs\":");
    json_write_u64(w, in->hubs);
    JSON_LIT(w, ",\"networks\":");
    json_write_u64(w, in->networks);
}

static void write_health(struct json_writer *w, const struct http_info *in)
{
    JSON_LIT(w, "{\"status\":\"healthy\",\"timestamp\":");
    write_iso(w, in->now_wall_ms);
    JSON_LIT(w, ",\"uptime\":");
    json_write_seconds(w, in->uptime_ms);
    JSON_LIT(w, ",\"isHub\":");
    json_write_bool(w, in->is_hub);
    write_counts(w, in);
    JSON_LIT(w, ",\"memory\":{\"rss\":");
    json_write_u64(w, in->rss ? in->rss() : 0); /* a read of /proc: only here */
    JSON_LIT(w, "}}");
}

static void write_stats(struct json_writer *w, const struct http_info *in)
{
    JSON_LIT(w, "{\"isRunning\":true,\"isHub\":");
    json_write_bool(w, in->is_hub);
    JSON_LIT(w, ",\"hubPeerId\":");
    json_write_str(w, in->hub_id, strlen(in->hub_id));
    JSON_LIT(w, ",\"hubMeshNamespace\":");
    json_write_str(w, in->hub_ns, strlen(in->hub_ns));
    write_counts(w, in);
    JSON_LIT(w, ",\"bootstrapHubs\":{\"total\":");
    json_write_u64(w, in->bootstrap_total);
    JSON_LIT(w, ",\"connected\":");
    json_write_u64(w, in->bootstrap_connected);
    JSON_LIT(w, "},\"maxConnections\":");
    json_write_u64(w, in->max_connections);
    JSON_LIT(w, ",\"uptime\":");
    json_write_u64(w, in->uptime_ms);
    JSON_LIT(w, ",\"host\":");
    json_write_str(w, in->host, strlen(in->host));
    JSON_LIT(w, ",\"port\":");
    json_write_u64(w, (uint64_t)in->port);
    JSON_LIT(w, "}");
}

static void write_hubs(struct json_writer *w, const struct http_info *in)
{
    JSON_LIT(w, "{\"timestamp\":");
    write_iso(w, in->now_wall_ms);
    JSON_LIT(w, ",\"totalHubs\":");
    json_write_u64(w, in->hubs);
    JSON_LIT(w, ",\"hubs\":");
    in->write_hubs(w);
    JSON_LIT(w, "}");
}

static void write_hubstats(struct json_writer *w, const struct http_info *in)
{
    JSON_LIT(w, "{\"totalHubs\":");
    json_write_u64(w, in->hubs);
    JSON_LIT(w, ",\"connectedHubs\":");
    json_write_u64(w, in->hubs + in->bootstrap_connected);
    JSON_LIT(w, ",\"hubs\":");
    in->write_hubs(w);
    JSON_LIT(w, ",\"bootstrapHubs\":");
    in->write_bootstrap(w);
    if (in->is_hub) { /* who may become a hub here: anyone (no HUB_SECRET), or who shows it */
        JSON_LIT(w, ",\"hubRights\":");
        if (in->hub_open)
            JSON_LIT(w, "\"open\"");
        else
            JSON_LIT(w, "\"secret\"");
    }
    JSON_LIT(w, "}");
}

static void write_metrics(struct json_writer *w, const struct http_info *in)
{
    in->write_metrics(w);
}

size_t http_respond(const struct http_request *req, const struct http_info *info, int keep_alive,
                    char *out, size_t cap)
{
    static char body[BODY_MAX];
    static const char json[] = "application/json";
    static const char text[] = "text/plain; charset=utf-8";
    int head = req->method_len == 4 && !memcmp(req->method, "HEAD", 4);
    int get = head || (req->method_len == 3 && !memcmp(req->method, "GET", 3));
    if (req->method_len == 7 && !memcmp(req->method, "OPTIONS", 7))
        return http_write_response(out, cap, 204, NULL, NULL, 0, info->cors, keep_alive,
                                   "Access-Control-Allow-Methods: GET, OPTIONS\r\n"
                                   "Access-Control-Allow-Headers: Content-Type, Authorization\r\n");
    void (*writer)(struct json_writer *, const struct http_info *) = NULL;
    if (path_is(req, "/metrics") && info->write_metrics)
        writer = write_metrics;
    else if (path_is(req, "/health"))
        writer = write_health;
    else if (path_is(req, "/stats"))
        writer = write_stats;
    else if (path_is(req, "/hubstats"))
        writer = write_hubstats;
    else if (path_is(req, "/hubs"))
        writer = write_hubs;
    int known = writer || path_is(req, "/");
    if (known && !get) {
        static const char m[] = "Method Not Allowed\n";
        return http_write_response(out, cap, 405, text, m, sizeof m - 1, info->cors, keep_alive,
                                   "Allow: GET, HEAD, OPTIONS\r\n");
    }
    int status = 200;
    const char *ctype = json;
    size_t blen;
    if (writer) {
        struct json_writer w;
        json_writer_init(&w, body, sizeof body);
        writer(&w, info);
        blen = w.len;
        if (writer == write_metrics) ctype = "text/plain; version=0.0.4; charset=utf-8";
        if (w.overflow) {
            status = 500;
            ctype = text;
            blen = (size_t)snprintf(body, sizeof body, "Internal Server Error\n");
        }
    } else if (known) {
        ctype = text;
        blen = (size_t)snprintf(body, sizeof body, "PeerPigeon WebSocket Signaling Server");
    } else {
        status = 404;
        ctype = text;
        blen = (size_t)snprintf(body, sizeof body, "Not Found\n");
    }
    size_t n =
        http_write_response(out, cap, status, ctype, body, blen, info->cors, keep_alive, NULL);
    if (head && n > blen) n -= blen; /* HEAD: same head, no body */
    return n;
}
