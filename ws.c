/* ws.c - RFC 6455 building blocks: SHA-1 (RFC 3174) and base64 (RFC 4648) for the opening
 * handshake, a frame-header parser that refuses a bad frame as soon as the offending byte is in,
 * payload (un)masking, a streaming UTF-8 validator and the message-level rules (fragmentation,
 * close payloads). It does no I/O and never allocates; no extensions (RSV bits must be 0), no
 * permessage-deflate. The caller owns every buffer and reassembles messages itself. */
#include "ws.h"

#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#elif defined(__ARM_NEON)
#include <arm_neon.h>
#endif

/* ---- SHA-1 (RFC 3174) ---------------------------------------------------------------------- */

struct sha1_ctx {
    uint32_t h[5];
    uint8_t buf[64];
    size_t nbuf;
    uint64_t total; /* bytes */
};

static uint32_t rol32(uint32_t x, unsigned n)
{
    return (x << n) | (x >> (32 - n));
}

static uint32_t load_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static void sha1_block(uint32_t h[5], const uint8_t *blk)
{
    uint32_t w[80];
    for (int i = 0; i < 16; i++)
        w[i] = load_be32(blk + 4 * i);
    for (int i = 16; i < 80; i++)
        w[i] = rol32(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);

    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
    for (int i = 0; i < 80; i++) {
        uint32_t f, k;
        if (i < 20) {
            f = (b & c) | (~b & d);
            k = 0x5A827999u;
        } else if (i < 40) {
            f = b ^ c ^ d;
            k = 0x6ED9EBA1u;
        } else if (i < 60) {
            f = (b & c) | (b & d) | (c & d);
            k = 0x8F1BBCDCu;
        } else {
            f = b ^ c ^ d;
            k = 0xCA62C1D6u;
        }
        uint32_t t = rol32(a, 5) + f + e + k + w[i];
        e = d;
        d = c;
        c = rol32(b, 30);
        b = a;
        a = t;
    }
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
    h[4] += e;
}

static void sha1_init(struct sha1_ctx *c)
{
    c->h[0] = 0x67452301u;
    c->h[1] = 0xEFCDAB89u;
    c->h[2] = 0x98BADCFEu;
    c->h[3] = 0x10325476u;
    c->h[4] = 0xC3D2E1F0u;
    c->nbuf = 0;
    c->total = 0;
}

static void sha1_update(struct sha1_ctx *c, const uint8_t *p, size_t n)
{
    c->total += n;
    if (c->nbuf) {
        size_t take = 64 - c->nbuf < n ? 64 - c->nbuf : n;
        memcpy(c->buf + c->nbuf, p, take);
        c->nbuf += take;
        p += take;
        n -= take;
        if (c->nbuf < 64) return;
        sha1_block(c->h, c->buf);
        c->nbuf = 0;
    }
    for (; n >= 64; p += 64, n -= 64)
        sha1_block(c->h, p);
    memcpy(c->buf, p, n);
    c->nbuf = n;
}

static void sha1_final(struct sha1_ctx *c, uint8_t out[20])
{
    /* RFC 3174 4: a 1 bit, zeros up to 56 mod 64, then the bit length big-endian. */
    uint64_t bits = c->total * 8;
    uint8_t pad[72] = {0x80};
    size_t padlen = (c->nbuf < 56 ? 56 : 120) - c->nbuf;
    for (int i = 0; i < 8; i++)
        pad[padlen + (size_t)i] = (uint8_t)(bits >> (56 - 8 * i));
    sha1_update(c, pad, padlen + 8);
    for (int i = 0; i < 5; i++) {
        out[4 * i] = (uint8_t)(c->h[i] >> 24);
        out[4 * i + 1] = (uint8_t)(c->h[i] >> 16);
        out[4 * i + 2] = (uint8_t)(c->h[i] >> 8);
        out[4 * i + 3] = (uint8_t)c->h[i];
    }
}

void ws_sha1(const void *data, size_t len, uint8_t out[20])
{
    struct sha1_ctx c;
    sha1_init(&c);
    sha1_update(&c, data, len);
    sha1_final(&c, out);
}

