/* test_dns.c - unit tests for dns.c: query bytes and name rules, then hand-built answers as
 * table rows (compression pointers, pointer loops, CNAME chains, AAAA, RCODEs, TC, wrong id or
 * question, every kind of truncation); each answer is also fed as every prefix. Inputs sit in
 * malloc'd buffers of their exact size so ASan catches any overread. Then the /etc/hosts and
 * resolv.conf readers on temporary files, and the PP_RESOLV_CONF / PP_DNS_PORT hooks. */
#include "dns.h"
#include "t.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#define S(lit) lit, sizeof(lit) - 1

static uint8_t *dup_exact(const void *p, size_t n)
{
    uint8_t *b = malloc(n ? n : 1);
    if (!b) abort();
    if (n) memcpy(b, p, n);
    return b;
}

/* "a.b.c.d" / "v6" text of an address; "" for none */
static void addr_text(const struct sockaddr_storage *sa, char *out, size_t cap)
{
    out[0] = 0;
    if (sa->ss_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, out, (socklen_t)cap);
    else if (sa->ss_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, out, (socklen_t)cap);
}

static uint16_t port_of(const struct sockaddr_storage *sa)
{
    return ntohs(sa->ss_family == AF_INET6 ? ((const struct sockaddr_in6 *)sa)->sin6_port
                                           : ((const struct sockaddr_in *)sa)->sin_port);
}

/* ---- queries -------------------------------------------------------------------------------- */

#define QNAME                                                                                      \
    "\x05"                                                                                         \
    "hub-a"                                                                                        \
    "\x04"                                                                                         \
    "test"                                                                                         \
    "\x00"

static const struct {
    const char *name;
    uint16_t id, qtype;
    const char *want; /* NULL: refused */
    size_t want_len;
} query_cases[] = {
    {"hub-a.test", 0x1234, DNS_QTYPE_A,
     S("\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00" QNAME "\x00\x01\x00\x01")},
    {"hub-a.test.", 0x1234, DNS_QTYPE_A,
     S("\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00" QNAME "\x00\x01\x00\x01")},
    {"HUB-A.Test", 0xfffe, DNS_QTYPE_AAAA,
     S("\xff\xfe\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00" QNAME "\x00\x1c\x00\x01")},
    {"_srv.x", 0, DNS_QTYPE_A,
     S("\x00\x00\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x04"
       "_srv"
       "\x01"
       "x"
       "\x00"
       "\x00\x01\x00\x01")},
    {"a", 1, DNS_QTYPE_A,
     S("\x00\x01\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x01"
       "a"
       "\x00\x00\x01\x00\x01")},
    {"", 1, DNS_QTYPE_A, NULL, 0},
    {".", 1, DNS_QTYPE_A, NULL, 0},
    {".a", 1, DNS_QTYPE_A, NULL, 0},
    {"a..b", 1, DNS_QTYPE_A, NULL, 0},
    {"a..", 1, DNS_QTYPE_A, NULL, 0},
    {"a b", 1, DNS_QTYPE_A, NULL, 0},
    {"a/b", 1, DNS_QTYPE_A, NULL, 0},
    {"a\\.b", 1, DNS_QTYPE_A, NULL, 0},
    {"caf\xc3\xa9", 1, DNS_QTYPE_A, NULL, 0},
    {"hub-a.test", 1, 5, NULL, 0}, /* only A and AAAA */
    {"hub-a.test", 1, 0, NULL, 0},
};

