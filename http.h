/* http.c - HTTP/1.1 for the signalling port: pure, zero-copy request- and response-head parsers
 * (views into the caller's buffer, picohttpparser's contract), helpers for headers,
 * Content-Length and the query string, the response writer, and the endpoints of PROTOCOL.md
 * section 4. Bodies are not parsed: the caller skips Content-Length bytes (chunked bodies are
 * refused). */
#ifndef HTTP_H
#define HTTP_H
#include <stddef.h>
#include <stdint.h>

#define HTTP_MAX_HEAD 8192  /* request line + headers; more -> 431 */
#define HTTP_MAX_HEADERS 48 /* more -> 431 */
#define HTTP_MAX_BODY 65536 /* a body on GET is skipped up to this; more -> 413 */

#define HTTP_INCOMPLETE (-2)
#define HTTP_BAD (-1)       /* -> 400 */
#define HTTP_TOO_LARGE (-3) /* -> 431 */

struct http_header {
    const char *name;
    size_t name_len;
    const char *value; /* leading/trailing spaces and tabs trimmed */
    size_t value_len;
};

struct http_request {
    const char *method;
    size_t method_len;
    const char *path; /* request target up to '?' or '#' */
    size_t path_len;
    const char *query; /* after '?', up to '#'; NULL if none */
    size_t query_len;
    int minor_version; /* HTTP/1.x */
    struct http_header headers[HTTP_MAX_HEADERS];
    size_t num_headers;
};

/* Parse a request head at buf[0..len). Lines end in CRLF; a bare LF is HTTP_BAD (RFC 9112 2.2
 * allows either, but a proxy that disagrees with us on line ends is a smuggling vector). Empty
 * lines (CRLF) before the request-line are skipped. Method is a token; target starts with '/'
 * (or is '*'); version HTTP/1.0 or HTTP/1.1; header names are tokens; no obs-fold; no control
 * characters other than tab in values. Returns the head length including the blank line (> 0),
 * HTTP_INCOMPLETE if more bytes could still make it valid, HTTP_BAD, or HTTP_TOO_LARGE (head
 * over HTTP_MAX_HEAD bytes or more than HTTP_MAX_HEADERS headers). The views in *req point
 * into buf. */
int http_parse_request(const char *buf, size_t len, struct http_request *req);

struct http_response {
    int minor_version;  /* HTTP/1.x */
    int status;         /* exactly three digits */
    const char *reason; /* reason phrase, may be empty */
    size_t reason_len;
    struct http_header headers[HTTP_MAX_HEADERS];
    size_t num_headers;
};

/* Parse a response head (what a hub we dial answers) at buf[0..len), same contract and header
 * rules as http_parse_request. Status line: "HTTP/1.0" or "HTTP/1.1", one SP, exactly three
 * digits, then SP and a reason phrase (no controls but tab; kept as sent) or the line end, so
 * "HTTP/1.1 1010" is HTTP_BAD rather than a 101. No empty lines before it. */
int http_parse_response(const char *buf, size_t len, struct http_response *res);

/* The first of h[0..n) named `name` (case-insensitive), or NULL. */
const struct http_header *http_header_find(const struct http_header *h, size_t n, const char *name);

/* http_header_find over a request's headers. */
const struct http_header *http_header_get(const struct http_request *req, const char *name);

/* The body length that the Content-Length headers among h[0..n) announce. Returns 0 with *len
 * set (0 when there is none), or -1 (*len = 0) when a value is empty, is not all digits, does
 * not fit uint64_t, or differs from another Content-Length (repeating the same value is
 * allowed, RFC 9110 8.6). The caller answers 400 on -1 and 413 when *len > HTTP_MAX_BODY. */
int http_content_length(const struct http_header *h, size_t n, uint64_t *len);

/* 1 if the comma-separated header value contains token (case-insensitive, spaces ignored). */
int http_has_token(const char *value, size_t len, const char *token);

/* Find `key` in a query string (a=b&c=d); sets *val and *vlen to the raw (still
 * percent-encoded) value. Returns 1 if present, 0 if not. */
int http_query_get(const char *query, size_t len, const char *key, const char **val, size_t *vlen);

/* Percent-decode (and '+' -> space) in[0..len) into out (cap bytes). Returns the length or -1
 * on a bad escape or overflow. */
long http_url_decode(const char *in, size_t len, char *out, size_t cap);

/* Write a whole response into out[0..cap): status line, Content-Type (if ctype), Content-Length,
 * Access-Control-Allow-Origin: cors, Connection: keep-alive|close, any `extra` header lines
 * (each ending in CRLF, may be NULL), blank line, body. Returns its length or 0 if it does not
 * fit. */
size_t http_write_response(char *out, size_t cap, int status, const char *ctype, const char *body,
                           size_t body_len, const char *cors, int keep_alive, const char *extra);

/* The reason phrase for a status code ("OK", "Not Found", ...). */
const char *http_status_text(int status);

/* ---- endpoints (PROTOCOL.md section 4) ---- */
struct json_writer;

/* What the endpoints report, filled by the caller per request. Whatever costs a system call to
 * learn is a callback, so a request that does not show it does not pay for it. */
struct http_info {
    int is_hub;
    int hub_open;       /* hub mode without HUB_SECRET: any client may become a hub */
    const char *hub_id; /* "" when not a hub */
    const char *hub_ns;
    const char *host;
    int port;
    uint32_t connections, peers, hubs, networks, max_connections;
    uint32_t bootstrap_total, bootstrap_connected;
    uint64_t uptime_ms;
    uint64_t (*rss)(void); /* resident bytes; called only for an answer that shows them (NULL: 0) */
    uint64_t now_wall_ms;
    const char *cors;
    void (*write_hubs)(struct json_writer *w);      /* JSON array for /hubs */
    void (*write_bootstrap)(struct json_writer *w); /* JSON array for /hubstats */
    void (*write_metrics)(struct json_writer *w);   /* Prometheus text for /metrics */
};

/* Answer a request that is not a WebSocket upgrade: GET/HEAD /, /health, /stats, /hubstats,
 * /hubs, /metrics (when write_metrics is set); OPTIONS anywhere (204 preflight); other paths 404;
 * other methods 405. Writes the whole response into out (cap bytes; 500 if the body does not fit)
 * and returns its length. */
size_t http_respond(const struct http_request *req, const struct http_info *info, int keep_alive,
                    char *out, size_t cap);

#endif
