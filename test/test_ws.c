/* test_ws.c - unit tests for ws.c: SHA-1, base64 and the handshake key from their RFCs, frame
 * headers fed whole and as every prefix (early errors must appear at the exact byte), byte
 * streams driven through a small reader at whole, byte-by-byte and random splits, UTF-8 and
 * close-payload rules. Every input sits in a malloc'd buffer of its exact size for ASan. */
#include "t.h"
#include "ws.h"

#include <stdint.h>
#include <stdlib.h>

#define S(lit) lit, sizeof(lit) - 1
#define BIG (UINT64_MAX >> 1)

static uint8_t *dup_exact(const void *p, size_t n)
{
    uint8_t *b = malloc(n ? n : 1);
    if (!b) abort();
    if (n) memcpy(b, p, n);
    return b;
}

static uint64_t rng_s = 0x2545F4914F6CDD1Dull;

static uint32_t rng(void)
{
    rng_s ^= rng_s << 13;
    rng_s ^= rng_s >> 7;
    rng_s ^= rng_s << 17;
    return (uint32_t)(rng_s >> 32);
}

static uint8_t pat(size_t i)
{
    return (uint8_t)(i * 7 + 3);
}

static void to_hex(const uint8_t *d, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", d[i]);
}

/* ---- SHA-1 ---------------------------------------------------------------------------------- */

static const struct {
    const char *unit;
    size_t repeat;
    const char *hex;
} sha1_cases[] = {
    /* RFC 3174 7.3 TEST1..TEST4 */
    {"abc", 1, "a9993e364706816aba3e25717850c26c9cd0d89d"},
    {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 1,
     "84983e441c3bd26ebaae4aa1f95129e5e54670f1"},
    {"a", 1000000, "34aa973cd4c4daa4f61eeb2bdbad27316534016f"},
    {"0123456701234567012345670123456701234567012345670123456701234567", 10,
     "dea356a2cddd90c7a7ecedc5ebb563934f460452"},
    /* padding boundaries (55/56 bytes: length fits / does not fit in the last block) */
    {"", 1, "da39a3ee5e6b4b0d3255bfef95601890afd80709"},
    {"x", 55, "cef734ba81a024479e09eb5a75b6ddae62e6abf1"},
    {"x", 56, "901305367c259952f4e7af8323f480d59f81335b"},
    {"x", 57, "025ecbd5d70f8fb3c5457cd96bab13fda305dc59"},
    {"x", 63, "0ddc4e0cccd9a12850deb5abb0853a4425559fec"},
    {"x", 64, "bb2fa3ee7afb9f54c6dfb5d021f14b1ffe40c163"},
    {"x", 65, "78c741ddc482e4cdf8c474a0876347a0905b6233"},
    {"x", 80, "9a163175721df0c0bcb42cacab1f8b66ae955dcf"},
    {"x", 119, "4300320394f7ee239bcdce7d3b8bcee173a0cd5c"},
    {"x", 120, "ceb2821639c4b6dcb10bce0e522ca2e608ce056d"},
};

static void test_sha1(void)
{
    for (size_t c = 0; c < sizeof sha1_cases / sizeof sha1_cases[0]; c++) {
        size_t ul = strlen(sha1_cases[c].unit), n = ul * sha1_cases[c].repeat;
        uint8_t *in = malloc(n ? n : 1);
        for (size_t i = 0; i < sha1_cases[c].repeat; i++)
            memcpy(in + i * ul, sha1_cases[c].unit, ul);
        uint8_t d[20];
        char hex[41];
        ws_sha1(in, n, d);
        to_hex(d, 20, hex);
        CHECKF(strcmp(hex, sha1_cases[c].hex) == 0, "case %zu: %s", c, hex);
        free(in);
    }
}

/* ---- base64 -------------------------------------------------------------------------------- */

static const struct {
    const char *raw, *b64;
} b64_cases[] = {
    /* RFC 4648 10 */
    {"", ""},
    {"f", "Zg=="},
    {"fo", "Zm8="},
    {"foo", "Zm9v"},
    {"foob", "Zm9vYg=="},
    {"fooba", "Zm9vYmE="},
    {"foobar", "Zm9vYmFy"},
    {"\xff\xfe\xfd", "//79"},
    {"\xfb\xef", "++8="},
};

static const char *b64_bad[] = {
    "Zg",       /* no padding */
    "Zg=",      /* length not a multiple of 4 */
    "Z===",     /* three pads */
    "====",     /* all pad */
    "=Zg=",     /* pad first */
    "Zg=a",     /* pad in the middle */
    "Zg==Zg==", /* pad before the end */
    "Zm9v\n",   /* whitespace */
    "Zm 9",     /* space */
    "Zm9-",     /* URL alphabet */
    "Zm9_",     /* URL alphabet */
    "Zh==",     /* non-zero unused bits */
    "Zm9=",     /* non-zero unused bits */
    "Zm9v\0\0\0\0",
};

static void test_base64(void)
{
    for (size_t c = 0; c < sizeof b64_cases / sizeof b64_cases[0]; c++) {
        const char *raw = b64_cases[c].raw, *b64 = b64_cases[c].b64;
        size_t rl = strlen(raw), bl = strlen(b64);
        char out[32];
        memset(out, 'X', sizeof out);
        uint8_t *in = dup_exact(raw, rl);
        CHECKF(ws_base64_encode(in, rl, out) == bl, "encode %zu", c);
        CHECKF(strcmp(out, b64) == 0, "encode %zu: %s", c, out);
        free(in);

        char *src = (char *)dup_exact(b64, bl);
        uint8_t *dst = malloc(rl ? rl : 1);
        CHECKF(ws_base64_decode(src, bl, dst, rl) == (long)rl, "decode %zu", c);
        CHECKF(memcmp(dst, raw, rl) == 0, "decode %zu", c);
        if (rl) CHECKF(ws_base64_decode(src, bl, dst, rl - 1) == -1, "decode cap %zu", c);
        free(dst);
        free(src);
    }
    for (size_t c = 0; c < sizeof b64_bad / sizeof b64_bad[0]; c++) {
        size_t bl = strlen(b64_bad[c]);
        if (c == sizeof b64_bad / sizeof b64_bad[0] - 1) bl = 8; /* embedded NULs */
        char *src = (char *)dup_exact(b64_bad[c], bl);
        uint8_t dst[16];
        CHECKF(ws_base64_decode(src, bl, dst, sizeof dst) == -1, "bad %zu", c);
        free(src);
    }
}

