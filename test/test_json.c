/* test_json.c - table tests for json.c: validation verdicts (each input also fed as every prefix,
 * each in a malloc'd buffer of exactly its length so ASan catches overreads), getters on nested
 * and tricky objects, unescaping, and the writer (escaping round trip, overflow). The block
 * scanner linked in (whichever the flags pick) is checked against the byte-at-a-time reference
 * on the vectors and a generated corpus, and json_parse / json_obj_get against json_get. */
#include "json.h"
#include "t.h"

#include <stdint.h>
#include <stdlib.h>

/* The reference: json.c once more, compiled into this file with the scalar scanner
 * (-DJSON_SCALAR), its public names prefixed ref_. json.h is not read again, so this relies on
 * json.c defining each function before calling it (else it does not compile). */
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
        uint64_t ms;
        const char *s;
    } dr[] = {
        {0, "0"},         {1, "0.001"},     {37, "0.037"},     {100, "0.1"},
        {1500, "1.5"},    {5000, "5"},      {12345, "12.345"}, {60010, "60.01"},
        {UINT64_MAX, "18446744073709551.615"},
    };
    for (size_t r = 0; r < sizeof dr / sizeof dr[0]; r++) {
        json_writer_init(&w, b, sizeof b);
        json_write_seconds(&w, dr[r].ms);
        CHECKF(w.len > 0 && validate_exact(b, w.len) == 0, "seconds row %zu", r);
        CHECKF(wrote(&w, dr[r].s), "seconds row %zu: %.*s", r, (int)w.len, b);
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
    json_write_seconds(&w, 1500);
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

/* ---- the block scanner against the reference ---- */

static int same_val(const struct json_val *a, const struct json_val *b)
{
    return a->type == b->type && a->p == b->p && a->len == b->len;
}

static int same_obj(const struct json_obj *a, const struct json_obj *b)
{
    if (a->n != b->n || a->more != b->more) return 0;
    for (size_t k = 0; k < a->n; k++)
        if (!same_val(&a->keys[k], &b->keys[k]) || !same_val(&a->vals[k], &b->vals[k])) return 0;
    return 1;
}

/* Keys the getters are asked for: the decoded forms of the generator's keys, keys only found
 * past the 32 recorded members, raw texts that must not match keys spelt with escapes, and
 * near misses. */
/* clang-format off */
static const char *const ask_keys[] = {
    "type", "data", "targetPeerId", "networkName", "fromPeerId", "timestamp", "a", "b", "",
    "/", "caf\xc3\xa9", "\xf0\x9f\x98\x80", "a\\b", "k33", "k39", "t\\u0079pe", "\\/", "a\\\\b",
    "typ", "types",
};
/* clang-format on */

/* Both json_next walks over obj in step; 0 as soon as they differ. */
static int same_walk(const struct json_val *obj)
{
    struct json_val k1, v1, k2, v2;
    size_t p1 = 0, p2 = 0;
    for (int guard = 0; guard < 10000; guard++) {
        int r1 = json_next(obj, &p1, &k1, &v1), r2 = ref_json_next(obj, &p2, &k2, &v2);
        if (r1 != r2) return 0;
        if (!r1) return 1;
        if (p1 != p2 || !same_val(&k1, &k2) || !same_val(&v1, &v2)) return 0;
    }
    return 1;
}

/* Every result of the linked scanner on s[0..n) against the reference's; NULL if all agree,
 * else what differed. Getters are also run from each bracket and quote inside, on any input. */
static const char *diff_ref(const char *s, size_t n)
{
    struct json_val r1, r2, v1, v2;
    struct json_obj o1, o2;
    if (json_validate(s, n) != ref_json_validate(s, n)) return "validate";
    int a = json_parse(s, n, &r1, &o1), b = ref_json_parse(s, n, &r2, &o2);
    if (a != b || !same_val(&r1, &r2) || !same_obj(&o1, &o2)) return "parse";
    memset(&v1, 0, sizeof v1);
    memset(&v2, 0, sizeof v2);
    if (json_value(s, n, &v1) != ref_json_value(s, n, &v2) || !same_val(&v1, &v2)) return "value";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c != '{' && c != '[' && c != '"') continue;
        memset(&v1, 0, sizeof v1);
        memset(&v2, 0, sizeof v2);
        if (json_value(s + i, n - i, &v1) != ref_json_value(s + i, n - i, &v2) ||
            !same_val(&v1, &v2))
            return "value inside";
        if (c != '{') continue;
        /* as an object: the span json_value found, and the one to the buffer's last '}' */
        struct json_val obj[2] = {v1, {JSON_OBJECT, s + i, n - i}};
        while (obj[1].len > 1 && s[i + obj[1].len - 1] != '}')
            obj[1].len--;
        for (int o = 0; o < 2; o++) {
            if (obj[o].type != JSON_OBJECT) continue;
            if (!same_walk(&obj[o])) return "next";
            for (size_t k = 0; k < 3; k++) {
                int g1 = json_get(&obj[o], ask_keys[k], &v1);
                int g2 = ref_json_get(&obj[o], ask_keys[k], &v2);
                if (g1 != g2 || (g1 && !same_val(&v1, &v2))) return "get";
            }
        }
    }
    return NULL;
}

