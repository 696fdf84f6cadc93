/* test_http.c - the request- and response-head parsers as table rows: every valid row is also
 * fed as each of its strict prefixes (all must be HTTP_INCOMPLETE) and with bytes after the
 * head, every other row's prefixes must be HTTP_INCOMPLETE or its own verdict; every input ends
 * on a PROT_NONE guard page so an overread crashes. Then the size limits, the header, token,
 * Content-Length and query helpers, percent-decoding, the response writer and /health. */
#include "http.h"
#include "t.h"

#include <stdint.h>

#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

/* A readable region whose last byte is followed by an unreadable page. */
struct guard {
    char *base;
    size_t size; /* mapped bytes, guard page included */
    char *end;   /* first unreadable byte */
};

static struct guard guard_new(size_t cap)
{
    size_t pg = (size_t)sysconf(_SC_PAGESIZE);
    size_t data = (cap + pg - 1) / pg * pg;
    if (data == 0) data = pg;
    struct guard g;
    g.size = data + pg;
    g.base = mmap(NULL, g.size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (g.base == MAP_FAILED) {
        perror("mmap");
        exit(2);
    }
    if (mprotect(g.base + data, pg, PROT_NONE) != 0) {
        perror("mprotect");
        exit(2);
    }
    g.end = g.base + data;
    return g;
}

static void guard_free(struct guard *g)
{
    munmap(g->base, g->size);
}

/* Copies s[0..n) so that it ends right at the guard page; returns where it starts. */
static const char *guard_put(struct guard *g, const char *s, size_t n)
{
    memcpy(g->end - n, s, n);
    return g->end - n;
}

/* Parses a guarded copy; the views in *req dangle afterwards, so only the result is usable. */
static int parse_guarded(const char *s, size_t n, struct http_request *req)
{
    struct guard g = guard_new(n);
    int r = http_parse_request(guard_put(&g, s, n), n, req);
    guard_free(&g);
    return r;
}

static int view_eq(const char *p, size_t n, const char *want)
{
    if (want == NULL) return p == NULL;
    return p != NULL && strlen(want) == n && memcmp(p, want, n) == 0;
}

#define S(lit) lit, sizeof(lit) - 1
#define VALID 0

struct row {
    const char *in;
    size_t len;
    int want;           /* VALID (consumes all of in) or an HTTP_* code */
    const char *method; /* the rest only for VALID rows; NULL = not checked */
    const char *path;
    const char *query; /* "-" = expect no query */
    int minor;
    int nhdr;
    const char *hname; /* if set, http_header_get(hname) must have value hval */
    const char *hval;
};

static const struct row rows[] = {
    /* valid */
    {S("GET / HTTP/1.1\r\n\r\n"), VALID, "GET", "/", "-", 1, 0, NULL, NULL},
    {S("GET /health HTTP/1.1\r\nHost: x\r\n\r\n"), VALID, "GET", "/health", "-", 1, 1, "host", "x"},
    {S("GET /ws?peerId=abc HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n"
       "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
       "Sec-WebSocket-Version: 13\r\n\r\n"),
     VALID, "GET", "/ws", "peerId=abc", 1, 5, "sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="},
    {S("HEAD /x HTTP/1.0\r\n\r\n"), VALID, "HEAD", "/x", "-", 0, 0, NULL, NULL},
    {S("OPTIONS * HTTP/1.1\r\n\r\n"), VALID, "OPTIONS", "*", "-", 1, 0, NULL, NULL},
    {S("GET /a?b#frag HTTP/1.1\r\n\r\n"), VALID, "GET", "/a", "b", 1, 0, NULL, NULL},
    {S("GET /a#f?x HTTP/1.1\r\n\r\n"), VALID, "GET", "/a", "-", 1, 0, NULL, NULL},
    {S("GET /? HTTP/1.1\r\n\r\n"), VALID, "GET", "/", "", 1, 0, NULL, NULL},
    {S("GET /?# HTTP/1.1\r\n\r\n"), VALID, "GET", "/", "", 1, 0, NULL, NULL},
    {S("GET /p?a=1&b=2&c HTTP/1.1\r\n\r\n"), VALID, "GET", "/p", "a=1&b=2&c", 1, 0, NULL, NULL},
    {S("GET / HTTP/1.1\r\nX:   v  \t\r\n\r\n"), VALID, "GET", "/", "-", 1, 1, "x", "v"},
    {S("GET / HTTP/1.1\r\nX:\r\n\r\n"), VALID, "GET", "/", "-", 1, 1, "X", ""},
    {S("GET / HTTP/1.1\r\nX: \t \r\n\r\n"), VALID, "GET", "/", "-", 1, 1, "X", ""},
    {S("GET / HTTP/1.1\r\nX: caf\xc3\xa9\r\n\r\n"), VALID, "GET", "/", "-", 1, 1, "x",
     "caf\xc3\xa9"},
    {S("GET / HTTP/1.1\r\nX: a\tb c\r\n\r\n"), VALID, "GET", "/", "-", 1, 1, "x", "a\tb c"},
    {S("M-SEARCH * HTTP/1.1\r\n\r\n"), VALID, "M-SEARCH", "*", "-", 1, 0, NULL, NULL},
    {S("!#$%&'*+-.^_`|~09az AZ / HTTP/1.1\r\n\r\n"), HTTP_BAD, NULL, NULL, NULL, 0, 0, NULL, NULL},
    {S("!#$%&'*+-.^_`|~09azAZ / HTTP/1.1\r\n\r\n"), VALID, "!#$%&'*+-.^_`|~09azAZ", "/", "-", 1, 0,
     NULL, NULL},
    {S("get / HTTP/1.1\r\n\r\n"), VALID, "get", "/", "-", 1, 0, NULL, NULL},
    {S("\r\nGET / HTTP/1.1\r\n\r\n"), VALID, "GET", "/", "-", 1, 0, NULL, NULL},
    {S("\r\n\r\nGET / HTTP/1.1\r\n\r\n"), VALID, "GET", "/", "-", 1, 0, NULL, NULL},
    {S("GET / HTTP/1.1\r\nX-Foo_Bar.baz~!: 1\r\n\r\n"), VALID, "GET", "/", "-", 1, 1,
     "x-foo_bar.BAZ~!", "1"},
    {S("GET / HTTP/1.1\r\nHost: localhost:3000\r\n\r\n"), VALID, "GET", "/", "-", 1, 1, "HOST",
     "localhost:3000"},
    {S("GET / HTTP/1.1\r\nA: 1\r\na: 2\r\n\r\n"), VALID, "GET", "/", "-", 1, 2, "A", "1"},
    {S("GET /a%20b/c;d=e,f HTTP/1.1\r\n\r\n"), VALID, "GET", "/a%20b/c;d=e,f", "-", 1, 0, NULL,
     NULL},
    {S("POST /x HTTP/1.1\r\nContent-Length: 5\r\n\r\n"), VALID, "POST", "/x", "-", 1, 1,
     "content-length", "5"},
    {S("HEAD /x HTTP/1.1\r\nConnection: keep-alive, Upgrade\r\n\r\n"), VALID, "HEAD", "/x", "-", 1,
     1, "connection", "keep-alive, Upgrade"},
    {S("GET /ws?room=a%2Fb&peerId=x+y HTTP/1.1\r\nUser-Agent: Mozilla/5.0 (X11; Linux)\r\n"
       "Accept: */*\r\nOrigin: https://example.org\r\n\r\n"),
     VALID, "GET", "/ws", "room=a%2Fb&peerId=x+y", 1, 3, "origin", "https://example.org"},
    {S("GET / HTTP/1.1\r\nEmpty:\r\n\r\n"), VALID, "GET", "/", "-", 1, 1, "empty", ""},
    {S("GET / HTTP/1.1\r\nX:\"quoted\" <v> {}\r\n\r\n"), VALID, "GET", "/", "-", 1, 1, "x",
     "\"quoted\" <v> {}"},

    /* malformed: each is BAD as soon as the offending byte arrives */
    {S("\x01"), HTTP_BAD, NULL, NULL, NULL, 0, 0, NULL, NULL},
    {S(" GET / HTTP/1.1\r\n\r\n"), HTTP_BAD, NULL, NULL, NULL, 0, 0, NULL, NULL},
    {S("GET  /"), HTTP_BAD, NULL, NULL, NULL, 0, 0, NULL, NULL},
    {S("GET\t/ HTTP/1.1\r\n\r\n"), HTTP_BAD, NULL, NULL, NULL, 0, 0, NULL, NULL},
    {S("GET /a b"), HTTP_BAD, NULL, NULL, NULL, 0, 0, NULL, NULL},
    {S("GET http://x/ HTTP/1.1\r\n\r\n"), HTTP_BAD, NULL, NULL, NULL, 0, 0, NULL, NULL},
    {S("GET a HTTP/1.1\r\n\r\n"), HTTP_BAD, NULL, NULL, NULL, 0, 0, NULL, NULL},
    {S("GET /\x7f"), HTTP_BAD, NULL, NULL, NULL, 0, 0, NULL, NULL},
    {S("GET /\x80"), HTTP_BAD, NULL, NULL, NULL, 0, 0, NULL, NULL},
    {S("GET /\x01"), HTTP_BAD, NULL, NULL, NULL, 0, 0, NULL, NULL},
    {S("GET /\t HTTP/1.1\r\n\r\n"), HTTP_BAD, NULL, NULL, NULL, 0, 0, NULL, NULL},
    {S("GET / HTTP/1.2\r\n\r\n"), HTTP_BAD, NULL, NULL, NULL, 0, 0, NULL, NULL},
    {S("GET / HTTP/2"), HTTP_BAD, NULL, NULL, NULL, 0, 0, NULL, NULL},
    {S("GET / HTTP/1.10\r\n\r\n"), HTTP_BAD, NULL, NULL, NULL, 0, 0, NULL, NULL},
    {S("GET / HTTP/1.1 \r\n\r\n"), HTTP_BAD, NULL, NULL, NULL, 0, 0, NULL, NULL},
    {S("GET / http/1.1\r\n\r\n"), HTTP_BAD, NULL, NULL, NULL, 0, 0, NULL, NULL},
    {S("GET / HTTP/1.\r\n"), HTTP_BAD, NULL, NULL, NULL, 0, 0, NULL, NULL},
    {S("GET / HTTP/1.1\r\r"), HTTP_BAD, NULL, NULL, NULL, 0, 0, NULL, NULL},
    {S("GET / HTTP/1.1\rX"), HTTP_BAD, NULL, NULL, NULL, 0, 0, NULL, NULL},
    {S("GET /\r\n\r\n"), HTTP_BAD, NULL, NULL, NULL, 0, 0, NULL, NULL},
    {S("GET\r\n"), HTTP_BAD, NULL, NULL, NULL, 0, 0, NULL, NULL},
    {S("/ HTTP/1.1\r\n\r\n"), HTTP_BAD, NULL, NULL, NULL, 0, 0, NULL, NULL},
    {S("GET *x HTTP/1.1\r\n\r\n"), HTTP_BAD, NULL, NULL, NULL, 0, 0, NULL, NULL},
    {S("GET\0/ HTTP/1.1\r\n\r\n"), HTTP_BAD, NULL, NULL, NULL, 0, 0, NULL, NULL},
    {S("\r\r"), HTTP_BAD, NULL, NULL, NULL, 0, 0, NULL, NULL},
    {S("GET / HTTP/1.1\r\nHost : x\r\n\r\n"), HTTP_BAD, NULL, NULL, NULL, 0, 0, NULL, NULL},
    {S("GET / HTTP/1.1\r\nHost\t: x\r\n\r\n"), HTTP_BAD, NULL, NULL, NULL, 0, 0, NULL, NULL},
    {S("GET / HTTP/1.1\r\n: x\r\n\r\n"), HTTP_BAD, NULL, NULL, NULL, 0, 0, NULL, NULL},
    {S("GET / HTTP/1.1\r\nHost\r\n\r\n"), HTTP_BAD, NULL, NULL, NULL, 0, 0, NULL, NULL},
    {S("GET / HTTP/1.1\r\nA: b\r\n c\r\n\r\n"), HTTP_BAD, NULL, NULL, NULL, 0, 0, NULL, NULL},
    {S("GET / HTTP/1.1\r\nA: b\r\n\tc\r\n\r\n"), HTTP_BAD, NULL, NULL, NULL, 0, 0, NULL, NULL},
    {S("GET / HTTP/1.1\r\n A: b\r\n\r\n"), HTTP_BAD, NULL, NULL, NULL, 0, 0, NULL, NULL},
    {S("GET / HTTP/1.1\r\n \r\n\r\n"), HTTP_BAD, NULL, NULL, NULL, 0, 0, NULL, NULL},
    {S("GET / HTTP/1.1\r\nA: b\x01"), HTTP_BAD, NULL, NULL, NULL, 0, 0, NULL, NULL},
    {S("GET / HTTP/1.1\r\nA: b\x7f"), HTTP_BAD, NULL, NULL, NULL, 0, 0, NULL, NULL},
    {S("GET / HTTP/1.1\r\nA: b\rc\r\n\r\n"), HTTP_BAD, NULL, NULL, NULL, 0, 0, NULL, NULL},
    {S("GET / HTTP/1.1\r\nA: b\0c\r\n\r\n"), HTTP_BAD, NULL, NULL, NULL, 0, 0, NULL, NULL},
    {S("GET / HTTP/1.1\r\nA(b: c\r\n\r\n"), HTTP_BAD, NULL, NULL, NULL, 0, 0, NULL, NULL},
    {S("GET / HTTP/1.1\r\nA\xc3\xa9: b\r\n\r\n"), HTTP_BAD, NULL, NULL, NULL, 0, 0, NULL, NULL},
    {S("GET / HTTP/1.1\r\n\x80"), HTTP_BAD, NULL, NULL, NULL, 0, 0, NULL, NULL},
    {S("GET / HTTP/1.1\r\nA: b\r\n\r\r"), HTTP_BAD, NULL, NULL, NULL, 0, 0, NULL, NULL},
    {S("GET / HTTP/1.1\r\nA: b\r\r\n"), HTTP_BAD, NULL, NULL, NULL, 0, 0, NULL, NULL},

    /* bare LF anywhere: a proxy that splits lines differently would see another request
     * (smuggling), so BAD the moment the LF arrives */
    {S("\n"), HTTP_BAD, NULL, NULL, NULL, 0, 0, NULL, NULL},
    {S("\r\n\n"), HTTP_BAD, NULL, NULL, NULL, 0, 0, NULL, NULL},
    {S("GET / HTTP/1.0\n"), HTTP_BAD, NULL, NULL, NULL, 0, 0, NULL, NULL},
    {S("GET / HTTP/1.1\r\nA: b\n"), HTTP_BAD, NULL, NULL, NULL, 0, 0, NULL, NULL},
    {S("GET / HTTP/1.1\r\nA:\n"), HTTP_BAD, NULL, NULL, NULL, 0, 0, NULL, NULL},
    {S("GET / HTTP/1.1\r\nA: b \n"), HTTP_BAD, NULL, NULL, NULL, 0, 0, NULL, NULL},
    {S("GET / HTTP/1.1\r\n\n"), HTTP_BAD, NULL, NULL, NULL, 0, 0, NULL, NULL},
    {S("GET / HTTP/1.1\r\nA: b\r\n\n"), HTTP_BAD, NULL, NULL, NULL, 0, 0, NULL, NULL},
    {S("GET / HTTP/1.1\r\nA: b\nB: c\r\n\r\n"), HTTP_BAD, NULL, NULL, NULL, 0, 0, NULL, NULL},

    /* incomplete */
    {S(""), HTTP_INCOMPLETE, NULL, NULL, NULL, 0, 0, NULL, NULL},
    {S("\r"), HTTP_INCOMPLETE, NULL, NULL, NULL, 0, 0, NULL, NULL},
    {S("\r\n\r\n"), HTTP_INCOMPLETE, NULL, NULL, NULL, 0, 0, NULL, NULL},
    {S("GET / HTTP/1.1\r\nA: b\r\n\r"), HTTP_INCOMPLETE, NULL, NULL, NULL, 0, 0, NULL, NULL},
    {S("\r\n\r"), HTTP_INCOMPLETE, NULL, NULL, NULL, 0, 0, NULL, NULL},
    {S("GET / HTTP/1.1\r"), HTTP_INCOMPLETE, NULL, NULL, NULL, 0, 0, NULL, NULL},
    {S("GET / HTTP/1.1\r\nA: b\r"), HTTP_INCOMPLETE, NULL, NULL, NULL, 0, 0, NULL, NULL},
    {S("GET / HTTP/1.1\r\nA:\r"), HTTP_INCOMPLETE, NULL, NULL, NULL, 0, 0, NULL, NULL},
};

static void check_valid_row(size_t idx, const struct row *r)
{
    struct http_request req;
    struct guard g = guard_new(r->len + 16);
    int bad_prefix = 0;

    /* every strict prefix, each ending on the guard page: "call again", never a verdict */
    for (size_t k = 0; k < r->len; k++) {
        int rc = http_parse_request(guard_put(&g, r->in, k), k, &req);
        if (rc != HTTP_INCOMPLETE && !bad_prefix) {
            bad_prefix = 1;
            CHECKF(0, "row %zu prefix %zu returned %d", idx, k, rc);
        }
    }
    CHECK(!bad_prefix);

    const char *in = guard_put(&g, r->in, r->len);
    int rc = http_parse_request(in, r->len, &req);
    CHECKF(rc == (int)r->len, "row %zu: got %d want %zu", idx, rc, r->len);
    if (rc > 0) {
        CHECKF(view_eq(req.method, req.method_len, r->method), "row %zu method", idx);
        CHECKF(view_eq(req.path, req.path_len, r->path), "row %zu path", idx);
        if (strcmp(r->query, "-") == 0)
            CHECKF(req.query == NULL && req.query_len == 0, "row %zu: unexpected query", idx);
        else
            CHECKF(view_eq(req.query, req.query_len, r->query), "row %zu query", idx);
        CHECKF(req.minor_version == r->minor, "row %zu minor", idx);
        CHECKF(req.num_headers == (size_t)r->nhdr, "row %zu: %zu headers", idx, req.num_headers);
        if (r->hname) {
            const struct http_header *h = http_header_get(&req, r->hname);
            CHECKF(h && view_eq(h->value, h->value_len, r->hval), "row %zu header %s", idx,
                   r->hname);
        }
        for (size_t i = 0; i < req.num_headers; i++) {
            const struct http_header *h = &req.headers[i];
            CHECK(h->name >= in && h->name + h->name_len <= in + rc);
            CHECK(h->value >= in && h->value + h->value_len <= in + rc);
        }
    }

    /* the same head followed by a body or a pipelined request: only the head is consumed */
    static const char tail[] = "GET /next HTTP/1.1\r\n";
    char tmp[1024];
    if (r->len + sizeof tail - 1 <= sizeof tmp) {
        memcpy(tmp, r->in, r->len);
        memcpy(tmp + r->len, tail, sizeof tail - 1);
        size_t n = r->len + sizeof tail - 1;
        rc = http_parse_request(guard_put(&g, tmp, n), n, &req);
        CHECKF(rc == (int)r->len, "row %zu with tail: got %d", idx, rc);
    }
    guard_free(&g);
}

static void test_rows(void)
{
    int nvalid = 0, nbad = 0;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        const struct row *r = &rows[i];
        if (r->want == VALID) {
            nvalid++;
            check_valid_row(i, r);
            continue;
        }
        struct http_request req;
        int rc = parse_guarded(r->in, r->len, &req);
        nbad += r->want == HTTP_BAD;
        CHECKF(rc == r->want, "row %zu: got %d want %d", i, rc, r->want);
        /* a verdict never flips as bytes arrive: each prefix is "call again" or the same one */
        for (size_t k = 0; k < r->len; k++) {
            rc = parse_guarded(r->in, k, &req);
            CHECKF(rc == HTTP_INCOMPLETE || rc == r->want, "row %zu prefix %zu: %d", i, k, rc);
        }
    }
    CHECK(nvalid >= 25);
    CHECK(nbad >= 30);
}

