/* tls.c - client-side TLS for hub links (see tls.h): BearSSL's engine API (sendrec / recvrec /
 * sendapp / recvapp) pumped over a non-blocking socket, one record at a time, so that the loop
 * in conn.c stays in charge of when to read and write. Trust anchors are parsed from a PEM
 * bundle once (BearSSL has no loader of its own). Nothing here allocates after a link opened.
 * Compiled only with PP_TLS (make TLS=1); the default build has no TLS at all. */
#ifdef PP_TLS
#include "tls.h"

#include <bearssl.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>

#define TLS_MAX_ANCHORS 512     /* certificates read from one bundle */
#define TLS_MAX_BUNDLE (4u << 20) /* a CA bundle bigger than this is refused */
#define TLS_MAX_NAME 255

struct tls {
    br_ssl_client_context cc;
    br_x509_minimal_context xc;
    uint8_t failed; /* TLS_FAIL was returned: the engine is closed */
    uint8_t blocked; /* the last send would block */
    uint8_t ready;   /* the handshake is done (the engine took or gave application data) */
    char name[TLS_MAX_NAME + 1];
    char why[TLS_MAX_NAME + 96];
    unsigned char iobuf[BR_SSL_BUFSIZE_BIDI]; /* records in (16709) and out (16469) */
};

/* ---- trust anchors ---- */

static br_x509_trust_anchor *anchors;
static size_t nanchors;

struct dn_buf {
    unsigned char *p;
    size_t len, cap;
    int overflow;
};

static void dn_append(void *ctx, const void *buf, size_t len)
{
    struct dn_buf *d = ctx;
    if (d->overflow || d->len + len > d->cap) {
        d->overflow = 1;
        return;
    }
    memcpy(d->p + d->len, buf, len);
    d->len += len;
}

static void *dup_bytes(const void *p, size_t n)
{
    void *q = malloc(n ? n : 1);
    if (q && n) memcpy(q, p, n);
    return q;
}

/* One DER certificate -> one anchor (its subject DN and public key). 0, or -1 if skipped. */
static int add_anchor(const unsigned char *der, size_t len)
{
    static unsigned char dn[1024];
    struct dn_buf d = {dn, 0, sizeof dn, 0};
    br_x509_decoder_context dc;
    br_x509_decoder_init(&dc, dn_append, &d);
    br_x509_decoder_push(&dc, der, len);
    br_x509_pkey *pk = br_x509_decoder_get_pkey(&dc);
    if (!pk || d.overflow || nanchors == TLS_MAX_ANCHORS) return -1;
    br_x509_trust_anchor *ta = &anchors[nanchors];
    memset(ta, 0, sizeof *ta);
    ta->dn.data = dup_bytes(dn, d.len);
    ta->dn.len = d.len;
    ta->flags = br_x509_decoder_isCA(&dc) ? BR_X509_TA_CA : 0;
    ta->pkey.key_type = pk->key_type;
    if (pk->key_type == BR_KEYTYPE_RSA) {
        ta->pkey.key.rsa.n = dup_bytes(pk->key.rsa.n, pk->key.rsa.nlen);
        ta->pkey.key.rsa.nlen = pk->key.rsa.nlen;
        ta->pkey.key.rsa.e = dup_bytes(pk->key.rsa.e, pk->key.rsa.elen);
        ta->pkey.key.rsa.elen = pk->key.rsa.elen;
        if (!ta->pkey.key.rsa.n || !ta->pkey.key.rsa.e) return -1;
    } else if (pk->key_type == BR_KEYTYPE_EC) {
        ta->pkey.key.ec.curve = pk->key.ec.curve;
        ta->pkey.key.ec.q = dup_bytes(pk->key.ec.q, pk->key.ec.qlen);
        ta->pkey.key.ec.qlen = pk->key.ec.qlen;
        if (!ta->pkey.key.ec.q) return -1;
    } else {
        return -1;
    }
    if (!ta->dn.data) return -1;
    nanchors++;
    return 0;
}

struct der_buf {
    unsigned char *p;
    size_t len, cap;
};

static void der_append(void *ctx, const void *buf, size_t len)
{
    struct der_buf *d = ctx;
    if (d->len + len > d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 4096;
        while (cap < d->len + len)
            cap *= 2;
        unsigned char *np = realloc(d->p, cap);
        if (!np) return;
        d->p = np;
        d->cap = cap;
    }
    memcpy(d->p + d->len, buf, len);
    d->len += len;
}