static int diff_failures;

/* s[0..n) copied to the end of a buffer of off + n bytes (so the document starts off bytes in,
 * and any read past it is an ASan error), then compared. */
static void diff_at(const char *s, size_t n, size_t off, const char *section)
{
    char *p = malloc(off + n ? off + n : 1);
    if (!p) exit(2);
    memset(p, '{', off);
    memcpy(p + off, s, n);
    const char *why = diff_ref(p + off, n);
    if (why && diff_failures++ < 5) {
        fprintf(stderr, "%s: %s differs at offset %zu on %zu bytes:", section, why, off, n);
        for (size_t i = 0; i < n; i++)
            fprintf(stderr, " %02x", (unsigned char)s[i]);
        fputc('\n', stderr);
    }
    free(p);
}

static uint64_t rng = 0x9E3779B97F4A7C15u;

static uint32_t rnd(uint32_t n)
{
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return (uint32_t)((rng * 0x2545F4914F6CDD1Du) >> 32) % n;
}

/* The bytes a string may hold, good and bad; the generator strings them together. */
/* clang-format off */
static const struct {
    const char *s;
    size_t n;
} pieces[] = {
#define P(x) {x, sizeof(x) - 1}
    /* 0..8: the simple escapes */
    P("\\\""), P("\\\\"), P("\\/"), P("\\b"), P("\\f"), P("\\n"), P("\\r"), P("\\t"), P("\\r\\n"),
    /* 9..: \u, good */
    P("\\u0041"), P("\\u00e9"), P("\\u00E9"), P("\\u0000"), P("\\u001f"), P("\\u07ff"),
    P("\\u0800"), P("\\uffff"), P("\\ud7ff"), P("\\ue000"), P("\\ud83d\\ude00"),
    P("\\uD800\\uDC00"), P("\\udbff\\udfff"), P("\\u0022"), P("\\u005c"),
    /* raw UTF-8 of every length, at the range edges */
    P("\xc2\x80"), P("\xc3\xa9"), P("\xdf\xbf"), P("\xe0\xa0\x80"), P("\xe2\x82\xac"),
    P("\xed\x9f\xbf"), P("\xee\x80\x80"), P("\xef\xbf\xbf"), P("\xf0\x90\x80\x80"),
    P("\xf0\x9f\x98\x80"), P("\xf3\xbf\xbf\xbf"), P("\xf4\x8f\xbf\xbf"), P("\x7f"), P(" "),
    P("}{][:,"),
    /* bad: escapes */
    P("\\a"), P("\\x41"), P("\\'"), P("\\U0041"), P("\\u12"), P("\\u12g4"), P("\\ud83d"),
    P("\\ud83dx"), P("\\ud83d\\n"), P("\\ud83d\\u0041"), P("\\ude00"), P("\\"),
    /* bad: raw control bytes */
    P("\x01"), P("\n"), P("\t"), P("\x1f"), {"\0", 1},
    /* bad: UTF-8 */
    P("\x80"), P("\xbf"), P("\xc0\x80"), P("\xc1\xbf"), P("\xc3"), P("\xc3x"), P("\xe0\x80\xaf"),
    P("\xe0\x9f\xbf"), P("\xed\xa0\x80"), P("\xed\xbf\xbf"), P("\xe2\x82"), P("\xf0\x8f\xbf\xbf"),
    P("\xf0\x9f\x98"), P("\xf4\x90\x80\x80"), P("\xf5\x80\x80\x80"), P("\xfe"), P("\xff"),
    /* a raw quote ends the string early */
    P("\""),
#undef P
};
/* clang-format on */
#define N_PIECES (sizeof pieces / sizeof pieces[0])
#define N_GOOD 39 /* pieces[0..N_GOOD) are good */