/* ---- base64 (RFC 4648 section 4) ----------------------------------------------------------- */

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t ws_base64_encode(const uint8_t *in, size_t len, char *out)
{
    size_t o = 0, i = 0;
    for (; i + 3 <= len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = b64_alphabet[v >> 18];
        out[o++] = b64_alphabet[(v >> 12) & 63];
        out[o++] = b64_alphabet[(v >> 6) & 63];
        out[o++] = b64_alphabet[v & 63];
    }
    if (len - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        out[o++] = b64_alphabet[v >> 18];
        out[o++] = b64_alphabet[(v >> 12) & 63];
        out[o++] = '=';
        out[o++] = '=';
    } else if (len - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        out[o++] = b64_alphabet[v >> 18];
        out[o++] = b64_alphabet[(v >> 12) & 63];
        out[o++] = b64_alphabet[(v >> 6) & 63];
        out[o++] = '=';
    }
    out[o] = '\0';
    return o;
}

static int b64_value(char ch)
{
    if (ch >= 'A' && ch <= 'Z') return ch - 'A';
    if (ch >= 'a' && ch <= 'z') return ch - 'a' + 26;
    if (ch >= '0' && ch <= '9') return ch - '0' + 52;
    if (ch == '+') return 62;
    if (ch == '/') return 63;
    return -1;
}

/* Strict: length a multiple of 4, '=' only as the last one or two characters, and the unused
 * bits before the padding must be zero (RFC 4648 3.5), so every byte string has one encoding. */
