/* dns.c - the pure half of the DNS stub resolver (RFC 1035): query builder, strict answer
 * parser (bounds checked, compression pointers followed with a hop limit, CNAMEs within one
 * answer), and the /etc/hosts and /etc/resolv.conf readers. No sockets, no malloc; the two
 * readers are the only I/O. No TCP fallback, no search domains, first nameserver only. */
#include "dns.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define HDR 12
#define MAX_WIRE_NAME 255 /* RFC 1035 2.3.4, uncompressed wire form */
#define QTYPE_CNAME 5
#define QCLASS_IN 1
#define FLAG_QR 0x8000
#define FLAG_TC 0x0200
#define FLAG_RD 0x0100
#define RCODE_NXDOMAIN 3
#define LINE_MAX_LEN 1024 /* a longer hosts / resolv.conf line is skipped */

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static uint8_t lower(uint8_t c)
{
    return c >= 'A' && c <= 'Z' ? (uint8_t)(c + 32) : c;
}

/* `name` in wire form (length-prefixed labels, lowercased, root label last); -1 if invalid. */
static int encode_name(const char *name, uint8_t out[MAX_WIRE_NAME], size_t *olen)
{
    size_t n = strlen(name);
    if (n && name[n - 1] == '.') n--; /* one trailing dot: the same name, fully qualified */
    if (n == 0 || n > DNS_MAX_NAME) return -1;
    size_t o = 0, start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && name[i] != '.') {
            uint8_t c = (uint8_t)name[i];
            if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '_'))
                return -1;
            continue;
        }
        size_t l = i - start;
        if (l == 0 || l > DNS_MAX_LABEL) return -1;
        out[o++] = (uint8_t)l;
        for (size_t k = start; k < i; k++)
            out[o++] = lower((uint8_t)name[k]);
        start = i + 1;
    }
    out[o++] = 0; /* n <= 253 gives o <= 255 */
    *olen = o;
    return 0;
}

int dns_query_build(const char *name, uint16_t id, uint16_t qtype, uint8_t *buf, size_t cap)
{
    uint8_t qn[MAX_WIRE_NAME];
    size_t ql;
    if ((qtype != DNS_QTYPE_A && qtype != DNS_QTYPE_AAAA) || encode_name(name, qn, &ql)) return -1;
    size_t len = HDR + ql + 4;
    if (cap < len) return -1;
    memset(buf, 0, HDR);
    buf[0] = (uint8_t)(id >> 8);
    buf[1] = (uint8_t)id;
    buf[2] = FLAG_RD >> 8;
    buf[5] = 1; /* QDCOUNT */
    memcpy(buf + HDR, qn, ql);
    uint8_t *q = buf + HDR + ql;
    q[0] = (uint8_t)(qtype >> 8);
    q[1] = (uint8_t)qtype;
    q[2] = 0;
    q[3] = QCLASS_IN;
    return (int)len;
}

/* Read the name at buf[*off] (RFC 1035 4.1.4: labels, ending in the root label or a pointer to
 * an earlier name) into out in uncompressed, lowercased wire form; *off moves past the name as
 * it sits in the message. Pointers must point backwards, past the header, at most DNS_MAX_HOPS
 * of them: a loop runs out of hops, a long chain out of the 255-byte name. -1 if malformed. */
static int read_name(const uint8_t *buf, size_t len, size_t *off, uint8_t out[MAX_WIRE_NAME],
                     size_t *olen)
{
    size_t p = *off, n = 0, end = 0;
    int hops = 0;
    for (;;) {
        if (p >= len) return -1;
        uint8_t l = buf[p];
        if ((l & 0xc0) == 0xc0) {
            if (p + 1 >= len) return -1;
            size_t t = (size_t)(l & 0x3f) << 8 | buf[p + 1];
            if (!hops) end = p + 2;
            if (++hops > DNS_MAX_HOPS || t >= p || t < HDR) return -1;
            p = t;
            continue;
        }
        if (l & 0xc0) return -1; /* 01 and 10: extended label types, not in a plain answer */
        if (n + 1 + l > MAX_WIRE_NAME || p + 1 + l > len) return -1;
        out[n++] = l;
        if (l == 0) {
            if (!hops) end = p + 1;
            break;
        }
        for (size_t i = 0; i < l; i++)
            out[n++] = lower(buf[p + 1 + i]);
        p += 1 + (size_t)l;
    }
    *off = end;
    *olen = n;
    return 0;
}

