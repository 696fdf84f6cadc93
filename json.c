/* json.c - strict RFC 8259 validator, span getters and a fixed-buffer writer; no allocation.
 * json_validate is one iterative pass (explicit depth stack, no recursion) that also checks
 * escapes, \u surrogate pairing and raw UTF-8 (RFC 3629: no overlongs, no surrogates).
 * The getters trust a validated span: they only find where values end, staying in bounds on any
 * input but not re-checking it. The writer never writes past cap, does not NUL-terminate and
 * leaves U+2028/U+2029 and bytes >= 0x80 as they are. */
#include "json.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define BAD SIZE_MAX

/* 1 for bytes a string may hold without a closer look: printable ASCII except '"' and '\'. */
/* clang-format off */
static const unsigned char str_plain[256] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
};
/* clang-format on */

static size_t skip_ws(const unsigned char *s, size_t len, size_t i)
{
    while (i < len && (s[i] == ' ' || s[i] == '\n' || s[i] == '\r' || s[i] == '\t'))
        i++;
    return i;
}

static int is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

/* Four hex digits at s (the caller checked they are in bounds) into *out; -1 if not hex. */
static int hex4(const unsigned char *s, unsigned *out)
{
    unsigned v = 0;
    for (int k = 0; k < 4; k++) {
        unsigned c = s[k];
        if (c >= '0' && c <= '9')
            c -= '0';
        else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
            c = (c | 0x20) - 'a' + 10;
        else
            return -1;
        v = v << 4 | c;
    }
    *out = v;
    return 0;
}

/* A \uXXXX escape at s[i] (i points at the backslash), joined with a following low surrogate
 * escape when it is a high one. Returns the index after it and the code point in *cp, or BAD for
 * bad hex, a lone low surrogate, or a high surrogate not followed by a low one (RFC 8259 s8.2
 * allows them, but they cannot become UTF-8, so we refuse them). */
static size_t scan_u(const unsigned char *s, size_t len, size_t i, unsigned *cp)
{
    unsigned hi, lo;
    if (len - i < 6 || hex4(s + i + 2, &hi) < 0) return BAD;
    i += 6;
    if (hi >= 0xDC00 && hi <= 0xDFFF) return BAD;
    if (hi >= 0xD800 && hi <= 0xDBFF) {
        if (len - i < 6 || s[i] != '\\' || s[i + 1] != 'u' || hex4(s + i + 2, &lo) < 0 ||
            lo < 0xDC00 || lo > 0xDFFF)
            return BAD;
        hi = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
        i += 6;
    }
    *cp = hi;
    return i;
}

/* One multi-byte UTF-8 sequence starting at s[i] (s[i] >= 0x80); the second-byte ranges are
 * those of RFC 3629 s4, which rule out overlongs, surrogates and anything above U+10FFFF. */
static size_t scan_utf8(const unsigned char *s, size_t len, size_t i)
{
    unsigned c = s[i], lo = 0x80, hi = 0xBF;
    size_t n;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 1;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 2;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 3;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    } else {
        return BAD;
    }
    if (len - i <= n || s[i + 1] < lo || s[i + 1] > hi) return BAD;
    for (size_t k = 2; k <= n; k++)
        if ((s[i + k] & 0xC0) != 0x80) return BAD;
    return i + n + 1;
}

/* A whole string, fully checked; i points at the opening quote. Returns the index after the
 * closing quote or BAD. */
static size_t scan_str(const unsigned char *s, size_t len, size_t i)
{
    unsigned cp;
    i++;
    for (;;) {
        while (i < len && str_plain[s[i]])
            i++;
        if (i >= len) return BAD;
        unsigned c = s[i];
        if (c == '"') return i + 1;
        if (c == '\\') {
            if (i + 1 >= len) return BAD;
            switch (s[i + 1]) {
            case '"':
            case '\\':
            case '/':
            case 'b':
            case 'f':
            case 'n':
            case 'r':
            case 't':
                i += 2;
                break;
            case 'u':
                i = scan_u(s, len, i, &cp);
                if (i == BAD) return BAD;
                break;
            default:
                return BAD;
            }
        } else if (c < 0x80) {
            return BAD; /* control character, RFC 8259 s7 */
        } else {
            i = scan_utf8(s, len, i);
            if (i == BAD) return BAD;
        }
    }
}

