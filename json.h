/* json.c - a tiny strict JSON reader and writer, no allocation.
 * Reader: json_validate checks a whole document (RFC 8259, depth and size capped); the getters
 * then look keys up in an object span and hand back views (pointer, length) into the caller's
 * buffer, so a value such as `data` can be copied through verbatim. Strings are unescaped
 * (\uXXXX and surrogate pairs to UTF-8) only on request, into a caller-owned buffer.
 * json_parse validates and records the root object's members in the same pass, so looking
 * several keys up costs no rescan whatever their order.
 * Writer: appends to a caller-owned fixed buffer, escaping strings; overflow sets a flag. */
#ifndef JSON_H
#define JSON_H
#include <stddef.h>
#include <stdint.h>

#define JSON_MAX_DEPTH 32
#define JSON_MAX_MEMBERS 32 /* root-object members json_parse records */

enum json_type {
    JSON_NONE = 0, /* not found */
    JSON_NULL,
    JSON_FALSE,
    JSON_TRUE,
    JSON_NUMBER,
    JSON_STRING,
    JSON_ARRAY,
    JSON_OBJECT,
};

/* A view of one value inside the caller's buffer. For a string, p/len span the quotes too
 * (the raw JSON text); use json_str_* to read its contents. */
struct json_val {
    enum json_type type;
    const char *p;
    size_t len;
};

/* 0 if s[0..len) is exactly one valid JSON value with optional surrounding whitespace, with
 * strings holding valid UTF-8, nesting at most JSON_MAX_DEPTH; -1 otherwise. */
int json_validate(const char *s, size_t len);

/* The members of a root object, in document order: keys[k] (a JSON_STRING view, quotes
 * included) and vals[k] are views into the parsed buffer, as json_next would give them.
 * About 1.5 KB; the caller owns it (a local is fine). */
struct json_obj {
    size_t n;
    struct json_val keys[JSON_MAX_MEMBERS], vals[JSON_MAX_MEMBERS];
    int more; /* more members than kept */
};

/* Validate s[0..len) exactly like json_validate and, in the same pass, fill *root with the
 * document's value (as json_value would) and *o with its members when it is an object (the
 * first JSON_MAX_MEMBERS; `more` set if there were more). Returns 0 for a valid object; -1
 * otherwise, with root->type JSON_NONE if s is not valid JSON, or the type of the valid
 * non-object value (o->n is then 0). Views point into s, which the caller keeps. */
int json_parse(const char *s, size_t len, struct json_val *root, struct json_obj *o);

/* json_get(root, key, out) answered from o, as json_parse filled it for root: 1 and *out if
 * found, else 0, exactly as json_get (the first occurrence wins, keys compared after
 * unescaping), without a scan; when o->more and the key is not among the recorded members, it
 * falls back to json_get on root. */
int json_obj_get(const struct json_obj *o, const struct json_val *root, const char *key,
                 struct json_val *out);

/* The string scanner compiled in: "sse2", "neon", "swar" or "scalar" (-DJSON_SCALAR,
 * -DJSON_SWAR force the last two). All give the same results; a static string. */
const char *json_scanner(void);

/* Parse the value at the start of s (leading whitespace skipped) without validating beyond what
 * is needed to find its end. On success fills *out and returns 0; -1 on malformed input.
 * Meant for spans that json_validate already accepted. */
int json_value(const char *s, size_t len, struct json_val *out);

/* Look key up among the members of the object `obj` (a validated JSON_OBJECT span). Keys are
 * compared after unescaping. Returns 1 and fills *out if found (the first occurrence wins), 0
 * if absent or obj is not an object. */
int json_get(const struct json_val *obj, const char *key, struct json_val *out);

/* Iterate an object's members: start with *pos = 0; each call fills *key (a JSON_STRING view)
 * and *val and returns 1, or returns 0 at the end. */
int json_next(const struct json_val *obj, size_t *pos, struct json_val *key, struct json_val *val);

/* Unescape string view v into out (cap bytes, NUL-terminated when it fits). Returns the decoded
 * length, or -1 if v is not a string or the result plus NUL does not fit in cap. */
long json_str_unescape(const struct json_val *v, char *out, size_t cap);

/* 1 if string view v decodes to exactly s[0..n), else 0. No buffer needed. */
int json_str_eq(const struct json_val *v, const char *s, size_t n);

/* The writer. Appends to p[0..cap); once something does not fit, `overflow` is set and later
 * calls do nothing. The caller owns p. */
struct json_writer {
    char *p;
    size_t len;
    size_t cap;
    int overflow;
};

void json_writer_init(struct json_writer *w, char *buf, size_t cap);
void json_write_raw(struct json_writer *w, const char *s, size_t n); /* verbatim */
/* append a string literal verbatim */
#define JSON_LIT(w, s) json_write_raw((w), s, sizeof s - 1)
void json_write_str(struct json_writer *w, const char *s, size_t n); /* quoted, escaped */
void json_write_u64(struct json_writer *w, uint64_t v);
void json_write_i64(struct json_writer *w, int64_t v);
void json_write_seconds(struct json_writer *w, uint64_t ms); /* ms as seconds: "12.345" */
void json_write_bool(struct json_writer *w, int v);
/* `"key":` with key escaped; a comma is NOT added: the caller writes separators with raw. */
void json_write_key(struct json_writer *w, const char *key);

#endif
