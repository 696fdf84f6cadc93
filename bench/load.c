/* load.c - a single-threaded epoll load generator for PeerPigeon signalling servers (ours or
 * the JS one), loopback only. Modes: `relay` (pairs of peers exchanging ~2.8 KB offers with a
 * bounded window per pair: delivered offers/s and end-to-end latency), `discover` (an announce
 * storm: peer-discovered messages/s) and `idle` (K announced peers that then sit idle while the
 * caller measures the server's memory). Client frames are masked (RFC 6455 5.3). Every mode is
 * bounded in time and stops by itself. Build: cc -O2 -I. bench/load.c ws.c -o build/load */
#define _GNU_SOURCE
#include "ws.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define SCRATCH (1u << 20)    /* shared read buffer; a partial frame is kept per connection */
#define MAX_FRAME (256u << 10)
#define CONNECTING_MAX 256    /* handshakes in progress at once (listen backlogs are finite) */
#define HIST_US 1000000       /* latency histogram: 1 us buckets up to 1 s, then overflow */
#define WS_KEY "dGhlIHNhbXBsZSBub25jZQ=="
#define SDP_TARGET 2800       /* bytes of the offer's data object */

enum { C_CONNECTING, C_HANDSHAKE, C_OPEN, C_DEAD };

struct client {
    int fd;
    int idx;
    uint8_t state;
    uint8_t want_out;
    uint8_t dirty;
    uint8_t announced;
    uint8_t mute; /* discover -R: never reads after its announce */
    uint8_t upgraded;
    char id[41];
    uint8_t *rb; /* leftover partial frame */
    size_t rlen;
    uint8_t *wb; /* queued output */
    size_t woff, wlen, wcap;
    uint32_t discovered;
    struct client *next_dirty;
};

static struct {
    const char *mode;
    int port;
    int pairs, window, duration, warmup;
    int peers, group, hold, timeout;
    int real_order; /* -k real: the npm client's key order (data before targetPeerId) */
    int server_pid; /* -P pid: read the server's CPU time around the measured relay window */
    int mute;       /* discover -R n: the first n peers never read after announcing */
} opt = {.mode = NULL, .port = 3000, .pairs = 50, .window = 16, .duration = 10, .warmup = 2,
         .peers = 1000, .group = 100, .hold = 5, .timeout = 60, .real_order = 0};

static struct client *cl;
static int ncl;
static int epfd;
static uint8_t *scratch;
static struct client *dirty_head;
static char accept_want[29];
static int nopen, nconnecting, next_to_open, ndead;
static uint64_t rng = 0x9e3779b97f4a7c15ull;

/* relay state */
static int *inflight;
static uint64_t delivered, delivered_meas, sent_total;
static uint32_t *hist;
static uint64_t hist_over, lat_max_us, lat_sum_us;
static int measuring;
static char *offer_tpl;
static size_t offer_len, offer_ts_at, offer_target_at;

/* discover state */
static uint64_t discovered_total;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint32_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 16);
}

static void die(const char *what)
{
    fprintf(stderr, "load: %s: %s\n", what, strerror(errno));
    exit(1);
}

/* utime + stime of a process (all its threads) in clock ticks, from /proc/<pid>/stat; -1 if
 * unreadable. Fields 14 and 15, counted after the ")" that ends the command name. */
