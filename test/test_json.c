/* test_json.c - table tests for json.c: validation verdicts (each input also fed as every prefix,
 * each in a malloc'd buffer of exactly its length so ASan catches overreads), getters on nested
 * and tricky objects, unescaping, and the writer (escaping round trip, overflow). */
#include "json.h"
#include "t.h"

#include <stdint.h>
#include <stdlib.h>

/* An exact-length heap copy: no NUL after the last byte. */
static char *dup_exact(const char *s, size_t n)
{
    char *p = malloc(n ? n : 1);
    if (!p) {
        perror("malloc");
        exit(2);
    }
    memcpy(p, s, n);
    return p;
}

static int validate_exact(const char *s, size_t n)
{
    char *p = dup_exact(s, n);
    int r = json_validate(p, n);
    free(p);
    return r;
}

struct vrow {
    const char *in;
    size_t len;
    int ok; /* 1 valid, 0 invalid */
};
/* clang-format off */
#define V(s, ok) {s, sizeof(s) - 1, ok}
/* clang-format on */

static const struct vrow vrows[] = {
    /* scalars and whitespace */
    V("null", 1),
    V("true", 1),
    V("false", 1),
    V(" \t\r\n1 \t\r\n", 1),
    V("", 0),
    V(" ", 0),
    V(" \n\t\r ", 0),
    V("nul", 0),
    V("nulll", 0),
    V("True", 0),
    V("NaN", 0),
    V("Infinity", 0),
    V("-Infinity", 0),
    V("undefined", 0),
    V("\f1", 0),
    V("\x00", 0),
    V("1\x00", 0),
    /* numbers */
    V("0", 1),
    V("-0", 1),
    V("123", 1),
    V("-123", 1),
    V("1.5", 1),
    V("-0.0", 1),
    V("1e5", 1),
    V("1E+5", 1),
    V("1e-5", 1),
    V("0e0", 1),
    V("1.25e-10", 1),
    V("12345678901234567890123", 1),
    V("01", 0),
    V("-01", 0),
    V("00", 0),
    V("+1", 0),
    V("-", 0),
    V(".5", 0),
    V("1.", 0),
    V("1.e5", 0),
    V("1e", 0),
    V("1e+", 0),
    V("1e+-1", 0),
    V("0x10", 0),
    V("1 2", 0),
    V("--1", 0),
    V("-.5", 0),
    V("1.5.5", 0),
    V("[01]", 0),
    V("[1.]", 0),
    V("[-]", 0),
    /* strings and escapes */
    V("\"\"", 1),
    V("\"abc\"", 1),
    V("\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"", 1),
    V("\"\\u0000\"", 1),
    V("\"\\u00e9\\u00E9\"", 1),
    V("\"{[}]:,\"", 1),
    V("\"\\a\"", 0),
    V("\"\\x41\"", 0),
    V("\"\\'\"", 0),
    V("\"\\u12\"", 0),
    V("\"\\u12g4\"", 0),
    V("\"\\u\"", 0),
    V("\"\\", 0),
    V("\"abc", 0),
    V("\"", 0),
    V("'abc'", 0),
    V("\"a\nb\"", 0),
    V("\"a\tb\"", 0),
    V("\"\x01\"", 0),
    V("\"\x1f\"", 0),
    V("\"a\x00 b\"", 0),
    V("\"\x7f\"", 1),
    /* \u surrogates */
    V("\"\\ud83d\\ude00\"", 1),
    V("\"\\uD83D\\uDE00\"", 1),
    V("\"\\udbff\\udfff\"", 1),
    V("\"\\ud83d\"", 0),
    V("\"\\ud83dx\"", 0),
    V("\"\\ud83d\\n\"", 0),
    V("\"\\ud83d\\u0041\"", 0),
    V("\"\\ud83d\\ud83d\"", 0),
    V("\"\\ude00\"", 0),
    V("\"\\ude00\\ud83d\"", 0),
    V("\"\\ud83d\\ude0\"", 0),
    /* raw UTF-8 */
    V("\"\xc3\xa9\"", 1),
    V("\"\xe2\x82\xac\"", 1),
    V("\"\xf0\x9f\x98\x80\"", 1),
    V("\"\xf4\x8f\xbf\xbf\"", 1),
    V("\"\xed\x9f\xbf\"", 1),
    V("\"\xee\x80\x80\"", 1),
    V("\"\x80\"", 0),
    V("\"\xbf\"", 0),
    V("\"\xc3\"", 0),
    V("\"\xc3x\"", 0),
    V("\"\xc0\xaf\"", 0),
    V("\"\xc1\xbf\"", 0),
    V("\"\xe0\x80\xaf\"", 0),
    V("\"\xe0\x9f\xbf\"", 0),
    V("\"\xf0\x80\x80\xaf\"", 0),
    V("\"\xf0\x8f\xbf\xbf\"", 0),
    V("\"\xed\xa0\x80\"", 0),
    V("\"\xed\xbf\xbf\"", 0),
    V("\"\xf4\x90\x80\x80\"", 0),
    V("\"\xf5\x80\x80\x80\"", 0),
    V("\"\xff\"", 0),
    V("\"\xfe\"", 0),
    V("\"\xe2\x82\"", 0),
    V("\"\xf0\x9f\x98\"", 0),
    V("\xc3\xa9", 0),
    /* arrays and objects */
    V("[]", 1),
    V("{}", 1),
    V(" [ ] ", 1),
    V("{ }", 1),
    V("[1,2,3]", 1),
    V("[ 1 , [ ] , {} ]", 1),
    V("{\"a\":1}", 1),
    V("{ \"a\" : 1 , \"b\" : [true,false,null] }", 1),
    V("{\"a\":1,\"a\":2}", 1),
    V("{\"\":0}", 1),
    V("[\"]\",\"[\"]", 1),
    V("[1,]", 0),
    V("[,1]", 0),
    V("[,]", 0),
    V("{\"a\":1,}", 0),
    V("{,}", 0),
    V("[1 2]", 0),
    V("{\"a\" 1}", 0),
    V("{\"a\":}", 0),
    V("{\"a\"}", 0),
    V("{a:1}", 0),
    V("{1:1}", 0),
    V("{'a':1}", 0),
    V("[", 0),
    V("]", 0),
    V("{", 0),
    V("[1", 0),
    V("[1,", 0),
    V("{\"a\":1", 0),
    V("[}", 0),
    V("{]", 0),
    V("[1]]", 0),
    V("{}}", 0),
    V("{\"a\":1}{", 0),
    V("[][]", 0),
    V("{} x", 0),
    V("1 x", 0),
    V("null,", 0),
    V("[1]\x00", 0),
    V("{\"a\":1 \"b\":2}", 0),
    V("{\"a\"::1}", 0),
    V("{\"a\":1:2}", 0),
    V("[\"a\":1]", 0),
};

static void test_validate_table(void)
{
    for (size_t r = 0; r < sizeof vrows / sizeof vrows[0]; r++) {
        const struct vrow *v = &vrows[r];
        int got = validate_exact(v->in, v->len);
        CHECKF(got == (v->ok ? 0 : -1), "row %zu: %.*s -> %d", r, (int)v->len, v->in, got);
        /* Every prefix must be judged without reading past it. */
        for (size_t n = 0; n < v->len; n++)
            (void)validate_exact(v->in, n);
    }
}

/* Nesting exactly JSON_MAX_DEPTH deep is fine, one more is refused. */
static void test_depth(void)
{
    char b[JSON_MAX_DEPTH * 8 + 16];
    for (int extra = 0; extra <= 1; extra++) {
        int d = JSON_MAX_DEPTH + extra;
        size_t n = 0;
        for (int k = 0; k < d; k++)
            b[n++] = '[';
        for (int k = 0; k < d; k++)
            b[n++] = ']';
        CHECKF(validate_exact(b, n) == (extra ? -1 : 0), "array depth %d", d);

        n = 0;
        for (int k = 0; k < d; k++) {
            memcpy(b + n, "{\"a\":", 5);
            n += 5;
        }
        b[n++] = '1';
        for (int k = 0; k < d; k++)
            b[n++] = '}';
        CHECKF(validate_exact(b, n) == (extra ? -1 : 0), "object depth %d", d);

        n = 0; /* alternating objects and arrays, an empty object at the deepest level */
        for (int k = 0; k < d - 1; k++) {
            if (k & 1) {
                b[n++] = '[';
            } else {
                memcpy(b + n, "{\"k\":", 5);
                n += 5;
            }
        }
        b[n++] = '{';
        b[n++] = '}';
        for (int k = d - 2; k >= 0; k--)
            b[n++] = k & 1 ? ']' : '}';
        CHECKF(validate_exact(b, n) == (extra ? -1 : 0), "mixed depth %d", d);
    }
    /* Depth is about nesting, not about how many containers there are. */
    char wide[4 * 200 + 2];
    size_t n = 0;
    wide[n++] = '[';
    for (int k = 0; k < 200; k++) {
        memcpy(wide + n, k ? ",[]" : "[]", k ? 3 : 2);
        n += k ? 3 : 2;
    }
    wide[n++] = ']';
    CHECK(validate_exact(wide, n) == 0);
}

/* Parse a validated object held in an exact-length buffer (the caller frees *buf). */
static int load_obj(const char *text, char **buf, struct json_val *obj)
{
    size_t n = strlen(text);
    *buf = dup_exact(text, n);
    if (json_validate(*buf, n) != 0 || json_value(*buf, n, obj) != 0) return -1;
    return obj->type == JSON_OBJECT ? 0 : -1;
}

struct grow {
    const char *doc;
    const char *key;
    enum json_type type; /* JSON_NONE: absent */
    const char *raw;     /* expected raw span */
};

static const struct grow grows[] = {
    {"{\"a\":1}", "a", JSON_NUMBER, "1"},
    {"{\"a\":1}", "b", JSON_NONE, NULL},
    {"{\"a\":1}", "", JSON_NONE, NULL},
    {"{\"\":7}", "", JSON_NUMBER, "7"},
    {"{}", "a", JSON_NONE, NULL},
    {" { \"a\" : -1.5e3 } ", "a", JSON_NUMBER, "-1.5e3"},
    {"{\"a\":1,\"a\":2}", "a", JSON_NUMBER, "1"},
    {"{\"x\":{\"a\":1},\"a\":2}", "a", JSON_NUMBER, "2"},
    {"{\"x\":[{\"a\":1}],\"a\":[1,[2]]}", "a", JSON_ARRAY, "[1,[2]]"},
    {"{\"x\":\"\\\"a\\\":9}\",\"a\":3}", "a", JSON_NUMBER, "3"},
    {"{\"x\":\"}{][\",\"a\":true}", "a", JSON_TRUE, "true"},
    {"{\"x\":\"\\\\\",\"a\":false}", "a", JSON_FALSE, "false"},
    {"{\"x\":\"\\\\\\\"}\",\"a\":null}", "a", JSON_NULL, "null"},
    {"{\"a\\u0062\":1}", "ab", JSON_NUMBER, "1"},
    {"{\"\\u0061\":\"v\"}", "a", JSON_STRING, "\"v\""},
    {"{\"\\/\":1}", "/", JSON_NUMBER, "1"},
    {"{\"caf\\u00e9\":1}", "caf\xc3\xa9", JSON_NUMBER, "1"},
    {"{\"caf\xc3\xa9\":2}", "caf\xc3\xa9", JSON_NUMBER, "2"},
    {"{\"\\ud83d\\ude00\":3}", "\xf0\x9f\x98\x80", JSON_NUMBER, "3"},
    {"{\"ab\":1}", "a", JSON_NONE, NULL},
    {"{\"a\":1}", "ab", JSON_NONE, NULL},
    {"{\"type\":\"x\",\"data\":{\"type\":\"inner\"},\"to\":\"p\"}", "to", JSON_STRING, "\"p\""},
    {"{\"data\":{\"a\":{\"b\":{\"c\":[1,2,{\"d\":\"}\"}]}}},\"z\":0}", "z", JSON_NUMBER, "0"},
    {"{\"data\":{\"a\":{\"b\":{}}}}", "data", JSON_OBJECT, "{\"a\":{\"b\":{}}}"},
    {"{\"s\":\"a\\\"b\"}", "s", JSON_STRING, "\"a\\\"b\""},
    {"{\"n\":0}", "n", JSON_NUMBER, "0"},
};

static void test_get(void)
{
    for (size_t r = 0; r < sizeof grows / sizeof grows[0]; r++) {
        const struct grow *g = &grows[r];
        char *buf;
        struct json_val obj, v = {JSON_NONE, NULL, 0};
        if (load_obj(g->doc, &buf, &obj) < 0) {
            CHECKF(0, "row %zu: bad doc %s", r, g->doc);
            free(buf);
            continue;
        }
        int found = json_get(&obj, g->key, &v);
        CHECKF(found == (g->type != JSON_NONE), "row %zu: found %d", r, found);
        if (found && g->raw) {
            CHECKF(v.type == g->type, "row %zu: type %d", r, v.type);
            CHECKF(v.len == strlen(g->raw) && memcmp(v.p, g->raw, v.len) == 0, "row %zu: %.*s", r,
                   (int)v.len, v.p);
        }
        free(buf);
    }
    /* Not an object: nothing is found. */
    struct json_val arr = {JSON_ARRAY, "[1]", 3}, v;
    CHECK(json_get(&arr, "a", &v) == 0);
    struct json_val str = {JSON_STRING, "\"{}\"", 4};
    CHECK(json_get(&str, "a", &v) == 0);
}

static void test_next(void)
{
    char *buf;
    struct json_val obj, k, v;
    size_t pos = 0;
    CHECK(load_obj(" { \"a\" : 1 , \"b\\n\":[1,{\"c\":2}] ,\"\":\"x,y\", \"d\":{} } ", &buf,
                   &obj) == 0);
    CHECK(json_next(&obj, &pos, &k, &v) == 1);
    CHECK(json_str_eq(&k, "a", 1) && v.type == JSON_NUMBER && v.len == 1 && v.p[0] == '1');
    CHECK(json_next(&obj, &pos, &k, &v) == 1);
    CHECK(json_str_eq(&k, "b\n", 2) && v.type == JSON_ARRAY && v.len == 11);
    CHECK(json_next(&obj, &pos, &k, &v) == 1);
    CHECK(json_str_eq(&k, "", 0) && v.type == JSON_STRING && v.len == 5);
    CHECK(json_next(&obj, &pos, &k, &v) == 1);
    CHECK(json_str_eq(&k, "d", 1) && v.type == JSON_OBJECT && v.len == 2);
    CHECK(json_next(&obj, &pos, &k, &v) == 0);
    CHECK(json_next(&obj, &pos, &k, &v) == 0);
    free(buf);

    CHECK(load_obj("{}", &buf, &obj) == 0);
    pos = 0;
    CHECK(json_next(&obj, &pos, &k, &v) == 0);
    free(buf);
    CHECK(load_obj("{ }", &buf, &obj) == 0);
    pos = 0;
    CHECK(json_next(&obj, &pos, &k, &v) == 0);
    free(buf);

    /* json_value types and spans */
    struct json_val x;
    const char *docs[] = {" 12 ", "\"s\"", "[1,2]", "{\"a\":[]}", "true", "false", "null"};
    const enum json_type types[] = {JSON_NUMBER, JSON_STRING, JSON_ARRAY, JSON_OBJECT,
                                    JSON_TRUE,   JSON_FALSE,  JSON_NULL};
    for (size_t r = 0; r < sizeof docs / sizeof docs[0]; r++) {
        size_t n = strlen(docs[r]);
        char *p = dup_exact(docs[r], n);
        CHECKF(json_value(p, n, &x) == 0 && x.type == types[r], "value row %zu", r);
        free(p);
    }
    char *p = dup_exact(" 12 ", 4);
    CHECK(json_value(p, 4, &x) == 0 && x.p == p + 1 && x.len == 2);
    free(p);
    p = dup_exact("[1,\"]", 5);
    CHECK(json_value(p, 5, &x) == -1);
    CHECK(json_value(p, 0, &x) == -1);
    free(p);
}

struct urow {
    const char *raw; /* the JSON string, quotes included */
    const char *dec; /* expected decoding; NULL when unescape must fail */
    size_t declen;
};
/* clang-format off */
#define U(raw, dec) {raw, dec, sizeof(dec) - 1}
/* clang-format on */

static const struct urow urows[] = {
    U("\"\"", ""),
    U("\"abc\"", "abc"),
    U("\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"", "\"\\/\b\f\n\r\t"),
    U("\"\\u0041\\u00e9\\u20ac\"", "A\xc3\xa9\xe2\x82\xac"),
    U("\"\\u0000x\"", "\0x"),
    U("\"\\ud83d\\ude00!\"", "\xf0\x9f\x98\x80!"),
    U("\"\\udbff\\udfff\"", "\xf4\x8f\xbf\xbf"),
    U("\"\\u07ff\\u0800\\uffff\"", "\xdf\xbf\xe0\xa0\x80\xef\xbf\xbf"),
    U("\"x\xc3\xa9y\"", "x\xc3\xa9y"),
    U("\"a\\\\\"", "a\\"),
    {"\"\\ud83d\"", NULL, 0},
    {"\"\\ude00\"", NULL, 0},
    {"\"\\q\"", NULL, 0},
};

static void test_unescape(void)
{
    char out[64];
    for (size_t r = 0; r < sizeof urows / sizeof urows[0]; r++) {
        const struct urow *u = &urows[r];
        size_t n = strlen(u->raw);
        char *p = dup_exact(u->raw, n);
        struct json_val v = {JSON_STRING, p, n};
        long got = json_str_unescape(&v, out, sizeof out);
        if (!u->dec) {
            CHECKF(got == -1, "row %zu: %ld", r, got);
            CHECK(json_str_eq(&v, "", 0) == 0);
            free(p);
            continue;
        }
        CHECKF(got == (long)u->declen && memcmp(out, u->dec, u->declen) == 0 &&
                   out[u->declen] == '\0',
               "row %zu: %ld", r, got);
        CHECKF(json_str_eq(&v, u->dec, u->declen) == 1, "row %zu: eq", r);
        if (u->declen) {
            CHECKF(json_str_eq(&v, u->dec, u->declen - 1) == 0, "row %zu: eq short", r);
            char longer[64];
            memcpy(longer, u->dec, u->declen);
            longer[u->declen] = 'z';
            CHECKF(json_str_eq(&v, longer, u->declen + 1) == 0, "row %zu: eq long", r);
        }
        /* Exactly enough room (decoded + NUL) works; one byte less fails. */
        char *exact = malloc(u->declen + 1);
        CHECKF(json_str_unescape(&v, exact, u->declen + 1) == (long)u->declen, "row %zu: fit", r);
        CHECKF(json_str_unescape(&v, exact, u->declen) == -1, "row %zu: too small", r);
        free(exact);
        free(p);
    }
    struct json_val num = {JSON_NUMBER, "12", 2};
    CHECK(json_str_unescape(&num, out, sizeof out) == -1);
    CHECK(json_str_eq(&num, "12", 2) == 0);
    struct json_val s = {JSON_STRING, "\"ab\"", 4};
    CHECK(json_str_unescape(&s, out, 0) == -1);
    CHECK(json_str_eq(&s, "ab", 2) == 1 && json_str_eq(&s, "aB", 2) == 0);
}

/* Write, validate, unescape: must come back byte for byte. */
static void test_writer_roundtrip(void)
{
    static const struct {
        const char *s;
        size_t n;
    } rows[] = {
        {"", 0},
        {"plain", 5},
        {"q\"b\\s/", 6},
        {"\n\r\t\b\f", 5},
        {"\x01\x1f\x00\x7f", 4},
        {"caf\xc3\xa9 \xf0\x9f\x98\x80 \xe2\x80\xa8", 14},
        {"}{][:,\"", 7},
    };
    char out[256], dec[256];
    for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++) {
        struct json_writer w;
        struct json_val v;
        json_writer_init(&w, out, sizeof out);
        json_write_str(&w, rows[r].s, rows[r].n);
        CHECK(!w.overflow);
        CHECKF(validate_exact(out, w.len) == 0, "row %zu: %.*s", r, (int)w.len, out);
        CHECK(json_value(out, w.len, &v) == 0 && v.type == JSON_STRING && v.len == w.len);
        long n = json_str_unescape(&v, dec, sizeof dec);
        CHECKF(n == (long)rows[r].n && memcmp(dec, rows[r].s, rows[r].n) == 0, "row %zu", r);
        CHECK(json_str_eq(&v, rows[r].s, rows[r].n) == 1);
    }
    struct json_writer w;
    json_writer_init(&w, out, sizeof out);
    json_write_str(&w, "\x01\n\"", 3);
    CHECK(w.len == 12 && memcmp(out, "\"\\u0001\\n\\\"\"", 12) == 0);
}