/* RFC 8259 s6: -? (0 | [1-9][0-9]*) (.[0-9]+)? ([eE][+-]?[0-9]+)? */
static size_t scan_num(const unsigned char *s, size_t len, size_t i)
{
    if (i < len && s[i] == '-') i++;
    if (i >= len) return BAD;
    if (s[i] == '0') {
        i++;
    } else if (s[i] >= '1' && s[i] <= '9') {
        while (i < len && is_digit(s[i]))
            i++;
    } else {
        return BAD;
    }
    if (i < len && s[i] == '.') {
        if (++i >= len || !is_digit(s[i])) return BAD;
        while (i < len && is_digit(s[i]))
            i++;
    }
    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        if (++i < len && (s[i] == '+' || s[i] == '-')) i++;
        if (i >= len || !is_digit(s[i])) return BAD;
        while (i < len && is_digit(s[i]))
            i++;
    }
    return i;
}

static size_t scan_lit(const unsigned char *s, size_t len, size_t i, const char *lit, size_t n)
{
    if (len - i < n || memcmp(s + i, lit, n) != 0) return BAD;
    return i + n;
}

int json_validate(const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str;
    unsigned char stack[JSON_MAX_DEPTH]; /* '{' or '[' per open container */
    size_t d = 0, i = 0;
    if (!s) return -1;

value:
    i = skip_ws(s, len, i);
    if (i >= len) return -1;
    switch (s[i]) {
    case '{':
        if (d == JSON_MAX_DEPTH) return -1;
        stack[d++] = '{';
        i = skip_ws(s, len, i + 1);
        if (i < len && s[i] == '}') {
            d--;
            i++;
            goto after;
        }
        goto key;
    case '[':
        if (d == JSON_MAX_DEPTH) return -1;
        stack[d++] = '[';
        i = skip_ws(s, len, i + 1);
        if (i < len && s[i] == ']') {
            d--;
            i++;
            goto after;
        }
        goto value;
    case '"':
        i = scan_str(s, len, i);
        break;
    case 't':
        i = scan_lit(s, len, i, "true", 4);
        break;
    case 'f':
        i = scan_lit(s, len, i, "false", 5);
        break;
    case 'n':
        i = scan_lit(s, len, i, "null", 4);
        break;
    default:
        i = scan_num(s, len, i);
        break;
    }
    if (i == BAD) return -1;
    goto after;

key:
    if (i >= len || s[i] != '"') return -1;
    i = scan_str(s, len, i);
    if (i == BAD) return -1;
    i = skip_ws(s, len, i);
    if (i >= len || s[i] != ':') return -1;
    i++;
    goto value;

after:
    i = skip_ws(s, len, i);
    if (d == 0) return i == len ? 0 : -1;
    if (i >= len) return -1;
    if (s[i] == ',') {
        i = skip_ws(s, len, i + 1);
        if (stack[d - 1] == '{') goto key;
        goto value;
    }
    if (s[i] != (stack[d - 1] == '{' ? '}' : ']')) return -1;
    d--;
    i++;
    goto after;
}

/* The end of a string whose opening quote is at s[i], trusting its escapes: a quote closes it
 * when an even number of backslashes precede it. memchr keeps long strings (`data`) cheap. */
static size_t skip_str(const unsigned char *s, size_t len, size_t i)
{
    i++;
    while (i < len) {
        const unsigned char *q = memchr(s + i, '"', len - i);
        if (!q) return BAD;
        size_t j = (size_t)(q - s), k = j;
        while (k > i && s[k - 1] == '\\')
            k--;
        if (((j - k) & 1) == 0) return j + 1;
        i = j + 1;
    }
    return BAD;
}

/* The end of the array or object opening at s[i], counting brackets outside strings. */
static size_t skip_container(const unsigned char *s, size_t len, size_t i)
{
    size_t d = 0;
    while (i < len) {
        unsigned char c = s[i];
        if (c == '"') {
            i = skip_str(s, len, i);
            if (i == BAD) return BAD;
            continue;
        }
        if (c == '{' || c == '[') {
            d++;
        } else if (c == '}' || c == ']') {
            if (--d == 0) return i + 1;
        }
        i++;
    }
    return BAD;
}

/* The value starting exactly at s[i] into *out; returns the index after it or BAD. */
static size_t value_at(const unsigned char *s, size_t len, size_t i, struct json_val *out)
{
    enum json_type t;
    size_t e;
    if (i >= len) return BAD;
    switch (s[i]) {
    case '{':
        t = JSON_OBJECT;
        e = skip_container(s, len, i);
        break;
    case '[':
        t = JSON_ARRAY;
        e = skip_container(s, len, i);
        break;
    case '"':
        t = JSON_STRING;
        e = skip_str(s, len, i);
        break;
    case 't':
        t = JSON_TRUE;
        e = scan_lit(s, len, i, "true", 4);
        break;
    case 'f':
        t = JSON_FALSE;
        e = scan_lit(s, len, i, "false", 5);
        break;
    case 'n':
        t = JSON_NULL;
        e = scan_lit(s, len, i, "null", 4);
        break;
    default:
        t = JSON_NUMBER;
        e = scan_num(s, len, i);
        break;
    }
    if (e == BAD) return BAD;
    out->type = t;
    out->p = (const char *)s + i;
    out->len = e - i;
    return e;
}

