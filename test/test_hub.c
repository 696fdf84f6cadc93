/* test_hub.c - unit tests of hub mode (hub.c, PROTOCOL.md section 5) on test/fake_conn.c: one
 * bootstrap link (a numeric ws:// URL) dialled at a tick, connected, answered with a 101 built
 * for its key; inbound hubs are clients that announce isHub. Covers: the announce and the sync
 * on open, peers learnt from a link and told to local clients, relaying with hubHops, the hop
 * limit, the dedup window, withdrawals and tombstones (originSeq), link loss, a peer that moved
 * here, a remote peer hidden by a local one and revealed when it goes, inbound hubs (hub-info and
 * the sync), and the 101 answers that are refused. */
#include "conn.h"
#include "fake_conn.h"
#include "hub.h"
#include "json.h"
#include "peer.h"
#include "t.h"
#include "ws.h"

#include <stdarg.h>
#include <stdlib.h>

#define PING_MS 30000
#define HUBID "fedcba9876543210fedcba9876543210fedcba98"
#define IDA "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define IDB "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define IDC "cccccccccccccccccccccccccccccccccccccccc"
#define IDH "4444444444444444444444444444444444444444" /* an inbound hub */
#define IDR "1111111111111111111111111111111111111111" /* peers of other hubs */
#define IDS "2222222222222222222222222222222222222222"
#define IDT "3333333333333333333333333333333333333333" /* nobody knows it */

/* the number member key of message s, or -1 */
static long long num_member(const char *s, const char *key)
{
    struct json_val root, v;
    if (!s || json_value(s, strlen(s), &root) || !json_get(&root, key, &v) || v.type != JSON_NUMBER)
        return -1;
    return strtoll(v.p, NULL, 10);
}

static struct conn *join(const char *id, const char *net)
{
    struct conn *c = fake_client(id);
    if (net) fake_sendq(c, "{'type':'announce','networkName':'%s'}", net);
    return c;
}

/* The link's next attempt: past any backoff, a tick dials. The new connection, or NULL. */
static struct conn *dial_link(void)
{
    fake_advance(31000);
    fake_tick();
    for (int i = 0; i < fake_nconns(); i++) {
        struct conn *c = fake_conn_at(i);
        if (fake_kind(c) == FAKE_DIAL && fake_state(c) == FAKE_OPEN && fake_dial_stage(c) == 0)
            return c;
    }
    return NULL;
}

static struct conn *link_up(void)
{
    struct conn *l = dial_link();
    CHECK(l != NULL);
    if (!l) return NULL;
    fake_connected(l);
    CHECK(fake_handshake(l, 1) == 0);
    CHECK(hub_links_connected() == 1);
    return l;
}

/* A peer-discovered from a hub (seq 0: without originSeq). */
static void discovered(struct conn *from, const char *id, const char *net, unsigned long long seq)
{
    char s[48] = "";
    if (seq) snprintf(s, sizeof s, ",'originSeq':%llu", seq);
    fake_sendq(from,
               "{'type':'peer-discovered','data':{'peerId':'%s','isHub':false,'x':1},"
               "'networkName':'%s','fromPeerId':'system'%s}",
               id, net, s);
}

static void disconnected(struct conn *from, const char *id, const char *reason,
                         unsigned long long seq)
{
    char s[48] = "";
    if (seq) snprintf(s, sizeof s, ",'originSeq':%llu", seq);
    fake_sendq(from,
               "{'type':'peer-disconnected','data':{'peerId':'%s','isHub':false,'reason':'%s'},"
               "'networkName':'net-a','fromPeerId':'system'%s}",
               id, reason, s);
}

static struct conn *inbound_hub(void)
{
    struct conn *h = fake_client(IDH);
    fake_sendq(h, "{'type':'announce','networkName':'pigeonhub-mesh','data':{'isHub':true}}");
    CHECK(peer_has_hub_rights(conn_owner(h)));
    return h;
}