static void test_query(void)
{
    uint8_t buf[DNS_MAX_QUERY];
    for (size_t i = 0; i < sizeof query_cases / sizeof query_cases[0]; i++) {
        int n = dns_query_build(query_cases[i].name, query_cases[i].id, query_cases[i].qtype, buf,
                                sizeof buf);
        if (!query_cases[i].want) {
            CHECKF(n == -1, "query %zu '%s' refused (got %d)", i, query_cases[i].name, n);
            continue;
        }
        CHECKF(n == (int)query_cases[i].want_len &&
                   !memcmp(buf, query_cases[i].want, query_cases[i].want_len),
               "query %zu '%s' bytes (len %d)", i, query_cases[i].name, n);
        /* exact capacity is enough, one byte less is not, and nothing is written past cap */
        uint8_t *exact = malloc((size_t)n);
        CHECK(dns_query_build(query_cases[i].name, query_cases[i].id, query_cases[i].qtype, exact,
                              (size_t)n) == n);
        free(exact);
        uint8_t *less = malloc((size_t)n - 1);
        CHECK(dns_query_build(query_cases[i].name, query_cases[i].id, query_cases[i].qtype, less,
                              (size_t)n - 1) == -1);
        free(less);
    }
    /* label and name length limits: 63 per label, 253 in all */
    char name[300];
    memset(name, 'a', 63);
    name[63] = 0;
    CHECK(dns_query_build(name, 1, DNS_QTYPE_A, buf, sizeof buf) == 12 + 65 + 4);
    memset(name, 'a', 64);
    name[64] = 0;
    CHECK(dns_query_build(name, 1, DNS_QTYPE_A, buf, sizeof buf) == -1);
    /* 4 labels of 63 + 1 = 252 + dots ... build exactly 253 and 254 */
    size_t o = 0;
    for (int l = 0; l < 3; l++) {
        memset(name + o, 'b', 63);
        o += 63;
        name[o++] = '.';
    }
    memset(name + o, 'c', 61); /* 3*64 + 61 = 253 */
    name[o + 61] = 0;
    CHECK(strlen(name) == 253);
    CHECK(dns_query_build(name, 1, DNS_QTYPE_A, buf, sizeof buf) == 12 + 255 + 4);
    name[253] = '.';
    name[254] = 0;
    CHECK(dns_query_build(name, 1, DNS_QTYPE_A, buf, sizeof buf) == 12 + 255 + 4);
    name[253] = 'c';
    CHECK(dns_query_build(name, 1, DNS_QTYPE_A, buf, sizeof buf) == -1);
}

/* ---- answers -------------------------------------------------------------------------------- */

/* Header: id 0x1234, then flags, QDCOUNT, ANCOUNT, NSCOUNT 0, ARCOUNT 0. */
#define H(flags, qd, an) "\x12\x34" flags qd an "\x00\x00\x00\x00"
#define OK_FLAGS "\x81\x80" /* QR RD RA, NOERROR */
#define ONE "\x00\x01"
#define Q_A QNAME "\x00\x01\x00\x01"
#define Q_AAAA QNAME "\x00\x1c\x00\x01"
#define TTL "\x00\x00\x00\x3c"
#define PTRQ "\xc0\x0c" /* the name in the question, offset 12 */
#define RR_A(owner, a, b, c, d) owner "\x00\x01\x00\x01" TTL "\x00\x04" a b c d
#define LOCAL_A RR_A(PTRQ, "\x7f", "\x00", "\x00", "\x01")