/* A head of `start` and n headers "Hk: v"; returns its length. */
static size_t make_head(char *buf, size_t cap, const char *start, int n)
{
    size_t len = (size_t)snprintf(buf, cap, "%s", start);
    for (int i = 0; i < n; i++)
        len += (size_t)snprintf(buf + len, cap - len, "H%d: v%d\r\n", i, i);
    len += (size_t)snprintf(buf + len, cap - len, "\r\n");
    return len;
}

static size_t make_headers(char *buf, size_t cap, int n)
{
    return make_head(buf, cap, "GET / HTTP/1.1\r\n", n);
}

static void test_limits(void)
{
    static char buf[3 * HTTP_MAX_HEAD];
    struct http_request req;
    size_t n;

    n = make_headers(buf, sizeof buf, HTTP_MAX_HEADERS);
    CHECK(parse_guarded(buf, n, &req) == (int)n);
    CHECK(http_parse_request(buf, n, &req) == (int)n); /* views into buf, which stays */
    CHECK(req.num_headers == HTTP_MAX_HEADERS);
    const struct http_header *h = http_header_get(&req, "h47");
    CHECK(h && view_eq(h->value, h->value_len, "v47"));

    n = make_headers(buf, sizeof buf, HTTP_MAX_HEADERS + 1);
    CHECK(parse_guarded(buf, n, &req) == HTTP_TOO_LARGE);
    /* decided at the first byte of the extra header, without waiting for the rest */
    const char *extra = strstr(buf, "H48:");
    CHECK(parse_guarded(buf, (size_t)(extra - buf) + 1, &req) == HTTP_TOO_LARGE);
    CHECK(parse_guarded(buf, (size_t)(extra - buf), &req) == HTTP_INCOMPLETE);

    /* one huge header: incomplete while short, too large once HTTP_MAX_HEAD bytes are in */
    n = (size_t)snprintf(buf, sizeof buf, "GET / HTTP/1.1\r\nX: ");
    memset(buf + n, 'a', sizeof buf - n);
    CHECK(parse_guarded(buf, HTTP_MAX_HEAD - 1, &req) == HTTP_INCOMPLETE);
    CHECK(parse_guarded(buf, HTTP_MAX_HEAD, &req) == HTTP_TOO_LARGE);
    CHECK(parse_guarded(buf, sizeof buf, &req) == HTTP_TOO_LARGE);

    /* a long bad prefix is still BAD, not TOO_LARGE */
    buf[100] = '\x01';
    CHECK(parse_guarded(buf, sizeof buf, &req) == HTTP_BAD);

    /* a head of exactly HTTP_MAX_HEAD bytes fits; one more byte does not */
    n = (size_t)snprintf(buf, sizeof buf, "GET / HTTP/1.1\r\nX: ");
    memset(buf + n, 'b', HTTP_MAX_HEAD - n - 4);
    memcpy(buf + HTTP_MAX_HEAD - 4, "\r\n\r\n", 4);
    CHECK(parse_guarded(buf, HTTP_MAX_HEAD, &req) == HTTP_MAX_HEAD);
    CHECK(parse_guarded(buf, HTTP_MAX_HEAD + 100, &req) == HTTP_MAX_HEAD);
    CHECK(parse_guarded(buf, HTTP_MAX_HEAD - 1, &req) == HTTP_INCOMPLETE);
    memmove(buf + n + 1, buf + n, HTTP_MAX_HEAD - n);
    CHECK(parse_guarded(buf, HTTP_MAX_HEAD + 1, &req) == HTTP_TOO_LARGE);

    /* a short head followed by a big body: only the head counts */
    n = (size_t)snprintf(buf, sizeof buf, "POST / HTTP/1.1\r\nContent-Length: 20000\r\n\r\n");
    memset(buf + n, 'z', sizeof buf - n);
    CHECK(parse_guarded(buf, sizeof buf, &req) == (int)n);

    /* leading blank lines count toward the limit */
    for (size_t i = 0; i + 1 < HTTP_MAX_HEAD; i += 2)
        memcpy(buf + i, "\r\n", 2);
    CHECK(parse_guarded(buf, HTTP_MAX_HEAD - 1, &req) == HTTP_INCOMPLETE);
    CHECK(parse_guarded(buf, HTTP_MAX_HEAD, &req) == HTTP_TOO_LARGE);
}