static long long proc_ticks(int pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    unsigned long long ut, st;
    if (!p || sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return -1;
    return (long long)(ut + st);
}

/* ---- output ---- */

static void mark_dirty(struct client *c)
{
    if (c->dirty) return;
    c->dirty = 1;
    c->next_dirty = dirty_head;
    dirty_head = c;
}

static uint8_t *wreserve(struct client *c, size_t n)
{
    if (c->woff == c->wlen) c->woff = c->wlen = 0;
    if (c->wcap - c->wlen < n) {
        if (c->woff) {
            memmove(c->wb, c->wb + c->woff, c->wlen - c->woff);
            c->wlen -= c->woff;
            c->woff = 0;
        }
        if (c->wcap - c->wlen < n) {
            size_t cap = c->wcap ? c->wcap : 4096;
            while (cap - c->wlen < n) cap *= 2;
            c->wb = realloc(c->wb, cap);
            if (!c->wb) die("realloc");
            c->wcap = cap;
        }
    }
    return c->wb + c->wlen;
}

static void queue_raw(struct client *c, const void *p, size_t n)
{
    memcpy(wreserve(c, n), p, n);
    c->wlen += n;
    mark_dirty(c);
}

/* A masked client frame (RFC 6455 5.3: every client frame is masked). */
static void queue_frame(struct client *c, int op, const void *p, size_t n)
{
    uint8_t mask[4];
    uint32_t r = rnd() | 1;
    memcpy(mask, &r, 4);
    uint8_t *dst = wreserve(c, n + WS_MAX_HEADER);
    size_t hl = ws_frame_header(dst, op, 1, n, mask);
    memcpy(dst + hl, p, n);
    ws_mask(dst + hl, n, mask, 0);
    c->wlen += hl + n;
    mark_dirty(c);
}

static void set_out(struct client *c, int on)
{
    if (c->want_out == on) return;
    struct epoll_event ev = {.events = (c->mute ? 0 : EPOLLIN) | (on ? EPOLLOUT : 0),
                             .data.u32 = (uint32_t)c->idx};
    c->want_out = (uint8_t)on;
    epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

static void client_dead(struct client *c, const char *why)
{
    if (c->state == C_DEAD) return;
    if (c->state == C_OPEN) nopen--;
    else nconnecting--;
    c->state = C_DEAD;
    ndead++;
    if (ndead <= 5) fprintf(stderr, "load: client %d: %s\n", c->idx, why);
    epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->fd = -1;
}

static void flush_one(struct client *c)
{
    while (c->woff < c->wlen) {
        ssize_t n = send(c->fd, c->wb + c->woff, c->wlen - c->woff, MSG_NOSIGNAL);
        if (n > 0) {
            c->woff += (size_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && errno == EAGAIN) {
            set_out(c, 1);
            return;
        } else {
            client_dead(c, "send failed");
            return;
        }
    }
    c->woff = c->wlen = 0;
    if (c->wcap > (64u << 10)) { /* idle peers keep no big buffers */
        free(c->wb);
        c->wb = NULL;
        c->wcap = 0;
    }
    set_out(c, 0);
}

static void flush_all(void)
{
    while (dirty_head) {
        struct client *c = dirty_head;
        dirty_head = c->next_dirty;
        c->dirty = 0;
        if (c->state != C_DEAD && c->state != C_CONNECTING) flush_one(c);
    }
}

/* ---- connecting ---- */

static void client_open(struct client *c)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) die("socket");
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)opt.port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0 && errno != EINPROGRESS) die("connect");
    c->fd = fd;
    c->state = C_CONNECTING;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.u32 = (uint32_t)c->idx};
    c->want_out = 1;
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0) die("epoll_ctl");
    nconnecting++;
}

static void open_more(void)
{
    while (next_to_open < ncl && nconnecting < CONNECTING_MAX) client_open(&cl[next_to_open++]);
}

static void on_connected(struct client *c)
{
    int err = 0;
    socklen_t el = sizeof err;
    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
    if (err) {
        errno = err;
        client_dead(c, "connect failed");
        return;
    }
    char req[512];
    int n = snprintf(req, sizeof req,
                     "GET /?peerId=%s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: " WS_KEY "\r\n"
                     "Sec-WebSocket-Version: 13\r\n\r\n",
                     c->id, opt.port);
    c->state = C_HANDSHAKE;
    queue_raw(c, req, (size_t)n);
}

/* ---- messages ---- */

static void send_announce(struct client *c, const char *net)
{
    char m[256];
    int n = snprintf(m, sizeof m,
                     "{\"type\":\"announce\",\"networkName\":\"%s\",\"data\":{\"bench\":true}}", net);
    queue_frame(c, WS_OP_TEXT, m, (size_t)n);
    c->announced = 1;
}

/* The offer, with data = {"ts":"<20 digits>","type":"offer","sdp":"..."}. Key order "last"
 * (-k last, the default): {"type":"offer","targetPeerId":...,"networkName":...,"data":...}.
 * Key order "real" (-k real): what the npm client (peerpigeon 1.1.3, SignalingClient.js
 * sendSignalingMessage) sends: {type, data, maxPeers, networkName, targetPeerId} in that
 * order (maxPeers 3 is PeerPigeonMesh's default), so the target comes after the 2.8 KB data. */