static int wrote(const struct json_writer *w, const char *want)
{
    return !w->overflow && w->len == strlen(want) && memcmp(w->p, want, w->len) == 0;
}

static void test_writer_values(void)
{
    char b[128];
    struct json_writer w;
    static const struct {
        double v;
        const char *s;
    } dr[] = {
        {0, "0"},
        {1, "1"},
        {-1, "-1"},
        {1.5, "1.5"},
        {0.125, "0.125"},
        {-0.0001, "0"},
        {-0.0, "0"},
        {100, "100"},
        {2.0005, "2"},
        {123456.789, "123456.789"},
        {1e300, "1.0000000000000001e+300"},
    };
    for (size_t r = 0; r < sizeof dr / sizeof dr[0]; r++) {
        json_writer_init(&w, b, sizeof b);
        json_write_double(&w, dr[r].v);
        CHECKF(w.len > 0 && validate_exact(b, w.len) == 0, "double row %zu", r);
        if (r != 8) /* 2.0005 rounds either way in binary */
            CHECKF(wrote(&w, dr[r].s), "double row %zu: %.*s", r, (int)w.len, b);
    }
    double nonfinite[] = {1.0 / 0.0, -1.0 / 0.0, 0.0 / 0.0};
    for (size_t r = 0; r < 3; r++) {
        json_writer_init(&w, b, sizeof b);
        json_write_double(&w, nonfinite[r]);
        CHECK(wrote(&w, "0"));
    }
    json_writer_init(&w, b, sizeof b);
    json_write_u64(&w, 0);
    json_write_raw(&w, ",", 1);
    json_write_u64(&w, UINT64_MAX);
    json_write_raw(&w, ",", 1);
    json_write_i64(&w, INT64_MIN);
    json_write_raw(&w, ",", 1);
    json_write_i64(&w, -7);
    json_write_raw(&w, ",", 1);
    json_write_i64(&w, INT64_MAX);
    CHECK(wrote(&w, "0,18446744073709551615,-9223372036854775808,-7,9223372036854775807"));

    json_writer_init(&w, b, sizeof b);
    json_write_raw(&w, "{", 1);
    json_write_key(&w, "t\"y");
    json_write_bool(&w, 1);
    json_write_raw(&w, ",", 1);
    json_write_key(&w, "f");
    json_write_bool(&w, 0);
    json_write_raw(&w, "}", 1);
    CHECK(wrote(&w, "{\"t\\\"y\":true,\"f\":false}"));
    CHECK(validate_exact(b, w.len) == 0);
}