static void test_header_get(void)
{
    static const char in[] = "GET / HTTP/1.1\r\nHost: a\r\nUPGRADE: websocket\r\nX: 1\r\n"
                             "x: 2\r\nHost-Name: b\r\n\r\n";
    struct http_request req;
    CHECK(http_parse_request(in, sizeof in - 1, &req) == (int)sizeof in - 1);
    const struct http_header *h = http_header_get(&req, "upgrade");
    CHECK(h && view_eq(h->value, h->value_len, "websocket"));
    h = http_header_get(&req, "x");
    CHECK(h && view_eq(h->value, h->value_len, "1"));
    h = http_header_get(&req, "host");
    CHECK(h && view_eq(h->value, h->value_len, "a"));
    CHECK(http_header_get(&req, "hos") == NULL);
    CHECK(http_header_get(&req, "hostx") == NULL);
    CHECK(http_header_get(&req, "connection") == NULL);
    CHECK(http_header_get(&req, "") == NULL);
}

static void test_has_token(void)
{
    static const struct {
        const char *value, *token;
        int want;
    } t[] = {
        {"Upgrade", "upgrade", 1},
        {"keep-alive, Upgrade", "upgrade", 1},
        {"keep-alive,Upgrade", "UPGRADE", 1},
        {"Upgrade , keep-alive", "keep-alive", 1},
        {" \tupgrade\t ", "upgrade", 1},
        {",,upgrade,,", "upgrade", 1},
        {"upgrade2", "upgrade", 0},
        {"xupgrade", "upgrade", 0},
        {"up grade", "upgrade", 0},
        {"keep-alive", "upgrade", 0},
        {"", "upgrade", 0},
        {"a, ,b", "", 0},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        CHECKF(http_has_token(t[i].value, strlen(t[i].value), t[i].token) == t[i].want,
               "has_token(\"%s\", \"%s\")", t[i].value, t[i].token);
    /* len bounds the scan: the token after it is not seen */
    CHECK(http_has_token("a, upgrade", 3, "upgrade") == 0);
}

static void test_query_get(void)
{
    static const struct {
        const char *query, *key, *want; /* want NULL = absent */
    } t[] = {
        {"peerId=abc&room=x&token=t", "peerId", "abc"},
        {"peerId=abc&room=x&token=t", "room", "x"},
        {"peerId=abc&room=x&token=t", "token", "t"},
        {"xpeerId=1&peerIdx=2", "peerId", NULL},
        {"xpeerId=1&peerIdx=2&peerId=3", "peerId", "3"},
        {"a=&b=2", "a", ""},
        {"a&b=2", "a", ""},
        {"b=2&a", "a", ""},
        {"a=1&a=2", "a", "1"},
        {"a=b=c", "a", "b=c"},
        {"&&a=1&&", "a", "1"},
        {"=x&a=1", "a", "1"},
        {"", "a", NULL},
        {"a=1", "", NULL},
        {"a=1", "A", NULL},
        {"a%3D=1", "a", NULL},
        {"a=1", "b", NULL},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        const char *v = NULL;
        size_t vlen = 0;
        int got = http_query_get(t[i].query, strlen(t[i].query), t[i].key, &v, &vlen);
        if (t[i].want == NULL) {
            CHECKF(got == 0, "query_get(\"%s\", \"%s\") found it", t[i].query, t[i].key);
        } else {
            CHECKF(got == 1 && view_eq(v, vlen, t[i].want), "query_get(\"%s\", \"%s\")", t[i].query,
                   t[i].key);
        }
    }
    const char *v;
    size_t vlen;
    CHECK(http_query_get(NULL, 0, "a", &v, &vlen) == 0);
    CHECK(http_query_get("a=1&b=2", 3, "b", &v, &vlen) == 0);
    CHECK(http_query_get("ab=1", 1, "a", &v, &vlen) == 1 && vlen == 0);
}

static void test_url_decode(void)
{
    static const struct {
        const char *in;
        long want; /* -1 = error */
        const char *out;
    } t[] = {
        {"abc", 3, "abc"},   {"", 0, ""},         {"a+b", 3, "a b"},
        {"a%20b", 3, "a b"}, {"%2f%2F", 2, "//"}, {"%e2%82%AC", 3, "\xe2\x82\xac"},
        {"%41%7a", 2, "Az"}, {"%2B", 1, "+"},     {"%", -1, NULL},
        {"%4", -1, NULL},    {"a%4", -1, NULL},   {"%g0", -1, NULL},
        {"%0g", -1, NULL},   {"%%", -1, NULL},    {"%00", -1, NULL},
    };
    char out[16];
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        long n = http_url_decode(t[i].in, strlen(t[i].in), out, sizeof out);
        if (t[i].want < 0)
            CHECKF(n == -1, "url_decode(\"%s\") = %ld", t[i].in, n);
        else
            CHECKF(n == t[i].want && strcmp(out, t[i].out) == 0, "url_decode(\"%s\")", t[i].in);
    }
    /* capacity: exact fit returns the length (no room for a NUL), one short is an error */
    memset(out, 'X', sizeof out);
    CHECK(http_url_decode("a%20b", 5, out, 3) == 3 && memcmp(out, "a b", 3) == 0 && out[3] == 'X');
    CHECK(http_url_decode("a%20b", 5, out, 2) == -1);
    CHECK(http_url_decode("a%20b", 5, out, 4) == 3 && strcmp(out, "a b") == 0);
    CHECK(http_url_decode("", 0, out, 0) == 0);
    CHECK(http_url_decode("a", 1, out, 0) == -1);
    /* len bounds the input: a '%' cut by len is a bad escape */
    CHECK(http_url_decode("a%20", 2, out, sizeof out) == -1);
}