/* Every CERTIFICATE in the PEM text p[0..n) becomes an anchor. */
static void parse_bundle(const unsigned char *p, size_t n)
{
    br_pem_decoder_context pc;
    struct der_buf der = {0};
    int in_cert = 0;
    br_pem_decoder_init(&pc);
    while (n > 0) {
        size_t k = br_pem_decoder_push(&pc, p, n);
        p += k;
        n -= k;
        switch (br_pem_decoder_event(&pc)) {
        case BR_PEM_BEGIN_OBJ:
            in_cert = !strcmp(br_pem_decoder_name(&pc), "CERTIFICATE") ||
                      !strcmp(br_pem_decoder_name(&pc), "X509 CERTIFICATE");
            der.len = 0;
            br_pem_decoder_setdest(&pc, in_cert ? der_append : NULL, &der);
            break;
        case BR_PEM_END_OBJ:
            if (in_cert && der.len) add_anchor(der.p, der.len);
            in_cert = 0;
            break;
        case BR_PEM_ERROR:
            n = 0;
            break;
        }
    }
    free(der.p);
}

const char *tls_load_anchors(const char **path, size_t *count)
{
    static const char *const system_paths[] = {
        "/etc/ssl/certs/ca-certificates.crt", /* Debian, Ubuntu, Alpine (ca-certificates) */
        "/etc/ssl/cert.pem",                  /* Alpine, macOS-style layouts */
        "/etc/pki/tls/certs/ca-bundle.crt",   /* Oracle Linux, RHEL, Fedora */
    };
    static int done;
    static const char *result, *used;
    if (done) goto out;
    done = 1;
    static char msg[600];
    const char *file = getenv("HUB_CA_FILE");
    const char *from = "HUB_CA_FILE";
    if (!file || !*file) {
        file = getenv("SSL_CERT_FILE");
        from = "SSL_CERT_FILE";
    }
    if (!file || !*file) {
        file = NULL;
        from = "CA bundle";
        for (size_t i = 0; i < sizeof system_paths / sizeof *system_paths && !file; i++) {
            FILE *f = fopen(system_paths[i], "rb");
            if (f) {
                fclose(f);
                file = system_paths[i];
            }
        }
        if (!file) {
            result = "no CA bundle: none of /etc/ssl/certs/ca-certificates.crt, /etc/ssl/cert.pem, "
                     "/etc/pki/tls/certs/ca-bundle.crt exists (install ca-certificates, or set "
                     "SSL_CERT_FILE or HUB_CA_FILE)";
            goto out;
        }
    }
    used = file;
    FILE *f = fopen(file, "rb");
    if (!f) {
        snprintf(msg, sizeof msg, "%s %s: %s", from, file, strerror(errno));
        result = msg;
        goto out;
    }
    unsigned char *text = malloc(TLS_MAX_BUNDLE);
    size_t len = text ? fread(text, 1, TLS_MAX_BUNDLE, f) : 0;
    int too_big = text && len == TLS_MAX_BUNDLE;
    fclose(f);
    anchors = calloc(TLS_MAX_ANCHORS, sizeof *anchors);
    if (!text || !anchors) {
        result = "out of memory loading the CA bundle";
    } else if (too_big) {
        snprintf(msg, sizeof msg, "%s %s: over 4 MiB", from, file);
        result = msg;
    } else {
        parse_bundle(text, len);
        br_x509_trust_anchor *fit = realloc(anchors, (nanchors ? nanchors : 1) * sizeof *anchors);
        if (fit) anchors = fit;
        if (!nanchors) {
            snprintf(msg, sizeof msg, "%s %s: no usable PEM certificate in it", from, file);
            result = msg;
        }
    }
    free(text);
out:
    if (path) *path = used;
    if (count) *count = nanchors;
    return result;
}

/* ---- engines ---- */

size_t tls_link_bytes(void)
{
    return sizeof(struct tls);
}

/* The client profile: TLS 1.2, ECDHE only (forward secrecy; no RSA key exchange), AES-GCM and
 * ChaCha20-Poly1305, RSA and ECDSA signatures with SHA-256/384/512. What nginx, Caddy and every
 * current TLS 1.2 server offer, at a fraction of br_ssl_client_init_full's code. */