static const struct {
    const char *what;
    const char *pkt;
    size_t len;
    uint16_t qtype;
    int want;
    const char *addr;
} answer_cases[] = {
    {"A via pointer", S(H(OK_FLAGS, ONE, ONE) Q_A LOCAL_A), DNS_QTYPE_A, DNS_OK, "127.0.0.1"},
    {"A, owner written out",
     S(H(OK_FLAGS, ONE, ONE) Q_A RR_A(QNAME, "\x0a", "\x01", "\x02", "\x03")), DNS_QTYPE_A, DNS_OK,
     "10.1.2.3"},
    {"question echoed in other case",
     S(H(OK_FLAGS, ONE, ONE) "\x05"
                             "HuB-A"
                             "\x04"
                             "TEST"
                             "\x00\x00\x01\x00\x01" LOCAL_A),
     DNS_QTYPE_A, DNS_OK, "127.0.0.1"},
    {"owner in other case, pointer to a suffix",
     S(H(OK_FLAGS, ONE, ONE) Q_A "\x05"
                                 "HUB-a"
                                 "\xc0\x12"
                                 "\x00\x01\x00\x01" TTL "\x00\x04\x01\x02\x03\x04"),
     DNS_QTYPE_A, DNS_OK, "1.2.3.4"},
    {"AAAA",
     S(H(OK_FLAGS, ONE, ONE) Q_AAAA PTRQ
       "\x00\x1c\x00\x01" TTL
       "\x00\x10\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01"),
     DNS_QTYPE_AAAA, DNS_OK, "2001:db8::1"},
    {"AAAA asked, A in answer (ignored)", S(H(OK_FLAGS, ONE, ONE) Q_AAAA LOCAL_A), DNS_QTYPE_AAAA,
     DNS_E_NODATA, NULL},
    /* CNAME hub-a.test -> web.test (offset 28+12 = 40), then A for web.test via pointer */
    {"CNAME then A",
     S(H(OK_FLAGS, ONE, "\x00\x02") Q_A PTRQ
       "\x00\x05\x00\x01" TTL "\x00\x06"
       "\x03"
       "web"
       "\xc0\x12" RR_A("\xc0\x28", "\x0a", "\x00", "\x00", "\x07")),
     DNS_QTYPE_A, DNS_OK, "10.0.0.7"},
    {"CNAME chain of two",
     S(H(OK_FLAGS, ONE, "\x00\x03") Q_A PTRQ
       "\x00\x05\x00\x01" TTL "\x00\x06"
       "\x03"
       "web"
       "\xc0\x12"
       "\xc0\x28"
       "\x00\x05\x00\x01" TTL "\x00\x07"
       "\x04"
       "edge"
       "\xc0\x12" RR_A("\xc0\x3a", "\x0a", "\x00", "\x00", "\x08")),
     DNS_QTYPE_A, DNS_OK, "10.0.0.8"},
    {"A of a name outside the chain, then ours",
     S(H(OK_FLAGS, ONE, "\x00\x02") Q_A RR_A("\x03"
                                             "evl"
                                             "\xc0\x12",
                                             "\x06", "\x06", "\x06", "\x06") LOCAL_A),
     DNS_QTYPE_A, DNS_OK, "127.0.0.1"},
    {"only an A of another name",
     S(H(OK_FLAGS, ONE, ONE) Q_A RR_A("\x03"
                                      "evl"
                                      "\x00",
                                      "\x06", "\x06", "\x06", "\x06")),
     DNS_QTYPE_A, DNS_E_NODATA, NULL},
    {"A before the CNAME that names it (not followed)",
     S(H(OK_FLAGS, ONE, "\x00\x02") Q_A RR_A("\x03"
                                             "web"
                                             "\xc0\x12",
                                             "\x0a", "\x00", "\x00", "\x07") PTRQ
       "\x00\x05\x00\x01" TTL "\x00\x02\xc0\x1c"),
     DNS_QTYPE_A, DNS_E_NODATA, NULL},
    {"A of class CH skipped",
     S(H(OK_FLAGS, ONE, ONE) Q_A PTRQ "\x00\x01\x00\x03" TTL "\x00\x04\x01\x01\x01\x01"),
     DNS_QTYPE_A, DNS_E_NODATA, NULL},
    {"NOERROR, no answer", S(H(OK_FLAGS, ONE, "\x00\x00") Q_A), DNS_QTYPE_A, DNS_E_NODATA, NULL},
    {"NXDOMAIN", S(H("\x81\x83", ONE, "\x00\x00") Q_A), DNS_QTYPE_A, DNS_E_NXDOMAIN, NULL},
    {"SERVFAIL", S(H("\x81\x82", ONE, "\x00\x00") Q_A), DNS_QTYPE_A, DNS_E_SERVER, NULL},
    {"REFUSED", S(H("\x81\x85", ONE, "\x00\x00") Q_A), DNS_QTYPE_A, DNS_E_SERVER, NULL},
    {"TC bit", S(H("\x83\x80", ONE, ONE) Q_A LOCAL_A), DNS_QTYPE_A, DNS_E_TRUNCATED, NULL},
    {"TC bit, no answers", S(H("\x83\x80", ONE, "\x00\x00") Q_A), DNS_QTYPE_A, DNS_E_TRUNCATED,
     NULL},
    {"wrong id", S("\x12\x35" OK_FLAGS ONE ONE "\x00\x00\x00\x00" Q_A LOCAL_A), DNS_QTYPE_A,
     DNS_E_MISMATCH, NULL},
    {"a query, not a response (QR=0)", S(H("\x01\x00", ONE, ONE) Q_A LOCAL_A), DNS_QTYPE_A,
     DNS_E_MISMATCH, NULL},
    {"opcode not QUERY", S(H("\x89\x80", ONE, ONE) Q_A LOCAL_A), DNS_QTYPE_A, DNS_E_MISMATCH, NULL},
    {"no question", S(H(OK_FLAGS, "\x00\x00", ONE) LOCAL_A), DNS_QTYPE_A, DNS_E_MISMATCH, NULL},
    {"two questions", S(H(OK_FLAGS, "\x00\x02", ONE) Q_A Q_A LOCAL_A), DNS_QTYPE_A, DNS_E_MISMATCH,
     NULL},
    {"question for another name",
     S(H(OK_FLAGS, ONE, ONE) "\x05"
                             "hub-b"
                             "\x04"
                             "test"
                             "\x00\x00\x01\x00\x01" LOCAL_A),
     DNS_QTYPE_A, DNS_E_MISMATCH, NULL},
    {"question for a longer name",
     S(H(OK_FLAGS, ONE, ONE) "\x05"
                             "hub-a"
                             "\x04"
                             "test"
                             "\x01"
                             "x"
                             "\x00\x00\x01\x00\x01" LOCAL_A),
     DNS_QTYPE_A, DNS_E_MISMATCH, NULL},
    {"question of another type", S(H(OK_FLAGS, ONE, ONE) Q_AAAA LOCAL_A), DNS_QTYPE_A,
     DNS_E_MISMATCH, NULL},
    {"question of another class", S(H(OK_FLAGS, ONE, ONE) QNAME "\x00\x01\x00\x03" LOCAL_A),
     DNS_QTYPE_A, DNS_E_MISMATCH, NULL},
    {"pointer to itself",
     S(H(OK_FLAGS, ONE, ONE) Q_A RR_A("\xc0\x1c", "\x01", "\x01", "\x01", "\x01")), DNS_QTYPE_A,
     DNS_E_MALFORMED, NULL},
    {"pointer loop through a label",
     S(H(OK_FLAGS, ONE, ONE) Q_A RR_A("\x01"
                                      "a"
                                      "\xc0\x1c",
                                      "\x01", "\x01", "\x01", "\x01")),
     DNS_QTYPE_A, DNS_E_MALFORMED, NULL},
    {"forward pointer",
     S(H(OK_FLAGS, ONE, ONE) Q_A RR_A("\xc0\x30", "\x01", "\x01", "\x01", "\x01")), DNS_QTYPE_A,
     DNS_E_MALFORMED, NULL},
    {"pointer into the header",
     S(H(OK_FLAGS, ONE, ONE) Q_A RR_A("\xc0\x02", "\x01", "\x01", "\x01", "\x01")), DNS_QTYPE_A,
     DNS_E_MALFORMED, NULL},
    {"pointer in the question", S(H(OK_FLAGS, ONE, ONE) "\xc0\x0c\x00\x01\x00\x01" LOCAL_A),
     DNS_QTYPE_A, DNS_E_MALFORMED, NULL},
    {"extended label type 0x40",
     S(H(OK_FLAGS, ONE, ONE) Q_A RR_A("\x41"
                                      "a",
                                      "\x01", "\x01", "\x01", "\x01")),
     DNS_QTYPE_A, DNS_E_MALFORMED, NULL},
    {"A with rdlength 5",
     S(H(OK_FLAGS, ONE, ONE) Q_A PTRQ "\x00\x01\x00\x01" TTL "\x00\x05\x7f\x00\x00\x01\x00"),
     DNS_QTYPE_A, DNS_E_MALFORMED, NULL},
    {"AAAA with rdlength 4",
     S(H(OK_FLAGS, ONE, ONE) Q_AAAA PTRQ "\x00\x1c\x00\x01" TTL "\x00\x04\x7f\x00\x00\x01"),
     DNS_QTYPE_AAAA, DNS_E_MALFORMED, NULL},
    {"rdlength past the end",
     S(H(OK_FLAGS, ONE, ONE) Q_A PTRQ "\x00\x01\x00\x01" TTL "\x00\x08\x7f\x00\x00\x01"),
     DNS_QTYPE_A, DNS_E_MALFORMED, NULL},
    {"ANCOUNT says 2, one record of another name",
     S(H(OK_FLAGS, ONE, "\x00\x02") Q_A RR_A("\x03"
                                             "evl"
                                             "\x00",
                                             "\x06", "\x06", "\x06", "\x06")),
     DNS_QTYPE_A, DNS_E_MALFORMED, NULL},
    {"ANCOUNT 1, no record", S(H(OK_FLAGS, ONE, ONE) Q_A), DNS_QTYPE_A, DNS_E_MALFORMED, NULL},
    {"CNAME rdata longer than its name",
     S(H(OK_FLAGS, ONE, "\x00\x02") Q_A PTRQ "\x00\x05\x00\x01" TTL "\x00\x07"
                                             "\x03"
                                             "web"
                                             "\xc0\x12"
                                             "\x00" LOCAL_A),
     DNS_QTYPE_A, DNS_E_MALFORMED, NULL},
    {"CNAME target running past its rdata",
     S(H(OK_FLAGS, ONE, "\x00\x02") Q_A PTRQ "\x00\x05\x00\x01" TTL "\x00\x02"
                                             "\x03"
                                             "web"
                                             "\xc0\x12" LOCAL_A),
     DNS_QTYPE_A, DNS_E_MALFORMED, NULL},
    {"header only", S(H(OK_FLAGS, ONE, ONE)), DNS_QTYPE_A, DNS_E_MALFORMED, NULL},
    {"11 bytes", S("\x12\x34\x81\x80\x00\x01\x00\x01\x00\x00\x00"), DNS_QTYPE_A, DNS_E_MALFORMED,
     NULL},
    {"empty", "", 0, DNS_QTYPE_A, DNS_E_MALFORMED, NULL},
};