/* ---- handshake key ------------------------------------------------------------------------- */

static const struct {
    const char *key;
    int valid;
} key_cases[] = {
    {"dGhlIHNhbXBsZSBub25jZQ==", 1}, /* RFC 6455 1.3 */
    {"AAAAAAAAAAAAAAAAAAAAAA==", 1},  {"/////////////////////w==", 1},
    {"dGhlIHNhbXBsZSBub25jZQ=", 0},   /* 23 chars */
    {"dGhlIHNhbXBsZSBub25jZQ", 0},    /* no padding */
    {"dGhlIHNhbXBsZSBub25jZQ===", 0}, /* 25 chars */
    {"AAAAAAAAAAAAAAAAAAAAAAA=", 0},  /* 17 bytes */
    {"AAAAAAAAAAAAAAAAAAAAAAAA", 0},  /* 18 bytes */
    {"AAAAAAAAAAAAAAAA", 0},          /* 12 bytes */
    {"dGhlIHNhbXBsZSBub25jZR==", 0},  /* non-zero unused bits */
    {"dGhlIHNhbXBsZSBub25jZQ= ", 0},  {" dGhlIHNhbXBsZSBub25jZQ=", 0},
    {"dGhlIHNhbXBsZSBub2*jZQ==", 0},  {"", 0},
};