static void test_write_response(void)
{
    static const char want[] = "HTTP/1.1 200 OK\r\n"
                               "Content-Type: application/json\r\n"
                               "Content-Length: 11\r\n"
                               "Access-Control-Allow-Origin: *\r\n"
                               "Connection: keep-alive\r\n"
                               "X-A: 1\r\n"
                               "\r\n"
                               "{\"ok\":true}";
    char out[512];
    size_t n = http_write_response(out, sizeof out, 200, "application/json", "{\"ok\":true}", 11,
                                   "*", 1, "X-A: 1\r\n");
    CHECK(n == sizeof want - 1 && memcmp(out, want, n) == 0);

    /* exact fit works; every shorter buffer returns 0 and never writes past cap */
    size_t full = n;
    for (size_t cap = 0; cap <= full; cap++) {
        struct guard g = guard_new(cap);
        char *o = g.end - cap;
        size_t got = http_write_response(o, cap, 200, "application/json", "{\"ok\":true}", 11, "*",
                                         1, "X-A: 1\r\n");
        CHECKF(got == (cap == full ? full : 0), "cap %zu -> %zu", cap, got);
        guard_free(&g);
    }

    static const char want404[] = "HTTP/1.1 404 Not Found\r\n"
                                  "Content-Length: 0\r\n"
                                  "Connection: close\r\n"
                                  "\r\n";
    n = http_write_response(out, sizeof out, 404, NULL, NULL, 0, NULL, 0, NULL);
    CHECK(n == sizeof want404 - 1 && memcmp(out, want404, n) == 0);

    /* RFC 9110 8.6: no Content-Length on 204 */
    static const char want204[] = "HTTP/1.1 204 No Content\r\n"
                                  "Access-Control-Allow-Origin: https://a.example\r\n"
                                  "Connection: keep-alive\r\n"
                                  "\r\n";
    n = http_write_response(out, sizeof out, 204, NULL, NULL, 0, "https://a.example", 1, NULL);
    CHECK(n == sizeof want204 - 1 && memcmp(out, want204, n) == 0);

    /* the writer's output is a request-like head our own parser could frame */
    n = http_write_response(out, sizeof out, 503, "text/plain", "busy", 4, "*", 0, NULL);
    CHECK(n > 0 && memcmp(out, "HTTP/1.1 503 Service Unavailable\r\n", 34) == 0);
    CHECK(memcmp(out + n - 8, "\r\n\r\nbusy", 8) == 0);
}