static void test_answers(void)
{
    for (size_t i = 0; i < sizeof answer_cases / sizeof answer_cases[0]; i++) {
        size_t len = answer_cases[i].len;
        uint8_t *p = dup_exact(answer_cases[i].pkt, len);
        struct sockaddr_storage sa;
        memset(&sa, 0xaa, sizeof sa);
        int rc = dns_answer_parse(p, len, 0x1234, answer_cases[i].qtype, "hub-a.test", &sa);
        char txt[64] = "";
        CHECKF(rc == answer_cases[i].want, "%s: rc %d, want %d", answer_cases[i].what, rc,
               answer_cases[i].want);
        if (rc == DNS_OK && answer_cases[i].addr) {
            addr_text(&sa, txt, sizeof txt);
            CHECKF(!strcmp(txt, answer_cases[i].addr) && port_of(&sa) == 0, "%s: address %s",
                   answer_cases[i].what, txt);
        } else {
            const uint8_t *b = (const uint8_t *)&sa;
            int same = 1;
            for (size_t k = 0; k < sizeof sa; k++)
                same &= b[k] == 0xaa;
            CHECKF(same, "%s: *out untouched on failure", answer_cases[i].what);
        }
        free(p);
        /* every prefix on its own exact-size buffer: never an overread, and never an address
         * the whole packet does not give */
        for (size_t n = 0; n < len; n++) {
            uint8_t *q = dup_exact(answer_cases[i].pkt, n);
            struct sockaddr_storage s2;
            int r2 = dns_answer_parse(q, n, 0x1234, answer_cases[i].qtype, "hub-a.test", &s2);
            if (r2 == DNS_OK) {
                char t2[64];
                addr_text(&s2, t2, sizeof t2);
                CHECKF(rc == DNS_OK && !strcmp(t2, txt), "%s: prefix %zu gives %s",
                       answer_cases[i].what, n, t2);
            } else if (n < 12) {
                CHECKF(r2 == DNS_E_MALFORMED, "%s: prefix %zu rc %d", answer_cases[i].what, n, r2);
            }
            free(q);
        }
    }
    /* the name asked for is checked too: another name, or an invalid one, is no match */
    uint8_t *p = dup_exact(S(H(OK_FLAGS, ONE, ONE) Q_A LOCAL_A));
    struct sockaddr_storage sa;
    size_t n = sizeof(H(OK_FLAGS, ONE, ONE) Q_A LOCAL_A) - 1;
    CHECK(dns_answer_parse(p, n, 0x1234, DNS_QTYPE_A, "HUB-A.TEST.", &sa) == DNS_OK);
    CHECK(dns_answer_parse(p, n, 0x1234, DNS_QTYPE_A, "hub-a.tes", &sa) == DNS_E_MISMATCH);
    CHECK(dns_answer_parse(p, n, 0x1234, DNS_QTYPE_A, "hub-a..test", &sa) == DNS_E_MISMATCH);
    free(p);
    /* a chain of 600 pointers, each one step back, ending at the question's name: legal
     * except for its length, so only the hop limit refuses it */
    enum { CHAIN = 600, RD = 28 + 5 + 10, ANS2 = RD + 2 * CHAIN, BIG = ANS2 + 2 + 10 + 4 };
    uint8_t *b = calloc(1, BIG);
    memcpy(b,
           H(OK_FLAGS, ONE, "\x00\x02") Q_A "\x03"
                                            "evl"
                                            "\x00\x00\x10\x00\x01" TTL,
           RD - 2);
    b[RD - 2] = (uint8_t)(2 * CHAIN >> 8);
    b[RD - 1] = (uint8_t)(2 * CHAIN);
    for (size_t k = 0; k < CHAIN; k++) {
        size_t t = k ? RD + 2 * (k - 1) : 12;
        b[RD + 2 * k] = (uint8_t)(0xc0 | t >> 8);
        b[RD + 2 * k + 1] = (uint8_t)t;
    }
    size_t last = RD + 2 * (CHAIN - 1);
    b[ANS2] = (uint8_t)(0xc0 | last >> 8);
    b[ANS2 + 1] = (uint8_t)last;
    memcpy(b + ANS2 + 2, "\x00\x01\x00\x01" TTL "\x00\x04\x7f\x00\x00\x01", 14);
    CHECK(dns_answer_parse(b, BIG, 0x1234, DNS_QTYPE_A, "hub-a.test", &sa) == DNS_E_MALFORMED);
    b[ANS2] = 0xc0; /* the same record pointing at the question directly: fine */
    b[ANS2 + 1] = 12;
    CHECK(dns_answer_parse(b, BIG, 0x1234, DNS_QTYPE_A, "hub-a.test", &sa) == DNS_OK);
    free(b);
}