static void test_keys(void)
{
    for (size_t c = 0; c < sizeof key_cases / sizeof key_cases[0]; c++) {
        size_t n = strlen(key_cases[c].key);
        char *k = (char *)dup_exact(key_cases[c].key, n);
        CHECKF(ws_key_valid(k, n) == key_cases[c].valid, "key %zu %s", c, key_cases[c].key);
        free(k);
    }
    char out[29];
    memset(out, 'X', sizeof out);
    char *k = (char *)dup_exact(S("dGhlIHNhbXBsZSBub25jZQ=="));
    ws_accept_key(k, 24, out);
    CHECK(strcmp(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") == 0); /* RFC 6455 1.3 */
    free(k);
}

/* ---- frame headers ------------------------------------------------------------------------- */

struct fcase {
    const char *name;
    const char *in;
    size_t len;
    size_t fill; /* pattern bytes appended after in */
    int server;
    uint64_t max;
    int rc;
    uint16_t code;
    size_t at; /* errors: the shortest prefix that fails */
    int fin, op, masked;
    uint64_t plen;
};

#define MASKED_HELLO "\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58"
#define LEN64K "\x82\x7f\x00\x00\x00\x00\x00\x01\x00\x00"

static const struct fcase fcases[] = {
    /* RFC 6455 5.7 */
    {"text Hello",
     S("\x81\x05"
       "Hello"),
     0, 0, 1000, 2, 0, 0, 1, 1, 0, 5},
    {"masked Hello", S(MASKED_HELLO), 0, 1, 1000, 6, 0, 0, 1, 1, 1, 5},
    {"frag Hel",
     S("\x01\x03"
       "Hel"),
     0, 0, 1000, 2, 0, 0, 0, 1, 0, 3},
    {"frag lo",
     S("\x80\x02"
       "lo"),
     0, 0, 1000, 2, 0, 0, 1, 0, 0, 2},
    {"ping",
     S("\x89\x05"
       "Hello"),
     0, 0, 1000, 2, 0, 0, 1, 9, 0, 5},
    {"masked pong", S("\x8a\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58"), 0, 1, 1000, 6, 0, 0, 1, 10,
     1, 5},
    {"256 binary", S("\x82\x7e\x01\x00"), 256, 0, 1000, 4, 0, 0, 1, 2, 0, 256},
    {"64K binary", S(LEN64K), 65536, 0, 65536, 10, 0, 0, 1, 2, 0, 65536},
    /* edges that pass */
    {"empty close", S("\x88\x00"), 0, 0, 0, 2, 0, 0, 1, 8, 0, 0},
    {"125 ping", S("\x89\x7d"), 125, 0, 125, 2, 0, 0, 1, 9, 0, 125},
    {"126 min", S("\x82\x7e\x00\x7e"), 126, 0, 126, 4, 0, 0, 1, 2, 0, 126},
    {"65536 min", S(LEN64K), 0, 0, 65536, 10, 0, 0, 1, 2, 0, 65536},
    {"max 64-bit", S("\x82\x7f\x7f\xff\xff\xff\xff\xff\xff\xff"), 0, 0, UINT64_MAX, 10, 0, 0, 1, 2,
     0, 0x7fffffffffffffffull},
    {"masked 16-bit", S("\x82\xfe\x01\x00\x01\x02\x03\x04"), 0, 1, 1000, 8, 0, 0, 1, 2, 1, 256},
    {"masked 64-bit", S("\x82\xff\x00\x00\x00\x00\x00\x01\x00\x00\x01\x02\x03\x04"), 0, 1, BIG, 14,
     0, 0, 1, 2, 1, 65536},
    /* byte 0 */
    {"RSV1",
     S("\xc1\x05"
       "Hello"),
     0, 0, 1000, WS_ERROR, 1002, 1, 0, 0, 0, 0},
    {"RSV2",
     S("\xa1\x05"
       "Hello"),
     0, 0, 1000, WS_ERROR, 1002, 1, 0, 0, 0, 0},
    {"RSV3",
     S("\x91\x05"
       "Hello"),
     0, 0, 1000, WS_ERROR, 1002, 1, 0, 0, 0, 0},
    {"RSV before mask",
     S("\xc1\x05"
       "Hello"),
     0, 1, 1000, WS_ERROR, 1002, 1, 0, 0, 0, 0},
    {"opcode 3", S("\x83\x00"), 0, 0, 1000, WS_ERROR, 1002, 1, 0, 0, 0, 0},
    {"opcode 7", S("\x87\x00"), 0, 0, 1000, WS_ERROR, 1002, 1, 0, 0, 0, 0},
    {"opcode B", S("\x8b\x00"), 0, 0, 1000, WS_ERROR, 1002, 1, 0, 0, 0, 0},
    {"opcode F", S("\x8f\x00"), 0, 1, 1000, WS_ERROR, 1002, 1, 0, 0, 0, 0},
    {"ping FIN=0", S("\x09\x00"), 0, 0, 1000, WS_ERROR, 1002, 1, 0, 0, 0, 0},
    {"close FIN=0", S("\x08\x80\x00\x00\x00\x00"), 0, 1, 1000, WS_ERROR, 1002, 1, 0, 0, 0, 0},
    /* byte 1 */
    {"unmasked to server",
     S("\x81\x05"
       "Hello"),
     0, 1, 1000, WS_ERROR, 1002, 2, 0, 0, 0, 0},
    {"masked to client", S(MASKED_HELLO), 0, 0, 1000, WS_ERROR, 1002, 2, 0, 0, 0, 0},
    {"ping 126", S("\x89\x7e\x00\x7e"), 126, 0, 1000, WS_ERROR, 1002, 2, 0, 0, 0, 0},
    {"close 127", S("\x88\xff\x00\x00\x00\x00\x00\x00\x00\x7e"), 0, 1, 1000, WS_ERROR, 1002, 2, 0,
     0, 0, 0},
    {"too big 7-bit",
     S("\x81\x05"
       "Hello"),
     0, 0, 4, WS_ERROR, 1009, 2, 0, 0, 0, 0},
    {"too big 7-bit masked", S(MASKED_HELLO), 0, 1, 4, WS_ERROR, 1009, 2, 0, 0, 0, 0},
    /* extended lengths */
    {"non-minimal 16", S("\x82\x7e\x00\x7d"), 125, 0, 1000, WS_ERROR, 1002, 4, 0, 0, 0, 0},
    {"non-minimal 16 zero", S("\x82\xfe\x00\x00\x01\x02\x03\x04"), 0, 1, 1000, WS_ERROR, 1002, 4, 0,
     0, 0, 0},
    {"non-minimal 64", S("\x82\x7f\x00\x00\x00\x00\x00\x00\xff\xff"), 0, 0, BIG, WS_ERROR, 1002, 8,
     0, 0, 0, 0},
    {"non-minimal 64 small", S("\x82\x7f\x00\x00\x00\x00\x00\x00\x00\x05"), 0, 0, 4, WS_ERROR, 1002,
     8, 0, 0, 0, 0},
    {"64-bit top bit", S("\x82\x7f\x80\x00\x00\x00\x00\x00\x00\x00"), 0, 0, UINT64_MAX, WS_ERROR,
     1002, 3, 0, 0, 0, 0},
    {"too big 16 early", S("\x82\x7e\x04\x00"), 0, 0, 1000, WS_ERROR, 1009, 3, 0, 0, 0, 0},
    {"too big 16 late", S("\x82\x7e\x03\xff"), 0, 0, 1000, WS_ERROR, 1009, 4, 0, 0, 0, 0},
    {"too big 16 masked", S("\x82\xfe\x03\xe9\x01\x02\x03\x04"), 0, 1, 1000, WS_ERROR, 1009, 4, 0,
     0, 0, 0},
    {"too big 64 early", S("\x82\x7f\x00\x00\x00\x01\x00\x00\x00\x00"), 0, 0, 1 << 20, WS_ERROR,
     1009, 6, 0, 0, 0, 0},
    {"too big 64 late", S("\x82\x7f\x00\x00\x00\x00\x00\x10\x00\x01"), 0, 0, 1 << 20, WS_ERROR,
     1009, 10, 0, 0, 0, 0},
    {"too big 64 masked", S("\x82\xff\x00\x00\x00\x00\x00\x01\x00\x00\x01\x02\x03\x04"), 0, 1,
     65535, WS_ERROR, 1009, 8, 0, 0, 0, 0},
};

static void check_fcase(const struct fcase *c, const uint8_t *buf, size_t n, int exp_rc)
{
    struct ws_frame f;
    memset(&f, 0xAA, sizeof f);
    uint16_t code = 0;
    const char *reason = NULL;
    int rc = ws_frame_parse(buf, n, c->server, c->max, &f, &code, &reason);
    CHECKF(rc == exp_rc, "%s prefix %zu: rc %d want %d", c->name, n, rc, exp_rc);
    if (rc == WS_ERROR && exp_rc == WS_ERROR) {
        CHECKF(code == c->code, "%s prefix %zu: code %u", c->name, n, code);
        CHECKF(reason && strlen(reason) <= 123, "%s: reason", c->name);
    } else if (rc > 0 && exp_rc > 0) {
        CHECKF(f.fin == c->fin && f.opcode == c->op && f.masked == c->masked &&
                   f.payload_len == c->plen && f.header_len == (size_t)rc,
               "%s prefix %zu: fields", c->name, n);
        if (c->masked) CHECKF(memcmp(f.mask, buf + rc - 4, 4) == 0, "%s: mask", c->name);
    }
}

static void test_frame_parse(void)
{
    for (size_t i = 0; i < sizeof fcases / sizeof fcases[0]; i++) {
        const struct fcase *c = &fcases[i];
        size_t total = c->len + c->fill;
        uint8_t *all = malloc(total);
        memcpy(all, c->in, c->len);
        for (size_t j = 0; j < c->fill; j++)
            all[c->len + j] = pat(j);
        check_fcase(c, all, total, c->rc);
        /* every prefix, each in its own exact-size buffer */
        size_t first = c->rc > 0 ? (size_t)c->rc : c->at;
        size_t lim = first + 4 < total ? first + 4 : total;
        for (size_t k = 0; k <= lim; k++) {
            uint8_t *b = dup_exact(all, k);
            check_fcase(c, b, k, k < first ? WS_INCOMPLETE : c->rc);
            free(b);
        }
        free(all);
    }
}

static void test_frame_header(void)
{
    static const uint64_t lens[] = {
        0, 1, 125, 126, 127, 65535, 65536, 1ull << 32, 0x7fffffffffffffffull};
    static const int ops[] = {WS_OP_TEXT, WS_OP_BINARY, WS_OP_CONT,
                              WS_OP_PING, WS_OP_PONG,   WS_OP_CLOSE};
    static const uint8_t mask[4] = {0xde, 0xad, 0xbe, 0xef};
    for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++)
        for (size_t oi = 0; oi < sizeof ops / sizeof ops[0]; oi++)
            for (int m = 0; m < 2; m++)
                for (int fin = 0; fin < 2; fin++) {
                    uint64_t len = lens[li];
                    int op = ops[oi];
                    if (op >= WS_OP_CLOSE && (len > 125 || !fin)) continue;
                    uint8_t out[WS_MAX_HEADER];
                    size_t n = ws_frame_header(out, op, fin, len, m ? mask : NULL);
                    size_t want = (len < 126 ? 2 : len < 65536 ? 4 : 10) + (m ? 4 : 0);
                    CHECKF(n == want, "len %llu masked %d: %zu", (unsigned long long)len, m, n);
                    uint8_t *b = dup_exact(out, n);
                    struct ws_frame f;
                    uint16_t code;
                    const char *reason;
                    int rc = ws_frame_parse(b, n, m, BIG, &f, &code, &reason);
                    CHECKF(rc == (int)n && f.fin == fin && f.opcode == op && f.masked == m &&
                               f.payload_len == len && (!m || memcmp(f.mask, mask, 4) == 0),
                           "round trip len %llu op %d masked %d", (unsigned long long)len, op, m);
                    /* the other side refuses it */
                    CHECK(ws_frame_parse(b, n, !m, BIG, &f, &code, &reason) == WS_ERROR &&
                          code == 1002);
                    /* one byte short is incomplete */
                    free(b);
                    b = dup_exact(out, n - 1);
                    CHECK(ws_frame_parse(b, n - 1, m, BIG, &f, &code, &reason) == WS_INCOMPLETE);
                    free(b);
                }
}

/* ---- masking ------------------------------------------------------------------------------- */

static void test_mask(void)
{
    static const uint8_t mask[4] = {0x37, 0xfa, 0x21, 0x3d};
    uint8_t src[160], ref[160];
    for (size_t i = 0; i < sizeof src; i++)
        src[i] = pat(i);
    for (uint64_t off = 0; off < 8; off++) {
        for (size_t n = 0; n <= 150; n++) {
            for (size_t i = 0; i < n; i++)
                ref[i] = src[i] ^ mask[(off + i) % 4];
            /* whole, at an odd address */
            uint8_t *b = malloc(n + 1);
            memcpy(b + 1, src, n);
            ws_mask(b + 1, n, mask, off);
            CHECKF(memcmp(b + 1, ref, n) == 0, "mask n %zu off %llu", n, (unsigned long long)off);
            /* in two chunks with the running offset */
            for (size_t cut = 0; cut <= n; cut += 3) {
                memcpy(b + 1, src, n);
                ws_mask(b + 1, cut, mask, off);
                ws_mask(b + 1 + cut, n - cut, mask, off + cut);
                CHECKF(memcmp(b + 1, ref, n) == 0, "mask n %zu cut %zu", n, cut);
            }
            free(b);
        }
    }
    uint8_t hello[] = {0x7f, 0x9f, 0x4d, 0x51, 0x58};
    ws_mask(hello, 5, mask, 0);
    CHECK(memcmp(hello, "Hello", 5) == 0);
}

/* ---- UTF-8 --------------------------------------------------------------------------------- */

static const struct {
    const char *in;
    size_t n;
    char want; /* V valid, B bad, I incomplete at the end */
} utf8_cases[] = {
    {S(""), 'V'},
    {S("Hello"), 'V'},
    {S("\xc3\xa9"), 'V'},         /* U+00E9 */
    {S("\xe2\x82\xac"), 'V'},     /* U+20AC */
    {S("\xf0\x90\x8d\x88"), 'V'}, /* U+10348 */
    {S("\xc2\x80"), 'V'},         /* U+0080 */
    {S("\xdf\xbf"), 'V'},         /* U+07FF */
    {S("\xe0\xa0\x80"), 'V'},     /* U+0800 */
    {S("\xed\x9f\xbf"), 'V'},     /* U+D7FF */
    {S("\xee\x80\x80"), 'V'},     /* U+E000 */
    {S("\xef\xbf\xbf"), 'V'},     /* U+FFFF */
    {S("\xf0\x90\x80\x80"), 'V'}, /* U+10000 */
    {S("\xf4\x8f\xbf\xbf"), 'V'}, /* U+10FFFF */
    {S("\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5"), 'V'},
    {S("0123456789abcdefghijklmnopqrstuvwxyz\xe2\x82\xac"
       "0123456789abcdef"),
     'V'},
    {S("\xc0\x80"), 'B'},         /* overlong NUL */
    {S("\xc1\xbf"), 'B'},         /* overlong */
    {S("\xe0\x80\x80"), 'B'},     /* overlong */
    {S("\xe0\x9f\xbf"), 'B'},     /* overlong */
    {S("\xf0\x80\x80\x80"), 'B'}, /* overlong */
    {S("\xf0\x8f\xbf\xbf"), 'B'}, /* overlong */
    {S("\xed\xa0\x80"), 'B'},     /* U+D800 */
    {S("\xed\xbf\xbf"), 'B'},     /* U+DFFF */
    {S("\xf4\x90\x80\x80"), 'B'}, /* U+110000 */
    {S("\xf5\x80\x80\x80"), 'B'},
    {S("\xff"), 'B'},
    {S("\xfe"), 'B'},
    {S("\x80"), 'B'}, /* stray continuation */
    {S("\xbf"), 'B'},
    {S("a\x80"
       "b"),
     'B'},
    {S("\xc3\xa9\xa9"), 'B'},
    {S("\xc3\x41"), 'B'},
    {S("\xe2\x82\x41"), 'B'},
    {S("\xf0\x90\x8d\x41"), 'B'},
    {S("\xe2\x82\xc3\xa9"), 'B'},
    {S("0123456789abcdefghijklmnopqrstuvwxyz\xc0\x80"
       "0123456789abcdef"),
     'B'},
    {S("0123456789abcdefghijklmnopqrstuvwxyz\xff"), 'B'},
    {S("\xc3"), 'I'}, /* truncated at the end */
    {S("\xe2\x82"), 'I'},
    {S("\xf0\x90\x8d"), 'I'},
    {S("\xf4"), 'I'},
    {S("0123456789abcdefghijklmnop\xe0\xa0"), 'I'},
};

static char utf8_kind(uint32_t s)
{
    return s == WS_UTF8_OK ? 'V' : s == WS_UTF8_BAD ? 'B' : 'I';
}

static void test_utf8(void)
{
    for (size_t c = 0; c < sizeof utf8_cases / sizeof utf8_cases[0]; c++) {
        size_t n = utf8_cases[c].n;
        uint8_t *b = dup_exact(utf8_cases[c].in, n);
        uint32_t whole = ws_utf8(WS_UTF8_OK, b, n);
        CHECKF(utf8_kind(whole) == utf8_cases[c].want, "utf8 %zu whole: %c", c, utf8_kind(whole));
        uint32_t s = WS_UTF8_OK;
        for (size_t i = 0; i < n; i++) {
            uint8_t *one = dup_exact(b + i, 1);
            s = ws_utf8(s, one, 1);
            free(one);
        }
        CHECKF(s == whole, "utf8 %zu byte by byte", c);
        for (size_t cut = 0; cut <= n; cut++) {
            uint8_t *x = dup_exact(b, cut), *y = dup_exact(b + cut, n - cut);
            uint32_t t = ws_utf8(ws_utf8(WS_UTF8_OK, x, cut), y, n - cut);
            CHECKF(t == whole, "utf8 %zu cut %zu", c, cut);
            free(x);
            free(y);
        }
        free(b);
    }
    CHECK(ws_utf8(WS_UTF8_BAD, (const uint8_t *)"abc", 3) == WS_UTF8_BAD); /* sticky */
    CHECK(ws_utf8(WS_UTF8_BAD, NULL, 0) == WS_UTF8_BAD);
    uint32_t mid = ws_utf8(WS_UTF8_OK, (const uint8_t *)"\xe2", 1);
    CHECK(mid != WS_UTF8_OK && mid != WS_UTF8_BAD);
    CHECK(ws_utf8(mid, (const uint8_t *)"ab", 2) == WS_UTF8_BAD);
}

/* ---- message rules ------------------------------------------------------------------------- */

struct rstep {
    int op, fin;
    const char *p;
    size_t n;
    int want;
    uint16_t code;
};

struct rcase {
    const char *name;
    uint64_t max;
    struct rstep s[4]; /* until p == NULL */
};

#define T WS_OP_TEXT
#define B WS_OP_BINARY
#define C WS_OP_CONT
#define MSG WS_R_MESSAGE
#define MORE WS_R_MORE
#define CTL WS_R_CONTROL
#define ERR WS_ERROR

static const struct rcase rcases[] = {
    {"text", 100, {{T, 1, S("Hello"), MSG, 0}}},
    {"empty text", 100, {{T, 1, S(""), MSG, 0}}},
    {"binary skips UTF-8", 100, {{B, 1, S("\xff\xc0\x80"), MSG, 0}}},
    {"binary fragments", 100, {{B, 0, S("\xe2"), MORE, 0}, {C, 1, S("\xff"), MSG, 0}}},
    {"two fragments", 100, {{T, 0, S("Hel"), MORE, 0}, {C, 1, S("lo"), MSG, 0}}},
    {"empty fragments",
     100,
     {{T, 0, S(""), MORE, 0}, {C, 0, S(""), MORE, 0}, {C, 1, S(""), MSG, 0}}},
    {"ping inside",
     100,
     {{T, 0, S("a"), MORE, 0}, {WS_OP_PING, 1, S("x"), CTL, 0}, {C, 1, S("b"), MSG, 0}}},
    {"close inside", 100, {{T, 0, S("a"), MORE, 0}, {WS_OP_CLOSE, 1, S(""), CTL, 0}}},
    {"cont without message", 100, {{C, 1, S("x"), ERR, 1002}}},
    {"cont after message", 100, {{T, 1, S("a"), MSG, 0}, {C, 1, S("b"), ERR, 1002}}},
    {"text inside message", 100, {{T, 0, S("a"), MORE, 0}, {T, 1, S("b"), ERR, 1002}}},
    {"binary inside message", 100, {{T, 0, S("a"), MORE, 0}, {B, 1, S("b"), ERR, 1002}}},
    {"too big", 4, {{B, 1, S("Hello"), ERR, 1009}}},
    {"exactly max", 5, {{T, 1, S("Hello"), MSG, 0}}},
    {"too big summed", 4, {{T, 0, S("Hel"), MORE, 0}, {C, 1, S("lo"), ERR, 1009}}},
    {"max resets",
     5,
     {{T, 1, S("Hello"), MSG, 0}, {B, 0, S("Hel"), MORE, 0}, {C, 1, S("lo"), MSG, 0}}},
    {"ping not counted",
     1,
     {{T, 0, S("a"), MORE, 0}, {WS_OP_PING, 1, S("xyz"), CTL, 0}, {C, 1, S(""), MSG, 0}}},
    /* UTF-8 across fragments */
    {"split 3-byte", 100, {{T, 0, S("\xe2\x82"), MORE, 0}, {C, 1, S("\xac"), MSG, 0}}},
    {"split 4-byte",
     100,
     {{T, 0, S("\xf0"), MORE, 0}, {C, 0, S("\x90\x8d"), MORE, 0}, {C, 1, S("\x88"), MSG, 0}}},
    {"split invalid", 100, {{T, 0, S("\xe2\x82"), MORE, 0}, {C, 1, S("("), ERR, 1007}}},
    {"split surrogate", 100, {{T, 0, S("\xed"), MORE, 0}, {C, 1, S("\xa0\x80"), ERR, 1007}}},
    {"split > U+10FFFF", 100, {{T, 0, S("\xf4"), MORE, 0}, {C, 0, S("\x90"), ERR, 1007}}},
    {"bad in first fragment", 100, {{T, 0, S("\xc0\x80"), ERR, 1007}}},
    {"truncated at end", 100, {{T, 1, S("\xe2\x82"), ERR, 1007}}},
    {"truncated at last fragment", 100, {{T, 0, S("a\xc3"), MORE, 0}, {C, 1, S(""), ERR, 1007}}},
    {"overlong C0 80", 100, {{T, 1, S("\xc0\x80"), ERR, 1007}}},
    {"overlong E0 80 80", 100, {{T, 1, S("\xe0\x80\x80"), ERR, 1007}}},
    {"surrogate", 100, {{T, 1, S("\xed\xa0\x80"), ERR, 1007}}},
    {"F4 90 80 80", 100, {{T, 1, S("\xf4\x90\x80\x80"), ERR, 1007}}},
    /* control frames */
    {"ping payload", 100, {{WS_OP_PING, 1, S("\xff\x00\xc0"), CTL, 0}}},
    {"pong payload", 100, {{WS_OP_PONG, 1, S("Hello"), CTL, 0}}},
    {"close empty", 100, {{WS_OP_CLOSE, 1, S(""), CTL, 0}}},
    {"close 1 byte", 100, {{WS_OP_CLOSE, 1, S("\x03"), ERR, 1002}}},
    {"close reason",
     100,
     {{WS_OP_CLOSE, 1,
       S("\x03\xe8"
         "bye \xc3\xa9"),
       CTL, 0}}},
    {"close reason bad", 100, {{WS_OP_CLOSE, 1, S("\x03\xe8\xff"), ERR, 1007}}},
    {"close reason truncated", 100, {{WS_OP_CLOSE, 1, S("\x03\xe8\xc3"), ERR, 1007}}},
    {"close bad code first", 100, {{WS_OP_CLOSE, 1, S("\x03\xed\xff"), ERR, 1002}}},
    {"close not counted",
     1,
     {{WS_OP_CLOSE, 1,
       S("\x03\xe8"
         "long reason"),
       CTL, 0}}},
};

static void test_reader(void)
{
    for (size_t c = 0; c < sizeof rcases / sizeof rcases[0]; c++) {
        const struct rcase *rc = &rcases[c];
        struct ws_reader r;
        memset(&r, 0, sizeof r);
        uint64_t sum = 0;
        int op = 0;
        for (size_t i = 0; i < 4 && rc->s[i].p; i++) {
            const struct rstep *s = &rc->s[i];
            struct ws_frame f = {
                .fin = (uint8_t)s->fin, .opcode = (uint8_t)s->op, .payload_len = s->n};
            uint8_t *p = dup_exact(s->p, s->n);
            uint16_t code = 0;
            const char *reason = NULL;
            if (s->op < WS_OP_CLOSE) sum = s->op == WS_OP_CONT ? sum + s->n : s->n;
            int got = ws_reader_frame(&r, &f, p, rc->max, &code, &reason);
            CHECKF(got == s->want, "%s step %zu: %d want %d", rc->name, i, got, s->want);
            if (got == WS_ERROR && s->want == WS_ERROR) {
                CHECKF(code == s->code, "%s step %zu: code %u", rc->name, i, code);
                CHECKF(reason && strlen(reason) <= 123, "%s: reason", rc->name);
            }
            if (s->op == T || s->op == B) op = s->op;
            if (got == WS_R_MESSAGE) {
                CHECKF(r.msg_op == op, "%s step %zu: msg_op %d", rc->name, i, r.msg_op);
                CHECKF(r.msg_len == sum, "%s step %zu: msg_len", rc->name, i);
                CHECKF(!r.in_msg, "%s: in_msg after message", rc->name);
            }
            if (got == WS_R_MORE) CHECKF(r.in_msg, "%s: in_msg", rc->name);
            free(p);
        }
    }
}

static void test_close_codes(void)
{
    static const struct {
        unsigned code;
        int ok;
    } cc[] = {
        {0, 0},    {999, 0},  {1000, 1}, {1001, 1}, {1002, 1}, {1003, 1}, {1004, 0},
        {1005, 0}, {1006, 0}, {1007, 1}, {1008, 1}, {1009, 1}, {1010, 1}, {1011, 1},
        {1012, 1}, {1013, 1}, {1014, 1}, {1015, 0}, {1016, 0}, {1100, 0}, {2000, 0},
        {2999, 0}, {3000, 1}, {3999, 1}, {4000, 1}, {4999, 1}, {5000, 0}, {65535, 0},
    };
    for (size_t i = 0; i < sizeof cc / sizeof cc[0]; i++) {
        uint8_t *p = malloc(2);
        p[0] = (uint8_t)(cc[i].code >> 8);
        p[1] = (uint8_t)cc[i].code;
        struct ws_reader r;
        memset(&r, 0, sizeof r);
        struct ws_frame f = {.fin = 1, .opcode = WS_OP_CLOSE, .payload_len = 2};
        uint16_t code = 0;
        const char *reason;
        int got = ws_reader_frame(&r, &f, p, 100, &code, &reason);
        CHECKF(cc[i].ok ? got == WS_R_CONTROL : got == WS_ERROR && code == 1002, "close code %u",
               cc[i].code);
        free(p);
    }
}

/* ---- byte streams through a tiny reader ---------------------------------------------------- */

/* What a connection does: gather the header, wait for the payload, unmask it in whatever chunks
 * it arrives in, then apply the message rules. Events go to a log compared as a string. */
struct drv {
    int server;
    uint64_t maxp, maxm;
    struct ws_reader r;
    uint8_t hdr[WS_MAX_HEADER];
    size_t nhdr;
    int in_frame, dead;
    struct ws_frame f;
    uint8_t *pay;
    uint64_t got;
    uint8_t *msg;
    size_t nmsg;
    char log[512];
};

static void drv_log(struct drv *d, const char *s, size_t n)
{
    size_t l = strlen(d->log);
    for (size_t i = 0; i < n && l + 5 < sizeof d->log; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch >= 0x20 && ch < 0x7f)
            d->log[l++] = (char)ch;
        else
            l += (size_t)sprintf(d->log + l, "\\x%02x", ch);
    }
    d->log[l] = '\0';
}