static void done(void)
{
    fake_shutdown();
    CHECK(fake_nconns() == 0 && conn_ws_count() == 0);
    CHECK(peer_count() == 0 && peer_hub_count() == 0 && peer_network_count() == 0);
    CHECK(peer_sync_bytes(NULL, 0) == 0); /* no remote peer left either */
    CHECK(hub_links_connected() == 0);
    CHECKF(fake_violations() == 0, "%d rules broken", fake_violations());
    fake_advance(61000); /* tombstones and the dedup window of this case are over */
}

static void test_open_and_sync(void)
{
    struct conn *a = join(IDA, "net-a"), *b = join(IDB, "net-b");
    struct conn *g = fake_client(IDC); /* never announced: not synced */
    struct conn *h = inbound_hub();
    struct conn *l = dial_link();
    CHECK(l && fake_dial_stage(l) == 0 && hub_links_total() == 1 && hub_links_connected() == 0);
    fake_connected(l);
    const char *req = fake_request(l);
    CHECK(!strncmp(req, "GET /?peerId=" HUBID " HTTP/1.1\r\n", 13 + 40 + 11));
    CHECK(strstr(req, "\r\nHost: 127.0.0.2:9\r\n") && strstr(req, "\r\nUpgrade: websocket\r\n"));
    CHECK(strlen(fake_ws_key(l)) == 24 && !strstr(req, "Authorization"));
    CHECK(strstr(req, "\r\nSec-WebSocket-Version: 13\r\n") && strstr(req, "\r\n\r\n"));
    CHECK(fake_count(l, NULL) == 0);
    CHECK(fake_handshake(l, 1) == 0 && fake_dial_stage(l) == 2 && hub_links_connected() == 1);
    /* first the announce into the hub namespace, then one peer-discovered per local client */
    const char *m = fake_nth(l, NULL, 0);
    CHECK(fake_str_member(m, 0, "type", "announce") &&
          fake_str_member(m, 0, "networkName", "pigeonhub-mesh"));
    CHECK(fake_has(m, "'isHub':true") && fake_has(m, "'port':3000") &&
          fake_has(m, "'host':'localhost'"));
    CHECK(fake_has(m, "'capabilities':['signaling','relay']"));
    /* then hub-info (so that a hub of ours reads our floods as ours), then the sync */
    CHECK(fake_str_member(fake_nth(l, NULL, 1), 0, "type", "hub-info"));
    CHECK(fake_count(l, NULL) == 4 && fake_count(l, "peer-discovered") == 2);
    for (int i = 0; i < 2; i++) {
        m = fake_nth(l, "peer-discovered", i);
        int is_a = fake_str_member(m, 1, "peerId", IDA);
        const char *id = is_a ? IDA : IDB;
        CHECK(fake_str_member(m, 0, "networkName", is_a ? "net-a" : "net-b"));
        CHECK(num_member(m, "originSeq") == (long long)peer_seq(peer_find(id)));
        CHECK(fake_has(m, "'isHub':false") && !fake_has(m, "targetPeerId"));
        CHECK(fake_str_member(m, 0, "originHub", HUBID)); /* we are the origin of our clients */
    }
    CHECK(!fake_has(fake_last(l, "peer-discovered"), IDC) &&
          !fake_has(fake_last(l, "peer-discovered"), IDH));
    /* later announces and leaves go on the link (and to inbound hubs) too */
    fake_clear_all();
    fake_sendq(g, "{'type':'announce','networkName':'net-a'}");
    CHECK(fake_count(l, "peer-discovered") == 1 &&
          fake_str_member(fake_last(l, NULL), 1, "peerId", IDC));
    CHECK(num_member(fake_last(l, NULL), "originSeq") == (long long)peer_seq(conn_owner(g)));
    CHECK(fake_count(h, "peer-discovered") == 1);
    unsigned long long seq = peer_seq(conn_owner(g));
    conn_close(g, 1000, "bye");
    m = fake_last(l, "peer-disconnected");
    CHECK(fake_str_member(m, 1, "peerId", IDC) && fake_str_member(m, 1, "reason", "bye"));
    CHECK(num_member(m, "originSeq") == (long long)seq && !fake_has(m, "targetPeerId"));
    CHECK(fake_count(h, "peer-disconnected") == 1);
    /* a client becoming a hub is withdrawn from the other hubs */
    fake_clear_all();
    fake_sendq(b, "{'type':'announce','networkName':'net-b','data':{'isHub':true}}");
    CHECK(fake_str_member(fake_last(l, "peer-disconnected"), 1, "reason", "became a hub"));
    static char buf[4096];
    struct json_writer w;
    json_writer_init(&w, buf, sizeof buf);
    hub_write_bootstrap(&w);
    buf[w.len] = 0;
    CHECK(fake_has(buf, "'uri':'ws://127.0.0.2:9'") && fake_has(buf, "'connected':true"));
    (void)a;
    done();
}