long ws_base64_decode(const char *in, size_t len, uint8_t *out, size_t cap)
{
    if (len % 4) return -1;
    size_t o = 0;
    for (size_t i = 0; i < len; i += 4) {
        int last = i + 4 == len;
        int pad = 0;
        if (last && in[i + 3] == '=') pad = in[i + 2] == '=' ? 2 : 1;
        int v[4] = {0, 0, 0, 0};
        for (int j = 0; j < 4 - pad; j++) {
            v[j] = b64_value(in[i + (size_t)j]);
            if (v[j] < 0) return -1;
        }
        uint32_t w =
            (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
        size_t n = 3 - (size_t)pad;
        if ((pad == 1 && (w & 0xFF)) || (pad == 2 && (w & 0xFFFF))) return -1;
        if (n > cap - o) return -1;
        out[o] = (uint8_t)(w >> 16);
        if (n > 1) out[o + 1] = (uint8_t)(w >> 8);
        if (n > 2) out[o + 2] = (uint8_t)w;
        o += n;
    }
    return (long)o;
}

int ws_key_valid(const char *key, size_t len)
{
    uint8_t raw[16];
    return len == 24 && ws_base64_decode(key, len, raw, sizeof raw) == 16;
}

void ws_accept_key(const char *key, size_t len, char out[29])
{
    static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"; /* RFC 6455 1.3 */
    struct sha1_ctx c;
    uint8_t digest[20];
    sha1_init(&c);
    sha1_update(&c, (const uint8_t *)key, len);
    sha1_update(&c, (const uint8_t *)guid, sizeof guid - 1);
    sha1_final(&c, digest);
    ws_base64_encode(digest, sizeof digest, out);
}

/* ---- frames (RFC 6455 5.2) ----------------------------------------------------------------- */

static int frame_fail(uint16_t *code, const char **reason, uint16_t c, const char *why)
{
    *code = c;
    *reason = why;
    return WS_ERROR;
}

int ws_frame_parse(const uint8_t *buf, size_t len, int server, uint64_t max_payload,
                   struct ws_frame *f, uint16_t *code, const char **reason)
{
    if (len < 1) return WS_INCOMPLETE;
    uint8_t b0 = buf[0];
    unsigned op = b0 & 0x0F;
    int fin = b0 >> 7;
    if (b0 & 0x70) return frame_fail(code, reason, WS_CLOSE_PROTOCOL, "RSV bits set");
    if (op > WS_OP_BINARY && op < WS_OP_CLOSE)
        return frame_fail(code, reason, WS_CLOSE_PROTOCOL, "unknown opcode");
    if (op > WS_OP_PONG) return frame_fail(code, reason, WS_CLOSE_PROTOCOL, "unknown opcode");
    int control = op >= WS_OP_CLOSE;
    if (control && !fin)
        return frame_fail(code, reason, WS_CLOSE_PROTOCOL, "fragmented control frame");
    if (len < 2) return WS_INCOMPLETE;

    uint8_t b1 = buf[1];
    int masked = b1 >> 7;
    unsigned len7 = b1 & 0x7F;
    if (server && !masked) return frame_fail(code, reason, WS_CLOSE_PROTOCOL, "frame not masked");
    if (!server && masked)
        return frame_fail(code, reason, WS_CLOSE_PROTOCOL, "masked frame from server");
    if (control && len7 > WS_MAX_CONTROL)
        return frame_fail(code, reason, WS_CLOSE_PROTOCOL, "control frame too long");

    size_t ext = len7 == 126 ? 2 : len7 == 127 ? 8 : 0;
    uint64_t plen = len7;
    if (ext) {
        /* Check each length byte as it arrives: the bytes so far, shifted into place, are a
         * lower bound on the length, so an oversized frame is refused before the rest comes. */
        size_t have = len - 2 < ext ? len - 2 : ext;
        if (ext == 8 && have >= 1 && (buf[2] & 0x80))
            return frame_fail(code, reason, WS_CLOSE_PROTOCOL, "64-bit length top bit set");
        uint64_t v = 0;
        for (size_t i = 0; i < have; i++)
            v = v << 8 | buf[2 + i];
        /* 8-byte form: below 65536 iff bytes 2..7 are all zero, known once they are in. */
        if (ext == 8 && have >= 6 && (v >> (8 * (have - 6))) == 0)
            return frame_fail(code, reason, WS_CLOSE_PROTOCOL, "non-minimal length");
        if (ext == 2 && have == 2 && v < 126)
            return frame_fail(code, reason, WS_CLOSE_PROTOCOL, "non-minimal length");
        if (have > 0 && v << (8 * (ext - have)) > max_payload) /* shift <= 56: no overflow */
            return frame_fail(code, reason, WS_CLOSE_TOO_BIG, "message too big");
        if (have < ext) return WS_INCOMPLETE;
        plen = v;
    }
    if (plen > max_payload) return frame_fail(code, reason, WS_CLOSE_TOO_BIG, "message too big");

    size_t hlen = 2 + ext + (masked ? 4 : 0);
    if (len < hlen) return WS_INCOMPLETE;
    f->fin = (uint8_t)fin;
    f->opcode = (uint8_t)op;
    f->masked = (uint8_t)masked;
    if (masked)
        memcpy(f->mask, buf + 2 + ext, 4);
    else
        memset(f->mask, 0, 4);
    f->payload_len = plen;
    f->header_len = hlen;
    return (int)hlen;
}

void ws_mask(uint8_t *p, size_t n, const uint8_t mask[4], uint64_t offset)
{
    /* The mask rotated so that m[0] applies to p[0]; doubled to a 64-bit word in memory order,
     * so the word XOR is right on either endianness. */
    uint8_t m[16];
    for (unsigned i = 0; i < 16; i++)
        m[i] = mask[(offset + i) & 3];
    size_t i = 0;
#if defined(__SSE2__) || defined(__ARM_NEON)
    /* 16 bytes per turn (every x86_64 has SSE2, every aarch64 NEON): the unmasking of a relayed
     * offer is the one pass over it that the copy out does not replace */
    if (n >= 16) {
#if defined(__SSE2__)
        __m128i mv = _mm_loadu_si128((const __m128i *)(const void *)m);
        for (; i + 16 <= n; i += 16) {
            __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(p + i));
            _mm_storeu_si128((__m128i *)(void *)(p + i), _mm_xor_si128(v, mv));
        }
#else
        uint8x16_t mv = vld1q_u8(m);
        for (; i + 16 <= n; i += 16)
            vst1q_u8(p + i, veorq_u8(vld1q_u8(p + i), mv));
#endif
    }
#endif
    if (n - i >= 8) {
        uint64_t mw, w;
        memcpy(&mw, m, 8);
        for (; i + 8 <= n; i += 8) {
            memcpy(&w, p + i, 8);
            w ^= mw;
            memcpy(p + i, &w, 8);
        }
    }
    for (; i < n; i++)
        p[i] ^= m[i & 15];
}

