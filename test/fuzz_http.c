/* fuzz_http.c - libFuzzer target for the request- and response-head parsers and the
 * Content-Length reader. Any input must give a defined result no larger than the input; a
 * parsed head must have every view inside the consumed bytes; no prefix may change the
 * verdict (a prefix of a head of length r is HTTP_INCOMPLETE below r and r from there on, a
 * prefix of an error is HTTP_INCOMPLETE or that error); http_content_length must agree with a
 * string-compare reference. The query helpers then run on what was parsed.
 * clang -fsanitize=fuzzer,address,undefined -I. test/fuzz_http.c http.c json.c */
#include "http.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int inside(const char *p, size_t n, const char *buf, size_t len)
{
    return p >= buf && n <= len && p - buf <= (ptrdiff_t)(len - n);
}

static void check_rc(int rc, size_t size)
{
    if (rc != HTTP_INCOMPLETE && rc != HTTP_BAD && rc != HTTP_TOO_LARGE && rc <= 0) abort();
    if (rc > 0 && ((size_t)rc > size || rc > HTTP_MAX_HEAD)) abort();
    if (rc == HTTP_INCOMPLETE && size >= HTTP_MAX_HEAD) abort();
}

/* Both parsers behind one signature, for the prefix check. */
static int parse_request(const char *buf, size_t len)
{
    static struct http_request req;
    return http_parse_request(buf, len, &req);
}

static int parse_response(const char *buf, size_t len)
{
    static struct http_response res;
    return http_parse_response(buf, len, &res);
}

/* rk, the verdict on a k-byte prefix of an input whose verdict was rc, keeps to the contract:
 * a head of length r is "call again" before r bytes and r from then on; an error is "call
 * again" or that same error. */
static int prefix_ok(int rk, size_t k, int rc)
{
    check_rc(rk, k);
    if (rc > 0) return rk == (k < (size_t)rc ? HTTP_INCOMPLETE : rc);
    return rk == HTTP_INCOMPLETE || rk == rc;
}

/* The verdict on buf[0..size) was rc; check it against prefixes: all of them when the input is
 * short, else the ones around the head's end and a spread of others. */
static void check_prefixes(int (*parse)(const char *, size_t), const char *buf, size_t size, int rc)
{
    size_t cuts[40], n = 0;
    cuts[n++] = 0;
    cuts[n++] = 1;
    cuts[n++] = size - 1;
    if (rc > 0) {
        size_t r = (size_t)rc;
        cuts[n++] = r - 2;
        cuts[n++] = r - 1;
        cuts[n++] = r;
        cuts[n++] = r / 2;
    }
    for (size_t i = 1; n < sizeof cuts / sizeof cuts[0]; i++)
        cuts[n++] = (size_t)((uint64_t)size * i * 2654435761u >> 5) % (size ? size : 1);
    for (size_t i = 0; i < n; i++) {
        size_t k = cuts[i];
        if (k >= size) continue;
        if (!prefix_ok(parse(buf, k), k, rc)) abort();
    }
    /* a short input is checked at every prefix */
    for (size_t k = 0; size <= 300 && k < size; k++)
        if (!prefix_ok(parse(buf, k), k, rc)) abort();
}

static void check_headers(const struct http_header *hs, size_t n, const char *buf, size_t head)
{
    if (n > HTTP_MAX_HEADERS) abort();
    for (size_t i = 0; i < n; i++) {
        const struct http_header *h = &hs[i];
        if (h->name_len == 0 || !inside(h->name, h->name_len, buf, head) ||
            !inside(h->value, h->value_len, buf, head))
            abort();
        if (h->value_len &&
            (h->value[0] == ' ' || h->value[0] == '\t' || h->value[h->value_len - 1] == ' ' ||
             h->value[h->value_len - 1] == '\t'))
            abort();
        for (size_t j = 0; j < h->value_len; j++)
            if (h->value[j] == '\r' || h->value[j] == '\n') abort();
        /* lookup by its own name finds the first header with that name */
        char name[HTTP_MAX_HEAD];
        memcpy(name, h->name, h->name_len);
        name[h->name_len] = '\0';
        const struct http_header *g = http_header_find(hs, n, name);
        if (!g || g > h || g->name_len != h->name_len) abort();
        (void)http_has_token(h->value, h->value_len, "upgrade");
    }
}

/* Reference for one Content-Length value: -1 if not a length, else 0 with *digits pointing at
 * it without leading zeros (so equal lengths are equal strings). */
static int ref_length(const struct http_header *h, const char **digits, size_t *n)
{
    static const char max[] = "18446744073709551615";
    size_t i = 0;
    if (h->value_len == 0) return -1;
    for (size_t j = 0; j < h->value_len; j++)
        if (h->value[j] < '0' || h->value[j] > '9') return -1;
    while (i + 1 < h->value_len && h->value[i] == '0')
        i++;
    *digits = h->value + i;
    *n = h->value_len - i;
    if (*n > sizeof max - 1 || (*n == sizeof max - 1 && memcmp(*digits, max, *n) > 0)) return -1;
    return 0;
}