static void test_remote_peers(void)
{
    struct conn *a = join(IDA, "net-a"), *b = join(IDB, "net-b");
    struct conn *l = link_up();
    fake_clear_all();
    discovered(l, IDR, "net-a", 100);
    CHECK(peer_remote_find(IDR) != NULL && peer_via(peer_remote_find(IDR)) == l);
    const char *m = fake_last(a, "peer-discovered");
    CHECK(fake_count(a, "peer-discovered") == 1 && fake_str_member(m, 1, "peerId", IDR));
    CHECK(fake_str_member(m, 0, "targetPeerId", IDA) && fake_has(m, "'x':1") &&
          !fake_has(m, "originSeq"));
    CHECK(fake_count(b, NULL) == 0);
    /* a JS hub does not replay its late joiners: our peers of net-a go back on the link */
    CHECK(fake_count(l, "peer-discovered") == 1 &&
          fake_str_member(fake_last(l, NULL), 1, "peerId", IDA));
    /* the same again: known, nobody told */
    fake_clear_all();
    discovered(l, IDR, "net-a", 100);
    CHECK(fake_count(a, NULL) == 0 && fake_count(l, NULL) == 0);
    /* a client announcing later hears of it */
    struct conn *c = join(IDC, "net-a");
    CHECK(fake_count(c, "peer-discovered") == 2);
    int seen = 0;
    for (int i = 0; i < 2; i++)
        seen += fake_str_member(fake_nth(c, "peer-discovered", i), 1, "peerId", IDR);
    CHECK(seen == 1);
    /* hub-info: a peerpigeon-c hub replays itself, no replay from us any more */
    fake_sendq(l, "{'type':'hub-info','data':{'server':'peerpigeon-c','cachesPeers':true}}");
    fake_clear_all();
    discovered(l, IDS, "net-a", 100);
    CHECK(fake_count(a, "peer-discovered") == 1 && fake_count(l, NULL) == 0);
    /* isHub entries, our own id and a bad id are not kept */
    fake_sendq(
        l, "{'type':'peer-discovered','data':{'peerId':'%s','isHub':true},'networkName':'net-a'}",
        IDT);
    discovered(l, HUBID, "net-a", 0);
    discovered(l, "zz00000000000000000000000000000000000000", "net-a", 0);
    CHECK(peer_remote_find(IDT) == NULL && peer_remote_find(HUBID) == NULL);
    /* a remote peer moving to another network */
    fake_clear_all();
    discovered(l, IDS, "net-b", 200);
    CHECK(fake_str_member(fake_last(a, "peer-disconnected"), 1, "reason", "network changed"));
    CHECK(fake_str_member(fake_last(b, "peer-discovered"), 1, "peerId", IDS));
    done();
}

