/* fuzz_json.c - libFuzzer target for json.c. Any input goes through json_validate; an accepted
 * one must parse with json_value, every sub-value must validate on its own, and for objects
 * json_next / json_get / json_str_unescape / json_str_eq must agree with one another. The raw
 * input also goes through the writer: what it writes must validate (when the input is UTF-8)
 * and unescape back to the input, and a too-small buffer must never be overrun. */
#include "json.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_ASSERT(c)                                                                             \
    do {                                                                                           \
        if (!(c)) abort();                                                                         \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_string(const struct json_val *v, char *dec, size_t cap)
{
    long n = json_str_unescape(v, dec, cap);
    FUZZ_ASSERT(n >= 0 && (size_t)n < cap && dec[n] == '\0');
    FUZZ_ASSERT(json_str_eq(v, dec, (size_t)n) == 1);
    if (n > 0) {
        FUZZ_ASSERT(json_str_eq(v, dec, (size_t)n - 1) == 0);
        FUZZ_ASSERT(json_str_unescape(v, dec, (size_t)n) == -1);
    }
}

static void check_object(const struct json_val *obj, char *dec, size_t cap)
{
    struct json_val k, v, g;
    size_t pos = 0, prev = 0;
    while (json_next(obj, &pos, &k, &v)) {
        FUZZ_ASSERT(pos > prev && pos < obj->len);
        prev = pos;
        FUZZ_ASSERT(k.type == JSON_STRING && v.type != JSON_NONE);
        FUZZ_ASSERT(json_validate(k.p, k.len) == 0 && json_validate(v.p, v.len) == 0);
        check_string(&k, dec, cap);
        long n = json_str_unescape(&k, dec, cap);
        if (memchr(dec, '\0', (size_t)n) == NULL) {
            /* The first member with this key wins, so it can be at or before this one. */
            FUZZ_ASSERT(json_get(obj, dec, &g) == 1);
            FUZZ_ASSERT(g.p <= v.p && g.type != JSON_NONE);
            if (g.p == v.p) FUZZ_ASSERT(g.len == v.len && g.type == v.type);
        }
        if (v.type == JSON_STRING) check_string(&v, dec, cap);
    }
    /* After the members only whitespace and the closing brace remain. */
    size_t i = pos ? pos : 1;
    while (i < obj->len - 1) {
        char c = obj->p[i++];
        FUZZ_ASSERT(c == ' ' || c == '\t' || c == '\n' || c == '\r');
    }
}

static void check_writer(const uint8_t *data, size_t size)
{
    size_t cap = size * 6 + 2; /* worst case: every byte as \u00XX, plus quotes */
    char *out = malloc(cap + 16), *dec = malloc(size + 1);
    struct json_writer w;
    struct json_val v;
    FUZZ_ASSERT(out && dec);

    json_writer_init(&w, out, cap);
    json_write_str(&w, (const char *)data, size);
    FUZZ_ASSERT(!w.overflow && w.len <= cap);
    int bytes_ascii = 1;
    for (size_t i = 0; i < size; i++)
        bytes_ascii &= data[i] < 0x80;
    int ok = json_validate(out, w.len) == 0;
    if (bytes_ascii) FUZZ_ASSERT(ok);
    if (ok) {
        FUZZ_ASSERT(json_value(out, w.len, &v) == 0 && v.type == JSON_STRING && v.len == w.len);
        long n = json_str_unescape(&v, dec, size + 1);
        FUZZ_ASSERT(n == (long)size && memcmp(dec, data, size) == 0);
        FUZZ_ASSERT(json_str_eq(&v, (const char *)data, size) == 1);
    }

    /* A cap that may be too small: nothing is written past it, overflow iff it did not fit. */
    size_t full = w.len, small = size ? data[0] % (full + 1) : 0;
    memset(out, 0x5a, cap + 16);
    json_writer_init(&w, out, small);
    json_write_str(&w, (const char *)data, size);
    FUZZ_ASSERT(w.overflow == (small < full));
    FUZZ_ASSERT(w.len == (w.overflow ? 0 : full));
    for (size_t i = small; i < cap + 16; i++)
        FUZZ_ASSERT((unsigned char)out[i] == 0x5a);
    free(out);
    free(dec);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* An exact-size copy so ASan sees any read past the end. */
    char *s = malloc(size ? size : 1);
    FUZZ_ASSERT(s);
    if (size) memcpy(s, data, size);
    struct json_val v;
    if (json_validate(s, size) == 0) {
        FUZZ_ASSERT(json_value(s, size, &v) == 0 && v.type != JSON_NONE);
        FUZZ_ASSERT(v.p >= s && v.p + v.len <= s + size);
        char *dec = malloc(size + 1);
        FUZZ_ASSERT(dec);
        if (v.type == JSON_OBJECT)
            check_object(&v, dec, size + 1);
        else if (v.type == JSON_STRING)
            check_string(&v, dec, size + 1);
        free(dec);
    } else {
        /* The getters must stay in bounds on anything at all. */
        if (json_value(s, size, &v) == 0) {
            FUZZ_ASSERT(v.p >= s && v.p + v.len <= s + size);
            struct json_val k, x;
            size_t pos = 0;
            char dec[64];
            for (int guard = 0; guard < 1000 && json_next(&v, &pos, &k, &x); guard++) {
                (void)json_str_unescape(&k, dec, sizeof dec);
                (void)json_str_eq(&k, "type", 4);
            }
            (void)json_get(&v, "type", &x);
            if (v.type == JSON_STRING) (void)json_str_unescape(&v, dec, sizeof dec);
        }
    }
    free(s);
    if (size <= 4096) check_writer(data, size);
    return 0;
}