/* Append a string's contents to b at *n (room for 64 more): plain ASCII runs and pieces, good
 * ones mostly, a bad one now and then if bad. */
static void gen_str_body(char *b, size_t *n, size_t cap, int bad)
{
    int parts = (int)rnd(12);
    for (int k = 0; k < parts && *n + 64 < cap; k++) {
        if (rnd(3)) {
            size_t run = rnd(40);
            for (size_t i = 0; i < run; i++) {
                char c = (char)(' ' + rnd(95));
                b[(*n)++] = c == '"' || c == '\\' ? 'x' : c;
            }
        } else {
            size_t w = bad && rnd(6) == 0 ? N_GOOD + rnd(N_PIECES - N_GOOD) : rnd(N_GOOD);
            memcpy(b + *n, pieces[w].s, pieces[w].n);
            *n += pieces[w].n;
        }
    }
}

static const char *const gen_keys[] = {
    "\"type\"",
    "\"data\"",
    "\"targetPeerId\"",
    "\"networkName\"",
    "\"fromPeerId\"",
    "\"a\"",
    "\"\"",
    "\"t\\u0079pe\"",
    "\"\\u0074ype\"",
    "\"\\/\"",
    "\"/\"",
    "\"caf\\u00e9\"",
    "\"caf\xc3\xa9\"",
    "\"\\ud83d\\ude00\"",
    "\"\xf0\x9f\x98\x80\"",
    "\"a\\\\b\"",
    "\"typ\"",
};

static void gen_value(char *b, size_t *n, size_t cap, int depth, int bad);

static void gen_string(char *b, size_t *n, size_t cap, int bad)
{
    b[(*n)++] = '"';
    gen_str_body(b, n, cap, bad);
    b[(*n)++] = '"';
}

static void gen_ws(char *b, size_t *n)
{
    static const char ws[] = " \t\r\n";
    if (rnd(4) == 0) b[(*n)++] = ws[rnd(4)];
}

static void gen_container(char *b, size_t *n, size_t cap, int depth, int bad, int obj)
{
    int members = (int)rnd(obj ? 8 : 5);
    b[(*n)++] = obj ? '{' : '[';
    for (int k = 0; k < members && *n + 128 < cap; k++) {
        if (k) b[(*n)++] = ',';
        gen_ws(b, n);
        if (obj) {
            if (rnd(3) == 0) {
                gen_string(b, n, cap, bad);
            } else {
                const char *key = gen_keys[rnd(sizeof gen_keys / sizeof gen_keys[0])];
                memcpy(b + *n, key, strlen(key));
                *n += strlen(key);
            }
            gen_ws(b, n);
            b[(*n)++] = ':';
            gen_ws(b, n);
        }
        gen_value(b, n, cap, depth + 1, bad);
        gen_ws(b, n);
    }
    b[(*n)++] = obj ? '}' : ']';
}

static void gen_value(char *b, size_t *n, size_t cap, int depth, int bad)
{
    static const char *const scalars[] = {"0", "-12.5e3", "true", "false", "null", "1700000000000"};
    unsigned w = rnd(depth < 3 ? 10 : 6);
    if (w < 4) {
        gen_string(b, n, cap, bad);
    } else if (w < 6) {
        const char *x = scalars[rnd(6)];
        memcpy(b + *n, x, strlen(x));
        *n += strlen(x);
    } else {
        gen_container(b, n, cap, depth, bad, w < 8);
    }
}

