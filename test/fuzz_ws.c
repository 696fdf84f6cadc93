/* fuzz_ws.c - libFuzzer target for ws.c. The input is read as a frame stream by both sides
 * (header parse, unmask in two chunks, message rules), with invariants on every result; and as
 * text for ws_utf8, checked against a plain decode-the-code-point validator, whole and split at
 * data[0] % size.
 * clang -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined -I. test/fuzz_ws.c ws.c
 */
#include "ws.h"

#include <stdlib.h>
#include <string.h>

#define REQUIRE(c)                                                                                 \
    do {                                                                                           \
        if (!(c)) abort();                                                                         \
    } while (0)

/* Reference: 0 valid, 1 invalid, 2 valid so far but cut inside a sequence. A truncated tail is
 * judged by whether any continuation bytes could complete it into a valid code point. */
static int ref_decode(const uint8_t *p, size_t n, size_t *used)
{
    uint8_t b = p[0];
    size_t need;
    uint32_t cp;
    if (b < 0x80) {
        *used = 1;
        return 0;
    } else if (b >= 0xC0 && b < 0xE0) {
        need = 2;
        cp = b & 0x1F;
    } else if (b >= 0xE0 && b < 0xF0) {
        need = 3;
        cp = b & 0x0F;
    } else if (b >= 0xF0 && b < 0xF8) {
        need = 4;
        cp = b & 0x07;
    } else {
        return 1;
    }
    size_t i;
    for (i = 1; i < need && i < n; i++) {
        if ((p[i] & 0xC0) != 0x80) return 1;
        cp = cp << 6 | (p[i] & 0x3F);
    }
    static const uint32_t minv[5] = {0, 0, 0x80, 0x800, 0x10000};
    *used = i;
    if (i < need) {
        /* the completions cover [lo, hi]; is any of it a valid scalar value? */
        size_t miss = need - i;
        uint32_t lo = cp << (6 * miss), hi = lo | ((1u << (6 * miss)) - 1);
        uint32_t a = lo > minv[need] ? lo : minv[need];
        uint32_t b1 = hi < 0xD7FF ? hi : 0xD7FF;
        uint32_t a2 = a > 0xE000 ? a : 0xE000, b2 = hi < 0x10FFFF ? hi : 0x10FFFF;
        return (a <= b1 || a2 <= b2) ? 2 : 1;
    }
    if (cp < minv[need] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 1;
    return 0;
}

static int ref_utf8(const uint8_t *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        size_t used = 0;
        int r = ref_decode(p + i, n - i, &used);
        if (r) return r;
        i += used;
    }
    return 0;
}

static void check_utf8(const uint8_t *data, size_t size)
{
    uint8_t *buf = malloc(size ? size : 1);
    memcpy(buf, data, size);
    int ref = ref_utf8(buf, size);
    uint32_t whole = ws_utf8(WS_UTF8_OK, buf, size);
    REQUIRE((whole == WS_UTF8_OK) == (ref == 0));
    REQUIRE((whole == WS_UTF8_BAD) == (ref == 1));
    if (size) {
        size_t cut = data[0] % size;
        uint32_t s = ws_utf8(ws_utf8(WS_UTF8_OK, buf, cut), buf + cut, size - cut);
        REQUIRE(s == whole);
    }
    free(buf);
}

static void check_stream(const uint8_t *data, size_t size, int server)
{
    uint64_t max_payload = size ? 1 + data[0] * 64u : 1;
    uint64_t max_msg = 2 * max_payload;
    struct ws_reader r;
    memset(&r, 0, sizeof r);
    size_t pos = 0;
    while (pos < size) {
        struct ws_frame f;
        uint16_t code = 0;
        const char *reason = NULL;
        int rc = ws_frame_parse(data + pos, size - pos, server, max_payload, &f, &code, &reason);
        if (rc == WS_INCOMPLETE) return;
        if (rc == WS_ERROR) {
            REQUIRE(code == WS_CLOSE_PROTOCOL || code == WS_CLOSE_TOO_BIG);
            REQUIRE(reason && strlen(reason) <= 123);
            return;
        }
        REQUIRE(rc >= 2 && rc <= WS_MAX_HEADER && (size_t)rc == f.header_len);
        REQUIRE(f.payload_len <= max_payload && f.masked == (server != 0));
        /* headers are minimal, so writing the fields back gives the same bytes */
        uint8_t h[WS_MAX_HEADER];
        size_t hn = ws_frame_header(h, f.opcode, f.fin, f.payload_len, f.masked ? f.mask : NULL);
        REQUIRE(hn == (size_t)rc && memcmp(h, data + pos, hn) == 0);
        pos += (size_t)rc;
        if (f.payload_len > size - pos) return;
        size_t n = (size_t)f.payload_len;
        uint8_t *a = malloc(n ? n : 1), *b = malloc(n ? n : 1);
        memcpy(a, data + pos, n);
        memcpy(b, data + pos, n);
        size_t cut = n ? data[pos] % (n + 1) : 0;
        ws_mask(a, n, f.mask, 0);
        ws_mask(b, cut, f.mask, 0);
        ws_mask(b + cut, n - cut, f.mask, cut);
        REQUIRE(memcmp(a, b, n) == 0);
        for (size_t i = 0; i < n; i++)
            REQUIRE(a[i] == (data[pos + i] ^ f.mask[i & 3]));
        pos += n;
        uint8_t was_in = r.in_msg;
        rc = ws_reader_frame(&r, &f, a, max_msg, &code, &reason);
        free(a);
        free(b);
        if (rc == WS_ERROR) {
            REQUIRE(code == WS_CLOSE_PROTOCOL || code == WS_CLOSE_TOO_BIG ||
                    code == WS_CLOSE_BAD_DATA);
            REQUIRE(reason && strlen(reason) <= 123);
            return;
        }
        if (f.opcode >= WS_OP_CLOSE) {
            REQUIRE(rc == WS_R_CONTROL && r.in_msg == was_in);
        } else {
            REQUIRE(rc == (f.fin ? WS_R_MESSAGE : WS_R_MORE));
            REQUIRE(r.in_msg == !f.fin && r.msg_len <= max_msg);
            REQUIRE(r.msg_op == WS_OP_TEXT || r.msg_op == WS_OP_BINARY);
            if (rc == WS_R_MESSAGE && r.msg_op == WS_OP_TEXT) REQUIRE(r.utf8 == WS_UTF8_OK);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_stream(data, size, 0);
    check_stream(data, size, 1);
    check_utf8(data, size);
    return 0;
}