static void build_offer(void)
{
    char sdp[SDP_TARGET + 256];
    size_t sl = 0;
    static const char *lines[] = {
        "v=0\\r\\no=- 4611731400430051336 2 IN IP4 127.0.0.1\\r\\ns=-\\r\\nt=0 0\\r\\n",
        "a=group:BUNDLE 0\\r\\na=extmap-allow-mixed\\r\\na=msid-semantic: WMS\\r\\n",
        "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\\r\\nc=IN IP4 0.0.0.0\\r\\n",
        "a=ice-ufrag:Zx9q\\r\\na=ice-pwd:Fq2v7lG8d3kPz0xYw1bNcRt5\\r\\na=ice-options:trickle\\r\\n",
        "a=fingerprint:sha-256 3A:1F:9C:44:E0:7B:22:DE:5A:90:6C:11:8F:B3:47:0D:C2:65:19:AE:"
        "F4:38:7E:5B:02:D9:A1:6F:83:CC:4E:17\\r\\n",
        "a=setup:actpass\\r\\na=mid:0\\r\\na=sctp-port:5000\\r\\na=max-message-size:262144\\r\\n",
        "a=candidate:1467250027 1 udp 2122260223 192.168.1.20 46243 typ host generation 0\\r\\n",
    };
    for (int i = 0; sl < SDP_TARGET - 200; i = (i + 1) % 7) {
        size_t l = strlen(lines[i]);
        memcpy(sdp + sl, lines[i], l);
        sl += l;
    }
    sdp[sl] = 0;
    offer_tpl = malloc(sl + 512);
    int n = opt.real_order
                ? sprintf(offer_tpl,
                          "{\"type\":\"offer\",\"data\":{\"ts\":\"%020d\",\"type\":\"offer\","
                          "\"sdp\":\"%s\"},\"maxPeers\":3,\"networkName\":\"bench\","
                          "\"targetPeerId\":\"%040d\"}",
                          0, sdp, 0)
                : sprintf(offer_tpl,
                          "{\"type\":\"offer\",\"targetPeerId\":\"%040d\",\"networkName\":\"bench\","
                          "\"data\":{\"ts\":\"%020d\",\"type\":\"offer\",\"sdp\":\"%s\"}}",
                          0, 0, sdp);
    offer_len = (size_t)n;
    offer_target_at = (size_t)(strstr(offer_tpl, "targetPeerId\":\"") - offer_tpl) + 15;
    offer_ts_at = (size_t)(strstr(offer_tpl, "\"ts\":\"") - offer_tpl) + 6;
}

static void send_offer(struct client *from, const struct client *to)
{
    char ts[24];
    snprintf(ts, sizeof ts, "%020llu", (unsigned long long)now_ns());
    memcpy(offer_tpl + offer_target_at, to->id, 40);
    memcpy(offer_tpl + offer_ts_at, ts, 20);
    queue_frame(from, WS_OP_TEXT, offer_tpl, offer_len);
    sent_total++;
}

/* Value of the top-level "type" (the first "type" key in both servers' messages). */
static int msg_type(const uint8_t *p, size_t n, const char **t, size_t *tl)
{
    const uint8_t *k = memmem(p, n < 64 ? n : 64, "\"type\":\"", 8);
    if (!k) return -1;
    const uint8_t *s = k + 8, *e = memchr(s, '"', n - (size_t)(s - p));
    if (!e) return -1;
    *t = (const char *)s;
    *tl = (size_t)(e - s);
    return 0;
}

static int type_is(const char *t, size_t tl, const char *s)
{
    return strlen(s) == tl && !memcmp(t, s, tl);
}

static void on_offer(struct client *c, const uint8_t *p, size_t n)
{
    const uint8_t *k = memmem(p, n, "\"ts\":\"", 6);
    uint64_t now = now_ns();
    if (!k) return;
    uint64_t ts = strtoull((const char *)k + 6, NULL, 10);
    int pair = c->idx / 2;
    inflight[pair]--;
    delivered++;
    if (!measuring) return;
    delivered_meas++;
    uint64_t us = (now - ts) / 1000;
    lat_sum_us += us;
    if (us > lat_max_us) lat_max_us = us;
    if (us < HIST_US) hist[us]++;
    else hist_over++;
}