size_t ws_frame_header(uint8_t *out, int opcode, int fin, uint64_t len, const uint8_t *mask)
{
    size_t n = 2;
    out[0] = (uint8_t)((fin ? 0x80 : 0) | (opcode & 0x0F));
    uint8_t mbit = mask ? 0x80 : 0;
    if (len < 126) {
        out[1] = (uint8_t)(mbit | len);
    } else if (len <= 0xFFFF) {
        out[1] = mbit | 126;
        out[2] = (uint8_t)(len >> 8);
        out[3] = (uint8_t)len;
        n = 4;
    } else {
        out[1] = mbit | 127;
        for (int i = 0; i < 8; i++)
            out[2 + i] = (uint8_t)(len >> (56 - 8 * i));
        n = 10;
    }
    if (mask) {
        memcpy(out + n, mask, 4);
        n += 4;
    }
    return n;
}

/* ---- UTF-8 (RFC 3629 section 4) ------------------------------------------------------------ */

/* A byte-class DFA. States 0 (OK) and 1 (BAD) are the public ones; the rest are "inside a
 * sequence", the narrow second-byte ranges of E0, ED, F0 and F4 having their own states (they
 * are what rule out overlongs, surrogates and code points above U+10FFFF). */
enum {
    U_OK = WS_UTF8_OK,
    U_BAD = WS_UTF8_BAD,
    U_NEED1, /* one continuation byte (80..BF) to go */
    U_NEED2,
    U_NEED3,
    U_E0, /* next A0..BF */
    U_ED, /* next 80..9F */
    U_F0, /* next 90..BF */
    U_F4, /* next 80..8F */
    U_NSTATES
};

/* Classes: 0 ASCII, 1 80..8F, 2 90..9F, 3 A0..BF, 4 never valid (C0 C1 F5..FF), 5 C2..DF,
 * 6 E0, 7 E1..EC EE EF, 8 ED, 9 F0, 10 F1..F3, 11 F4. */
static uint8_t utf8_class(uint8_t b)
{
    if (b < 0x80) return 0;
    if (b < 0x90) return 1;
    if (b < 0xA0) return 2;
    if (b < 0xC0) return 3;
    if (b < 0xC2) return 4;
    if (b < 0xE0) return 5;
    if (b == 0xE0) return 6;
    if (b == 0xED) return 8;
    if (b < 0xF0) return 7;
    if (b == 0xF0) return 9;
    if (b < 0xF4) return 10;
    if (b == 0xF4) return 11;
    return 4;
}

static const uint8_t utf8_next[U_NSTATES][12] = {
    /*           asc 80-8F 90-9F A0-BF bad C2-DF E0 E1-EF ED F0 F1-F3 F4 */
    [U_OK] = {U_OK, U_BAD, U_BAD, U_BAD, U_BAD, U_NEED1, U_E0, U_NEED2, U_ED, U_F0, U_NEED3, U_F4},
    [U_BAD] = {U_BAD, U_BAD, U_BAD, U_BAD, U_BAD, U_BAD, U_BAD, U_BAD, U_BAD, U_BAD, U_BAD, U_BAD},
    [U_NEED1] = {U_BAD, U_OK, U_OK, U_OK, U_BAD, U_BAD, U_BAD, U_BAD, U_BAD, U_BAD, U_BAD, U_BAD},
    [U_NEED2] = {U_BAD, U_NEED1, U_NEED1, U_NEED1, U_BAD, U_BAD, U_BAD, U_BAD, U_BAD, U_BAD, U_BAD,
                 U_BAD},
    [U_NEED3] = {U_BAD, U_NEED2, U_NEED2, U_NEED2, U_BAD, U_BAD, U_BAD, U_BAD, U_BAD, U_BAD, U_BAD,
                 U_BAD},
    [U_E0] = {U_BAD, U_BAD, U_BAD, U_NEED1, U_BAD, U_BAD, U_BAD, U_BAD, U_BAD, U_BAD, U_BAD, U_BAD},
    [U_ED] = {U_BAD, U_NEED1, U_NEED1, U_BAD, U_BAD, U_BAD, U_BAD, U_BAD, U_BAD, U_BAD, U_BAD,
              U_BAD},
    [U_F0] = {U_BAD, U_BAD, U_NEED2, U_NEED2, U_BAD, U_BAD, U_BAD, U_BAD, U_BAD, U_BAD, U_BAD,
              U_BAD},
    [U_F4] = {U_BAD, U_NEED2, U_BAD, U_BAD, U_BAD, U_BAD, U_BAD, U_BAD, U_BAD, U_BAD, U_BAD, U_BAD},
};