static void drv_deliver(struct drv *d)
{
    uint16_t code = 0;
    const char *reason = NULL;
    char tmp[64];
    int rc = ws_reader_frame(&d->r, &d->f, d->pay, d->maxm, &code, &reason);
    if (rc == WS_ERROR) {
        snprintf(tmp, sizeof tmp, "E%u", code);
        drv_log(d, tmp, strlen(tmp));
        d->dead = 1;
        return;
    }
    if (rc == WS_R_CONTROL) {
        snprintf(tmp, sizeof tmp, "C%X:", d->f.opcode);
        drv_log(d, tmp, strlen(tmp));
        drv_log(d, (const char *)d->pay, (size_t)d->f.payload_len);
        drv_log(d, "|", 1);
        return;
    }
    d->msg = realloc(d->msg, d->nmsg + (size_t)d->f.payload_len + 1);
    memcpy(d->msg + d->nmsg, d->pay, (size_t)d->f.payload_len);
    d->nmsg += (size_t)d->f.payload_len;
    if (rc == WS_R_MORE) {
        drv_log(d, "+", 1);
        return;
    }
    if (d->r.msg_op == WS_OP_TEXT) {
        drv_log(d, "T:", 2);
        drv_log(d, (const char *)d->msg, d->nmsg);
    } else {
        int ok = 1;
        for (size_t i = 0; i < d->nmsg; i++)
            ok &= d->msg[i] == pat(i);
        snprintf(tmp, sizeof tmp, "B%zu%s", d->nmsg, ok ? "" : "!");
        drv_log(d, tmp, strlen(tmp));
    }
    CHECK(d->r.msg_len == d->nmsg);
    drv_log(d, "|", 1);
    d->nmsg = 0;
}