static void test_relay(void)
{
    struct conn *a = join(IDA, "net-a");
    struct conn *l = link_up();
    struct conn *h = inbound_hub();
    discovered(l, IDR, "net-a", 100);
    fake_clear_all();
    /* a local client's signal to a remote peer: on its link, hubHops 1, fromPeerId kept */
    fake_sendq(a, "{'type':'offer','targetPeerId':'%s','networkName':'net-a','data':{'sdp':1}}",
               IDR);
    const char *m = fake_last(l, "offer");
    CHECK(fake_count(l, "offer") == 1 && num_member(m, "hubHops") == 1);
    CHECK(fake_str_member(m, 0, "fromPeerId", IDA) && fake_str_member(m, 0, "targetPeerId", IDR));
    CHECK(fake_has(m, "'data':{'sdp':1}") && fake_str_member(m, 0, "networkName", "net-a"));
    CHECK(fake_count(h, NULL) == 0); /* only where the target was learnt */
    /* its echo from another hub is dropped (dedup) */
    fake_sendq(h,
               "{'type':'offer','targetPeerId':'%s','fromPeerId':'%s','networkName':'net-a',"
               "'data':{'sdp':1},'hubHops':1}",
               IDR, IDA);
    CHECK(fake_count(l, "offer") == 1);
    /* a signal from a hub to a local client: delivered with the original fromPeerId */
    fake_sendq(l,
               "{'type':'answer','targetPeerId':'%s','fromPeerId':'%s','networkName':'net-a',"
               "'data':2,'hubHops':1}",
               IDA, IDR);
    CHECK(fake_count(a, "answer") == 1 &&
          fake_str_member(fake_last(a, "answer"), 0, "fromPeerId", IDR));
    CHECK(!fake_has(fake_last(a, "answer"), "hubHops"));
    /* for a target nobody here knows: on to the other hubs only from the first hub (one copy
     * per hub, not one per path), one hop more */
    static const struct {
        const char *hops;
        int relayed; /* the hubHops sent on, 0 = not relayed */
    } rows[] = {
        {NULL, 1},  {"0", 1},          {"3", 0},          {"7", 0},
        {"8", 0},   {"9", 0},          {"-1", 0},         {"0.5", 0},
        {"1e3", 0}, {"4294967296", 0}, {"4294967297", 0}, {"18446744073709551617", 0},
        {"'3'", 1},
    };
    for (size_t i = 0; i < sizeof rows / sizeof *rows; i++) {
        char hops[64] = "";
        if (rows[i].hops) snprintf(hops, sizeof hops, ",'hubHops':%s", rows[i].hops);
        fake_clear_all();
        fake_sendq(
            l,
            "{'type':'ice-candidate','targetPeerId':'%s','fromPeerId':'%s','networkName':'net-a',"
            "'data':%zu%s}",
            IDT, IDR, i, hops);
        m = fake_last(h, "ice-candidate");
        CHECKF(fake_count(h, NULL) == (rows[i].relayed ? 1 : 0), "hops %s", rows[i].hops);
        if (rows[i].relayed)
            CHECKF(num_member(m, "hubHops") == rows[i].relayed &&
                       fake_str_member(m, 0, "fromPeerId", IDR),
                   "hops %s: %s", rows[i].hops, m);
        CHECK(fake_count(l, NULL) == 0 && fake_count(a, NULL) == 0); /* never back */
    }
    /* the dedup window: the same signal twice within 5 s goes on once, later again */
    fake_clear_all();
    static const char sig[] = "{'type':'offer','targetPeerId':'" IDT "','fromPeerId':'" IDR
                              "','networkName':'net-a','data':'same'}";
    fake_deliver(l, fake_q(sig));
    fake_deliver(l, fake_q(sig));
    CHECK(fake_count(h, "offer") == 1);
    fake_advance(4999);
    fake_deliver(l, fake_q(sig));
    CHECK(fake_count(h, "offer") == 1);
    fake_advance(5000);
    fake_deliver(l, fake_q(sig));
    CHECK(fake_count(h, "offer") == 2);
    /* other data, type or sender is another signal */
    fake_sendq(l, "{'type':'offer','targetPeerId':'%s','fromPeerId':'%s','data':'other'}", IDT,
               IDR);
    fake_sendq(l, "{'type':'answer','targetPeerId':'%s','fromPeerId':'%s','data':'same'}", IDT,
               IDR);
    fake_sendq(l, "{'type':'offer','targetPeerId':'%s','fromPeerId':'%s','data':'same'}", IDT, IDS);
    /* ...but a sender this link never told us of is not relayed for it (scoped rights) */
    CHECK(fake_count(h, NULL) == 4);
    /* a hub's signal without a valid fromPeerId, or to this hub itself, goes nowhere */
    fake_clear_all();
    fake_sendq(l, "{'type':'offer','targetPeerId':'%s','data':'x1'}", IDA);
    fake_sendq(l, "{'type':'offer','targetPeerId':'%s','fromPeerId':'nope','data':'x2'}", IDA);
    fake_sendq(l, "{'type':'offer','targetPeerId':'%s','fromPeerId':'%s','data':'x3'}", HUBID, IDR);
    CHECK(fake_count(a, NULL) == 0 && fake_count(h, NULL) == 0 && fake_count(l, NULL) == 0);
    /* a target that is local but in another network is not relayed either */
    fake_sendq(l,
               "{'type':'offer','targetPeerId':'%s','fromPeerId':'%s','networkName':'x','data':4}",
               IDA, IDR);
    CHECK(fake_count(a, NULL) == 0 && fake_count(h, NULL) == 0);
    done();
}