uint32_t ws_utf8(uint32_t state, const uint8_t *p, size_t n)
{
    if (state >= U_NSTATES) return U_BAD;
    size_t i = 0;
    while (i < n) {
        if (state == U_BAD) return U_BAD;
        if (state == U_OK) {
            /* ASCII fast path: eight bytes at a time while no high bit is set. */
            while (i + 8 <= n) {
                uint64_t w;
                memcpy(&w, p + i, 8);
                if (w & 0x8080808080808080ull) break;
                i += 8;
            }
            while (i < n && p[i] < 0x80)
                i++;
            if (i == n) break;
        }
        state = utf8_next[state][utf8_class(p[i])];
        i++;
    }
    return state;
}

/* ---- message rules (RFC 6455 5.4, 5.5.1, 7.4) ---------------------------------------------- */

/* RFC 6455 7.4.1/7.4.2 and the IANA registry: 1004-1006 and 1015 must never be sent; 1012-1014
 * are registered later additions and accepted; 3000-4999 are for libraries and applications. */
static int close_code_valid(unsigned c)
{
    if (c >= 1000 && c <= 1003) return 1;
    if (c >= 1007 && c <= 1014) return 1;
    return c >= 3000 && c <= 4999;
}

int ws_reader_frame(struct ws_reader *r, const struct ws_frame *f, const uint8_t *p,
                    uint64_t max_msg, uint16_t *code, const char **reason)
{
    uint64_t n = f->payload_len;
    if (f->opcode >= WS_OP_CLOSE && !f->fin)
        return frame_fail(code, reason, WS_CLOSE_PROTOCOL, "fragmented control frame");
    switch (f->opcode) {
    case WS_OP_CLOSE:
        if (n > WS_MAX_CONTROL)
            return frame_fail(code, reason, WS_CLOSE_PROTOCOL, "control frame too long");
        if (n == 1) return frame_fail(code, reason, WS_CLOSE_PROTOCOL, "close payload of 1 byte");
        if (n >= 2) {
            if (!close_code_valid((unsigned)p[0] << 8 | p[1]))
                return frame_fail(code, reason, WS_CLOSE_PROTOCOL, "invalid close code");
            if (ws_utf8(WS_UTF8_OK, p + 2, (size_t)n - 2) != WS_UTF8_OK)
                return frame_fail(code, reason, WS_CLOSE_BAD_DATA, "close reason not UTF-8");
        }
        return WS_R_CONTROL;
    case WS_OP_PING:
    case WS_OP_PONG:
        if (n > WS_MAX_CONTROL)
            return frame_fail(code, reason, WS_CLOSE_PROTOCOL, "control frame too long");
        return WS_R_CONTROL;
    case WS_OP_CONT:
        if (!r->in_msg)
            return frame_fail(code, reason, WS_CLOSE_PROTOCOL, "continuation without a message");
        break;
    case WS_OP_TEXT:
    case WS_OP_BINARY:
        if (r->in_msg)
            return frame_fail(code, reason, WS_CLOSE_PROTOCOL, "new message inside a message");
        r->msg_op = f->opcode;
        r->msg_len = 0;
        r->utf8 = WS_UTF8_OK;
        break;
    default:
        return frame_fail(code, reason, WS_CLOSE_PROTOCOL, "unknown opcode");
    }

    if (n > max_msg || r->msg_len > max_msg - n)
        return frame_fail(code, reason, WS_CLOSE_TOO_BIG, "message too big");
    r->msg_len += n;
    if (r->msg_op == WS_OP_TEXT && !r->defer_utf8) {
        r->utf8 = ws_utf8(r->utf8, p, (size_t)n);
        if (r->utf8 == WS_UTF8_BAD || (f->fin && r->utf8 != WS_UTF8_OK))
            return frame_fail(code, reason, WS_CLOSE_BAD_DATA, "invalid UTF-8");
    }
    r->in_msg = !f->fin;
    return f->fin ? WS_R_MESSAGE : WS_R_MORE;
}