static void drv_feed(struct drv *d, const uint8_t *p, size_t n)
{
    while (n > 0 && !d->dead) {
        if (!d->in_frame) {
            size_t add = WS_MAX_HEADER - d->nhdr < n ? WS_MAX_HEADER - d->nhdr : n;
            memcpy(d->hdr + d->nhdr, p, add);
            d->nhdr += add;
            uint8_t *h = dup_exact(d->hdr, d->nhdr);
            uint16_t code = 0;
            const char *reason;
            int rc = ws_frame_parse(h, d->nhdr, d->server, d->maxp, &d->f, &code, &reason);
            free(h);
            if (rc == WS_INCOMPLETE) {
                p += add;
                n -= add;
                continue;
            }
            if (rc == WS_ERROR) {
                char tmp[16];
                snprintf(tmp, sizeof tmp, "E%u", code);
                drv_log(d, tmp, strlen(tmp));
                d->dead = 1;
                return;
            }
            size_t used = add - (d->nhdr - (size_t)rc); /* the rest is payload */
            p += used;
            n -= used;
            d->nhdr = 0;
            d->in_frame = 1;
            d->got = 0;
            d->pay = malloc(d->f.payload_len ? (size_t)d->f.payload_len : 1);
        } else {
            uint64_t left = d->f.payload_len - d->got;
            size_t take = left < n ? (size_t)left : n;
            memcpy(d->pay + d->got, p, take);
            if (d->f.masked) ws_mask(d->pay + d->got, take, d->f.mask, d->got);
            d->got += take;
            p += take;
            n -= take;
        }
        if (d->in_frame && d->got == d->f.payload_len) {
            drv_deliver(d);
            free(d->pay);
            d->pay = NULL;
            d->in_frame = 0;
        }
    }
}