static void test_withdrawals(void)
{
    struct conn *a = join(IDA, "net-a");
    struct conn *l = link_up();
    struct conn *h = inbound_hub();
    fake_clear_all();
    discovered(l, IDR, "net-a", 100);
    CHECK(fake_count(h, "peer-discovered") == 1); /* flooded on, not back to the link */
    CHECK(fake_str_member(fake_last(h, "peer-discovered"), 1, "peerId", IDR));
    CHECK(num_member(fake_last(h, "peer-discovered"), "originSeq") == 100);
    fake_clear_all();
    disconnected(l, IDR, "left", 100);
    const char *m = fake_last(a, "peer-disconnected");
    CHECK(fake_count(a, "peer-disconnected") == 1 && fake_str_member(m, 1, "peerId", IDR));
    CHECK(fake_str_member(m, 1, "reason", "left") && fake_str_member(m, 0, "targetPeerId", IDA));
    CHECK(peer_remote_find(IDR) == NULL);
    m = fake_last(h, "peer-disconnected");
    CHECK(fake_count(h, "peer-disconnected") == 1 && num_member(m, "originSeq") == 100);
    CHECK(fake_count(l, NULL) == 0);
    /* the tombstone: the same or an older announcement still travelling is stale */
    fake_clear_all();
    discovered(l, IDR, "net-a", 100);
    discovered(l, IDR, "net-a", 99);
    CHECK(peer_remote_find(IDR) == NULL && fake_count(a, NULL) == 0 && fake_count(h, NULL) == 0);
    discovered(l, IDR, "net-a", 101);
    CHECK(peer_remote_find(IDR) != NULL && fake_count(a, "peer-discovered") == 1);
    /* a withdrawal of an older announcement than the one held is ignored */
    fake_clear_all();
    disconnected(l, IDR, "old", 50);
    CHECK(peer_remote_find(IDR) != NULL && fake_count(a, NULL) == 0 && fake_count(h, NULL) == 0);
    /* a reason longer than MAX_REASON_LEN is replaced; none is "disconnected" */
    char longr[100];
    memset(longr, 'r', 80);
    longr[80] = 0;
    disconnected(l, IDR, longr, 0);
    CHECK(fake_str_member(fake_last(a, "peer-disconnected"), 1, "reason", "disconnected"));
    discovered(l, IDR, "net-a", 0); /* no originSeq cannot pass the tombstone just left */
    CHECK(peer_remote_find(IDR) == NULL);
    discovered(l, IDR, "net-a", 102);
    CHECK(peer_remote_find(IDR) != NULL);
    fake_clear_all();
    fake_sendq(l, "{'type':'peer-disconnected','data':{'peerId':'%s'}}", IDR);
    CHECK(fake_str_member(fake_last(a, "peer-disconnected"), 1, "reason", "disconnected"));
    /* the inbound hub's peers go with it */
    fake_clear_all();
    discovered(h, IDS, "net-a", 300);
    CHECK(peer_remote_find(IDS) != NULL && fake_count(l, "peer-discovered") == 1);
    fake_clear_all();
    fake_drop(h, "disconnected");
    fake_reap();
    CHECK(peer_remote_find(IDS) == NULL);
    CHECK(fake_str_member(fake_last(a, "peer-disconnected"), 1, "reason", "hub disconnected"));
    CHECK(fake_count(l, "peer-disconnected") == 1);
    done();
}