static void client_init(struct tls *t)
{
    static const uint16_t suites[] = {
        BR_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, BR_TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        BR_TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, BR_TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        BR_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
        BR_TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    };
    br_ssl_client_context *cc = &t->cc;
    br_x509_minimal_context *xc = &t->xc;
    br_ssl_client_zero(cc);
    br_ssl_engine_set_versions(&cc->eng, BR_TLS12, BR_TLS12);
    br_x509_minimal_init(xc, &br_sha256_vtable, anchors, nanchors);
    br_ssl_engine_set_suites(&cc->eng, suites, sizeof suites / sizeof *suites);
    br_ssl_engine_set_default_rsavrfy(&cc->eng);
    br_ssl_engine_set_default_ecdsa(&cc->eng);
    br_x509_minimal_set_rsa(xc, br_ssl_engine_get_rsavrfy(&cc->eng));
    br_x509_minimal_set_ecdsa(xc, br_ssl_engine_get_ec(&cc->eng), br_ssl_engine_get_ecdsa(&cc->eng));
    static const struct {
        int id;
        const br_hash_class *h;
    } hashes[] = {
        {br_sha256_ID, &br_sha256_vtable},
        {br_sha384_ID, &br_sha384_vtable},
        {br_sha512_ID, &br_sha512_vtable},
    };
    for (size_t i = 0; i < sizeof hashes / sizeof *hashes; i++) {
        br_ssl_engine_set_hash(&cc->eng, hashes[i].id, hashes[i].h);
        br_x509_minimal_set_hash(xc, hashes[i].id, hashes[i].h);
    }
    br_ssl_engine_set_x509(&cc->eng, &xc->vtable);
    br_ssl_engine_set_prf_sha256(&cc->eng, &br_tls12_sha256_prf);
    br_ssl_engine_set_prf_sha384(&cc->eng, &br_tls12_sha384_prf);
    br_ssl_engine_set_default_aes_gcm(&cc->eng);
    br_ssl_engine_set_default_chapol(&cc->eng);
}

struct tls *tls_client_new(const char *server_name, const char **why)
{
    const char *e = tls_load_anchors(NULL, NULL);
    if (e) {
        *why = e;
        return NULL;
    }
    if (strlen(server_name) > TLS_MAX_NAME) {
        *why = "host name too long";
        return NULL;
    }
    struct tls *t = calloc(1, sizeof *t);
    if (!t) {
        *why = "out of memory";
        return NULL;
    }
    strcpy(t->name, server_name);
    client_init(t);
    br_ssl_engine_set_buffer(&t->cc.eng, t->iobuf, sizeof t->iobuf, 1);
    /* the engine seeds itself from the OS too; this also works where /dev/urandom is missing */
    unsigned char seed[32];
    if (getrandom(seed, sizeof seed, GRND_NONBLOCK) == (ssize_t)sizeof seed)
        br_ssl_engine_inject_entropy(&t->cc.eng, seed, sizeof seed);
    if (!br_ssl_client_reset(&t->cc, t->name, 0)) {
        *why = br_ssl_engine_last_error(&t->cc.eng) == BR_ERR_NO_RANDOM ? "no randomness"
                                                                          : "engine reset failed";
        free(t);
        return NULL;
    }
    return t;
}

void tls_free(struct tls *t)
{
    free(t);
}

static const char *alert_name(int a)
{
    switch (a) {
    case 0:
        return "close_notify";
    case 10:
        return "unexpected_message";
    case 20:
        return "bad_record_mac";
    case 40:
        return "handshake_failure";
    case 42:
        return "bad_certificate";
    case 43:
        return "unsupported_certificate";
    case 44:
        return "certificate_revoked";
    case 45:
        return "certificate_expired";
    case 46:
        return "certificate_unknown";
    case 47:
        return "illegal_parameter";
    case 48:
        return "unknown_ca";
    case 50:
        return "decode_error";
    case 51:
        return "decrypt_error";
    case 70:
        return "protocol_version";
    case 71:
        return "insufficient_security";
    case 80:
        return "internal_error";
    case 112:
        return "unrecognized_name";
    default:
        return "alert";
    }
}