static void test_status_text(void)
{
    static const struct {
        int code;
        const char *text;
    } t[] = {
        {101, "Switching Protocols"},
        {200, "OK"},
        {204, "No Content"},
        {400, "Bad Request"},
        {401, "Unauthorized"},
        {403, "Forbidden"},
        {404, "Not Found"},
        {405, "Method Not Allowed"},
        {408, "Request Timeout"},
        {413, "Content Too Large"},
        {426, "Upgrade Required"},
        {431, "Request Header Fields Too Large"},
        {500, "Internal Server Error"},
        {503, "Service Unavailable"},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        CHECKF(strcmp(http_status_text(t[i].code), t[i].text) == 0, "status %d", t[i].code);
    CHECK(http_status_text(299) != NULL);
}

/* ---- response heads ---- */

struct resp_row {
    const char *in;
    size_t len;
    int want; /* VALID (consumes all of in) or an HTTP_* code */
    int minor, status;
    const char *reason; /* the rest only for VALID rows */
    int nhdr;
    const char *hname; /* if set, http_header_find(hname) must have value hval */
    const char *hval;
};

#define RBAD(lit)                                                                                  \
    {                                                                                              \
        S(lit), HTTP_BAD, 0, 0, NULL, 0, NULL, NULL                                                \
    }
#define RMORE(lit)                                                                                 \
    {                                                                                              \
        S(lit), HTTP_INCOMPLETE, 0, 0, NULL, 0, NULL, NULL                                         \
    }

static const struct resp_row resp_rows[] = {
    /* valid */
    {S("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
       "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"),
     VALID, 1, 101, "Switching Protocols", 3, "sec-websocket-accept",
     "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="},
    {S("HTTP/1.0 200 OK\r\n\r\n"), VALID, 0, 200, "OK", 0, NULL, NULL},
    {S("HTTP/1.1 204\r\n\r\n"), VALID, 1, 204, "", 0, NULL, NULL},
    {S("HTTP/1.1 204 \r\n\r\n"), VALID, 1, 204, "", 0, NULL, NULL},
    {S("HTTP/1.1 404 Not  Found \r\n\r\n"), VALID, 1, 404, "Not  Found ", 0, NULL, NULL},
    {S("HTTP/1.1 200 caf\xc3\xa9\tok\r\n\r\n"), VALID, 1, 200, "caf\xc3\xa9\tok", 0, NULL, NULL},
    {S("HTTP/1.1 200 HTTP/1.1 101 x: y\r\n\r\n"), VALID, 1, 200, "HTTP/1.1 101 x: y", 0, NULL,
     NULL},
    {S("HTTP/1.1 000 x\r\n\r\n"), VALID, 1, 0, "x", 0, NULL, NULL},
    {S("HTTP/1.1 999 x\r\n\r\n"), VALID, 1, 999, "x", 0, NULL, NULL},
    {S("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX:  a b \t\r\n\r\n"), VALID, 1, 200, "OK", 2, "x",
     "a b"},
    {S("HTTP/1.1 200 OK\r\nX:\r\n\r\n"), VALID, 1, 200, "OK", 1, "X", ""},
    {S("HTTP/1.1 503 Service Unavailable\r\nRetry-After: 5\r\nretry-after: 6\r\n\r\n"), VALID, 1,
     503, "Service Unavailable", 2, "RETRY-AFTER", "5"},

    /* malformed */
    RBAD("HTTP/1.1 1010"),
    RBAD("HTTP/1.1 1010 x\r\n\r\n"),
    RBAD("HTTP/1.1 10 "),
    RBAD("HTTP/1.1 10\r"),
    RBAD("HTTP/1.1  101"),
    RBAD("HTTP/1.1\t101"),
    RBAD("HTTP/1.1\r\n"),
    RBAD("HTTP/1.2"),
    RBAD("HTTP/1.10"),
    RBAD("HTTP/2"),
    RBAD("http/1.1"),
    RBAD("HTTP/1.1 2x0"),
    RBAD("HTTP/1.1 -20"),
    RBAD("HTTP/1.1 200OK"),
    RBAD("HTTP/1.1 200\t"),
    RBAD("HTTP/1.1 200 OK\n"),
    RBAD("HTTP/1.1 200\n"),
    RBAD("HTTP/1.1 200 O\x01K"),
    RBAD("HTTP/1.1 200 O\x7f"),
    RBAD("HTTP/1.1 200 O\rK"),
    RBAD("HTTP/1.1 200 OK\r\nA: b\n"),
    RBAD("HTTP/1.1 200 OK\r\n\n"),
    RBAD("HTTP/1.1 200 OK\r\nA: b\r\n\n"),
    RBAD("HTTP/1.1 200 OK\r\nA : b"),
    RBAD("HTTP/1.1 200 OK\r\n A: b"),
    RBAD("HTTP/1.1 200 OK\r\nA: b\r\n c\r\n\r\n"),
    RBAD("HTTP/1.1 200 OK\r\nA: b\x01"),
    RBAD("HTTP/1.1 200 OK\r\n: b\r\n\r\n"),
    RBAD("HTTP/1.1 200 OK\r\nA\r\n\r\n"),
    RBAD("\r\nHTTP/1.1 200 OK\r\n\r\n"),
    RBAD("GET / HTTP/1.1\r\n\r\n"),
    RBAD("\x01"),

    /* incomplete */
    RMORE(""),
    RMORE("HTTP/1."),
    RMORE("HTTP/1.1"),
    RMORE("HTTP/1.1 "),
    RMORE("HTTP/1.1 10"),
    RMORE("HTTP/1.1 101"),
    RMORE("HTTP/1.1 101 Sw"),
    RMORE("HTTP/1.1 101\r"),
    RMORE("HTTP/1.1 101 \r"),
    RMORE("HTTP/1.1 200 OK\r\nA: b\r\n"),
    RMORE("HTTP/1.1 200 OK\r\nA: b\r\n\r"),
};

static int parse_response_guarded(const char *s, size_t n, struct http_response *res)
{
    struct guard g = guard_new(n);
    int r = http_parse_response(guard_put(&g, s, n), n, res);
    guard_free(&g);
    return r;
}

static void check_valid_resp_row(size_t idx, const struct resp_row *r)
{
    struct http_response res;
    struct guard g = guard_new(r->len + 32);
    int bad_prefix = 0;

    for (size_t k = 0; k < r->len; k++) {
        int rc = http_parse_response(guard_put(&g, r->in, k), k, &res);
        if (rc != HTTP_INCOMPLETE && !bad_prefix) {
            bad_prefix = 1;
            CHECKF(0, "response row %zu prefix %zu returned %d", idx, k, rc);
        }
    }
    CHECK(!bad_prefix);

    const char *in = guard_put(&g, r->in, r->len);
    int rc = http_parse_response(in, r->len, &res);
    CHECKF(rc == (int)r->len, "response row %zu: got %d want %zu", idx, rc, r->len);
    if (rc > 0) {
        CHECKF(res.minor_version == r->minor, "response row %zu minor", idx);
        CHECKF(res.status == r->status, "response row %zu status %d", idx, res.status);
        CHECKF(view_eq(res.reason, res.reason_len, r->reason), "response row %zu reason", idx);
        CHECK(res.reason >= in && res.reason + res.reason_len <= in + rc);
        CHECKF(res.num_headers == (size_t)r->nhdr, "response row %zu: %zu headers", idx,
               res.num_headers);
        if (r->hname) {
            const struct http_header *h = http_header_find(res.headers, res.num_headers, r->hname);
            CHECKF(h && view_eq(h->value, h->value_len, r->hval), "response row %zu header %s", idx,
                   r->hname);
        }
        for (size_t i = 0; i < res.num_headers; i++) {
            const struct http_header *h = &res.headers[i];
            CHECK(h->name >= in && h->name + h->name_len <= in + rc);
            CHECK(h->value >= in && h->value + h->value_len <= in + rc);
        }
    }

    /* the first WebSocket frame right behind the 101: only the head is consumed */
    static const char tail[] = "\x81\x05hello";
    char tmp[1024];
    if (r->len + sizeof tail - 1 <= sizeof tmp) {
        memcpy(tmp, r->in, r->len);
        memcpy(tmp + r->len, tail, sizeof tail - 1);
        size_t n = r->len + sizeof tail - 1;
        rc = http_parse_response(guard_put(&g, tmp, n), n, &res);
        CHECKF(rc == (int)r->len, "response row %zu with tail: got %d", idx, rc);
    }
    guard_free(&g);
}

static void test_response_rows(void)
{
    int nvalid = 0, nbad = 0;
    for (size_t i = 0; i < sizeof resp_rows / sizeof resp_rows[0]; i++) {
        const struct resp_row *r = &resp_rows[i];
        if (r->want == VALID) {
            nvalid++;
            check_valid_resp_row(i, r);
            continue;
        }
        struct http_response res;
        int rc = parse_response_guarded(r->in, r->len, &res);
        nbad += r->want == HTTP_BAD;
        CHECKF(rc == r->want, "response row %zu: got %d want %d", i, rc, r->want);
        for (size_t k = 0; k < r->len; k++) {
            rc = parse_response_guarded(r->in, k, &res);
            CHECKF(rc == HTTP_INCOMPLETE || rc == r->want, "response row %zu prefix %zu: %d", i, k,
                   rc);
        }
    }
    CHECK(nvalid >= 10);
    CHECK(nbad >= 30);
}

static void test_response_limits(void)
{
    static char buf[3 * HTTP_MAX_HEAD];
    static const char start[] = "HTTP/1.1 101 Switching Protocols\r\n";
    struct http_response res;
    size_t n;

    n = make_head(buf, sizeof buf, start, HTTP_MAX_HEADERS);
    CHECK(parse_response_guarded(buf, n, &res) == (int)n);
    CHECK(res.num_headers == HTTP_MAX_HEADERS);
    n = make_head(buf, sizeof buf, start, HTTP_MAX_HEADERS + 1);
    CHECK(parse_response_guarded(buf, n, &res) == HTTP_TOO_LARGE);
    const char *extra = strstr(buf, "H48:");
    CHECK(parse_response_guarded(buf, (size_t)(extra - buf) + 1, &res) == HTTP_TOO_LARGE);
    CHECK(parse_response_guarded(buf, (size_t)(extra - buf), &res) == HTTP_INCOMPLETE);

    /* a reason phrase or a header that never ends */
    n = (size_t)snprintf(buf, sizeof buf, "HTTP/1.1 200 ");
    memset(buf + n, 'a', sizeof buf - n);
    CHECK(parse_response_guarded(buf, HTTP_MAX_HEAD - 1, &res) == HTTP_INCOMPLETE);
    CHECK(parse_response_guarded(buf, HTTP_MAX_HEAD, &res) == HTTP_TOO_LARGE);
    n = (size_t)snprintf(buf, sizeof buf, "HTTP/1.1 200 OK\r\nX: ");
    memset(buf + n, 'a', sizeof buf - n);
    CHECK(parse_response_guarded(buf, sizeof buf, &res) == HTTP_TOO_LARGE);
    buf[100] = '\n';
    CHECK(parse_response_guarded(buf, sizeof buf, &res) == HTTP_BAD);

    /* exactly HTTP_MAX_HEAD bytes fits, one more does not */
    n = (size_t)snprintf(buf, sizeof buf, "HTTP/1.1 200 OK\r\nX: ");
    memset(buf + n, 'b', HTTP_MAX_HEAD - n - 4);
    memcpy(buf + HTTP_MAX_HEAD - 4, "\r\n\r\n", 4);
    CHECK(parse_response_guarded(buf, HTTP_MAX_HEAD + 10, &res) == HTTP_MAX_HEAD);
    memmove(buf + n + 1, buf + n, HTTP_MAX_HEAD - n);
    CHECK(parse_response_guarded(buf, HTTP_MAX_HEAD + 1, &res) == HTTP_TOO_LARGE);
}

static void test_header_find(void)
{
    static const char in[] = "HTTP/1.1 101 x\r\nUpgrade: websocket\r\nX: 1\r\nx: 2\r\n\r\n";
    struct http_response res;
    CHECK(http_parse_response(in, sizeof in - 1, &res) == (int)sizeof in - 1);
    const struct http_header *h = http_header_find(res.headers, res.num_headers, "UPGRADE");
    CHECK(h == &res.headers[0]);
    CHECK(http_header_find(res.headers, res.num_headers, "x") == &res.headers[1]);
    CHECK(http_header_find(res.headers, 1, "x") == NULL); /* n bounds the search */
    CHECK(http_header_find(res.headers, res.num_headers, "upgrad") == NULL);
    CHECK(http_header_find(res.headers, res.num_headers, "") == NULL);
    CHECK(http_header_find(NULL, 0, "x") == NULL);
}

/* ---- Content-Length ---- */

static void test_content_length(void)
{
    static const struct {
        const char *head; /* a request head; its headers are what is checked */
        int rc;           /* 0 or -1 */
        uint64_t want;
    } t[] = {
        {"GET / HTTP/1.1\r\n\r\n", 0, 0},
        {"GET / HTTP/1.1\r\nHost: x\r\nContent-Length-X: 7\r\n\r\n", 0, 0},
        {"GET / HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 0, 0},
        {"GET / HTTP/1.1\r\nContent-Length: 5\r\n\r\n", 0, 5},
        {"GET / HTTP/1.1\r\ncontent-LENGTH:  5 \t\r\n\r\n", 0, 5},
        {"GET / HTTP/1.1\r\nContent-Length: 007\r\n\r\n", 0, 7},
        {"GET / HTTP/1.1\r\nContent-Length: 000000000000000000000000000001\r\n\r\n", 0, 1},
        {"GET / HTTP/1.1\r\nContent-Length: 65537\r\n\r\n", 0, 65537},
        {"GET / HTTP/1.1\r\nContent-Length: 18446744073709551615\r\n\r\n", 0, UINT64_MAX},
        {"GET / HTTP/1.1\r\nContent-Length: 18446744073709551616\r\n\r\n", -1, 0},
        {"GET / HTTP/1.1\r\nContent-Length: 18446744073709551619\r\n\r\n", -1, 0},
        {"GET / HTTP/1.1\r\nContent-Length: 18446744073709551620\r\n\r\n", -1, 0},
        {"GET / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n", -1, 0},
        {"GET / HTTP/1.1\r\nContent-Length: 184467440737095516150\r\n\r\n", -1, 0},
        {"GET / HTTP/1.1\r\nContent-Length:\r\n\r\n", -1, 0},
        {"GET / HTTP/1.1\r\nContent-Length: \t \r\n\r\n", -1, 0},
        {"GET / HTTP/1.1\r\nContent-Length: +5\r\n\r\n", -1, 0},
        {"GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", -1, 0},
        {"GET / HTTP/1.1\r\nContent-Length: 5 5\r\n\r\n", -1, 0},
        {"GET / HTTP/1.1\r\nContent-Length: 5,5\r\n\r\n", -1, 0},
        {"GET / HTTP/1.1\r\nContent-Length: 0x10\r\n\r\n", -1, 0},
        {"GET / HTTP/1.1\r\nContent-Length: 5;\r\n\r\n", -1, 0},
        {"GET / HTTP/1.1\r\nContent-Length: \xd9\xa5\r\n\r\n", -1, 0},
        {"GET / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n", 0, 5},
        {"GET / HTTP/1.1\r\nContent-Length: 5\r\nHost: x\r\ncontent-length: 005\r\n\r\n", 0, 5},
        {"GET / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", -1, 0},
        {"GET / HTTP/1.1\r\nContent-Length: 0\r\nContent-Length: 1\r\n\r\n", -1, 0},
        {"GET / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
         -1, 0},
        {"GET / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length:\r\n\r\n", -1, 0},
        {"GET / HTTP/1.1\r\nContent-Length: x\r\nContent-Length: 5\r\n\r\n", -1, 0},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        struct http_request req;
        size_t n = strlen(t[i].head);
        CHECKF(http_parse_request(t[i].head, n, &req) == (int)n, "content-length row %zu", i);
        uint64_t len = 12345;
        int rc = http_content_length(req.headers, req.num_headers, &len);
        if (t[i].rc == -1)
            CHECKF(rc == -1 && len == 0, "content-length row %zu: %d %llu", i, rc,
                   (unsigned long long)len);
        else
            CHECKF(rc == 0 && len == t[i].want, "content-length row %zu: %d %llu", i, rc,
                   (unsigned long long)len);
    }
    uint64_t len = 1;
    CHECK(http_content_length(NULL, 0, &len) == 0 && len == 0);
}

/* ---- endpoints ---- */

static int rss_calls;

static uint64_t fake_rss(void)
{
    rss_calls++;
    return 123456789;
}

/* The body of the answer to GET path, into out (NUL-terminated). */
static const char *respond_body(const char *path, const struct http_info *info, char *out,
                                size_t cap)
{
    char head[256];
    struct http_request req;
    int n = snprintf(head, sizeof head, "GET %s HTTP/1.1\r\n\r\n", path);
    if (http_parse_request(head, (size_t)n, &req) != n) return "";
    size_t len = http_respond(&req, info, 1, out, cap - 1);
    out[len] = '\0';
    const char *body = strstr(out, "\r\n\r\n");
    return body ? body + 4 : "";
}

static void test_respond_rss(void)
{
    static char out[4096];
    struct http_info info = {
        .is_hub = 1,
        .hub_id = "h1",
        .hub_ns = "ns",
        .host = "0.0.0.0",
        .port = 3000,
        .connections = 3,
        .peers = 2,
        .hubs = 1,
        .networks = 4,
        .max_connections = 100,
        .uptime_ms = 1500,
        .rss = fake_rss,
        .now_wall_ms = 1700000000123ull,
        .cors = "*",
    };
    /* the same bytes as when rss was a number the caller filled in */
    static const char health[] =
        "{\"status\":\"healthy\",\"timestamp\":\"2023-11-14T22:13:20.123Z\","
        "\"uptime\":1.5,\"isHub\":true,\"connections\":3,\"peers\":2,"
        "\"hubs\":1,\"networks\":4,\"memory\":{\"rss\":123456789}}";
    static const char stats[] =
        "{\"isRunning\":true,\"isHub\":true,\"hubPeerId\":\"h1\",\"hubMeshNamespace\":\"ns\","
        "\"connections\":3,\"peers\":2,\"hubs\":1,\"networks\":4,\"bootstrapHubs\":{\"total\":0,"
        "\"connected\":0},\"maxConnections\":100,\"uptime\":1500,\"host\":\"0.0.0.0\","
        "\"port\":3000}";
    rss_calls = 0;
    CHECK(strcmp(respond_body("/health", &info, out, sizeof out), health) == 0);
    CHECK(rss_calls == 1);
    /* answers that do not show memory do not read it */
    CHECK(strcmp(respond_body("/stats", &info, out, sizeof out), stats) == 0);
    CHECK(strcmp(respond_body("/", &info, out, sizeof out),
                 "PeerPigeon WebSocket Signaling Server") == 0);
    CHECK(strcmp(respond_body("/nope", &info, out, sizeof out), "Not Found\n") == 0);
    CHECK(rss_calls == 1);
    info.rss = NULL;
    const char *b = respond_body("/health", &info, out, sizeof out);
    static const char tail[] = ",\"memory\":{\"rss\":0}}";
    CHECK(strlen(b) > sizeof tail && strcmp(b + strlen(b) - (sizeof tail - 1), tail) == 0);
}

int main(void)
{
    test_rows();
    test_limits();
    test_header_get();
    test_has_token();
    test_query_get();
    test_url_decode();
    test_write_response();
    test_status_text();
    test_response_rows();
    test_response_limits();
    test_header_find();
    test_content_length();
    test_respond_rss();
    return t_done();
}