static void test_link_loss(void)
{
    struct conn *a = join(IDA, "net-a");
    struct conn *l = link_up();
    struct conn *h = inbound_hub();
    discovered(l, IDR, "net-a", 100);
    discovered(l, IDS, "net-b", 100);
    CHECK(peer_sync_bytes(NULL, 0) > 0 && peer_remote_find(IDS) != NULL);
    fake_clear_all();
    fake_drop(l, "connection reset");
    CHECK(peer_remote_find(IDR) != NULL); /* told at the end of the batch */
    fake_reap();
    CHECK(peer_remote_find(IDR) == NULL && peer_remote_find(IDS) == NULL);
    CHECK(hub_links_connected() == 0);
    CHECK(fake_count(a, "peer-disconnected") == 1);
    CHECK(fake_str_member(fake_last(a, "peer-disconnected"), 1, "reason", "hub disconnected"));
    CHECK(fake_count(h, "peer-disconnected") == 2); /* the other hubs are told */
    /* redialled after the backoff */
    l = link_up();
    CHECK(l != NULL);
    done();
}

static void test_moved_and_hidden(void)
{
    struct conn *a = join(IDA, "net-a");
    struct conn *l = link_up();
    discovered(l, IDR, "net-a", 100);
    /* a peer of another hub connects here (it moved): the remote entry stays until it
     * announces, and then goes quietly (same network: its members know it already) */
    fake_clear_all();
    struct conn *r = fake_client(IDR);
    CHECK(fake_state(r) == FAKE_OPEN && peer_find(IDR) == conn_owner(r));
    CHECK(peer_remote_find(IDR) != NULL && fake_count(a, NULL) == 0);
    fake_sendq(r, "{'type':'announce','networkName':'net-a'}");
    CHECK(peer_remote_find(IDR) == NULL && fake_count(a, "peer-discovered") == 1);
    CHECK(fake_count(a, "peer-disconnected") == 0);
    disconnected(l, IDR, "left", 100); /* its old hub's withdrawal does not touch it */
    CHECK(fake_count(a, "peer-disconnected") == 0 && peer_find(IDR) == conn_owner(r));
    /* one that moves here into another network: its old network hears it left */
    struct conn *c2 = join(IDC, "net-c");
    discovered(l, IDS, "net-c", 100);
    CHECK(fake_count(c2, "peer-discovered") == 1);
    fake_clear_all();
    struct conn *s2 = fake_client(IDS);
    fake_sendq(s2, "{'type':'announce','networkName':'net-a'}");
    CHECK(fake_str_member(fake_last(c2, "peer-disconnected"), 1, "peerId", IDS));
    CHECK(fake_count(a, "peer-discovered") == 1 && peer_remote_find(IDS) == NULL);
    conn_close(s2, 1000, "");
    conn_close(c2, 1000, "");
    fake_reap();
    /* a peer connected here is reported by another hub (it moved there, its old connection is
     * half-open here): kept hidden while the local one lives */
    struct conn *b = join(IDB, "net-a");
    unsigned long long seq = peer_seq(conn_owner(b));
    fake_clear_all();
    discovered(l, IDB, "net-b", seq); /* no newer than ours: our own echo, dropped */
    discovered(l, IDB, "net-b", seq + 1);
    CHECK(peer_remote_find(IDB) == NULL && fake_count(a, NULL) == 0);
    struct conn *c = join(IDC, "net-b");
    CHECK(fake_count(c, "peer-discovered") == 0);
    /* ...and revealed when it goes: its old network hears it left, its new one that it is there */
    fake_clear_all();
    conn_close(b, 1001, "going away");
    CHECK(fake_str_member(fake_last(a, "peer-disconnected"), 1, "reason", "going away"));
    CHECK(fake_count(a, "peer-discovered") == 0);
    CHECK(fake_count(c, "peer-discovered") == 1 &&
          fake_str_member(fake_last(c, NULL), 1, "peerId", IDB));
    CHECK(peer_remote_find(IDB) != NULL && peer_via(peer_remote_find(IDB)) == l);
    /* hidden in the same network: it never left it, so the network is told nothing */
    struct conn *d = join(IDS, "net-a");
    fake_clear_all();
    discovered(l, IDS, "net-a", peer_seq(conn_owner(d)) + 1);
    CHECK(fake_count(a, NULL) == 0);
    fake_drop(d, "disconnected");
    fake_reap();
    CHECK(fake_count(a, NULL) == 0);
    CHECK(peer_remote_find(IDS) != NULL && peer_via(peer_remote_find(IDS)) == l);
    /* a hidden entry withdrawn by its hub goes quietly */
    struct conn *e = join(IDT, "net-a");
    discovered(l, IDT, "net-a", peer_seq(conn_owner(e)) + 1);
    disconnected(l, IDT, "left", peer_seq(conn_owner(e)) + 1);
    fake_clear_all();
    conn_close(e, 1000, "");
    CHECK(fake_count(a, "peer-discovered") == 0 && peer_remote_find(IDT) == NULL);
    done();
}