/* The engine's error code in words, into t->why. */
static void set_why(struct tls *t, int err)
{
    const char *s;
    switch (err) {
    case BR_ERR_X509_EXPIRED:
        s = "certificate expired or not yet valid (X509_EXPIRED)";
        break;
    case BR_ERR_X509_BAD_SERVER_NAME:
        snprintf(t->why, sizeof t->why, "certificate is not for %s (X509_BAD_SERVER_NAME)",
                 t->name);
        return;
    case BR_ERR_X509_NOT_TRUSTED:
        s = "certificate chain not trusted: unknown CA (X509_NOT_TRUSTED)";
        break;
    case BR_ERR_X509_NOT_CA:
        s = "an issuer in the chain is not a CA (X509_NOT_CA)";
        break;
    case BR_ERR_X509_BAD_SIGNATURE:
        s = "certificate signature invalid (X509_BAD_SIGNATURE)";
        break;
    case BR_ERR_X509_EMPTY_CHAIN:
        s = "the server sent no certificate (X509_EMPTY_CHAIN)";
        break;
    case BR_ERR_X509_DN_MISMATCH:
        s = "certificate chain out of order (X509_DN_MISMATCH)";
        break;
    case BR_ERR_X509_FORBIDDEN_KEY_USAGE:
        s = "certificate not for TLS servers (X509_FORBIDDEN_KEY_USAGE)";
        break;
    case BR_ERR_X509_WEAK_PUBLIC_KEY:
        s = "certificate key too weak (X509_WEAK_PUBLIC_KEY)";
        break;
    case BR_ERR_X509_CRITICAL_EXTENSION:
        s = "certificate has an unknown critical extension (X509_CRITICAL_EXTENSION)";
        break;
    case BR_ERR_X509_UNSUPPORTED:
        s = "certificate uses an unsupported algorithm (X509_UNSUPPORTED)";
        break;
    case BR_ERR_X509_TIME_UNKNOWN:
        s = "certificate validity cannot be checked: no clock (X509_TIME_UNKNOWN)";
        break;
    case BR_ERR_UNSUPPORTED_VERSION:
    case BR_ERR_BAD_VERSION:
        s = "the server does not speak TLS 1.2 (BAD_VERSION)";
        break;
    case BR_ERR_BAD_CIPHER_SUITE:
        s = "no common cipher suite (BAD_CIPHER_SUITE)";
        break;
    case BR_ERR_BAD_MAC:
        s = "record integrity check failed (BAD_MAC)";
        break;
    case BR_ERR_BAD_SIGNATURE:
        s = "server key exchange signature invalid (BAD_SIGNATURE)";
        break;
    case BR_ERR_NO_RANDOM:
        s = "no randomness (NO_RANDOM)";
        break;
    case BR_ERR_IO:
        s = "I/O error";
        break;
    default:
        if (err >= BR_ERR_RECV_FATAL_ALERT && err < BR_ERR_SEND_FATAL_ALERT) {
            snprintf(t->why, sizeof t->why, "the server sent the fatal alert %s (%d)",
                     alert_name(err - BR_ERR_RECV_FATAL_ALERT), err - BR_ERR_RECV_FATAL_ALERT);
            return;
        }
        if (err >= BR_ERR_SEND_FATAL_ALERT) {
            snprintf(t->why, sizeof t->why, "we sent the fatal alert %s (%d)",
                     alert_name(err - BR_ERR_SEND_FATAL_ALERT), err - BR_ERR_SEND_FATAL_ALERT);
            return;
        }
        snprintf(t->why, sizeof t->why, "%s error %d (bearssl.h BR_ERR_*)",
                 err >= BR_ERR_X509_OK ? "certificate" : "TLS", err);
        return;
    }
    snprintf(t->why, sizeof t->why, "%s", s);
}

/* The engine closed: TLS_FAIL with the reason, or 0 for a clean close_notify. */
static ssize_t closed(struct tls *t)
{
    int err = br_ssl_engine_last_error(&t->cc.eng);
    if (err == BR_ERR_OK) return 0;
    if (!t->failed) set_why(t, err);
    t->failed = 1;
    return TLS_FAIL;
}