/* Writes that do not fit set overflow, leave bytes past cap untouched, and stop later writes. */
static void test_writer_overflow(void)
{
    char b[16];
    struct json_writer w;
    for (size_t cap = 0; cap <= 8; cap++) {
        memset(b, '#', sizeof b);
        json_writer_init(&w, b, cap);
        json_write_str(&w, "abc\n", 4); /* 7 bytes: "abc\n" */
        CHECKF(w.overflow == (cap < 7), "cap %zu", cap);
        CHECKF(w.len == (cap < 7 ? 0 : 7), "cap %zu len %zu", cap, w.len);
        for (size_t i = cap; i < sizeof b; i++)
            CHECKF(b[i] == '#', "cap %zu: byte %zu written", cap, i);
    }
    memset(b, '#', sizeof b);
    json_writer_init(&w, b, 4);
    json_write_raw(&w, "ab", 2);
    json_write_u64(&w, 12345);
    CHECK(w.overflow && w.len == 2);
    json_write_raw(&w, "c", 1); /* would fit, but overflow is sticky */
    CHECK(w.len == 2 && b[2] == '#');
    json_writer_init(&w, b, 5);
    json_write_key(&w, "abc"); /* "abc": is 6 */
    CHECK(w.overflow && w.len == 0);
    json_writer_init(&w, b, 5);
    json_write_raw(&w, "12345", 5);
    CHECK(!w.overflow && w.len == 5);
    json_write_raw(&w, "", 0);
    CHECK(!w.overflow);
    json_write_bool(&w, 0);
    CHECK(w.overflow && w.len == 5);
    json_writer_init(&w, NULL, 0);
    json_write_double(&w, 1.5);
    CHECK(w.overflow && w.len == 0);
}