static void test_inbound_hub(void)
{
    struct conn *a = join(IDA, "net-a"), *b = join(IDB, "net-b");
    struct conn *l = link_up();
    discovered(l, IDR, "net-c", 100);
    fake_clear_all();
    struct conn *h = fake_client(IDH);
    fake_sendq(
        h, "{'type':'announce','networkName':'pigeonhub-mesh','data':{'isHub':true,'port':3001}}");
    CHECK(peer_has_hub_rights(conn_owner(h)) && peer_hub_count() == 1);
    /* hub-info, then every client peer: local and learnt from other hubs */
    CHECK(fake_count(h, "hub-info") == 1 &&
          fake_has(fake_last(h, "hub-info"), "'cachesPeers':true"));
    CHECK(fake_count(h, "peer-discovered") == 3);
    int seen = 0;
    for (int i = 0; i < 3; i++) {
        const char *m = fake_nth(h, "peer-discovered", i);
        seen += fake_str_member(m, 1, "peerId", IDA) + 2 * fake_str_member(m, 1, "peerId", IDB) +
                4 * fake_str_member(m, 1, "peerId", IDR);
        CHECK(num_member(m, "originSeq") > 0 && !fake_has(m, "targetPeerId"));
    }
    CHECK(seen == 7);
    /* the link is not told of the hub; clients are not told of it either */
    CHECK(fake_count(l, "peer-discovered") == 0 && fake_count(a, "peer-discovered") == 0);
    /* announcing again does not sync again */
    fake_clear(h);
    fake_sendq(h, "{'type':'announce','networkName':'pigeonhub-mesh','data':{'isHub':true}}");
    CHECK(fake_count(h, "hub-info") == 0 && fake_count(h, "peer-discovered") == 0);
    /* a client claiming a hub's messages without hub rights gets them refused as a client */
    fake_clear(b);
    discovered(b, IDS, "net-b", 0);
    CHECK(peer_remote_find(IDS) == NULL && fake_count(b, NULL) == 0);
    fake_sendq(b, "{'type':'hub-info'}");
    CHECK(fake_count(b, "error") == 1);
    fake_clear(a);
    fake_sendq(b, "{'type':'offer','targetPeerId':'%s','fromPeerId':'%s','networkName':'net-a'}",
               IDA, IDR);
    CHECK(fake_count(a, "offer") == 1 && fake_str_member(fake_last(a, NULL), 0, "fromPeerId", IDB));
    done();
}

