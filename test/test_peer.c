/* test_peer.c - unit tests of the registry and the signalling rules (peer.c, PROTOCOL.md
 * section 3) without a socket: clients are test/fake_conn.c connections made as ws_upgrade
 * makes them, messages are delivered in exact-size buffers, and what each client is sent is
 * read back. Discovery within and across networks, network change, goodbye, peer-disconnected
 * on every way out (with its reason), the duplicate-id rule, signal forwarding and its errors,
 * ping, unknown types, malformed messages, hubs, the connection limit, and counts back to 0.
 * Links only peer.c and json.c: no hub hooks are installed, so this is a plain server. */
#include "conn.h"
#include "fake_conn.h"
#include "json.h"
#include "peer.h"
#include "t.h"
#include "ws.h"

#include <stdarg.h>
#include <stdlib.h>

#define PING_MS 30000
#define IDA "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define IDB "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define IDC "cccccccccccccccccccccccccccccccccccccccc"
#define IDD "dddddddddddddddddddddddddddddddddddddddd"
#define IDE "0123456789ABCDEF0123456789abcdef01234567"

/* 1 if s is not NULL and holds needle as it is */
static int contains(const char *s, const char *needle)
{
    return s && strstr(s, needle);
}

static int streq(const char *a, const char *b)
{
    return a && b && !strcmp(a, b);
}

/* The network of c's peer, or "" if it has none. */
static const char *net_of(struct conn *c)
{
    const struct peer *p = conn_owner(c);
    return p ? peer_network(p) : "";
}

static struct conn *join(const char *id, const char *net)
{
    struct conn *c = fake_client(id);
    if (net) fake_sendq(c, "{'type':'announce','networkName':'%s'}", net);
    return c;
}

/* The end of a case: every connection goes, and the registry is empty again. */
static void done(void)
{
    fake_shutdown();
    CHECK(fake_nconns() == 0);
    CHECK(conn_ws_count() == 0);
    CHECK(peer_count() == 0);
    CHECK(peer_hub_count() == 0);
    CHECK(peer_network_count() == 0);
    CHECK(peer_sync_bytes(NULL, 0) == 0);
    CHECKF(fake_violations() == 0, "%d rules broken", fake_violations());
}

static void test_discovery(void)
{
    struct conn *a = join(IDA, "net-a");
    CHECK(fake_state(a) == FAKE_OPEN);
    CHECK(fake_count(a, "connected") == 1 &&
          fake_has(fake_last(a, "connected"), "'peerId':'" IDA "'"));
    CHECK(fake_count(a, "peer-discovered") == 0); /* alone */
    struct conn *b = fake_client(IDB);
    fake_sendq(b,
               "{'type':'announce','networkName':'net-a','data':{'peerId':'%s','isHub':false,"
               "'k':'v','n':[1,{'x':null}]}}",
               IDC);
    /* both ways, each addressed to its reader */
    CHECK(fake_count(a, "peer-discovered") == 1);
    const char *m = fake_last(a, "peer-discovered");
    CHECK(fake_str_member(m, 1, "peerId", IDB)); /* the connection's id, not the one in data */
    CHECK(fake_str_member(m, 0, "targetPeerId", IDA));
    CHECK(fake_str_member(m, 0, "networkName", "net-a"));
    CHECK(fake_str_member(m, 0, "fromPeerId", "system"));
    CHECK(fake_has(m, "'isHub':false") && fake_has(m, "'k':'v'") &&
          fake_has(m, "'n':[1,{'x':null}]"));
    CHECK(!fake_has(m, IDC) && !fake_has(m, "originSeq"));
    CHECK(fake_count(b, "peer-discovered") == 1);
    m = fake_last(b, "peer-discovered");
    CHECK(fake_str_member(m, 1, "peerId", IDA) && fake_str_member(m, 0, "targetPeerId", IDB));
    /* another network: nobody hears of it, and it hears of nobody */
    struct conn *c = join(IDC, "net-b");
    CHECK(fake_count(c, "peer-discovered") == 0);
    CHECK(fake_count(a, "peer-discovered") == 1 && fake_count(b, "peer-discovered") == 1);
    /* no networkName: global */
    struct conn *d = join(IDD, NULL);
    fake_sendq(d, "{'type':'announce'}");
    CHECK(!strcmp(net_of(d), "global"));
    CHECK(fake_count(d, "peer-discovered") == 0);
    CHECK(peer_count() == 4 && peer_network_count() == 3);
    /* a re-announce in the same network repeats the exchange */
    fake_clear_all();
    fake_sendq(b, "{'type':'announce','networkName':'net-a'}");
    CHECK(fake_count(a, "peer-discovered") == 1 && fake_count(b, "peer-discovered") == 1);
    CHECK(
        !fake_has(fake_last(a, "peer-discovered"), "'k':'v'")); /* the new data replaces the old */
    /* a networkName of 256 bytes is fine, 257, "" and non-strings are refused */
    char name[300];
    memset(name, 'n', 257);
    name[256] = 0;
    fake_sendq(c, "{'type':'announce','networkName':'%s'}", name);
    CHECK(fake_count(c, "error") == 0 && strlen(net_of(c)) == 256);
    name[256] = 'n';
    name[257] = 0;
    static const char *const bad[] = {"'%s'", "''", "7", "'a\\u0000b'", "{}"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char fmt[64];
        fake_clear(c);
        fake_advance(1000); /* the announce allowance: a burst of 5, then 1 a second */
        snprintf(fmt, sizeof fmt, "{'type':'announce','networkName':%s}", bad[i]);
        fake_sendq(c, fmt, name);
        CHECKF(fake_has(fake_last(c, "error"), "announce: networkName must be"), "row %zu", i);
        CHECK(strlen(net_of(c)) == 256); /* unchanged */
    }
    /* announce data of MAX_ANNOUNCE_DATA bytes is kept, one more is refused */
    for (int over = 0; over < 2; over++) {
        /* `,"blob":"xx..."` is 10 bytes + the x's */
        size_t nx = MAX_ANNOUNCE_DATA - 10 + (size_t)over, cap = nx + 128;
        char *big = malloc(cap);
        int n = snprintf(big, cap,
                         "{\"type\":\"announce\",\"networkName\":\"net-b\",\"data\":"
                         "{\"blob\":\"%0*d\"}}",
                         (int)nx, 0);
        fake_clear(c);
        fake_advance(1000);
        fake_deliver_n(c, big, (size_t)n);
        CHECKF(fake_has(fake_last(c, "error"), "announce: data too large") == over, "over %d",
               over);
        free(big);
    }
    done();
}