static int same_name(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
    return al == bl && !memcmp(a, b, al);
}

int dns_answer_parse(const uint8_t *buf, size_t len, uint16_t id, uint16_t qtype, const char *name,
                     struct sockaddr_storage *out)
{
    uint8_t owners[DNS_MAX_CNAMES + 1][MAX_WIRE_NAME], nm[MAX_WIRE_NAME];
    size_t olen[DNS_MAX_CNAMES + 1], nl, nowners = 1;
    if (encode_name(name, owners[0], &olen[0])) return DNS_E_MISMATCH;
    if (len < HDR) return DNS_E_MALFORMED;
    uint16_t flags = get16(buf + 2);
    /* RFC 1035 4.1.1: a response (QR), opcode QUERY, our id, our one question */
    if (!(flags & FLAG_QR) || (flags >> 11 & 0xf) != 0 || get16(buf) != id) return DNS_E_MISMATCH;
    if (get16(buf + 4) != 1) return DNS_E_MISMATCH;
    uint16_t ancount = get16(buf + 6);
    size_t off = HDR;
    if (read_name(buf, len, &off, nm, &nl)) return DNS_E_MALFORMED;
    if (off + 4 > len) return DNS_E_MALFORMED;
    if (!same_name(nm, nl, owners[0], olen[0]) || get16(buf + off) != qtype ||
        get16(buf + off + 2) != QCLASS_IN)
        return DNS_E_MISMATCH;
    off += 4;
    if (flags & FLAG_TC) return DNS_E_TRUNCATED;
    if ((flags & 0xf) == RCODE_NXDOMAIN) return DNS_E_NXDOMAIN;
    if (flags & 0xf) return DNS_E_SERVER;
    /* RFC 1034 3.6.2: a CNAME's target stands for the name; servers send the chain in order */
    for (uint16_t i = 0; i < ancount; i++) {
        if (read_name(buf, len, &off, nm, &nl) || off + 10 > len) return DNS_E_MALFORMED;
        uint16_t type = get16(buf + off), cls = get16(buf + off + 2), rdlen = get16(buf + off + 8);
        size_t rd = off + 10;
        if (rd + rdlen > len) return DNS_E_MALFORMED;
        off = rd + rdlen;
        int mine = 0;
        for (size_t k = 0; k < nowners && !mine; k++)
            mine = same_name(nm, nl, owners[k], olen[k]);
        if (!mine || cls != QCLASS_IN) continue;
        if (type == qtype) {
            if (rdlen != (qtype == DNS_QTYPE_A ? 4 : 16)) return DNS_E_MALFORMED;
            memset(out, 0, sizeof *out);
            if (qtype == DNS_QTYPE_A) {
                struct sockaddr_in *in = (struct sockaddr_in *)out;
                in->sin_family = AF_INET;
                memcpy(&in->sin_addr, buf + rd, 4);
            } else {
                struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)out;
                in6->sin6_family = AF_INET6;
                memcpy(&in6->sin6_addr, buf + rd, 16);
            }
            return DNS_OK;
        }
        if (type == QTYPE_CNAME) {
            size_t t = rd;
            if (read_name(buf, len, &t, nm, &nl) || t != rd + rdlen) return DNS_E_MALFORMED;
            int known = 0;
            for (size_t k = 0; k < nowners && !known; k++)
                known = same_name(nm, nl, owners[k], olen[k]);
            if (!known && nowners < DNS_MAX_CNAMES + 1) {
                memcpy(owners[nowners], nm, nl);
                olen[nowners++] = nl;
            }
        }
    }
    return DNS_E_NODATA;
}

/* ---- the two files ---- */

/* Next line of f into line (NUL-terminated, comment cut at any of `comment`); 0 at EOF. A line
 * longer than the buffer is skipped whole: half a name must never match. */