static void on_message(struct client *c, const uint8_t *p, size_t n)
{
    const char *t;
    size_t tl;
    if (msg_type(p, n, &t, &tl)) return;
    if (type_is(t, tl, "peer-discovered")) {
        c->discovered++;
        discovered_total++;
    } else if (type_is(t, tl, "offer")) {
        on_offer(c, p, n);
    } else if (type_is(t, tl, "connected")) {
        nopen++;
        nconnecting--;
        c->state = C_OPEN;
    } else if (type_is(t, tl, "error")) {
        static int shown;
        if (shown++ < 3) fprintf(stderr, "load: client %d: %.*s\n", c->idx, (int)n, (const char *)p);
    }
}

/* ---- reading ---- */

static size_t handshake(struct client *c, const uint8_t *p, size_t n)
{
    const uint8_t *e = memmem(p, n, "\r\n\r\n", 4);
    if (!e) return 0;
    size_t hl = (size_t)(e - p) + 4;
    if (n < 12 || memcmp(p + 9, "101", 3) || !memmem(p, hl, accept_want, 28)) {
        client_dead(c, "handshake refused");
        return n;
    }
    c->upgraded = 1; /* open once "connected" arrives */
    return hl;
}

static size_t frames(struct client *c, uint8_t *p, size_t n)
{
    size_t used = 0;
    if (!c->upgraded) {
        size_t h = handshake(c, p, n);
        if (h == 0 || c->state == C_DEAD) return h;
        used = h;
    }
    while (c->state != C_DEAD) {
        struct ws_frame f;
        uint16_t code;
        const char *reason;
        int h = ws_frame_parse(p + used, n - used, 0, MAX_FRAME, &f, &code, &reason);
        if (h == WS_INCOMPLETE) break;
        if (h == WS_ERROR) {
            client_dead(c, reason);
            return n;
        }
        if (n - used - (size_t)h < f.payload_len) break;
        uint8_t *pl = p + used + h;
        size_t pn = (size_t)f.payload_len;
        used += (size_t)h + pn;
        if (f.opcode == WS_OP_PING) {
            queue_frame(c, WS_OP_PONG, pl, pn);
        } else if (f.opcode == WS_OP_CLOSE) {
            if (pn >= 2)
                fprintf(stderr, "load: client %d closed by server: %u %.*s\n", c->idx,
                        (unsigned)(pl[0] << 8 | pl[1]), (int)pn - 2, (const char *)pl + 2);
            client_dead(c, "closed by server");
            return n;
        } else if (f.opcode == WS_OP_TEXT || f.opcode == WS_OP_BINARY) {
            on_message(c, pl, pn); /* servers send unfragmented messages */
        }
    }
    return used;
}

static void readable(struct client *c)
{
    for (int i = 0; i < 16 && c->state != C_DEAD; i++) {
        size_t have = c->rlen;
        if (have) memcpy(scratch, c->rb, have);
        ssize_t n = recv(c->fd, scratch + have, SCRATCH - have, 0);
        if (n == 0) {
            client_dead(c, "EOF");
            return;
        }
        if (n < 0) {
            if (errno != EAGAIN && errno != EINTR) client_dead(c, "recv failed");
            return;
        }
        size_t total = have + (size_t)n;
        size_t used = frames(c, scratch, total);
        if (c->state == C_DEAD) return;
        size_t left = total - used;
        if (left) {
            c->rb = realloc(c->rb, left);
            memcpy(c->rb, scratch + used, left);
        } else {
            free(c->rb);
            c->rb = NULL;
        }
        c->rlen = left;
        if ((size_t)n < SCRATCH - have) return;
    }
}

/* ---- the loop ---- */

static void loop_once(int timeout_ms)
{
    struct epoll_event evs[512];
    int n = epoll_wait(epfd, evs, 512, timeout_ms);
    for (int i = 0; i < n; i++) {
        struct client *c = &cl[evs[i].data.u32];
        if (c->state == C_DEAD) continue;
        if (c->state == C_CONNECTING) {
            if (evs[i].events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) {
                set_out(c, 0);
                on_connected(c);
            }
            continue;
        }
        if (!c->mute && (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))) readable(c);
        if (c->state != C_DEAD && (evs[i].events & EPOLLOUT)) mark_dirty(c);
    }
    flush_all();
}