/* Strings of every length 0..80 with each piece at each position, alone and inside an object,
 * at several offsets and with whitespace before and after, so the closing quote and every kind
 * of marked byte fall at every place in a block and in the tail. */
static void test_diff_positions(void)
{
    char doc[512], body[256];
    static const size_t leads[] = {0, 1, 15};
    for (size_t w = 0; w < N_PIECES; w++) { /* the good ones are good, the bad ones bad */
        doc[0] = '"';
        memcpy(doc + 1, pieces[w].s, pieces[w].n);
        doc[pieces[w].n + 1] = '"';
        CHECKF(validate_exact(doc, pieces[w].n + 2) == (w < N_GOOD ? 0 : -1), "piece %zu", w);
    }
    diff_failures = 0;
    for (size_t len = 0; len <= 140; len++) {
        for (size_t w = 0; w <= N_PIECES; w++) { /* w == N_PIECES: plain only */
            size_t pn = w < N_PIECES ? pieces[w].n : 0;
            if (pn > len) continue;
            for (size_t pos = 0; pos + pn <= len; pos += w < N_PIECES ? 1 : len + 1) {
                /* past 80 bytes (two 64-byte SSE2 blocks), only around the block edges */
                if (len > 80 && w < N_PIECES && pos % 64 > 2 && pos % 64 < 56 && pos + pn < len)
                    continue;
                for (size_t i = 0; i < len; i++)
                    body[i] = (char)('a' + (i + len) % 26);
                if (w < N_PIECES) memcpy(body + pos, pieces[w].s, pn);
                for (size_t l = 0; l < sizeof leads / sizeof leads[0]; l++) {
                    size_t n = 0;
                    memset(doc, ' ', leads[l]);
                    n += leads[l];
                    doc[n++] = '"';
                    memcpy(doc + n, body, len);
                    n += len;
                    doc[n++] = '"';
                    diff_at(doc, n, (len + pos) % 16, "positions");
                    if (l == 0) diff_at(doc, n - 1, 0, "positions, unterminated");
                    doc[n++] = ' ';
                    diff_at(doc, n, 3, "positions");
                }
                size_t n = 0; /* as a key and as a value */
                doc[n++] = '{';
                doc[n++] = '"';
                memcpy(doc + n, body, len);
                n += len;
                memcpy(doc + n, "\":\"", 3);
                n += 3;
                memcpy(doc + n, body, len);
                n += len;
                memcpy(doc + n, "\"}", 2);
                n += 2;
                diff_at(doc, n, pos % 16, "positions, object");
            }
        }
    }
    CHECKF(diff_failures == 0, "%d documents differ from the reference", diff_failures);
}

/* Generated documents (objects, arrays and strings with good and bad bytes), each also cut at
 * every length, against the reference. */
static void test_diff_random(void)
{
    char doc[4096];
    diff_failures = 0;
    for (int r = 0; r < 10000; r++) {
        size_t n = 0;
        int bad = rnd(3) == 0;
        if (rnd(4) == 0)
            gen_string(doc, &n, 1024, bad);
        else
            gen_container(doc, &n, sizeof doc, 0, bad, rnd(4) != 0);
        diff_at(doc, n, rnd(16), "random");
        if (r < 300)
            for (size_t k = 0; k < n; k++)
                diff_at(doc, k, k % 16, "random prefix");
    }
    /* the table's vectors at every offset and cut */
    for (size_t r = 0; r < sizeof vrows / sizeof vrows[0]; r++)
        for (size_t off = 0; off < 16; off++)
            for (size_t k = 0; k <= vrows[r].len; k++)
                diff_at(vrows[r].in, k, off, "vectors");
    for (size_t r = 0; r < sizeof grows / sizeof grows[0]; r++)
        for (size_t off = 0; off < 16; off++)
            diff_at(grows[r].doc, strlen(grows[r].doc), off, "get vectors");
    CHECKF(diff_failures == 0, "%d documents differ from the reference", diff_failures);
}

