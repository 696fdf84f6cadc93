/* fuzz_http.c - libFuzzer target for the request-head parser: any input must give a defined
 * result; a parsed head must have every view inside the consumed bytes, and its strict
 * prefixes must all be HTTP_INCOMPLETE. The query helpers then run on what was parsed.
 * clang -fsanitize=fuzzer,address,undefined -I. test/fuzz_http.c http.c */
#include "http.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static int inside(const char *p, size_t n, const char *buf, size_t len)
{
    return p >= buf && n <= len && p - buf <= (ptrdiff_t)(len - n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* a copy of exactly `size` bytes, so ASan flags any overread */
    char *buf = malloc(size ? size : 1);
    if (!buf) return 0;
    if (size) memcpy(buf, data, size);

    struct http_request req;
    int rc = http_parse_request(buf, size, &req);
    if (rc != HTTP_INCOMPLETE && rc != HTTP_BAD && rc != HTTP_TOO_LARGE && rc <= 0) abort();
    if (rc == HTTP_INCOMPLETE && size >= HTTP_MAX_HEAD) abort();
    if (rc <= 0) {
        free(buf);
        return 0;
    }

    size_t head = (size_t)rc;
    if (head > size || head > HTTP_MAX_HEAD || req.num_headers > HTTP_MAX_HEADERS) abort();
    if (req.method_len == 0 || !inside(req.method, req.method_len, buf, head)) abort();
    if (req.path_len == 0 || !inside(req.path, req.path_len, buf, head)) abort();
    if (req.path[0] != '/' && !(req.path[0] == '*' && req.path_len == 1)) abort();
    if (req.query && !inside(req.query, req.query_len, buf, head)) abort();
    if (req.minor_version != 0 && req.minor_version != 1) abort();
    for (size_t i = 0; i < req.num_headers; i++) {
        const struct http_header *h = &req.headers[i];
        if (h->name_len == 0 || !inside(h->name, h->name_len, buf, head) ||
            !inside(h->value, h->value_len, buf, head))
            abort();
        if (h->value_len &&
            (h->value[0] == ' ' || h->value[0] == '\t' || h->value[h->value_len - 1] == ' ' ||
             h->value[h->value_len - 1] == '\t'))
            abort();
        /* lookup by its own name finds a header with that name */
        char name[HTTP_MAX_HEAD];
        memcpy(name, h->name, h->name_len);
        name[h->name_len] = '\0';
        const struct http_header *g = http_header_get(&req, name);
        if (!g || g > h || g->name_len != h->name_len) abort();
        (void)http_has_token(h->value, h->value_len, "upgrade");
    }

    /* sampled strict prefixes, and the same head with the trailing bytes cut off */
    struct http_request again;
    size_t cuts[] = {0,
                     1,
                     head / 2,
                     head - 2,
                     head - 1,
                     (size_t)data[0] % head,
                     (size_t)data[size - 1] * 31 % head};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        if (cuts[i] >= head) continue;
        if (http_parse_request(buf, cuts[i], &again) != HTTP_INCOMPLETE) abort();
    }
    if (http_parse_request(buf, head, &again) != rc) abort();

    if (req.query) {
        static const char *keys[] = {"peerId", "room", "a", "token"};
        char out[256];
        for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
            const char *v;
            size_t vlen;
            if (http_query_get(req.query, req.query_len, keys[i], &v, &vlen)) {
                if (!inside(v, vlen, req.query, req.query_len)) abort();
                long n = http_url_decode(v, vlen, out, sizeof out);
                if (n < -1 || n > (long)sizeof out || (n >= 0 && (size_t)n > vlen)) abort();
            }
        }
        long n = http_url_decode(req.query, req.query_len, out, sizeof out);
        if (n < -1 || n > (long)sizeof out) abort();
    }
    free(buf);
    return 0;
}
