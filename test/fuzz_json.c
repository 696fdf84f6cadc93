/* fuzz_json.c - libFuzzer target for json.c. Any input goes through json_validate; an accepted
 * one must parse with json_value, every sub-value must validate on its own, and for objects
 * json_next / json_get / json_str_unescape / json_str_eq must agree with one another, and
 * json_parse / json_obj_get with json_value / json_get. The block scanner linked in must give
 * exactly the byte-at-a-time reference's results (verdict, every getter's spans) on any input.
 * The raw input also goes through the writer: what it writes must validate (when the input is
 * UTF-8) and unescape back to the input, and a too-small buffer must never be overrun. */
#include "json.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The reference: json.c once more, compiled into this file with the scalar scanner
 * (-DJSON_SCALAR), its public names prefixed ref_ (as in test_json.c). */
#ifndef JSON_SCALAR
#define JSON_SCALAR
#define REF_DEFINED_SCALAR
#endif
#define json_validate ref_json_validate
#define json_parse ref_json_parse
#define json_obj_get ref_json_obj_get
#define json_scanner ref_json_scanner
#define json_value ref_json_value
#define json_get ref_json_get
#define json_next ref_json_next
#define json_str_unescape ref_json_str_unescape
#define json_str_eq ref_json_str_eq
#define json_writer_init ref_json_writer_init
#define json_write_raw ref_json_write_raw
#define json_write_str ref_json_write_str
#define json_write_u64 ref_json_write_u64
#define json_write_i64 ref_json_write_i64
#define json_write_seconds ref_json_write_seconds
#define json_write_bool ref_json_write_bool
#define json_write_key ref_json_write_key
#include "../json.c"
#undef json_validate
#undef json_parse
#undef json_obj_get
#undef json_scanner
#undef json_value
#undef json_get
#undef json_next
#undef json_str_unescape
#undef json_str_eq
#undef json_writer_init
#undef json_write_raw
#undef json_write_str
#undef json_write_u64
#undef json_write_i64
#undef json_write_seconds
#undef json_write_bool
#undef json_write_key
#ifdef REF_DEFINED_SCALAR
#undef JSON_SCALAR
#endif

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

static int same_val(const struct json_val *a, const struct json_val *b)
{
    return a->type == b->type && a->p == b->p && a->len == b->len;
}

/* json_next over obj in step with the reference's. */
static void check_walk(const struct json_val *obj)
{
    struct json_val k1, v1, k2, v2;
    size_t p1 = 0, p2 = 0;
    for (int guard = 0; guard < 5000; guard++) {
        int r1 = json_next(obj, &p1, &k1, &v1), r2 = ref_json_next(obj, &p2, &k2, &v2);
        FUZZ_ASSERT(r1 == r2);
        if (!r1) return;
        FUZZ_ASSERT(p1 == p2 && same_val(&k1, &k2) && same_val(&v1, &v2));
    }
}

static const char *const keys[] = {"type", "data", "targetPeerId", "networkName", "a", ""};

/* The linked scanner against the reference on s[0..n), valid or not: the verdict, json_parse's
 * root and members, json_value from the start and from every bracket and quote, json_next and
 * json_get over each object span found. */
static void check_reference(const char *s, size_t n)
{
    struct json_val r1, r2, v1, v2;
    struct json_obj o1, o2;
    FUZZ_ASSERT(json_validate(s, n) == ref_json_validate(s, n));
    FUZZ_ASSERT(json_parse(s, n, &r1, &o1) == ref_json_parse(s, n, &r2, &o2));
    FUZZ_ASSERT(same_val(&r1, &r2) && o1.n == o2.n && o1.more == o2.more);
    for (size_t k = 0; k < o1.n; k++)
        FUZZ_ASSERT(same_val(&o1.keys[k], &o2.keys[k]) && same_val(&o1.vals[k], &o2.vals[k]));
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (i && c != '{' && c != '[' && c != '"') continue;
        memset(&v1, 0, sizeof v1);
        memset(&v2, 0, sizeof v2);
        int a = json_value(s + i, n - i, &v1), b = ref_json_value(s + i, n - i, &v2);
        FUZZ_ASSERT(a == b && same_val(&v1, &v2));
        if (a || v1.type != JSON_OBJECT) continue;
        check_walk(&v1);
        for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
            a = json_get(&v1, keys[k], &r1);
            b = ref_json_get(&v1, keys[k], &r2);
            FUZZ_ASSERT(a == b && (!a || same_val(&r1, &r2)));
        }
    }
}

/* json_parse of an accepted document: root as json_value gives it, members as json_next walks
 * them, and json_obj_get answering as json_get for every key it has and a few it may not. */
static void check_parse(const char *s, size_t n, const struct json_val *v, char *dec, size_t cap)
{
    struct json_val root, k, x, g1, g2;
    struct json_obj o;
    size_t pos = 0, m = 0;
    int rc = json_parse(s, n, &root, &o);
    FUZZ_ASSERT(same_val(&root, v));
    FUZZ_ASSERT(rc == (v->type == JSON_OBJECT ? 0 : -1));
    if (rc) {
        FUZZ_ASSERT(o.n == 0 && !o.more);
        return;
    }
    while (json_next(&root, &pos, &k, &x)) {
        if (m < JSON_MAX_MEMBERS) FUZZ_ASSERT(same_val(&o.keys[m], &k) && same_val(&o.vals[m], &x));
        m++;
        long dn = json_str_unescape(&k, dec, cap);
        FUZZ_ASSERT(dn >= 0);
        if (memchr(dec, '\0', (size_t)dn)) continue;
        int a = json_obj_get(&o, &root, dec, &g1), b = json_get(&root, dec, &g2);
        FUZZ_ASSERT(a == 1 && b == 1 && same_val(&g1, &g2));
    }
    FUZZ_ASSERT(o.n == (m < JSON_MAX_MEMBERS ? m : JSON_MAX_MEMBERS));
    FUZZ_ASSERT(o.more == (m > JSON_MAX_MEMBERS));
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        int a = json_obj_get(&o, &root, keys[i], &g1), b = json_get(&root, keys[i], &g2);
        FUZZ_ASSERT(a == b && (!a || same_val(&g1, &g2)));
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
        check_parse(s, size, &v, dec, size + 1);
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
    check_reference(s, size);
    free(s);
    if (size <= 4096) check_writer(data, size);
    return 0;
}