/* ---- the files ------------------------------------------------------------------------------ */

static char tmpdir[] = "/tmp/test_dns.XXXXXX";

static const char *write_tmp(const char *name, const char *text)
{
    static char path[256];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "w");
    if (!f) abort();
    fputs(text, f);
    fclose(f);
    return path;
}

static const struct {
    const char *name;
    const char *addr; /* NULL: not found */
} hosts_cases[] = {
    {"hub-a.test", "10.1.2.3"},      {"HUB-A.TEST", "10.1.2.3"}, {"alias1", "10.1.2.3"},
    {"Alias2", "10.1.2.3"},          {"hub-z.test", NULL},       {"hub", NULL},
    {"hub-a.test.x", NULL},          {"ip6only.test", "::1"},    {"both.test", "10.9.9.9"},
    {"longname.test", NULL},         {"nope.test", NULL},        {"tabbed.test", "192.0.2.1"},
    {"after-long.test", "10.7.7.7"}, {"zoned.test", NULL},       {"localhost", "127.0.0.1"},
};

static void test_hosts(void)
{
    char longline[3000];
    memset(longline, ' ', sizeof longline);
    memcpy(longline, "10.3.3.3", 8);
    memcpy(longline + sizeof longline - 32, " longname.test\n", 16);
    char text[4096];
    snprintf(text, sizeof text,
             "# comment hub-a.test\n"
             "127.0.0.1 localhost\n"
             "10.1.2.3   Hub-A.test  alias1 alias2 # trailing comment hub-z.test\n"
             "::1 ip6only.test\n"
             "fe80::1 both.test\n"
             "10.9.9.9 both.test\n"
             "fe80::2%%eth0 zoned.test\n"
             "%s"
             "10.7.7.7 after-long.test\n"
             "badaddr nope.test\n"
             "\t192.0.2.1\ttabbed.test\r\n"
             "10.5.5.5", /* last line without a newline, no name */
             longline);
    const char *path = write_tmp("hosts", text);
    for (size_t i = 0; i < sizeof hosts_cases / sizeof hosts_cases[0]; i++) {
        struct sockaddr_storage sa;
        memset(&sa, 0, sizeof sa);
        int rc = dns_hosts_lookup_in(path, hosts_cases[i].name, &sa);
        char txt[64];
        addr_text(&sa, txt, sizeof txt);
        if (hosts_cases[i].addr)
            CHECKF(rc == 0 && !strcmp(txt, hosts_cases[i].addr) && port_of(&sa) == 0,
                   "hosts %s: rc %d %s", hosts_cases[i].name, rc, txt);
        else
            CHECKF(rc == -1, "hosts %s: not found (rc %d %s)", hosts_cases[i].name, rc, txt);
    }
    struct sockaddr_storage sa;
    CHECK(dns_hosts_lookup_in("/nonexistent/hosts", "localhost", &sa) == -1);
    /* every address of a name: IPv4 in file order, then IPv6; bounded by max */
    struct sockaddr_storage all[4];
    char t0[64], t1[64];
    CHECK(dns_hosts_all_in(path, "both.test", all, 4) == 2);
    addr_text(&all[0], t0, sizeof t0);
    addr_text(&all[1], t1, sizeof t1);
    CHECKF(!strcmp(t0, "10.9.9.9") && !strcmp(t1, "fe80::1"), "both.test: %s %s", t0, t1);
    CHECK(dns_hosts_all_in(path, "both.test", all, 1) == 1);
    CHECK(dns_hosts_all_in(path, "nope.test", all, 4) == -1);
    CHECK(dns_hosts_all_in("/nonexistent/hosts", "localhost", all, 4) == -1);
    unlink(path);
    /* numeric addresses */
    CHECK(dns_parse_addr("192.0.2.7", &sa) == 0 && sa.ss_family == AF_INET);
    CHECK(dns_parse_addr("2001:db8::1", &sa) == 0 && sa.ss_family == AF_INET6);
    CHECK(dns_parse_addr("fe80::1%eth0", &sa) == -1 && dns_parse_addr("localhost", &sa) == -1);
    CHECK(dns_parse_addr("1.2.3", &sa) == -1 && dns_parse_addr("", &sa) == -1);
}