static void test_network_change(void)
{
    struct conn *a = join(IDA, "net-a"), *b = join(IDB, "net-a"), *c = join(IDC, "net-b");
    fake_clear_all();
    fake_sendq(b, "{'type':'announce','networkName':'net-b'}");
    CHECK(fake_count(a, "peer-disconnected") == 1);
    const char *m = fake_last(a, "peer-disconnected");
    CHECK(fake_str_member(m, 1, "peerId", IDB) &&
          fake_str_member(m, 1, "reason", "network changed"));
    CHECK(fake_str_member(m, 0, "networkName", "net-a") &&
          fake_str_member(m, 0, "targetPeerId", IDA));
    CHECK(fake_count(c, "peer-discovered") == 1 &&
          fake_str_member(fake_last(c, NULL), 1, "peerId", IDB));
    CHECK(fake_count(b, "peer-discovered") == 1 &&
          fake_str_member(fake_last(b, NULL), 1, "peerId", IDC));
    CHECK(fake_count(b, "peer-disconnected") == 0 && fake_count(c, "peer-disconnected") == 0);
    CHECK(!strcmp(net_of(b), "net-b"));
    /* a closes later: b is no longer in its network and hears nothing */
    fake_clear_all();
    conn_close(a, 1000, "bye");
    CHECK(fake_count(b, NULL) == 0 && fake_count(c, NULL) == 0);
    CHECK(peer_network_count() == 1);
    done();
}

static void test_goodbye(void)
{
    struct conn *a = join(IDA, "net-a"), *b = join(IDB, "net-a"), *c = join(IDC, "net-a");
    struct conn *x = join(IDD, "net-b");
    fake_clear_all();
    fake_sendq(b, "{'type':'goodbye'}"); /* the real client sends no networkName */
    for (int i = 0; i < 2; i++) {
        struct conn *o = i ? c : a;
        CHECK(fake_count(o, "goodbye") == 1);
        CHECK(fake_str_member(fake_last(o, "goodbye"), 0, "fromPeerId", IDB));
        CHECK(fake_str_member(fake_last(o, "goodbye"), 0, "networkName", "net-a"));
        /* then it leaves, as for a disconnect */
        CHECK(fake_count(o, "peer-disconnected") == 1);
        CHECK(fake_str_member(fake_last(o, "peer-disconnected"), 1, "reason", "goodbye"));
        CHECK(fake_str_member(fake_nth(o, NULL, 0), 0, "type", "goodbye")); /* goodbye first */
    }
    CHECK(fake_count(b, NULL) == 0 && fake_count(x, NULL) == 0);
    CHECK(fake_state(b) == FAKE_OPEN && peer_find(IDB) == conn_owner(b));
    CHECK(!strcmp(net_of(b), "global"));
    /* a second goodbye (not in a network) and its close later tell nobody */
    fake_clear_all();
    fake_sendq(b, "{'type':'goodbye'}");
    conn_close(b, 1000, "later");
    fake_reap();
    CHECK(fake_count(a, NULL) == 0 && fake_count(c, NULL) == 0);
    CHECK(peer_count() == 3);
    done();
}

