/* tls.h - client-side TLS for hub links (wss://), only in the TLS build (make TLS=1, PP_TLS):
 * BearSSL's engine over a non-blocking socket, driven by the caller's loop. One struct tls per
 * link holds the engine and its record buffers, allocated once when the link opens; the trust
 * anchors are loaded once and shared. TLS 1.2 only (BearSSL has no 1.3), ECDHE with AES-GCM or
 * ChaCha20-Poly1305, the chain checked against the trust anchors and the host name against the
 * certificate (DNS names only: BearSSL's X.509 engine does not match IP addresses).
 * It does no logging and knows nothing of connections: it reads and writes one fd. */
#ifndef TLS_H
#define TLS_H
#ifdef PP_TLS
#include <stddef.h>
#include <sys/types.h>

struct tls;

/* the result of tls_read / tls_write that is a TLS failure (bad certificate, alert, protocol):
 * tls_why says what; other negative results are -1 with errno set, as recv/send */
#define TLS_FAIL (-2)

/* Load the trust anchors, once: HUB_CA_FILE if set (only that file: a private CA for a closed
 * mesh), else SSL_CERT_FILE, else the first of /etc/ssl/certs/ca-certificates.crt,
 * /etc/ssl/cert.pem, /etc/pki/tls/certs/ca-bundle.crt. Returns NULL, or why none could be
 * loaded (a static string). *path and *count say what was loaded (for a log line). Later calls
 * return the first result. */
const char *tls_load_anchors(const char **path, size_t *count);

/* A client engine that will check `server_name` (also sent as SNI), with its record buffers;
 * the handshake starts with the first tls_write / tls_read. NULL with *why set (out of memory,
 * no trust anchors). The caller owns it and frees it with tls_free (NULL is fine). */
struct tls *tls_client_new(const char *server_name, const char **why);
void tls_free(struct tls *t);

/* Up to cap decrypted bytes into dst, receiving records from fd and sending what the engine
 * asks for (handshake messages, alerts). At most one application record's bytes per call.
 * Returns >0 bytes, 0 the peer closed (close_notify or EOF after the handshake), -1 with errno
 * (EAGAIN: nothing yet), or TLS_FAIL. */
ssize_t tls_read(struct tls *t, int fd, void *dst, size_t cap);
/* Take application bytes p[0..n) (n may be 0: only push what is pending) and send records as
 * the socket takes them. Returns the bytes taken (0 during the handshake or when the engine's
 * buffer is full), -1 with errno (not EAGAIN) or TLS_FAIL. */
ssize_t tls_write(struct tls *t, int fd, const void *p, size_t n);
/* Records wait for the socket to be writable (the last send would block). */
int tls_wants_out(const struct tls *t);
/* Decrypted bytes are held that tls_read has not returned yet. */
int tls_has_data(const struct tls *t);
/* Queue a close_notify (sent by the next tls_write). */
void tls_close_notify(struct tls *t);
/* The handshake is done. */
int tls_ready(const struct tls *t);
/* Why the engine failed, in words (valid while t lives), or NULL. */
const char *tls_why(const struct tls *t);
/* Bytes allocated per link. */
size_t tls_link_bytes(void);

#endif
#endif