struct scase {
    const char *name;
    const char *in;
    size_t len;
    size_t fill;
    int side; /* 0 client, 1 server, 2 both (masked by the test for the server run) */
    uint64_t maxp, maxm;
    const char *want;
};

static const struct scase scases[] = {
    {"RFC text",
     S("\x81\x05"
       "Hello"),
     0, 2, 1000, 1000, "T:Hello|"},
    {"RFC masked text", S(MASKED_HELLO), 0, 1, 1000, 1000, "T:Hello|"},
    {"RFC fragments",
     S("\x01\x03"
       "Hel"
       "\x80\x02"
       "lo"),
     0, 2, 1000, 1000, "+T:Hello|"},
    {"RFC ping",
     S("\x89\x05"
       "Hello"),
     0, 2, 1000, 1000, "C9:Hello|"},
    {"RFC masked pong", S("\x8a\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58"), 0, 1, 1000, 1000,
     "CA:Hello|"},
    {"RFC ping then pong",
     S("\x89\x05"
       "Hello"
       "\x8a\x05"
       "Hello"),
     0, 2, 1000, 1000, "C9:Hello|CA:Hello|"},
    {"RFC 256 binary", S("\x82\x7e\x01\x00"), 256, 2, 1000, 1000, "B256|"},
    {"RFC 64K binary", S(LEN64K), 65536, 2, 65536, 65536, "B65536|"},
    {"ping between fragments",
     S("\x01\x03"
       "Hel"
       "\x89\x00"
       "\x80\x02"
       "lo"),
     0, 2, 1000, 1000, "+C9:|T:Hello|"},
    {"three messages",
     S("\x81\x01"
       "a"
       "\x82\x00"
       "\x81\x02"
       "\xc3\xa9"),
     0, 2, 1000, 1000, "T:a|B0|T:\\xc3\\xa9|"},
    {"close",
     S("\x88\x05\x03\xe8"
       "bye"),
     0, 2, 1000, 1000, "C8:\\x03\\xe8bye|"},
    {"unmasked to server",
     S("\x81\x05"
       "Hello"),
     0, 1, 1000, 1000, "E1002"},
    {"masked to client", S(MASKED_HELLO), 0, 0, 1000, 1000, "E1002"},
    {"RSV after message",
     S("\x81\x01"
       "a"
       "\xc1\x00"),
     0, 2, 1000, 1000, "T:a|E1002"},
    {"new message inside",
     S("\x01\x03"
       "Hel"
       "\x81\x02"
       "lo"),
     0, 2, 1000, 1000, "+E1002"},
    {"continuation alone",
     S("\x80\x02"
       "lo"),
     0, 2, 1000, 1000, "E1002"},
    {"frame too big",
     S("\x81\x05"
       "Hello"),
     0, 2, 4, 1000, "E1009"},
    {"message too big",
     S("\x01\x03"
       "Hel"
       "\x80\x02"
       "lo"),
     0, 2, 1000, 4, "+E1009"},
    {"64K over frame limit", S(LEN64K), 65536, 2, 65535, 1 << 20, "E1009"},
    {"bad UTF-8", S("\x81\x02\xc0\x80"), 0, 2, 1000, 1000, "E1007"},
    {"UTF-8 split",
     S("\x01\x02"
       "\xe2\x82"
       "\x80\x01"
       "\xac"),
     0, 2, 1000, 1000, "+T:\\xe2\\x82\\xac|"},
    {"bad UTF-8 split",
     S("\x01\x02"
       "\xe2\x82"
       "\x80\x01"
       "("),
     0, 2, 1000, 1000, "+E1007"},
    {"close 1 byte", S("\x88\x01\x03"), 0, 2, 1000, 1000, "E1002"},
    {"close 1005", S("\x88\x02\x03\xed"), 0, 2, 1000, 1000, "E1002"},
    {"close bad reason", S("\x88\x03\x03\xe8\xff"), 0, 2, 1000, 1000, "E1007"},
};