static void test_leaving(void)
{
    struct conn *a = join(IDA, "net-a"), *b = join(IDB, "net-a"), *c = join(IDC, "net-a");
    struct conn *d = join(IDD, "net-a"), *e = join(IDE, "net-a");
    fake_clear_all();
    /* a close (frame, or conn_close): told at once, with its reason */
    conn_close(b, 1000, "see you");
    CHECK(streq(fake_told(b), "see you"));
    CHECK(fake_count(a, "peer-disconnected") == 1 &&
          fake_str_member(fake_last(a, NULL), 1, "reason", "see you"));
    CHECK(fake_str_member(fake_last(a, NULL), 1, "peerId", IDB));
    CHECK(peer_find(IDB) == NULL && peer_count() == 4);
    /* EOF: told only at the end of the batch */
    fake_clear_all();
    fake_drop(c, "disconnected");
    CHECK(fake_count(a, NULL) == 0 && peer_find(IDC) != NULL);
    fake_reap();
    CHECK(fake_count(a, "peer-disconnected") == 1 &&
          fake_str_member(fake_last(a, NULL), 1, "reason", "disconnected"));
    CHECK(peer_find(IDC) == NULL);
    /* a slow reader: cut off by the message that overflows it, its network told at the reap */
    fake_clear_all();
    fake_set_slow(d);
    fake_sendq(a, "{'type':'offer','targetPeerId':'%s','networkName':'net-a','data':1}", IDD);
    CHECK(fake_state(d) == FAKE_DEAD && fake_count(d, NULL) == 0);
    fake_reap();
    CHECK(fake_count(a, "peer-disconnected") == 1 &&
          fake_str_member(fake_last(a, NULL), 1, "reason", "slow reader"));
    CHECK(fake_count(e, "peer-disconnected") == 1);
    /* silent for two ping intervals: closed 1001, "timeout" */
    fake_clear_all();
    fake_advance(PING_MS + 1);
    fake_sendq(a, "{'type':'ping'}");
    fake_advance(PING_MS);
    fake_expire();
    CHECK(fake_state(e) == FAKE_CLOSING && fake_close_code(e) == WS_CLOSE_GOING_AWAY);
    CHECK(fake_state(a) == FAKE_OPEN);
    CHECK(fake_count(a, "peer-disconnected") == 1 &&
          fake_str_member(fake_last(a, "peer-disconnected"), 1, "reason", "timeout"));
    fake_reap();
    CHECK(peer_count() == 1 && peer_network_count() == 1);
    done();
}

