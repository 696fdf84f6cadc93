/* json.c - strict RFC 8259 validator, span getters and a fixed-buffer writer; no allocation.
 * json_validate is one iterative pass (explicit depth stack, no recursion) that also checks
 * escapes, \u surrogate pairing and raw UTF-8 (RFC 3629: no overlongs, no surrogates);
 * json_parse is the same pass recording the root object's members on the way.
 * Strings are scanned 16 bytes at a time (SSE2, NEON or 64-bit SWAR, chosen at compile time;
 * -DJSON_SCALAR / -DJSON_SWAR force the others): a block's mask marks the bytes that need a
 * closer look, and after each one the scan goes on in the same mask. Blocks never reach past
 * len. The getters trust a validated span: they only find where values end, staying in bounds
 * on any input but not re-checking it. The writer never writes past cap, does not
 * NUL-terminate and leaves U+2028/U+2029 and bytes >= 0x80 as they are. */
#include "json.h"

#include <stdio.h>
#include <string.h>

#if defined(JSON_SCALAR)
#define JSON_SCANNER "scalar"
#elif defined(JSON_SWAR)
#define JSON_SCANNER "swar"
#elif defined(__SSE2__)
#define JSON_SSE2 1
#define JSON_SCANNER "sse2"
#include <emmintrin.h>
#elif defined(__ARM_NEON) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define JSON_NEON 1
#define JSON_SCANNER "neon"
#include <arm_neon.h>
#else
#define JSON_SWAR 1
#define JSON_SCANNER "swar"
#endif

#define BAD SIZE_MAX

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

/* s[i], inside a string, is '\', a control byte or >= 0x80: check it and what it starts.
 * Returns the index after the escape or UTF-8 sequence, or BAD. */
static size_t str_special(const unsigned char *s, size_t len, size_t i)
{
    unsigned cp;
    if (s[i] == '\\') {
        if (len - i < 2) return BAD;
        switch (s[i + 1]) {
        case '"':
        case '\\':
        case '/':
        case 'b':
        case 'f':
        case 'n':
        case 'r':
        case 't':
            return i + 2;
        case 'u':
            return scan_u(s, len, i, &cp);
        default:
            return BAD;
        }
    }
    if (s[i] < 0x80) return BAD; /* control character, RFC 8259 s7 */
    return scan_utf8(s, len, i);
}

#if defined(JSON_SCALAR)
/* The reference scanner, byte at a time; the block scanners below must agree with it. */

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

/* A whole string, fully checked; i points at the opening quote. Returns the index after the
 * closing quote or BAD. */
static size_t scan_str(const unsigned char *s, size_t len, size_t i)
{
    i++;
    for (;;) {
        while (i < len && str_plain[s[i]])
            i++;
        if (i >= len) return BAD;
        if (s[i] == '"') return i + 1;
        i = str_special(s, len, i);
        if (i == BAD) return BAD;
    }
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

#else /* the block scanners */

/* Each mask_* function looks at p[0..BLOCK) and returns a mask with BPB bits per byte, byte k
 * at bit k * BPB, set exactly for the bytes it is after (no false positives: every marked byte
 * is acted on). mask_str: '"', '\', < 0x20, >= 0x80. mask_quote: '"'. mask_struct: '"' and the
 * four brackets ('[' | 0x20 == '{', ']' | 0x20 == '}'). */

#if defined(JSON_SSE2)
/* four 16-byte vectors per block, one 64-bit mask: a long string costs a quarter of the loop
 * turns of 16-byte blocks (the SDP of an offer runs ~50 bytes between escapes) */
#define BLOCK 64
#define BPB 1

static uint64_t str16(const unsigned char *p)
{
    __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
    __m128i q = _mm_cmpeq_epi8(v, _mm_set1_epi8('"'));
    __m128i b = _mm_cmpeq_epi8(v, _mm_set1_epi8('\\'));
    __m128i c = _mm_cmplt_epi8(v, _mm_set1_epi8(0x20)); /* signed: also 0x80..0xFF */
    return (unsigned)_mm_movemask_epi8(_mm_or_si128(_mm_or_si128(q, b), c));
}

static uint64_t quote16(const unsigned char *p)
{
    __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
    return (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8('"')));
}

static uint64_t struct16(const unsigned char *p)
{
    __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
    __m128i w = _mm_or_si128(v, _mm_set1_epi8(0x20));
    __m128i q = _mm_cmpeq_epi8(v, _mm_set1_epi8('"'));
    __m128i o = _mm_cmpeq_epi8(w, _mm_set1_epi8('{'));
    __m128i c = _mm_cmpeq_epi8(w, _mm_set1_epi8('}'));
    return (unsigned)_mm_movemask_epi8(_mm_or_si128(_mm_or_si128(q, o), c));
}