/* Rewrite a stream of unmasked frames as masked ones, as a client would send them. */
static uint8_t *mask_stream(const uint8_t *in, size_t n, size_t *outn)
{
    uint8_t *out = malloc(3 * n + 16);
    size_t pos = 0, o = 0;
    uint8_t mask[4] = {0x37, 0xfa, 0x21, 0x3d};
    while (pos < n) {
        struct ws_frame f;
        uint16_t code;
        const char *reason;
        int rc = ws_frame_parse(in + pos, n - pos, 0, BIG, &f, &code, &reason);
        if (rc <= 0 || f.payload_len > n - pos - (size_t)rc) break;
        o += ws_frame_header(out + o, f.opcode, f.fin, f.payload_len, mask);
        memcpy(out + o, in + pos + rc, (size_t)f.payload_len);
        ws_mask(out + o, (size_t)f.payload_len, mask, 0);
        o += (size_t)f.payload_len;
        pos += (size_t)rc + (size_t)f.payload_len;
        mask[0] += 0x35; /* a different mask per frame */
        mask[3] ^= 0x5a;
    }
    memcpy(out + o, in + pos, n - pos);
    *outn = o + n - pos;
    return out;
}

static void run_stream(const struct scase *c, int server, const uint8_t *in, size_t n,
                       const char *how)
{
    struct drv d;
    memset(&d, 0, sizeof d);
    d.server = server;
    d.maxp = c->maxp;
    d.maxm = c->maxm;
    size_t pos = 0;
    int mode = how[0] == 'w' ? 0 : how[0] == 'b' ? 1 : 2;
    size_t scale = (size_t[]){3, 20, 300, 100000}[rng() % 4];
    while (pos < n && !d.dead) {
        size_t k = mode == 0 ? n : mode == 1 ? 1 : 1 + rng() % scale;
        if (k > n - pos) k = n - pos;
        uint8_t *chunk = dup_exact(in + pos, k);
        drv_feed(&d, chunk, k);
        free(chunk);
        pos += k;
    }
    CHECKF(strcmp(d.log, c->want) == 0, "%s (server %d, %s): got \"%s\"", c->name, server, how,
           d.log);
    free(d.pay);
    free(d.msg);
}

static void test_streams(void)
{
    for (size_t i = 0; i < sizeof scases / sizeof scases[0]; i++) {
        const struct scase *c = &scases[i];
        size_t n = c->len + c->fill;
        uint8_t *in = malloc(n);
        memcpy(in, c->in, c->len);
        for (size_t j = 0; j < c->fill; j++)
            in[c->len + j] = pat(j);
        for (int server = 0; server < 2; server++) {
            if (c->side != 2 && c->side != server) continue;
            size_t sn = n;
            uint8_t *s = c->side == 2 && server ? mask_stream(in, n, &sn) : dup_exact(in, n);
            run_stream(c, server, s, sn, "whole");
            run_stream(c, server, s, sn, "bytes");
            for (int k = 0; k < 30; k++)
                run_stream(c, server, s, sn, "random");
            free(s);
        }
        free(in);
    }
}

int main(void)
{
    test_sha1();
    test_base64();
    test_keys();
    test_frame_parse();
    test_frame_header();
    test_mask();
    test_utf8();
    test_reader();
    test_close_codes();
    test_streams();
    return t_done();
}