/* A big document: the getters must skip a long `data` value quickly and correctly. */
static void test_big(void)
{
    size_t n = 1 << 20;
    char *p = malloc(n);
    const char *head = "{\"data\":{\"blob\":\"";
    const char *tail = "\",\"arr\":[1,2,3]},\"to\":\"peer\"}";
    size_t hl = strlen(head), tl = strlen(tail), i;
    memcpy(p, head, hl);
    /* units of bracket soup with escaped quotes and backslashes, then plain padding */
    const char *unit = "a{\\\"}]\\\\[:,";
    size_t ul = strlen(unit);
    for (i = hl; i + ul <= n - tl; i += ul)
        memcpy(p + i, unit, ul);
    for (; i < n - tl; i++)
        p[i] = 'x';
    memcpy(p + n - tl, tail, tl);
    struct json_val obj, v;
    CHECK(json_validate(p, n) == 0);
    CHECK(json_value(p, n, &obj) == 0 && obj.len == n);
    CHECK(json_get(&obj, "to", &v) == 1 && json_str_eq(&v, "peer", 4));
    CHECK(json_get(&obj, "data", &v) == 1 && v.type == JSON_OBJECT);
    free(p);
}

int main(void)
{
    test_validate_table();
    test_depth();
    test_get();
    test_next();
    test_unescape();
    test_writer_roundtrip();
    test_writer_values();
    test_writer_overflow();
    test_big();
    return t_done();
}