static void check_content_length(const struct http_header *hs, size_t n)
{
    uint64_t len = 1;
    int rc = http_content_length(hs, n, &len);
    if (rc != 0 && rc != -1) abort();
    if (rc == -1 && len != 0) abort();

    const char *first = NULL, *d;
    size_t first_n = 0, dn;
    int want = 0;
    for (size_t i = 0; i < n; i++) {
        if (hs[i].name_len != 14 || strncasecmp(hs[i].name, "content-length", 14)) continue;
        if (ref_length(&hs[i], &d, &dn) < 0) {
            want = -1;
        } else if (!first) {
            first = d, first_n = dn;
        } else if (dn != first_n || memcmp(d, first, dn)) {
            want = -1;
        }
    }
    if (rc != want) abort();
    if (rc == 0) {
        /* the number printed back is the reference's digits */
        char tmp[24];
        size_t i = sizeof tmp;
        uint64_t v = len;
        do {
            tmp[--i] = (char)('0' + v % 10);
            v /= 10;
        } while (v);
        if (!first ? len != 0 : sizeof tmp - i != first_n || memcmp(tmp + i, first, first_n))
            abort();
    }
}

static void check_query(const struct http_request *req)
{
    static const char *keys[] = {"peerId", "room", "a", "token"};
    char out[256];
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        const char *v;
        size_t vlen;
        if (http_query_get(req->query, req->query_len, keys[i], &v, &vlen)) {
            if (!inside(v, vlen, req->query, req->query_len)) abort();
            long n = http_url_decode(v, vlen, out, sizeof out);
            if (n < -1 || n > (long)sizeof out || (n >= 0 && (size_t)n > vlen)) abort();
        }
    }
    long n = http_url_decode(req->query, req->query_len, out, sizeof out);
    if (n < -1 || n > (long)sizeof out) abort();
}

static void fuzz_request(const char *buf, size_t size)
{
    struct http_request req;
    int rc = http_parse_request(buf, size, &req);
    check_rc(rc, size);
    check_prefixes(parse_request, buf, size, rc);
    if (rc <= 0) return;

    size_t head = (size_t)rc;
    if (req.method_len == 0 || !inside(req.method, req.method_len, buf, head)) abort();
    if (req.path_len == 0 || !inside(req.path, req.path_len, buf, head)) abort();
    if (req.path[0] != '/' && !(req.path[0] == '*' && req.path_len == 1)) abort();
    if (req.query && !inside(req.query, req.query_len, buf, head)) abort();
    if (req.minor_version != 0 && req.minor_version != 1) abort();
    if (memcmp(buf + head - 4, "\r\n\r\n", 4) != 0) abort();
    for (size_t i = 0; i < head; i++)
        if (buf[i] == '\n' && (i == 0 || buf[i - 1] != '\r')) abort(); /* no bare LF */
    check_headers(req.headers, req.num_headers, buf, head);
    check_content_length(req.headers, req.num_headers);
    if (req.query) check_query(&req);
}

static void fuzz_response(const char *buf, size_t size)
{
    struct http_response res;
    int rc = http_parse_response(buf, size, &res);
    check_rc(rc, size);
    check_prefixes(parse_response, buf, size, rc);
    if (rc <= 0) return;

    size_t head = (size_t)rc;
    if (memcmp(buf, "HTTP/1.", 7) != 0 || buf[8] != ' ') abort();
    if (res.minor_version != 0 && res.minor_version != 1) abort();
    if (res.status < 0 || res.status > 999) abort();
    /* the status is the three digits at 9..11, and nothing but SP or CR follows them */
    if ((buf[9] - '0') * 100 + (buf[10] - '0') * 10 + (buf[11] - '0') != res.status) abort();
    if (buf[12] != ' ' && buf[12] != '\r') abort();
    if (!inside(res.reason, res.reason_len, buf, head)) abort();
    for (size_t i = 0; i < res.reason_len; i++)
        if (res.reason[i] == '\r' || res.reason[i] == '\n') abort();
    if (memcmp(buf + head - 4, "\r\n\r\n", 4) != 0) abort();
    for (size_t i = 0; i < head; i++)
        if (buf[i] == '\n' && (i == 0 || buf[i - 1] != '\r')) abort();
    check_headers(res.headers, res.num_headers, buf, head);
    check_content_length(res.headers, res.num_headers);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* a copy of exactly `size` bytes, so ASan flags any overread */
    char *buf = malloc(size ? size : 1);
    if (!buf) return 0;
    if (size) memcpy(buf, data, size);
    fuzz_request(buf, size);
    fuzz_response(buf, size);
    free(buf);
    return 0;
}