#define MASK64(f, p) ((f)(p) | (f)((p) + 16) << 16 | (f)((p) + 32) << 32 | (f)((p) + 48) << 48)
static uint64_t mask_str(const unsigned char *p)
{
    return MASK64(str16, p);
}

static uint64_t mask_quote(const unsigned char *p)
{
    return MASK64(quote16, p);
}

static uint64_t mask_struct(const unsigned char *p)
{
    return MASK64(struct16, p);
}

#elif defined(JSON_NEON)
#define BLOCK 16
#define BPB 4 /* NEON has no movemask: narrowing shift, one nibble per byte, one bit kept */

static uint64_t neon_mask(uint8x16_t m)
{
    uint8x8_t n = vshrn_n_u16(vreinterpretq_u16_u8(m), 4);
    return vget_lane_u64(vreinterpret_u64_u8(n), 0) & 0x1111111111111111u;
}

static uint64_t mask_str(const unsigned char *p)
{
    uint8x16_t v = vld1q_u8(p);
    uint8x16_t q = vceqq_u8(v, vdupq_n_u8('"'));
    uint8x16_t b = vceqq_u8(v, vdupq_n_u8('\\'));
    uint8x16_t c = vcltq_s8(vreinterpretq_s8_u8(v), vdupq_n_s8(0x20)); /* also 0x80..0xFF */
    return neon_mask(vorrq_u8(vorrq_u8(q, b), c));
}

static uint64_t mask_quote(const unsigned char *p)
{
    return neon_mask(vceqq_u8(vld1q_u8(p), vdupq_n_u8('"')));
}

static uint64_t mask_struct(const unsigned char *p)
{
    uint8x16_t v = vld1q_u8(p);
    uint8x16_t w = vorrq_u8(v, vdupq_n_u8(0x20));
    uint8x16_t q = vceqq_u8(v, vdupq_n_u8('"'));
    uint8x16_t o = vceqq_u8(w, vdupq_n_u8('{'));
    uint8x16_t c = vceqq_u8(w, vdupq_n_u8('}'));
    return neon_mask(vorrq_u8(vorrq_u8(q, o), c));
}

#else /* SWAR: two 64-bit words per block */
#define BLOCK 16
#define BPB 1
#define ONES 0x0101010101010101u
#define HIGH 0x8080808080808080u
#define LOW7 0x7F7F7F7F7F7F7F7Fu

/* The 8 bytes at p as a word with p[0] lowest. */
static uint64_t load_le64(const unsigned char *p)
{
    uint64_t w;
    memcpy(&w, p, sizeof w);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    w = (w >> 56) | (w >> 40 & 0xFF00u) | (w >> 24 & 0xFF0000u) | (w >> 8 & 0xFF000000u) |
        (w & 0xFF000000u) << 8 | (w & 0xFF0000u) << 24 | (w & 0xFF00u) << 40 | w << 56;
#endif
    return w;
}

/* 0x80 in each byte of t that is zero, 0 elsewhere; exact, since no add carries across bytes
 * (the usual (t - ONES) & ~t trick marks false positives above a zero byte). */
static uint64_t zero_bytes(uint64_t t)
{
    return ~(((t & LOW7) + LOW7) | t) & HIGH;
}

/* 0x80 per byte of x marked by mask_str. With t = b & 0x7F, (t ^ c) + 0x7F has its top bit
 * set iff t != c, and t + 0x60 iff t >= 0x20; no sum carries out of its byte. Bytes >= 0x80
 * are marked by their own top bit, so t stands for b in the rest. */
static uint64_t word_str(uint64_t x)
{
    uint64_t t = x & LOW7;
    uint64_t plain = ((t ^ '"' * ONES) + LOW7) & ((t ^ '\\' * ONES) + LOW7) & (t + 0x60 * ONES);
    return (~plain | x) & HIGH;
}

/* The same for mask_struct: '"', and '{' '}' after | 0x20; bytes >= 0x80 are never marked. */
static uint64_t word_struct(uint64_t x)
{
    uint64_t t = x & LOW7, u = t | 0x20 * ONES;
    uint64_t other =
        ((t ^ '"' * ONES) + LOW7) & ((u ^ '{' * ONES) + LOW7) & ((u ^ '}' * ONES) + LOW7);
    return ~(other | x) & HIGH;
}

/* Two words' 0x80-per-byte marks as 16 bits: (m >> 7) has bit 8k for byte k, and the multiply
 * moves each to bit 56 + k without collisions or carries. */
static uint64_t gather(uint64_t m0, uint64_t m1)
{
    if (!(m0 | m1)) return 0;
    return ((m0 >> 7) * 0x0102040810204080u) >> 56 | (((m1 >> 7) * 0x0102040810204080u) >> 56) << 8;
}