static void make_clients(int n, uint32_t run)
{
    ncl = n;
    cl = calloc((size_t)n, sizeof *cl);
    if (!cl) die("calloc");
    for (int i = 0; i < n; i++) {
        cl[i].idx = i;
        cl[i].fd = -1;
        snprintf(cl[i].id, sizeof cl[i].id, "%08x%032x", run, i);
    }
}

/* Open all clients and wait for every "connected"; returns seconds taken or -1. */
static double connect_all(uint64_t deadline)
{
    uint64_t t0 = now_ns();
    while (nopen + ndead < ncl && now_ns() < deadline) {
        open_more();
        loop_once(50);
    }
    if (nopen < ncl) {
        fprintf(stderr, "load: only %d of %d clients connected (%d failed)\n", nopen, ncl, ndead);
        return -1;
    }
    return (double)(now_ns() - t0) / 1e9;
}

static uint64_t pct(double q)
{
    uint64_t want = (uint64_t)(q * (double)delivered_meas + 0.5), acc = 0;
    if (want == 0) want = 1;
    for (uint32_t i = 0; i < HIST_US; i++) {
        acc += hist[i];
        if (acc >= want) return i;
    }
    return lat_max_us;
}

static int run_relay(void)
{
    int np = opt.pairs, total_peers = 2 * opt.pairs;
    uint64_t deadline = now_ns() + (uint64_t)opt.timeout * 1000000000ull;
    make_clients(total_peers, rnd());
    inflight = calloc((size_t)np, sizeof *inflight);
    hist = calloc(HIST_US, sizeof *hist);
    build_offer();
    if (connect_all(deadline) < 0) return 1;
    for (int i = 0; i < ncl; i++) send_announce(&cl[i], "bench");
    uint64_t want = (uint64_t)total_peers * (uint64_t)(total_peers - 1);
    while (discovered_total < want && now_ns() < deadline && ndead == 0) loop_once(50);
    if (discovered_total < want) {
        fprintf(stderr, "load: announce exchange incomplete: %llu of %llu\n",
                (unsigned long long)discovered_total, (unsigned long long)want);
        return 1;
    }
    uint64_t start = now_ns();
    uint64_t meas_start = start + (uint64_t)opt.warmup * 1000000000ull;
    uint64_t end = meas_start + (uint64_t)opt.duration * 1000000000ull;
    uint64_t t;
    long long cpu0 = -1, cpu1 = -1;
    while ((t = now_ns()) < end && ndead == 0) {
        if (!measuring && t >= meas_start) {
            measuring = 1;
            meas_start = t;
            if (opt.server_pid) cpu0 = proc_ticks(opt.server_pid);
        }
        for (int p = 0; p < np; p++)
            while (inflight[p] < opt.window) {
                send_offer(&cl[2 * p], &cl[2 * p + 1]);
                inflight[p]++;
            }
        flush_all();
        loop_once(10);
    }
    if (opt.server_pid) cpu1 = proc_ticks(opt.server_pid);
    double secs = (double)(now_ns() - meas_start) / 1e9;
    if (ndead) {
        fprintf(stderr, "load: %d clients died during the run\n", ndead);
        return 1;
    }
    printf("relay: %d pairs, window %d, %zu-byte offers (data %s, key order %s), %.1f s measured\n",
           np, opt.window, offer_len, "~2.8 KB", opt.real_order ? "real" : "last", secs);
    printf("RESULT relay offers_per_s=%.0f p50_us=%llu p99_us=%llu max_us=%llu mean_us=%.0f "
           "delivered=%llu\n",
           (double)delivered_meas / secs, (unsigned long long)pct(0.50),
           (unsigned long long)pct(0.99), (unsigned long long)lat_max_us,
           delivered_meas ? (double)lat_sum_us / (double)delivered_meas : 0.0,
           (unsigned long long)delivered_meas);
    if (opt.server_pid) {
        if (cpu0 < 0 || cpu1 < 0) {
            fprintf(stderr, "load: cannot read /proc/%d/stat\n", opt.server_pid);
        } else {
            /* the server's CPU time over exactly the measured window, per offer delivered in
             * it (10 ms ticks: about 1 % over a few seconds at full load) */
            double us = (double)(cpu1 - cpu0) * 1e6 / (double)sysconf(_SC_CLK_TCK);
            printf("RESULT cpu server_cpu_us=%.0f server_us_per_msg=%.3f server_cpu_share=%.2f\n",
                   us, delivered_meas ? us / (double)delivered_meas : 0.0, us / 1e6 / secs);
        }
    }
    return 0;
}