static int next_line(FILE *f, char *line, size_t cap, const char *comment)
{
    for (;;) {
        if (!fgets(line, (int)cap, f)) return 0;
        size_t n = strlen(line);
        if (n == cap - 1 && line[n - 1] != '\n' && !feof(f)) {
            int ch;
            while ((ch = fgetc(f)) != EOF && ch != '\n') {
            }
            continue;
        }
        line[strcspn(line, comment)] = 0;
        return 1;
    }
}

/* A numeric address (IPv4, or IPv6 without a zone) into *out, port 0; -1 if not one. */
int dns_parse_addr(const char *s, struct sockaddr_storage *out)
{
    struct sockaddr_storage sa;
    memset(&sa, 0, sizeof sa);
    struct sockaddr_in *in = (struct sockaddr_in *)&sa;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&sa;
    if (inet_pton(AF_INET, s, &in->sin_addr) == 1)
        in->sin_family = AF_INET;
    else if (inet_pton(AF_INET6, s, &in6->sin6_addr) == 1)
        in6->sin6_family = AF_INET6;
    else
        return -1;
    *out = sa;
    return 0;
}

int dns_hosts_all_in(const char *path, const char *name, struct sockaddr_storage *out, int max)
{
    FILE *f = fopen(path, "re");
    if (!f) return -1;
    char line[LINE_MAX_LEN];
    int n = 0;
    /* IPv4 first (in file order), then IPv6: two passes over what was found */
    struct sockaddr_storage v6[DNS_MAX_HOSTS];
    int n6 = 0;
    while (next_line(f, line, sizeof line, "#")) {
        char *save, *addr = strtok_r(line, " \t\r\n", &save), *h;
        struct sockaddr_storage sa;
        if (!addr || dns_parse_addr(addr, &sa)) continue;
        while ((h = strtok_r(NULL, " \t\r\n", &save)))
            if (!strcasecmp(h, name)) break;
        if (!h) continue;
        if (sa.ss_family == AF_INET && n < max)
            out[n++] = sa;
        else if (sa.ss_family == AF_INET6 && n6 < DNS_MAX_HOSTS)
            v6[n6++] = sa;
    }
    fclose(f);
    for (int i = 0; i < n6 && n < max; i++)
        out[n++] = v6[i];
    return n ? n : -1;
}

int dns_hosts_lookup_in(const char *path, const char *name, struct sockaddr_storage *out)
{
    return dns_hosts_all_in(path, name, out, 1) > 0 ? 0 : -1;
}

int dns_hosts_lookup(const char *name, struct sockaddr_storage *out)
{
    return dns_hosts_lookup_in("/etc/hosts", name, out);
}

void dns_set_port(struct sockaddr_storage *sa, uint16_t port)
{
    if (sa->ss_family == AF_INET6)
        ((struct sockaddr_in6 *)sa)->sin6_port = htons(port);
    else
        ((struct sockaddr_in *)sa)->sin_port = htons(port);
}

int dns_nameserver_in(const char *path, struct sockaddr_storage *out)
{
    int rc = 1;
    FILE *f = fopen(path, "re");
    if (f) {
        char line[LINE_MAX_LEN];
        while (rc && next_line(f, line, sizeof line, "#;")) {
            char *save, *kw = strtok_r(line, " \t\r\n", &save);
            char *addr = kw ? strtok_r(NULL, " \t\r\n", &save) : NULL;
            if (kw && addr && !strcmp(kw, "nameserver") && !dns_parse_addr(addr, out)) rc = 0;
        }
        fclose(f);
    }
    if (rc) {
        memset(out, 0, sizeof *out);
        struct sockaddr_in *in = (struct sockaddr_in *)out;
        in->sin_family = AF_INET;
        in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    }
    dns_set_port(out, DNS_PORT);
    return rc;
}

int dns_nameserver(struct sockaddr_storage *out)
{
    const char *path = getenv("PP_RESOLV_CONF");
    int rc = dns_nameserver_in(path && *path ? path : "/etc/resolv.conf", out);
    const char *ps = getenv("PP_DNS_PORT");
    if (ps && *ps) {
        char *end;
        unsigned long port = strtoul(ps, &end, 10);
        if (*end || port == 0 || port > 65535 || *ps < '0' || *ps > '9') return -1;
        dns_set_port(out, (uint16_t)port);
    }
    return rc;
}