/* ---- json_parse and json_obj_get ---- */

/* json_obj_get must answer json_get, for every key asked and every key the object has; 0 if
 * any answer differs. */
static int obj_agrees(const struct json_val *root, const struct json_obj *o)
{
    struct json_val k, v, g1, g2;
    size_t pos = 0;
    char dec[512];
    for (size_t i = 0; i < sizeof ask_keys / sizeof ask_keys[0]; i++) {
        int a = json_obj_get(o, root, ask_keys[i], &g1), b = json_get(root, ask_keys[i], &g2);
        if (a != b || (a && !same_val(&g1, &g2))) return 0;
    }
    while (json_next(root, &pos, &k, &v)) {
        long n = json_str_unescape(&k, dec, sizeof dec);
        if (n < 0 || memchr(dec, '\0', (size_t)n)) continue;
        int a = json_obj_get(o, root, dec, &g1), b = json_get(root, dec, &g2);
        if (a != 1 || b != 1 || !same_val(&g1, &g2)) return 0;
    }
    return 1;
}

/* json_parse on a valid object: root as json_value gives it, members as json_next walks them
 * (the first 32), `more` iff there are more, and the lookups agree. */
static int parse_agrees(const char *s, size_t n)
{
    struct json_val root, vroot, k, v;
    struct json_obj o;
    size_t pos = 0, m = 0;
    if (json_parse(s, n, &root, &o) != 0) return 0;
    if (json_value(s, n, &vroot) != 0 || !same_val(&root, &vroot)) return 0;
    while (json_next(&root, &pos, &k, &v)) {
        if (m < JSON_MAX_MEMBERS && (!same_val(&o.keys[m], &k) || !same_val(&o.vals[m], &v)))
            return 0;
        m++;
    }
    if (o.n != (m < JSON_MAX_MEMBERS ? m : JSON_MAX_MEMBERS) || o.more != (m > JSON_MAX_MEMBERS))
        return 0;
    return obj_agrees(&root, &o);
}

struct prow {
    const char *in;
    int rc;
    enum json_type type;
};

static const struct prow prows[] = {
    {"{}", 0, JSON_OBJECT},        {" {\"a\":1} ", 0, JSON_OBJECT},
    {"[]", -1, JSON_ARRAY},        {" [{\"a\":1}] ", -1, JSON_ARRAY},
    {"\"{}\"", -1, JSON_STRING},   {"12", -1, JSON_NUMBER},
    {"true", -1, JSON_TRUE},       {"false", -1, JSON_FALSE},
    {"null", -1, JSON_NULL},       {"", -1, JSON_NONE},
    {"{", -1, JSON_NONE},          {"{\"a\":1} x", -1, JSON_NONE},
    {"{\"a\":1,}", -1, JSON_NONE}, {"{\"a\":\"\\q\"}", -1, JSON_NONE},
    {"[1] ]", -1, JSON_NONE},
};