static void test_bad_answers(void)
{
    static const struct {
        const char *name, *head; /* %s = the right accept value */
    } rows[] = {
        {"1010", "HTTP/1.1 1010 Switching Protocols\r\nUpgrade: websocket\r\nConnection: "
                 "Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n"},
        {"200", "HTTP/1.1 200 OK\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                "Sec-WebSocket-Accept: %s\r\n\r\n"},
        {"no upgrade", "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
                       "Sec-WebSocket-Accept: %s\r\n\r\n"},
        {"connection", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: "
                       "keep-alive\r\nSec-WebSocket-Accept: %s\r\n\r\n"},
        {"no accept", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: "
                      "Upgrade\r\n\r\n%s"},
        {"accept+", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: "
                    "Upgrade\r\nSec-WebSocket-Accept: %sx\r\n\r\n"},
        {"extension", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: "
                      "Upgrade\r\nSec-WebSocket-Accept: %s\r\nSec-WebSocket-Extensions: "
                      "permessage-deflate\r\n\r\n"},
        {"protocol", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: "
                     "Upgrade\r\nSec-WebSocket-Accept: %s\r\nSec-WebSocket-Protocol: x\r\n\r\n"},
        {"bare LF", "HTTP/1.1 101 Switching Protocols\nUpgrade: websocket\nConnection: "
                    "Upgrade\nSec-WebSocket-Accept: %s\n\n"},
        {"HTTP/2", "HTTP/2.0 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: "
                   "Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n"},
        {NULL, "HTTP/1.1 101 Switching Protocols\r\nupgrade: WebSocket\r\nConnection: keep-alive, "
               "Upgrade\r\nsec-websocket-accept: %s\r\n\r\n"}, /* fine */
    };
    struct conn *a = join(IDA, "net-a");
    for (size_t i = 0; i < sizeof rows / sizeof *rows; i++) {
        struct conn *l = dial_link();
        CHECK(l != NULL);
        if (!l) break;
        fake_connected(l);
        char accept[29], head[512];
        const char *key = fake_ws_key(l);
        ws_accept_key(key, strlen(key), accept);
        int n = snprintf(head, sizeof head, rows[i].head, accept);
        int r = fake_answer(l, head, (size_t)n);
        CHECKF(r == (rows[i].name ? -1 : 0), "%s: %d", rows[i].name, r);
        if (rows[i].name) {
            CHECK(fake_state(l) == FAKE_DEAD && fake_count(l, NULL) == 0);
            CHECK(hub_links_connected() == 0);
        }
        fake_reap();
        if (!rows[i].name) {
            CHECK(hub_links_connected() == 1);
            conn_close(l, 1000, "");
            fake_reap();
        }
    }
    /* and the wrong accept value, built by the fake */
    struct conn *l = dial_link();
    fake_connected(l);
    CHECK(fake_handshake(l, 0) == -1 && fake_state(l) == FAKE_DEAD);
    fake_reap();
    CHECK(hub_links_connected() == 0);
    /* an incomplete answer waits; a dial that never connects times out */
    l = dial_link();
    fake_connected(l);
    CHECK(fake_answer(l, "HTTP/1.1 101 Switching", 22) == -2 && fake_state(l) == FAKE_OPEN);
    fake_advance(HUB_HANDSHAKE_MS);
    fake_expire();
    CHECK(fake_state(l) == FAKE_DEAD);
    fake_reap();
    (void)a;
    done();
}

int main(void)
{
    static const struct conn_config cc = {
        .max_message_size = 65536, .ping_interval_ms = PING_MS, .log_level = LOG_DEBUG};
    static const struct peer_config pc = {.max_connections = 1000,
                                          .max_message_size = 65536,
                                          .ping_interval_ms = PING_MS,
                                          .hub_ns = "pigeonhub-mesh",
                                          .rate_limits = 1};
    static const struct hub_config hc = {
        .id = HUBID,
        .ns = "pigeonhub-mesh",
        .bootstrap = "ws://127.0.0.2:9",
        .auth_token = "",
        .host = "localhost",
        .max_message_size = 65536,
    };
    fake_set_abort(0);
    conn_init(&cc);
    if (peer_init(&pc)) return 2;
    const char *err = hub_init(&hc);
    CHECKF(err == NULL, "%s", err);
    hub_set_port(3000);
    test_open_and_sync();
    test_remote_peers();
    test_relay();
    test_withdrawals();
    test_link_loss();
    test_moved_and_hidden();
    test_inbound_hub();
    test_bad_answers();
    hub_free();
    peer_free();
    return t_done();
}