static uint64_t mask_str(const unsigned char *p)
{
    return gather(word_str(load_le64(p)), word_str(load_le64(p + 8)));
}

static uint64_t mask_quote(const unsigned char *p)
{
    return gather(zero_bytes(load_le64(p) ^ ('"' * ONES)),
                  zero_bytes(load_le64(p + 8) ^ ('"' * ONES)));
}

static uint64_t mask_struct(const unsigned char *p)
{
    return gather(word_struct(load_le64(p)), word_struct(load_le64(p + 8)));
}
#endif

/* The byte index of the lowest mark in m (m != 0). */
static unsigned first_mark(uint64_t m)
{
#if defined(__GNUC__)
    return (unsigned)__builtin_ctzll(m) / BPB;
#else
    unsigned k = 0;
    while (!(m & 1)) {
        m >>= 1;
        k++;
    }
    return k / BPB;
#endif
}

/* Where to read the block s[b..b+16) from (b < len): in place while 16 bytes remain; else the
 * buffer's last 16 bytes, with *shift set to drop the marks of the bytes before b; or, in a
 * buffer under 16 bytes, a copy padded with spaces (no mask marks a space). Never reads outside
 * s[0..len), so exact-size buffers are safe. */
static const unsigned char *block_at(const unsigned char *s, size_t len, size_t b,
                                     unsigned char t[BLOCK], unsigned *shift)
{
    size_t r = len - b;
    *shift = 0;
    if (r >= BLOCK) return s + b;
    if (len >= BLOCK) {
        *shift = (unsigned)(BLOCK - r) * BPB;
        return s + len - BLOCK;
    }
    memset(t, ' ', BLOCK);
    memcpy(t, s + b, r);
    return t;
}

/* A whole string, fully checked; i points at the opening quote. Returns the index after the
 * closing quote or BAD. Each marked byte is handled where it is (an escape, a UTF-8 sequence)
 * and the scan goes on in the same block's mask past what it consumed. */
static size_t scan_str(const unsigned char *s, size_t len, size_t i)
{
    unsigned char t[BLOCK];
    unsigned sh;
    i++;
    while (i < len) {
        size_t b = i;
        const unsigned char *p = block_at(s, len, b, t, &sh);
        uint64_t m = mask_str(p) >> sh;
        for (;;) {
            if (!m) {
                i = b + BLOCK; /* past len in the last block: unterminated */
                break;
            }
            i = b + first_mark(m);
            if (s[i] == '"') return i + 1;
            /* the escapes of an SDP (\r\n every line), checked here without a call */
            unsigned char e = i + 1 < len && s[i] == '\\' ? s[i + 1] : 0;
            if (e == 'n' || e == 'r' || e == '"' || e == '\\' || e == 't' || e == '/') {
                i += 2;
            } else {
                i = str_special(s, len, i);
                if (i == BAD) return BAD;
            }
            if (i - b >= BLOCK) break;
            m &= ~(uint64_t)0 << ((i - b) * BPB);
        }
    }
    return BAD;
}

/* The end of a string whose opening quote is at s[i], trusting its escapes: a quote closes it
 * when an even number of backslashes precede it. Most strings (keys, ids) end in their first
 * block; past it, libc's memchr, which is wider than 16 bytes where it can be, goes faster
 * through a long `data` than blocks do (bench/json_bench.c). */
static size_t skip_str(const unsigned char *s, size_t len, size_t i)
{
    unsigned char t[BLOCK];
    unsigned sh;
    size_t start = ++i;
    if (i < len) {
        const unsigned char *p = block_at(s, len, i, t, &sh);
        uint64_t m = mask_quote(p) >> sh;
        while (m) {
            size_t j = i + first_mark(m), k = j;
            while (k > start && s[k - 1] == '\\')
                k--;
            if (((j - k) & 1) == 0) return j + 1;
            m &= m - 1;
        }
        i += BLOCK;
    }
    while (i < len) {
        const unsigned char *q = memchr(s + i, '"', len - i);
        if (!q) return BAD;
        size_t j = (size_t)(q - s), k = j;
        while (k > start && s[k - 1] == '\\')
            k--;
        if (((j - k) & 1) == 0) return j + 1;
        i = j + 1;
    }
    return BAD;
}

/* The end of the array or object opening at s[i], counting brackets outside strings. */
static size_t skip_container(const unsigned char *s, size_t len, size_t i)
{
    unsigned char t[BLOCK];
    unsigned sh;
    size_t d = 0;
    while (i < len) {
        size_t b = i;
        const unsigned char *p = block_at(s, len, b, t, &sh);
        uint64_t m = mask_struct(p) >> sh;
        for (;;) {
            if (!m) {
                i = b + BLOCK;
                break;
            }
            size_t j = b + first_mark(m);
            unsigned char c = s[j];
            if (c == '"') {
                i = skip_str(s, len, j);
                if (i == BAD) return BAD;
                if (i - b >= BLOCK) break;
                m &= ~(uint64_t)0 << ((i - b) * BPB);
                continue;
            }
            if (c == '{' || c == '[') {
                d++;
            } else if (--d == 0) {
                return j + 1;
            }
            m &= m - 1;
        }
    }
    return BAD;
}
#endif