static const struct {
    const char *text;
    int rc;
    const char *addr;
} resolv_cases[] = {
    {"nameserver 10.0.0.53\n", 0, "10.0.0.53"},
    {"# x\n; y\nsearch foo.test\nnameserver bogus\nnameserver 10.0.0.53\nnameserver 10.0.0.54\n", 0,
     "10.0.0.53"},
    {"nameserver ::1\n", 0, "::1"},
    {"  nameserver\t192.0.2.5  # comment\n", 0, "192.0.2.5"},
    {"nameserver fe80::1%eth0\nnameserver 10.1.1.1", 0, "10.1.1.1"},
    {"nameservers 10.0.0.1\n#nameserver 10.0.0.2\nnameserver\n", 1, "127.0.0.1"},
    {"", 1, "127.0.0.1"},
};

static void test_resolv(void)
{
    for (size_t i = 0; i < sizeof resolv_cases / sizeof resolv_cases[0]; i++) {
        const char *path = write_tmp("resolv.conf", resolv_cases[i].text);
        struct sockaddr_storage sa;
        int rc = dns_nameserver_in(path, &sa);
        char txt[64];
        addr_text(&sa, txt, sizeof txt);
        CHECKF(rc == resolv_cases[i].rc && !strcmp(txt, resolv_cases[i].addr) && port_of(&sa) == 53,
               "resolv.conf case %zu: rc %d %s port %u", i, rc, txt, port_of(&sa));
        unlink(path);
    }
    struct sockaddr_storage sa;
    char txt[64];
    CHECK(dns_nameserver_in("/nonexistent/resolv.conf", &sa) == 1);
    addr_text(&sa, txt, sizeof txt);
    CHECK(!strcmp(txt, "127.0.0.1") && port_of(&sa) == 53);

    /* the test hooks */
    const char *path = write_tmp("resolv.conf", "nameserver 127.0.0.2\n");
    setenv("PP_RESOLV_CONF", path, 1);
    unsetenv("PP_DNS_PORT");
    CHECK(dns_nameserver(&sa) == 0 && port_of(&sa) == 53);
    addr_text(&sa, txt, sizeof txt);
    CHECK(!strcmp(txt, "127.0.0.2"));
    setenv("PP_DNS_PORT", "5353", 1);
    CHECK(dns_nameserver(&sa) == 0 && port_of(&sa) == 5353);
    static const char *bad_ports[] = {"0", "65536", "abc", "53x", "-1", " 53", "99999999999"};
    for (size_t i = 0; i < sizeof bad_ports / sizeof bad_ports[0]; i++) {
        setenv("PP_DNS_PORT", bad_ports[i], 1);
        CHECKF(dns_nameserver(&sa) == -1, "PP_DNS_PORT=%s refused", bad_ports[i]);
    }
    setenv("PP_DNS_PORT", "65535", 1);
    CHECK(dns_nameserver(&sa) == 0 && port_of(&sa) == 65535);
    unsetenv("PP_DNS_PORT");
    unsetenv("PP_RESOLV_CONF");
    unlink(path);
}

int main(void)
{
    if (!mkdtemp(tmpdir)) return 2;
    test_query();
    test_answers();
    test_hosts();
    test_resolv();
    rmdir(tmpdir);
    return t_done();
}