int json_value(const char *s, size_t len, struct json_val *out)
{
    const unsigned char *u = (const unsigned char *)s;
    if (!s || !out) return -1;
    return value_at(u, len, skip_ws(u, len, 0), out) == BAD ? -1 : 0;
}

int json_next(const struct json_val *obj, size_t *pos, struct json_val *key, struct json_val *val)
{
    if (!obj || !pos || obj->type != JSON_OBJECT || !obj->p || obj->len < 2 || obj->p[0] != '{' ||
        obj->p[obj->len - 1] != '}')
        return 0;
    const unsigned char *s = (const unsigned char *)obj->p;
    size_t len = obj->len - 1; /* stop before the closing brace */
    size_t i = *pos ? *pos : 1, e;
    if (i >= len) return 0;
    i = skip_ws(s, len, i);
    if (i < len && s[i] == ',') i = skip_ws(s, len, i + 1);
    if (i >= len || s[i] != '"') return 0;
    e = skip_str(s, len, i);
    if (e == BAD) return 0;
    key->type = JSON_STRING;
    key->p = (const char *)s + i;
    key->len = e - i;
    i = skip_ws(s, len, e);
    if (i >= len || s[i] != ':') return 0;
    e = value_at(s, len, skip_ws(s, len, i + 1), val);
    if (e == BAD) return 0;
    *pos = e;
    return 1;
}

int json_get(const struct json_val *obj, const char *key, struct json_val *out)
{
    struct json_val k, v;
    size_t pos = 0, n;
    if (!key || !out) return 0;
    n = strlen(key);
    while (json_next(obj, &pos, &k, &v)) {
        if (json_str_eq(&k, key, n)) {
            *out = v;
            return 1;
        }
    }
    return 0;
}

/* The bytes between a string view's quotes, or -1 if v is not a string view. */
static int str_inner(const struct json_val *v, const unsigned char **s, size_t *n)
{
    if (!v || v->type != JSON_STRING || !v->p || v->len < 2 || v->p[0] != '"' ||
        v->p[v->len - 1] != '"')
        return -1;
    *s = (const unsigned char *)v->p + 1;
    *n = v->len - 2;
    return 0;
}

/* Decode the escape at s[*i] (a backslash) into u as UTF-8; returns its byte count and moves *i
 * past it, or -1 if it is malformed. */