const char *json_scanner(void)
{
    return JSON_SCANNER;
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

static enum json_type type_of(unsigned char c)
{
    switch (c) {
    case '{':
        return JSON_OBJECT;
    case '[':
        return JSON_ARRAY;
    case '"':
        return JSON_STRING;
    case 't':
        return JSON_TRUE;
    case 'f':
        return JSON_FALSE;
    case 'n':
        return JSON_NULL;
    default:
        return JSON_NUMBER;
    }
}

static void record(struct json_obj *o, const unsigned char *s, size_t k0, size_t k1, size_t v0,
                   size_t v1)
{
    if (o->n == JSON_MAX_MEMBERS) {
        o->more = 1;
        return;
    }
    o->keys[o->n] = (struct json_val){JSON_STRING, (const char *)s + k0, k1 - k0};
    o->vals[o->n] = (struct json_val){type_of(s[v0]), (const char *)s + v0, v1 - v0};
    o->n++;
}

/* The validating pass behind json_validate (root and o NULL) and json_parse. Every arrival at
 * `after` is the end of one value at depth d: at depth 0 the root, at depth 1 in a root object
 * a member, whose key and start were noted on the way down. */
static int parse(const unsigned char *s, size_t len, struct json_val *root, struct json_obj *o)
{
    unsigned char stack[JSON_MAX_DEPTH]; /* '{' or '[' per open container */
    size_t d = 0, i = 0, r0 = 0, k0 = 0, k1 = 0, v0 = 0;

value:
    i = skip_ws(s, len, i);
    if (i >= len) return -1;
    if (d == 0)
        r0 = i;
    else if (d == 1)
        v0 = i;
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
    if (d == 1) k0 = i;
    i = scan_str(s, len, i);
    if (i == BAD) return -1;
    if (d == 1) k1 = i;
    i = skip_ws(s, len, i);
    if (i >= len || s[i] != ':') return -1;
    i++;
    goto value;

after:
    if (d == 1) {
        if (o && stack[0] == '{') record(o, s, k0, k1, v0, i);
    } else if (d == 0 && root) {
        root->type = type_of(s[r0]);
        root->p = (const char *)s + r0;
        root->len = i - r0;
    }
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

int json_validate(const char *s, size_t len)
{
    if (!s) return -1;
    return parse((const unsigned char *)s, len, NULL, NULL);
}

int json_parse(const char *s, size_t len, struct json_val *root, struct json_obj *o)
{
    if (!root || !o) return -1;
    o->n = 0;
    o->more = 0;
    if (s && parse((const unsigned char *)s, len, root, o) == 0)
        return root->type == JSON_OBJECT ? 0 : -1;
    root->type = JSON_NONE;
    root->p = NULL;
    root->len = 0;
    o->n = 0;
    o->more = 0;
    return -1;
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

/* 1 if key view k decodes to key[0..n). Decoding never lengthens (\X is 2 bytes for 1, \uXXXX
 * 6 for at most 3, a pair 12 for 4), so a raw key shorter than n cannot match, and one of
 * exactly n bytes matches only verbatim, without escapes. */
static int key_is(const struct json_val *k, const char *key, size_t n)
{
    size_t raw = k->len - 2;
    if (raw < n) return 0;
    if (raw == n) return memcmp(k->p + 1, key, n) == 0 && !memchr(k->p + 1, '\\', n);
    return json_str_eq(k, key, n);
}

int json_obj_get(const struct json_obj *o, const struct json_val *root, const char *key,
                 struct json_val *out)
{
    if (!o || !key || !out) return 0;
    size_t n = strlen(key);
    for (size_t k = 0; k < o->n; k++) {
        if (key_is(&o->keys[k], key, n)) {
            *out = o->vals[k];
            return 1;
        }
    }
    return o->more ? json_get(root, key, out) : 0;
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

/* ms as seconds: up to three decimals, trailing zeros trimmed ("12.3", "0.037", "5"). Integer
 * arithmetic only: no floating-point formatting is linked in. */
void json_write_seconds(struct json_writer *w, uint64_t ms)
{
    char b[32];
    int n = 0;
    unsigned frac = (unsigned)(ms % 1000);
    json_write_u64(w, ms / 1000);
    if (!frac) return;
    b[n++] = '.';
    for (unsigned d = 100; d && frac; d /= 10) {
        b[n++] = (char)('0' + frac / d);
        frac %= d;
    }
    json_write_raw(w, b, (size_t)n);
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
