/* fuzz_dns.c - libFuzzer target for dns.c's answer parser. The first input byte picks the
 * question (A or AAAA, one of three names), the rest is the response, on an exact-size buffer;
 * the expected id is the response's own, so the fuzzer gets past the header. Any input must
 * parse without reading outside it; an address only ever comes with the query's family; the
 * same bytes under another id are never an answer; a query we build is never taken for one. */
#include "dns.h"

#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_ASSERT(c)                                                                             \
    do {                                                                                           \
        if (!(c)) abort();                                                                         \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const names[] = {"hub-a.test", "a", "web.test"};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    uint16_t qtype = data[0] & 1 ? DNS_QTYPE_AAAA : DNS_QTYPE_A;
    const char *name = names[(data[0] >> 1) % 3];
    size_t len = size - 1;
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf) return 0;
    memcpy(buf, data + 1, len);
    uint16_t id = len >= 2 ? (uint16_t)(buf[0] << 8 | buf[1]) : 0x1234;
    struct sockaddr_storage sa;
    memset(&sa, 0, sizeof sa);
    int rc = dns_answer_parse(buf, len, id, qtype, name, &sa);
    FUZZ_ASSERT(rc <= 0 && rc >= DNS_E_NODATA);
    if (rc == DNS_OK) FUZZ_ASSERT(sa.ss_family == (qtype == DNS_QTYPE_A ? AF_INET : AF_INET6));
    /* the same bytes against another id are no answer at all */
    rc = dns_answer_parse(buf, len, (uint16_t)(id + 1), qtype, name, &sa);
    FUZZ_ASSERT(rc == DNS_E_MISMATCH || rc == DNS_E_MALFORMED);
    /* a query we build parses back as "not a response" */
    uint8_t q[DNS_MAX_QUERY];
    int n = dns_query_build(name, id, qtype, q, sizeof q);
    FUZZ_ASSERT(n > 12);
    FUZZ_ASSERT(dns_answer_parse(q, (size_t)n, id, qtype, name, &sa) == DNS_E_MISMATCH);
    free(buf);
    return 0;
}