static int unescape_one(const unsigned char *s, size_t n, size_t *i, unsigned char u[4])
{
    unsigned cp;
    size_t j = *i;
    if (n - j < 2) return -1;
    switch (s[j + 1]) {
    case '"':
    case '\\':
    case '/':
        u[0] = s[j + 1];
        break;
    case 'b':
        u[0] = '\b';
        break;
    case 'f':
        u[0] = '\f';
        break;
    case 'n':
        u[0] = '\n';
        break;
    case 'r':
        u[0] = '\r';
        break;
    case 't':
        u[0] = '\t';
        break;
    case 'u':
        j = scan_u(s, n, j, &cp);
        if (j == BAD) return -1;
        *i = j;
        if (cp < 0x80) {
            u[0] = (unsigned char)cp;
            return 1;
        }
        if (cp < 0x800) {
            u[0] = (unsigned char)(0xC0 | cp >> 6);
            u[1] = (unsigned char)(0x80 | (cp & 0x3F));
            return 2;
        }
        if (cp < 0x10000) {
            u[0] = (unsigned char)(0xE0 | cp >> 12);
            u[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
            u[2] = (unsigned char)(0x80 | (cp & 0x3F));
            return 3;
        }
        u[0] = (unsigned char)(0xF0 | cp >> 18);
        u[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3F));
        u[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
        u[3] = (unsigned char)(0x80 | (cp & 0x3F));
        return 4;
    default:
        return -1;
    }
    *i = j + 2;
    return 1;
}

long json_str_unescape(const struct json_val *v, char *out, size_t cap)
{
    const unsigned char *s;
    unsigned char u[4];
    size_t n, i = 0, o = 0;
    if (str_inner(v, &s, &n) < 0 || !out || cap == 0) return -1;
    /* Invariant: o < cap, so the NUL always has room. */
    while (i < n) {
        const unsigned char *bs = memchr(s + i, '\\', n - i);
        size_t run = bs ? (size_t)(bs - (s + i)) : n - i;
        if (run >= cap - o) return -1;
        memcpy(out + o, s + i, run);
        o += run;
        i += run;
        if (i == n) break;
        int k = unescape_one(s, n, &i, u);
        if (k < 0 || (size_t)k >= cap - o) return -1;
        memcpy(out + o, u, (size_t)k);
        o += (size_t)k;
    }
    out[o] = '\0';
    return (long)o;
}

int json_str_eq(const struct json_val *v, const char *str, size_t n)
{
    const unsigned char *s, *want = (const unsigned char *)str;
    unsigned char u[4];
    size_t m, i = 0, j = 0;
    if (str_inner(v, &s, &m) < 0 || (!str && n)) return 0;
    while (i < m) {
        if (s[i] != '\\') {
            if (j >= n || s[i] != want[j]) return 0;
            i++;
            j++;
            continue;
        }
        int k = unescape_one(s, m, &i, u);
        if (k < 0 || n - j < (size_t)k || memcmp(u, want + j, (size_t)k) != 0) return 0;
        j += (size_t)k;
    }
    return j == n;
}

void json_writer_init(struct json_writer *w, char *buf, size_t cap)
{
    w->p = buf;
    w->len = 0;
    w->cap = buf ? cap : 0;
    w->overflow = 0;
}

void json_write_raw(struct json_writer *w, const char *s, size_t n)
{
    if (w->overflow || n == 0) return;
    if (n > w->cap - w->len) {
        w->overflow = 1;
        return;
    }
    memcpy(w->p + w->len, s, n);
    w->len += n;
}

/* Quoted and escaped; on overflow len goes back to where it was, so no half string remains. */
void json_write_str(struct json_writer *w, const char *str, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *s = (const unsigned char *)str;
    size_t start = w->len, i = 0;
    char esc[6] = {'\\', 'u', '0', '0', 0, 0};
    if (w->overflow) return;
    json_write_raw(w, "\"", 1);
    while (i < n) {
        size_t j = i;
        while (j < n && s[j] >= 0x20 && s[j] != '"' && s[j] != '\\')
            j++;
        json_write_raw(w, str + i, j - i);
        if (j == n) break;
        unsigned char c = s[j];
        switch (c) {
        case '"':
            json_write_raw(w, "\\\"", 2);
            break;
        case '\\':
            json_write_raw(w, "\\\\", 2);
            break;
        case '\b':
            json_write_raw(w, "\\b", 2);
            break;
        case '\f':
            json_write_raw(w, "\\f", 2);
            break;
        case '\n':
            json_write_raw(w, "\\n", 2);
            break;
        case '\r':
            json_write_raw(w, "\\r", 2);
            break;
        case '\t':
            json_write_raw(w, "\\t", 2);
            break;
        default:
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            json_write_raw(w, esc, 6);
            break;
        }
        i = j + 1;
    }
    json_write_raw(w, "\"", 1);
    if (w->overflow) w->len = start;
}

void json_write_u64(struct json_writer *w, uint64_t v)
{
    char b[20];
    size_t i = sizeof b;
    do {
        b[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    json_write_raw(w, b + i, sizeof b - i);
}

void json_write_i64(struct json_writer *w, int64_t v)
{
    char b[21];
    size_t i = sizeof b;
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    do {
        b[--i] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0) b[--i] = '-';
    json_write_raw(w, b + i, sizeof b - i);
}

/* Three decimals with trailing zeros trimmed; %.17g past 1e15, where %.3f would print hundreds
 * of digits. Both are valid JSON numbers; non-finite values are written as 0. */
void json_write_double(struct json_writer *w, double v)
{
    char b[64];
    int n;
    if (!isfinite(v)) v = 0;
    if (v < 1e15 && v > -1e15) {
        n = snprintf(b, sizeof b, "%.3f", v);
        while (b[n - 1] == '0')
            n--;
        if (b[n - 1] == '.') n--;
        if (n == 2 && b[0] == '-' && b[1] == '0') {
            b[0] = '0';
            n = 1;
        }
    } else {
        n = snprintf(b, sizeof b, "%.17g", v);
    }
    if (n > 0 && (size_t)n < sizeof b) json_write_raw(w, b, (size_t)n);
}

void json_write_bool(struct json_writer *w, int v)
{
    if (v)
        json_write_raw(w, "true", 4);
    else
        json_write_raw(w, "false", 5);
}

void json_write_key(struct json_writer *w, const char *key)
{
    size_t start = w->len;
    if (w->overflow) return;
    json_write_str(w, key, strlen(key));
    json_write_raw(w, ":", 1);
    if (w->overflow) w->len = start;
}