static void test_duplicates(void)
{
    struct conn *a = join(IDA, "net-a"), *b = join(IDB, "net-a");
    fake_clear_all();
    /* heard from just now: the newcomer is refused, the old one not even asked */
    fake_advance(1000);
    struct conn *a2 = fake_client(IDA);
    CHECK(fake_state(a2) == FAKE_CLOSING && fake_close_code(a2) == WS_CLOSE_POLICY);
    CHECK(streq(fake_close_reason(a2), "Peer already connected"));
    CHECK(fake_state(a) == FAKE_OPEN && peer_find(IDA) == conn_owner(a) && fake_pings(a) == 0);
    CHECK(fake_count(b, NULL) == 0);
    fake_reap();
    /* an idle, healthy one (it answers pings): pinged, and it keeps its id however long it
     * has been quiet and however often the newcomer tries */
    for (int i = 0; i < 3; i++) {
        int pinged = fake_pings(a);
        fake_advance(PING_MS + 1);
        a2 = fake_client(IDA);
        CHECK(fake_state(a2) == FAKE_CLOSING && fake_pings(a) == pinged + 1);
        fake_reap();
        fake_advance(500);
        fake_pong(a); /* it answers within the grace */
        fake_advance(2000);
        a2 = fake_client(IDA); /* answered: refused again (and asked again) */
        CHECK(fake_state(a2) == FAKE_CLOSING && peer_find(IDA) == conn_owner(a));
        fake_reap();
        fake_advance(100);
        fake_pong(a);
    }
    /* a pong read within the millisecond of the ping (the loop reads the clock once per
     * turn; loopback answers that fast) is an answer */
    fake_advance(PING_MS + 1);
    a2 = fake_client(IDA);
    CHECK(fake_state(a2) == FAKE_CLOSING);
    fake_reap();
    fake_pong(a);
    fake_advance(2000);
    a2 = fake_client(IDA);
    CHECK(fake_state(a2) == FAKE_CLOSING && peer_find(IDA) == conn_owner(a));
    fake_reap();
    fake_advance(100);
    fake_pong(a);
    /* one that does not answer (half-open): the newcomer back after the grace replaces it */
    fake_advance(PING_MS);
    a2 = fake_client(IDA);
    CHECK(fake_state(a2) == FAKE_CLOSING);
    fake_reap();
    fake_advance(1999);
    a2 = fake_client(IDA); /* not yet: the grace is 2 s */
    CHECK(fake_state(a2) == FAKE_CLOSING);
    fake_reap();
    fake_advance(1);
    a2 = fake_client(IDA);
    CHECK(fake_state(a2) == FAKE_OPEN && peer_find(IDA) == conn_owner(a2));
    CHECK(fake_state(a) == FAKE_CLOSING && fake_close_code(a) == WS_CLOSE_GOING_AWAY);
    CHECK(streq(fake_close_reason(a), "Replaced by a new connection"));
    CHECK(fake_count(b, "peer-disconnected") == 1);
    CHECK(fake_str_member(fake_last(b, NULL), 1, "reason", "Replaced by a new connection"));
    fake_reap(); /* the old close touches only itself */
    CHECK(peer_find(IDA) == conn_owner(a2) && fake_state(a2) == FAKE_OPEN);
    CHECK(fake_count(b, "peer-disconnected") == 1 && peer_count() == 2);
    fake_clear_all();
    fake_sendq(a2, "{'type':'announce','networkName':'net-a'}");
    CHECK(fake_count(b, "peer-discovered") == 1);
    /* a peer dropped in this batch still blocks its id until it is reaped */
    fake_drop(b, "connection reset");
    fake_advance(10 * PING_MS);
    struct conn *b2 = fake_client(IDB);
    CHECK(fake_state(b2) == FAKE_CLOSING && streq(fake_close_reason(b2), "Peer already connected"));
    CHECK(peer_count() == 2);
    fake_reap();
    CHECK(peer_find(IDB) == NULL);
    b2 = fake_client(IDB);
    CHECK(fake_state(b2) == FAKE_OPEN && peer_find(IDB) == conn_owner(b2));
    /* ids differ by case: two peers */
    struct conn *u = fake_client("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    CHECK(fake_state(u) == FAKE_OPEN && peer_count() == 3);
    done();
}

static void test_ids_and_limit(void)
{
    static const char *const bad[] = {
        "",
        "aaaa",
        IDA "a",
        "gaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        struct conn *c = fake_client(bad[i]);
        CHECKF(fake_state(c) == FAKE_CLOSING && fake_close_code(c) == WS_CLOSE_POLICY &&
                   streq(fake_close_reason(c), "Invalid peerId format"),
               "row %zu", i);
    }
    fake_reap();
    CHECK(conn_ws_count() == 0 && peer_count() == 0);
    fake_set_max_connections(2);
    struct conn *a = fake_client(IDA), *b = fake_client(IDB), *c = fake_client(IDC);
    CHECK(fake_state(a) == FAKE_OPEN && fake_state(b) == FAKE_OPEN);
    CHECK(fake_state(c) == FAKE_CLOSING &&
          streq(fake_close_reason(c), "Maximum connections reached"));
    CHECK(conn_ws_count() == 2 && peer_count() == 2);
    fake_reap();
    conn_close(b, 1000, "");
    fake_reap();
    c = fake_client(IDC);
    CHECK(fake_state(c) == FAKE_OPEN);
    fake_set_max_connections(1000);
    done();
}

static void test_signals(void)
{
    struct conn *a = join(IDA, "net-a"), *b = join(IDB, "net-a"), *c = join(IDC, "net-b");
    struct conn *g1 = fake_client(IDD), *g2 = fake_client(IDE); /* never announced: global */
    fake_clear_all();
    static const char *const types[] = {"offer", "answer", "ice-candidate"};
    for (int i = 0; i < 3; i++) {
        fake_sendq(a,
                   "{'type':'%s','targetPeerId':'%s','fromPeerId':'%s','networkName':'net-a',"
                   "'data':{'sdp':'v=0\\r\\n','n':[1,2]},'hubHops':3}",
                   types[i], IDB, IDC);
        const char *m = fake_last(b, types[i]);
        CHECKF(fake_count(b, types[i]) == 1, "%s", types[i]);
        CHECK(fake_str_member(m, 0, "fromPeerId", IDA)); /* set by the server, never the client's */
        CHECK(fake_str_member(m, 0, "targetPeerId", IDB) &&
              fake_str_member(m, 0, "networkName", "net-a"));
        CHECK(fake_has(m, "'data':{'sdp':'v=0\\r\\n','n':[1,2]}")); /* verbatim */
        CHECK(!fake_has(m, "hubHops") && fake_has(m, "'timestamp':"));
        CHECK(fake_count(a, NULL) == 0);
    }
    /* errors, with the connection kept */
    static const struct {
        const char *rest, *error;
    } rows[] = {
        {"", "Missing targetPeerId"},
        {",'targetPeerId':null", "Missing targetPeerId"},
        {",'targetPeerId':'xyz'", "targetPeerId must be 40 hex digits"},
        {",'targetPeerId':'" IDB "b'", "targetPeerId must be 40 hex digits"},
        {",'targetPeerId':'zbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb'",
         "targetPeerId must be 40 hex digits"},
        {",'targetPeerId':42", "targetPeerId must be 40 hex digits"},
        {",'targetPeerId':'" IDB "','networkName':''", "networkName must be a non-empty string"},
        {",'targetPeerId':'" IDB "','networkName':5", "networkName must be a non-empty string"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof *rows; i++) {
        fake_clear_all();
        fake_sendq(a, "{'type':'offer'%s,'data':1}", rows[i].rest);
        CHECKF(fake_count(a, "error") == 1 && fake_has(fake_last(a, "error"), rows[i].error),
               "row %zu", i);
        CHECK(fake_count(b, NULL) == 0 && fake_state(a) == FAKE_OPEN);
    }
    /* another network: dropped, no error; an unknown target: dropped silently */
    fake_clear_all();
    fake_sendq(a, "{'type':'offer','targetPeerId':'%s','networkName':'net-a','data':1}", IDC);
    fake_sendq(b, "{'type':'offer','targetPeerId':'%s','data':1}", IDA); /* global, a is net-a */
    fake_sendq(a, "{'type':'offer','targetPeerId':'%s','networkName':'net-a','data':1}",
               "9999999999999999999999999999999999999999");
    for (int i = 0; i < fake_nconns(); i++)
        CHECK(fake_count(fake_conn_at(i), NULL) == 0);
    /* peers that never announced are in global; no data key stays absent */
    fake_sendq(g1, "{'type':'answer','targetPeerId':'%s'}", IDE);
    CHECK(fake_count(g2, "answer") == 1 && !fake_has(fake_last(g2, NULL), "'data'"));
    CHECK(fake_str_member(fake_last(g2, NULL), 0, "networkName", "global"));
    /* per-sender order is kept */
    fake_clear_all();
    for (int i = 0; i < 5; i++)
        fake_sendq(a,
                   "{'type':'ice-candidate','targetPeerId':'%s','networkName':'net-a','data':%d}",
                   IDB, i);
    for (int i = 0; i < 5; i++) {
        char want[32];
        snprintf(want, sizeof want, "'data':%d,", i);
        CHECK(fake_has(fake_nth(b, "ice-candidate", i), want));
    }
    (void)c;
    done();
}

static void test_misc_messages(void)
{
    struct conn *a = join(IDA, "net-a"), *b = join(IDB, "net-a");
    fake_clear_all();
    fake_advance(5000);
    unsigned long long t = (unsigned long long)conn_wall_ms();
    fake_sendq(a, "{'type':'ping','data':{'x':1}}");
    CHECK(fake_count(a, "pong") == 1);
    char want[256];
    snprintf(want, sizeof want,
             "{'type':'pong','data':{'timestamp':%llu},'fromPeerId':'system','targetPeerId':'" IDA
             "','timestamp':%llu}",
             t, t);
    CHECK(streq(fake_last(a, "pong"), fake_q(want)));
    /* cleanup: no reply; peer-discovered from a client: ignored */
    fake_clear_all();
    fake_sendq(a, "{'type':'cleanup'}");
    fake_sendq(a, "{'type':'peer-discovered','data':{'peerId':'%s'},'networkName':'net-a'}", IDC);
    CHECK(fake_count(a, NULL) == 0 && fake_count(b, NULL) == 0);
    CHECK(peer_remote_find(IDC) == NULL && peer_find(IDC) == NULL);
    /* unknown types: the JS server's text */
    static const char *const unknown[] = {
        "connection-rejected", "renegotiation-offer", "cleanup-all", "Offer", "hub-info",
        "peer-disconnected"};
    for (size_t i = 0; i < sizeof unknown / sizeof *unknown; i++) {
        fake_clear(a);
        fake_sendq(a, "{'type':'%s','targetPeerId':'%s'}", unknown[i], IDB);
        char text[256];
        snprintf(text, sizeof text,
                 "\"error\":\"Signaling server does not route '%s' messages. Use WebRTC data "
                 "channels for peer-to-peer communication.\"",
                 unknown[i]);
        CHECKF(fake_count(a, "error") == 1 && contains(fake_last(a, "error"), text), "%s",
               unknown[i]);
        CHECK(fake_count(b, NULL) == 0);
    }
    /* a long type is named by its first 63 bytes, an escaped one decoded */
    fake_clear(a);
    char longtype[128];
    memset(longtype, 't', 100);
    longtype[100] = 0;
    fake_sendq(a, "{'type':'%s'}", longtype);
    CHECK(fake_count(a, "error") == 1);
    memset(longtype, 't', MAX_TYPE_LEN);
    snprintf(longtype + MAX_TYPE_LEN, 64, "' messages");
    CHECK(contains(fake_last(a, "error"), longtype));
    fake_clear(a);
    fake_sendq(a, "{'type':'x\\u0041y'}");
    CHECK(contains(fake_last(a, "error"), "route 'xAy' messages"));
    /* malformed: an error, the connection stays open */
    static const struct {
        const char *msg, *error;
    } rows[] = {
        {"{", "Invalid message: not valid JSON"},
        {"", "Invalid message: not valid JSON"},
        {"{'type':'ping'} x", "Invalid message: not valid JSON"},
        {"{'type':'ping','type2':\"\xff\"}", "Invalid message: not valid JSON"},
        {"[1,2]", "Invalid message: expected a JSON object"},
        {"'announce'", "Invalid message: expected a JSON object"},
        {"null", "Invalid message: expected a JSON object"},
        {"{}", "Invalid message: missing string 'type'"},
        {"{'type':5}", "Invalid message: missing string 'type'"},
        {"{'type':null}", "Invalid message: missing string 'type'"},
        {"{'Type':'ping'}", "Invalid message: missing string 'type'"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof *rows; i++) {
        fake_clear(a);
        fake_deliver(a, fake_q(rows[i].msg));
        CHECKF(fake_count(a, "error") == 1 && contains(fake_last(a, "error"), rows[i].error),
               "row %zu", i);
        CHECK(fake_count(a, NULL) == 1 && fake_state(a) == FAKE_OPEN);
    }
    /* nested deeper than 32 levels */
    char deep[200] = "{\"type\":\"ping\",\"d\":";
    for (int i = 0; i < 40; i++)
        strcat(deep, "[");
    for (int i = 0; i < 40; i++)
        strcat(deep, "]");
    strcat(deep, "}");
    fake_clear(a);
    fake_deliver(a, deep);
    CHECK(fake_has(fake_last(a, "error"), "not valid JSON"));
    done();
}

/* hub mode as peer.c sees it: hooks that only count */
static int hooked_joined, hooked_gone, hooked_announced;
static void stub_peer(struct peer *p)
{
    (void)p;
}
static void stub_joined(struct peer *p)
{
    (void)p;
    hooked_joined++;
}
static void stub_gone(struct peer *p)
{
    (void)p;
    hooked_gone++;
}
static void stub_announced(struct peer *p)
{
    (void)p;
    hooked_announced++;
}
static void stub_left(struct peer *p, const char *net, const char *reason)
{
    (void)p, (void)net, (void)reason;
}
static void stub_relay(struct conn *from, const char *type, size_t type_len, const char *from_id,
                       const char *target, const char *net, size_t net_len,
                       const struct json_val *data)
{
    (void)from, (void)type, (void)type_len, (void)from_id, (void)target, (void)net;
    (void)net_len, (void)data;
}
static int stub_handle(struct conn *from, const char *type, size_t type_len,
                       const struct json_val *root)
{
    (void)from, (void)type, (void)type_len, (void)root;
    return 0;
}
static const struct peer_hooks stub_hooks = {
    .announced = stub_announced,
    .left = stub_left,
    .hub_joined = stub_joined,
    .hub_gone = stub_gone,
    .remote_dropped = stub_peer,
    .remote_revealed = stub_peer,
    .remote_gone = stub_peer,
    .relay = stub_relay,
    .handle = stub_handle,
};

static void test_hubs(void)
{
    /* not a hub server: a claim is a flag in the data, nothing more */
    struct conn *a = join(IDA, "net-a"), *h = fake_client(IDB), *m = fake_client(IDC);
    fake_clear_all();
    fake_sendq(h, "{'type':'announce','networkName':'net-a','data':{'isHub':true,'port':3001}}");
    CHECK(peer_hub_count() == 0 && !peer_has_hub_rights(conn_owner(h)));
    CHECK(fake_count(a, "peer-discovered") == 1 && fake_has(fake_last(a, NULL), "'isHub':true"));
    CHECK(fake_has(fake_last(a, NULL), "'port':3001"));
    static char buf[65536];
    struct json_writer w;
    json_writer_init(&w, buf, sizeof buf);
    peer_write_hubs(&w);
    buf[w.len] = 0;
    CHECK(!strcmp(buf, "[]")); /* /hubs lists hub rights only */
    conn_close(h, 1000, "");
    conn_close(m, 1000, "");
    fake_reap();

    /* hub mode: a claim gives rights (open: no HUB_SECRET) */
    peer_set_hooks(&stub_hooks);
    hooked_joined = hooked_gone = hooked_announced = 0;
    h = fake_client(IDB);
    m = fake_client(IDC);
    fake_sendq(h, "{'type':'announce','networkName':'net-a','data':{'isHub':true,'port':3001}}");
    CHECK(peer_hub_count() == 1 && peer_has_hub_rights(conn_owner(h)) && hooked_joined == 1);
    /* announcing into the hub namespace makes a hub too */
    fake_sendq(m, "{'type':'announce','networkName':'pigeonhub-mesh'}");
    CHECK(peer_hub_count() == 2);
    json_writer_init(&w, buf, sizeof buf);
    peer_write_hubs(&w);
    CHECK(!w.overflow && json_validate(w.p, w.len) == 0);
    buf[w.len] = 0;
    CHECK(fake_has(buf, "'peerId':'" IDB "'") && fake_has(buf, "'peerId':'" IDC "'"));
    CHECK(!fake_has(buf, IDA));
    CHECK(fake_has(buf, "'networkName':'pigeonhub-mesh'"));
    /* a hub re-announcing as a client loses its rights, and gets them back */
    fake_sendq(h, "{'type':'announce','networkName':'net-a','data':{'isHub':false}}");
    CHECK(peer_hub_count() == 1 && !peer_has_hub_rights(conn_owner(h)) && hooked_gone == 1);
    fake_sendq(h, "{'type':'announce','networkName':'net-a','data':{'isHub':true}}");
    CHECK(peer_hub_count() == 2);
    /* isHub must be true itself */
    fake_sendq(h, "{'type':'announce','networkName':'net-a','data':{'isHub':'true'}}");
    CHECK(peer_hub_count() == 1);
    conn_close(m, 1000, "");
    CHECK(peer_hub_count() == 0);
    fake_sendq(h, "{'type':'announce','networkName':'net-b','data':{'isHub':true}}");
    CHECK(peer_hub_count() == 1);
    fake_drop(h, "disconnected");
    fake_reap();
    CHECK(peer_hub_count() == 0 && peer_count() == 1);

    /* HUB_SECRET set and not shown: a claim is a flag again, no rights, no greeting */
    fake_set_may_hub(0);
    hooked_joined = 0;
    h = fake_client(IDB);
    fake_sendq(h, "{'type':'announce','networkName':'pigeonhub-mesh','data':{'isHub':true}}");
    CHECK(peer_hub_count() == 0 && !peer_has_hub_rights(conn_owner(h)) && hooked_joined == 0);
    conn_close(h, 1000, "");
    fake_reap();
    fake_set_may_hub(1);
    peer_set_hooks(NULL);
    done();
}

/* Many peers in one network, joining and leaving in a mixed order: the tables (linear probing,
 * backward-shift deletion) keep finding everyone. */
static void test_many(void)
{
    enum { N = 300 };
    static char ids[N][PEER_ID_LEN + 1];
    static struct conn *cs[N];
    for (int i = 0; i < N; i++) {
        snprintf(ids[i], sizeof ids[i], "%040x", (unsigned)(i * 2654435761u));
        cs[i] = join(ids[i], i % 3 ? "big" : "other");
    }
    CHECK(peer_count() == N && peer_network_count() == 2);
    fake_set_record(0);
    for (int i = 0; i < N; i += 2)
        conn_close(cs[i], 1000, "");
    fake_set_record(1);
    CHECK(peer_count() == N / 2);
    int found = 0;
    for (int i = 0; i < N; i++)
        found += peer_find(ids[i]) != NULL && (i % 2 ? peer_find(ids[i]) == conn_owner(cs[i]) : 0);
    CHECK(found == N / 2);
    fake_clear_all();
    fake_sendq(cs[1], "{'type':'announce','networkName':'big'}");
    int want = 0;
    for (int i = 3; i < N; i += 2)
        want += i % 3 != 0;
    CHECK(fake_count(cs[1], "peer-discovered") == want);
    done();
}

/* A re-announce refused as too large changes nothing: the data of the one before stays. */
static void test_refused_announce(void)
{
    struct conn *a = join(IDA, NULL);
    fake_sendq(a, "{'type':'announce','networkName':'n','data':{'k':'v'}}");
    size_t nx = MAX_ANNOUNCE_DATA + 1, cap = nx + 128;
    char *big = malloc(cap);
    int n = snprintf(big, cap,
                     "{\"type\":\"announce\",\"networkName\":\"n\",\"data\":"
                     "{\"blob\":\"%0*d\"}}",
                     (int)nx, 0);
    fake_deliver_n(a, big, (size_t)n);
    free(big);
    CHECK(fake_has(fake_last(a, "error"), "announce: data too large"));
    struct conn *b = join(IDB, "n");
    CHECKF(fake_has(fake_last(b, "peer-discovered"), "'k':'v'"),
           "refused announce changed the data: %s", fake_last(b, "peer-discovered"));
    done();
}

/* Message rates: the burst passes, the next is dropped with one error naming the limit, the
 * allowance refills with time, and RATE_STRIKES drops close 1008; a repeat announce is quiet. */
static void test_rates(void)
{
    struct conn *b = join(IDB, "r");
    struct conn *a = join(IDA, NULL);
    fake_clear_all();
    for (int i = 0; i < 5; i++)
        fake_sendq(a, "{'type':'announce','networkName':'r','data':{'n':%d}}", i);
    CHECK(fake_count(b, "peer-discovered") == 5 && fake_count(a, "error") == 0);
    fake_sendq(a, "{'type':'announce','networkName':'r','data':{'n':5}}");
    CHECK(fake_count(b, "peer-discovered") == 5 && fake_count(a, "error") == 1);
    CHECK(fake_has(fake_last(a, "error"), "Rate limit: at most 5 announce messages at once"));
    fake_advance(1000); /* one more allowed, no second error */
    fake_sendq(a, "{'type':'announce','networkName':'r','data':{'n':6}}");
    fake_sendq(a, "{'type':'announce','networkName':'r','data':{'n':7}}");
    CHECK(fake_count(b, "peer-discovered") == 6 && fake_count(a, "error") == 1);
    /* a repeat of the last announce: the announcer's list, nothing for the network */
    fake_advance(1000);
    fake_sendq(a, "{'type':'announce','networkName':'r','data':{'n':6}}");
    CHECK(fake_count(b, "peer-discovered") == 6 && fake_count(a, "peer-discovered") >= 1);
    /* the 20th drop within 10 s closes */
    for (int i = 0; i < 30 && fake_state(a) == FAKE_OPEN; i++)
        fake_sendq(a, "{'type':'goodbye'}");
    CHECK(fake_state(a) == FAKE_CLOSING && fake_close_code(a) == WS_CLOSE_POLICY);
    CHECK(streq(fake_close_reason(a), "Rate limit exceeded"));
    CHECK(peer_stats()->rate_limited[PEER_RATE_GOODBYE] > 0);
    fake_reap();
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
    fake_set_abort(0);
    conn_init(&cc);
    if (peer_init(&pc)) return 2;
    test_discovery();
    test_network_change();
    test_goodbye();
    test_leaving();
    test_duplicates();
    test_ids_and_limit();
    test_signals();
    test_misc_messages();
    test_hubs();
    test_many();
    test_refused_announce();
    test_rates();
    peer_free();
    return t_done();
}