/* The server's peak RSS so far (VmHWM), kB; -1 if unknown. */
static long server_hwm_kb(void)
{
    char path[64], line[256];
    long kb = -1;
    snprintf(path, sizeof path, "/proc/%d/status", opt.server_pid);
    FILE *f = opt.server_pid ? fopen(path, "r") : NULL;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "VmHWM:", 6)) kb = strtol(line + 6, NULL, 10);
    if (f) fclose(f);
    return kb;
}

static int run_discover(void)
{
    uint64_t deadline = now_ns() + (uint64_t)opt.timeout * 1000000000ull;
    make_clients(opt.peers, rnd());
    double ct = connect_all(deadline);
    if (ct < 0) return 1;
    int readers = ncl - opt.mute;
    /* every reader hears of every other reader at least (of a non-reader too, unless it was
     * cut off before that reader announced) */
    uint64_t want = opt.mute ? (uint64_t)readers * (uint64_t)(readers - 1)
                             : (uint64_t)ncl * (uint64_t)(ncl - 1);
    uint64_t t0 = now_ns();
    long long cpu0 = opt.server_pid ? proc_ticks(opt.server_pid) : -1;
    for (int i = 0; i < ncl; i++) send_announce(&cl[i], "storm");
    flush_all();
    for (int i = 0; i < opt.mute && i < ncl; i++) {
        cl[i].mute = 1;
        struct epoll_event ev = {.events = cl[i].want_out ? EPOLLOUT : 0, .data.u32 = (uint32_t)i};
        epoll_ctl(epfd, EPOLL_CTL_MOD, cl[i].fd, &ev);
    }
    while (discovered_total < want && now_ns() < deadline && ndead == 0) loop_once(50);
    double secs = (double)(now_ns() - t0) / 1e9;
    long long cpu1 = opt.server_pid ? proc_ticks(opt.server_pid) : -1;
    if (opt.mute) { /* then what else comes, until a quiet second */
        uint64_t last = discovered_total, quiet = now_ns();
        while (now_ns() < deadline && now_ns() - quiet < 1000000000ull) {
            loop_once(50);
            if (discovered_total != last) last = discovered_total, quiet = now_ns();
        }
    }
    printf("discover: %d peers connected in %.2f s (%d never read); %llu of %llu peer-discovered "
           "in %.3f s\n",
           ncl, ct, opt.mute, (unsigned long long)discovered_total, (unsigned long long)want, secs);
    printf("RESULT discover peers=%d discovered_per_s=%.0f complete=%d secs=%.3f", ncl,
           (double)discovered_total / secs, discovered_total >= want, secs);
    if (opt.server_pid && cpu0 >= 0 && cpu1 >= 0)
        printf(" server_peak_rss_kb=%ld server_ns_per_msg=%.1f", server_hwm_kb(),
               (double)(cpu1 - cpu0) * 1e9 / (double)sysconf(_SC_CLK_TCK) /
                   (double)(discovered_total ? discovered_total : 1));
    printf("\n");
    return discovered_total >= want ? 0 : 1;
}