static void test_parse(void)
{
    for (size_t r = 0; r < sizeof prows / sizeof prows[0]; r++) {
        size_t n = strlen(prows[r].in);
        char *p = dup_exact(prows[r].in, n);
        struct json_val root, v;
        struct json_obj o;
        o.n = 99;
        o.more = 1;
        int rc = json_parse(p, n, &root, &o);
        CHECKF(rc == prows[r].rc && root.type == prows[r].type, "row %zu: %d %d", r, rc, root.type);
        if (root.type != JSON_NONE)
            CHECKF(json_value(p, n, &v) == 0 && same_val(&root, &v), "row %zu: root span", r);
        if (rc)
            CHECKF(o.n == 0 && o.more == 0 && json_obj_get(&o, &root, "a", &v) == 0, "row %zu", r);
        free(p);
    }
    struct json_val root;
    struct json_obj o;
    CHECK(json_parse(NULL, 0, &root, &o) == -1 && root.type == JSON_NONE);

    /* the get table's documents, and every valid object among the vectors */
    for (size_t r = 0; r < sizeof grows / sizeof grows[0]; r++) {
        size_t n = strlen(grows[r].doc);
        char *p = dup_exact(grows[r].doc, n);
        CHECKF(parse_agrees(p, n), "get row %zu", r);
        free(p);
    }
    for (size_t r = 0; r < sizeof vrows / sizeof vrows[0]; r++) {
        char *p = dup_exact(vrows[r].in, vrows[r].len);
        struct json_val v;
        if (json_validate(p, vrows[r].len) == 0 && json_value(p, vrows[r].len, &v) == 0 &&
            v.type == JSON_OBJECT)
            CHECKF(parse_agrees(p, vrows[r].len), "vector row %zu", r);
        free(p);
    }

    /* The real client's order (type, data, ...) and the others, the answers by value. */
    static const char *const orders[] = {
        "{\"type\":\"offer\",\"data\":{\"type\":\"offer\",\"sdp\":\"v=0\\r\\n\"},\"targetPeerId\":"
        "\"ab\",\"networkName\":\"global\",\"fromPeerId\":\"cd\",\"timestamp\":1}",
        "{\"targetPeerId\":\"ab\",\"networkName\":\"global\",\"fromPeerId\":\"cd\",\"timestamp\":1,"
        "\"type\":\"offer\",\"data\":{\"type\":\"offer\",\"sdp\":\"v=0\\r\\n\"}}",
        "{\"data\":{\"type\":\"offer\",\"sdp\":\"v=0\\r\\n\"},\"t\\u0079pe\":\"offer\","
        "\"networkName\":\"global\",\"type\":\"x\",\"targetPeerId\":\"ab\"}",
    };
    for (size_t r = 0; r < 3; r++) {
        size_t n = strlen(orders[r]);
        char *p = dup_exact(orders[r], n);
        struct json_val v;
        CHECK(json_parse(p, n, &root, &o) == 0);
        CHECK(json_obj_get(&o, &root, "type", &v) && json_str_eq(&v, "offer", 5));
        CHECK(json_obj_get(&o, &root, "targetPeerId", &v) && json_str_eq(&v, "ab", 2));
        CHECK(json_obj_get(&o, &root, "networkName", &v) && json_str_eq(&v, "global", 6));
        CHECK(json_obj_get(&o, &root, "data", &v) && v.type == JSON_OBJECT && v.len == 32);
        CHECK(json_obj_get(&o, &root, "missing", &v) == 0);
        CHECKF(parse_agrees(p, n), "order %zu", r);
        free(p);
    }
}

/* Objects of 0..40 members (keys drawn with duplicates and escaped spellings, values of every
 * kind), so some keys are only found past the 32 recorded. */
static void test_parse_generated(void)
{
    char doc[8192];
    int bad = 0;
    for (int r = 0; r < 3000; r++) {
        size_t n = 0, members = rnd(41);
        doc[n++] = '{';
        for (size_t k = 0; k < members; k++) {
            if (k) doc[n++] = ',';
            gen_ws(doc, &n);
            if (rnd(4) == 0) {
                n += (size_t)snprintf(doc + n, 16, "\"k%zu\"", k);
            } else {
                const char *key = gen_keys[rnd(sizeof gen_keys / sizeof gen_keys[0])];
                memcpy(doc + n, key, strlen(key));
                n += strlen(key);
            }
            doc[n++] = ':';
            gen_value(doc, &n, n + 128, 1, 0);
        }
        doc[n++] = '}';
        char *p = dup_exact(doc, n);
        if (!parse_agrees(p, n) && bad++ < 5) fprintf(stderr, "generated: %.*s\n", (int)n, doc);
        free(p);
    }
    CHECKF(bad == 0, "%d generated objects disagree", bad);
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
    test_parse();
    test_parse_generated();
    test_diff_positions();
    test_diff_random();
    printf("scanner %s against the reference %s\n", json_scanner(), ref_json_scanner());
    return t_done();
}
