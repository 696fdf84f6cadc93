/* http.c - HTTP/1.1 for the signalling port: a pure, zero-copy request-head parser (views into
 * the caller's buffer, picohttpparser's contract), helpers for headers and the query string,
 * the response writer, and the endpoints of PROTOCOL.md section 4. Bodies are not parsed:
 * the caller skips Content-Length bytes (chunked bodies are refused). */
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
 * lines (CRLF) before the request-line are skipped. Method is a token; target starts with '/' (or is '*'); version HTTP/1.0 or
 * HTTP/1.1; header names are tokens; no obs-fold; no control characters other than tab in
 * values. Returns the head length including the blank line (> 0), HTTP_INCOMPLETE if more
 * bytes could still make it valid, HTTP_BAD, or HTTP_TOO_LARGE (head over HTTP_MAX_HEAD bytes
 * or more than HTTP_MAX_HEADERS headers). */
int http_parse_request(const char *buf, size_t len, struct http_request *req);

/* The first header named `name` (case-insensitive), or NULL. */
const struct http_header *http_header_get(const struct http_request *req, const char *name);

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

/* What the endpoints report, filled by the caller per request. */
struct http_info {
    int is_hub;
    const char *hub_id; /* "" when not a hub */
    const char *hub_ns;
    const char *host;
    int port;
    uint32_t connections, peers, hubs, networks, max_connections;
    uint32_t bootstrap_total, bootstrap_connected;
    uint64_t uptime_ms;
    uint64_t rss;
    uint64_t now_wall_ms;
    const char *cors;
    void (*write_hubs)(struct json_writer *w);      /* JSON array for /hubs */
    void (*write_bootstrap)(struct json_writer *w); /* JSON array for /hubstats */
};

/* Answer a request that is not a WebSocket upgrade: GET/HEAD /, /health, /stats, /hubstats,
 * /hubs; OPTIONS anywhere (204 preflight); other paths 404; other methods 405. Writes the
 * whole response into out (cap bytes; 500 if the body does not fit) and returns its length. */
size_t http_respond(const struct http_request *req, const struct http_info *info, int keep_alive,
                    char *out, size_t cap);

#endif