/* Send one pending record chunk. 1 sent, 0 would block, -1 errno. */
static int send_records(struct tls *t, int fd)
{
    size_t len;
    unsigned char *buf = br_ssl_engine_sendrec_buf(&t->cc.eng, &len);
    ssize_t n;
    do
        n = send(fd, buf, len, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    if (n > 0) {
        br_ssl_engine_sendrec_ack(&t->cc.eng, (size_t)n);
        t->blocked = 0;
        return 1;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        t->blocked = 1;
        return 0;
    }
    return -1;
}

ssize_t tls_read(struct tls *t, int fd, void *dst, size_t cap)
{
    br_ssl_engine_context *e = &t->cc.eng;
    int send_blocked = 0;
    for (;;) {
        unsigned st = br_ssl_engine_current_state(e);
        if (st & (BR_SSL_SENDAPP | BR_SSL_RECVAPP)) t->ready = 1;
        if (st & BR_SSL_CLOSED) return closed(t);
        if (st & BR_SSL_RECVAPP) {
            size_t len;
            unsigned char *buf = br_ssl_engine_recvapp_buf(e, &len);
            if (len > cap) len = cap;
            memcpy(dst, buf, len);
            br_ssl_engine_recvapp_ack(e, len);
            return (ssize_t)len;
        }
        if ((st & BR_SSL_SENDREC) && !send_blocked) {
            int r = send_records(t, fd);
            if (r < 0) return -1;
            if (r == 0) send_blocked = 1;
            continue;
        }
        if (!(st & BR_SSL_RECVREC)) {
            errno = EAGAIN;
            return -1;
        }
        size_t len;
        unsigned char *buf = br_ssl_engine_recvrec_buf(e, &len);
        ssize_t n;
        do
            n = recv(fd, buf, len, 0);
        while (n < 0 && errno == EINTR);
        if (n > 0) {
            br_ssl_engine_recvrec_ack(e, (size_t)n);
            continue;
        }
        if (n == 0 && !tls_ready(t)) {
            snprintf(t->why, sizeof t->why, "the server closed the connection in the handshake");
            t->failed = 1;
            return TLS_FAIL;
        }
        return n; /* 0: EOF (a peer that closes without close_notify); -1: errno */
    }
}

ssize_t tls_write(struct tls *t, int fd, const void *p, size_t n)
{
    br_ssl_engine_context *e = &t->cc.eng;
    size_t taken = 0;
    for (;;) {
        unsigned st = br_ssl_engine_current_state(e);
        if (st & (BR_SSL_SENDAPP | BR_SSL_RECVAPP)) t->ready = 1;
        if (st & BR_SSL_CLOSED) {
            ssize_t r = closed(t);
            if (r == 0) { /* closed cleanly: nothing more can be sent */
                errno = EPIPE;
                return -1;
            }
            return r;
        }
        if (st & BR_SSL_SENDREC) {
            int r = send_records(t, fd);
            if (r < 0) return -1;
            if (r == 0) return (ssize_t)taken;
            continue;
        }
        if ((st & BR_SSL_SENDAPP) && taken < n) {
            size_t len;
            unsigned char *buf = br_ssl_engine_sendapp_buf(e, &len);
            if (len > n - taken) len = n - taken;
            memcpy(buf, (const unsigned char *)p + taken, len);
            br_ssl_engine_sendapp_ack(e, len);
            taken += len;
            if (taken == n) br_ssl_engine_flush(e, 0);
            continue;
        }
        return (ssize_t)taken;
    }
}

int tls_wants_out(const struct tls *t)
{
    return t->blocked && (br_ssl_engine_current_state(&t->cc.eng) & BR_SSL_SENDREC);
}

int tls_has_data(const struct tls *t)
{
    return (br_ssl_engine_current_state(&t->cc.eng) & BR_SSL_RECVAPP) != 0;
}

void tls_close_notify(struct tls *t)
{
    br_ssl_engine_close(&t->cc.eng);
}

int tls_ready(const struct tls *t)
{
    /* the engine takes application data only once the handshake is through */
    return t->ready;
}

const char *tls_why(const struct tls *t)
{
    return t->failed ? t->why : NULL;
}

#if !defined(__GLIBC__) && defined(__linux__)
/* Debian's libbearssl.a is built against glibc with _FORTIFY_SOURCE: a static musl build links
 * it with these three checked copies, which musl does not have. */
void *__memcpy_chk(void *d, const void *s, size_t n, size_t dn);
void *__memmove_chk(void *d, const void *s, size_t n, size_t dn);
void *__memset_chk(void *d, int c, size_t n, size_t dn);
void *__memcpy_chk(void *d, const void *s, size_t n, size_t dn)
{
    if (n > dn) abort();
    return memcpy(d, s, n);
}
void *__memmove_chk(void *d, const void *s, size_t n, size_t dn)
{
    if (n > dn) abort();
    return memmove(d, s, n);
}
void *__memset_chk(void *d, int c, size_t n, size_t dn)
{
    if (n > dn) abort();
    return memset(d, c, n);
}
#endif

#endif
