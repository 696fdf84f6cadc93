/* ws.c - RFC 6455 pieces: SHA-1 (RFC 3174) and base64 (RFC 4648) for the handshake, the
 * Sec-WebSocket-Accept computation, a frame-header parser that checks every rule the moment its
 * field is known, message-level rules (fragmentation, UTF-8 across fragments, close payloads),
 * and frame-header writing for both sides (server unmasked, client masked). No I/O and no
 * allocation: the connection code in peerpigeon.c and hub.c owns the buffers. */
#ifndef WS_H
#define WS_H
#include <stddef.h>
#include <stdint.h>

#define WS_MAX_CONTROL 125 /* RFC 6455 5.5: control payloads */
#define WS_MAX_HEADER 14   /* 2 + 8 (64-bit length) + 4 (mask) */
#define WS_INCOMPLETE (-2)
#define WS_ERROR (-1)

enum {
    WS_OP_CONT = 0x0,
    WS_OP_TEXT = 0x1,
    WS_OP_BINARY = 0x2,
    WS_OP_CLOSE = 0x8,
    WS_OP_PING = 0x9,
    WS_OP_PONG = 0xA,
};

enum {
    WS_CLOSE_NORMAL = 1000,
    WS_CLOSE_GOING_AWAY = 1001,
    WS_CLOSE_PROTOCOL = 1002,
    WS_CLOSE_NO_STATUS = 1005,
    WS_CLOSE_BAD_DATA = 1007,
    WS_CLOSE_POLICY = 1008,
    WS_CLOSE_TOO_BIG = 1009,
    WS_CLOSE_INTERNAL = 1011,
    WS_CLOSE_TRY_AGAIN = 1013, /* IANA "Try Again Later": the server is overloaded */
};

void ws_sha1(const void *data, size_t len, uint8_t out[20]);
/* out needs 4*((len+2)/3)+1 bytes; NUL-terminated; returns the encoded length. */
size_t ws_base64_encode(const uint8_t *in, size_t len, char *out);
/* Strict decode (padding required, no whitespace). Returns decoded length or -1 if invalid or
 * longer than cap. */
long ws_base64_decode(const char *in, size_t len, uint8_t *out, size_t cap);
/* 1 if key is a valid Sec-WebSocket-Key: base64 of exactly 16 bytes (RFC 6455 4.2.1). */
int ws_key_valid(const char *key, size_t len);
/* Sec-WebSocket-Accept for key: base64(SHA1(key + GUID)); out gets 28 chars + NUL. */
void ws_accept_key(const char *key, size_t len, char out[29]);

struct ws_frame {
    uint8_t fin;
    uint8_t opcode;
    uint8_t masked;
    uint8_t mask[4];
    uint64_t payload_len;
    size_t header_len;
};

/* Parse the frame header at buf[0..len). `server` = 1 when we are the server: client frames
 * must be masked (and server frames we receive as a client must not be). Rules are checked as
 * soon as their bytes are present, so a bad frame is refused before it has fully arrived:
 * RSV bits set, unknown opcode, control frame fragmented or > 125 bytes, non-minimal length
 * encoding, 64-bit length with the top bit set, masking wrong for the side -> 1002; payload
 * longer than max_payload -> 1009.
 * Returns the header length (> 0) with *f filled (the payload may not all be there yet: the
 * frame is complete when len >= header_len + payload_len), WS_INCOMPLETE, or WS_ERROR with
 * *code and *reason (a static string) set. */
int ws_frame_parse(const uint8_t *buf, size_t len, int server, uint64_t max_payload,
                   struct ws_frame *f, uint16_t *code, const char **reason);

/* XOR p[0..n) with mask, where p starts `offset` bytes into the payload. */
void ws_mask(uint8_t *p, size_t n, const uint8_t mask[4], uint64_t offset);

/* Write a frame header into out (WS_MAX_HEADER bytes); mask NULL = unmasked (server side),
 * else the 4 mask bytes are written (the caller then masks the payload). Returns its length. */
size_t ws_frame_header(uint8_t *out, int opcode, int fin, uint64_t len, const uint8_t *mask);

/* Streaming UTF-8 validator (RFC 3629: no overlongs, no surrogates, <= U+10FFFF). Start with
 * WS_UTF8_OK; feed chunks; the text is valid iff the final state is WS_UTF8_OK. Once
 * WS_UTF8_BAD it stays so. Other values mean "inside a sequence". */
#define WS_UTF8_OK 0u
#define WS_UTF8_BAD 1u
uint32_t ws_utf8(uint32_t state, const uint8_t *p, size_t n);

/* Message-level state of one direction of a connection. Zero-initialise. */
struct ws_reader {
    uint64_t msg_len;   /* bytes so far */
    uint32_t utf8;      /* validator state across its fragments */
    uint8_t in_msg;     /* a fragmented data message is in progress */
    uint8_t msg_op;     /* its opcode (TEXT or BINARY) */
    uint8_t defer_utf8; /* text is not checked here: the owner validates it (ws_reader_frame) */
};

enum {
    WS_R_MORE = 0, /* a data fragment accepted; the message continues */
    WS_R_MESSAGE,  /* a data frame that completes a message (op in r->msg_op) */
    WS_R_CONTROL,  /* a valid control frame: ping, pong or close */
};

/* Apply the message-level rules to a complete frame f whose payload (already unmasked) is
 * p[0..f->payload_len): continuation without a message, a new data frame inside a message
 * -> 1002; message total > max_msg -> 1009; invalid UTF-8 in a text message (checked per
 * fragment, incomplete sequence at the end) -> 1007, unless r->defer_utf8: then the whole
 * message goes to a reader that validates it anyway (JSON checks UTF-8) and checks it with
 * ws_utf8 only when its own validation fails; a close payload of 1 byte, an invalid close code
 * (RFC 6455 7.4) -> 1002, a reason that is not UTF-8 -> 1007.
 * Returns WS_R_* or WS_ERROR with *code and *reason set. */
int ws_reader_frame(struct ws_reader *r, const struct ws_frame *f, const uint8_t *p,
                    uint64_t max_msg, uint16_t *code, const char **reason);

#endif