static int run_idle(void)
{
    uint64_t deadline = now_ns() + (uint64_t)opt.timeout * 1000000000ull;
    make_clients(opt.peers, rnd());
    double ct = connect_all(deadline);
    if (ct < 0) return 1;
    uint64_t want = 0;
    int g = opt.group;
    for (int i = 0; i < ncl; i++) {
        char net[32];
        snprintf(net, sizeof net, "idle-%d", i / g);
        send_announce(&cl[i], net);
        int size = (i / g == (ncl - 1) / g) ? ncl - (i / g) * g : g;
        want += (uint64_t)(size - 1);
    }
    while (discovered_total < want && now_ns() < deadline && ndead == 0) loop_once(50);
    if (discovered_total < want) {
        fprintf(stderr, "load: announces incomplete: %llu of %llu\n",
                (unsigned long long)discovered_total, (unsigned long long)want);
        return 1;
    }
    for (int i = 0; i < ncl; i++) { /* give back what the storm made us allocate */
        free(cl[i].wb);
        cl[i].wb = NULL;
        cl[i].wcap = 0;
    }
    printf("idle: %d peers connected in %.2f s and announced into %d networks of %d\n", ncl, ct,
           (ncl + g - 1) / g, g);
    printf("IDLE_READY\n");
    fflush(stdout);
    uint64_t until = now_ns() + (uint64_t)opt.hold * 1000000000ull;
    while (now_ns() < until && ndead == 0) loop_once(100);
    printf("RESULT idle peers=%d died=%d\n", ncl, ndead);
    return ndead ? 1 : 0;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: load relay|discover|idle [-p port] [-n pairs] [-w window] [-d secs]\n"
            "            [-W warmup-secs] [-m peers] [-g peers-per-network] [-H hold-secs]\n"
            "            [-t timeout-secs] [-k last|real] [-P server-pid] [-R non-readers]\n"
            "  relay:    n pairs announce into one network; each sender keeps w offers in flight;\n"
            "            -k: offer key order, targetPeerId first and data last (default) or the\n"
            "            npm client's (type, data, maxPeers, networkName, targetPeerId);\n"
            "            -P: also print the server's CPU time (utime+stime from /proc) over the\n"
            "            measured window, and per delivered offer\n"
            "  discover: m peers connect, then all announce at once into one network; -R: the\n"
            "            first R never read after announcing; -P: print the server's peak RSS\n"
            "  idle:     m peers announce into networks of g and stay idle for H seconds;\n"
            "            prints IDLE_READY when settled\n");
    exit(2);
}

int main(int argc, char **argv)
{
    if (argc < 2) usage();
    opt.mode = argv[1];
    for (int i = 2; i < argc; i++) {
        if (argv[i][0] != '-' || !argv[i][1] || argv[i][2] || i + 1 >= argc) usage();
        int v = atoi(argv[i + 1]);
        if (argv[i][1] == 'k') {
            if (!strcmp(argv[i + 1], "real")) opt.real_order = 1;
            else if (!strcmp(argv[i + 1], "last")) opt.real_order = 0;
            else usage();
            i++;
            continue;
        }
        switch (argv[i][1]) {
        case 'p': opt.port = v; break;
        case 'n': opt.pairs = v; break;
        case 'w': opt.window = v; break;
        case 'd': opt.duration = v; break;
        case 'W': opt.warmup = v; break;
        case 'm': opt.peers = v; break;
        case 'g': opt.group = v; break;
        case 'H': opt.hold = v; break;
        case 't': opt.timeout = v; break;
        case 'P': opt.server_pid = v; break;
        case 'R': opt.mute = v; break;
        default: usage();
        }
        i++;
    }
    if (opt.pairs < 1 || opt.window < 1 || opt.peers < 2 || opt.group < 2 || opt.duration < 1)
        usage();
    signal(SIGPIPE, SIG_IGN);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    rng ^= now_ns() ^ ((uint64_t)getpid() << 32);
    scratch = malloc(SCRATCH + MAX_FRAME);
    epfd = epoll_create1(EPOLL_CLOEXEC);
    if (!scratch || epfd < 0) die("setup");
    ws_accept_key(WS_KEY, strlen(WS_KEY), accept_want);
    int rc;
    if (!strcmp(opt.mode, "relay")) rc = run_relay();
    else if (!strcmp(opt.mode, "discover")) rc = run_discover();
    else if (!strcmp(opt.mode, "idle")) rc = run_idle();
    else usage();
    /* leave no TIME_WAIT behind on the client side: reset on close */
    struct linger lg = {1, 0};
    for (int i = 0; i < ncl; i++)
        if (cl[i].fd >= 0) {
            setsockopt(cl[i].fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
            close(cl[i].fd);
        }
    return rc;
}
