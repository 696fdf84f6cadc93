/* dns.h - a tiny DNS stub resolver's pure half (RFC 1035): build one A or AAAA query, parse its
 * answer strictly, look a name up in /etc/hosts, find the nameserver in /etc/resolv.conf. The
 * network half (one UDP socket in the epoll loop) is hub.c's. What it does not do: no TCP
 * fallback (a truncated answer is a failure), no search domains, no EDNS, only the first
 * nameserver; the caller sends the query once more if the first gets no answer (one retry). */
#ifndef DNS_H
#define DNS_H
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define DNS_QTYPE_A 1
#define DNS_QTYPE_AAAA 28
#define DNS_MAX_NAME 253  /* text form, without a trailing dot */
#define DNS_MAX_LABEL 63  /* RFC 1035 2.3.4 */
#define DNS_MAX_QUERY 512 /* every query we build fits (12 + 255 + 4 bytes) */
#define DNS_MAX_CNAMES 8  /* CNAME targets followed in one answer */
#define DNS_MAX_HOPS 16   /* compression pointers followed while reading one name */
#define DNS_PORT 53

/* dns_answer_parse results: 0 = found, the rest negative. MISMATCH and MALFORMED are not an
 * answer to our query (stale, spoofed, garbage): the caller keeps waiting for the real one. */
#define DNS_OK 0
#define DNS_E_MALFORMED (-1) /* short, out of bounds, pointer loop, bad record */
#define DNS_E_MISMATCH (-2)  /* not a response, wrong id, or a different question */
#define DNS_E_TRUNCATED (-3) /* TC bit: would need TCP, which we do not do */
#define DNS_E_NXDOMAIN (-4)  /* RCODE 3: the name does not exist */
#define DNS_E_SERVER (-5)    /* any other RCODE (SERVFAIL, REFUSED, ...) */
#define DNS_E_NODATA (-6)    /* the name exists but has no record of this type */

/* Write a query for `name` (letters, digits, '-', '_', dots between labels of 1-63 bytes, 253
 * bytes at most, one trailing dot allowed) with header id `id`, RD=1, one question of `qtype`
 * (DNS_QTYPE_A or DNS_QTYPE_AAAA), class IN, into buf[0..cap). Returns the length, or -1 for a
 * bad name, a bad qtype or a buffer too small (DNS_MAX_QUERY always suffices). */
int dns_query_build(const char *name, uint16_t id, uint16_t qtype, uint8_t *buf, size_t cap);

/* Parse the response buf[0..len) to the query (id, qtype, name) built above: QR set, same id,
 * exactly one question equal to ours (names compared case-insensitively), then the first
 * record of qtype, class IN, whose owner is `name` or a CNAME target met earlier in the answer
 * section. On DNS_OK *out holds the address (AF_INET or AF_INET6, port 0); otherwise *out is
 * untouched. Reads nothing outside buf[0..len); keeps no pointer into it. */
int dns_answer_parse(const uint8_t *buf, size_t len, uint16_t id, uint16_t qtype, const char *name,
                     struct sockaddr_storage *out);

/* Look `name` up in /etc/hosts (dns_hosts_lookup_in: in the file at `path`): lines of an
 * address then names, '#' comments; the name matches the canonical name or an alias, case
 * insensitive. The first IPv4 match wins, else the first IPv6 one. 0 with *out set (port 0), or
 * -1 when not found or the file cannot be read. */
int dns_hosts_lookup(const char *name, struct sockaddr_storage *out);
int dns_hosts_lookup_in(const char *path, const char *name, struct sockaddr_storage *out);
/* Every address of `name` in the file at `path` (IPv4 ones first, in file order, then IPv6),
 * at most max (and at most DNS_MAX_HOSTS IPv6 ones): how many, or -1 for none. */
#define DNS_MAX_HOSTS 8
int dns_hosts_all_in(const char *path, const char *name, struct sockaddr_storage *out, int max);
/* A numeric IPv4 or IPv6 address (no %zone) into *out (port 0): 0, or -1. */
int dns_parse_addr(const char *s, struct sockaddr_storage *out);

/* The first `nameserver` line with a numeric IPv4 or IPv6 address (no %zone) in `path`, port 53;
 * 127.0.0.1 when there is none or the file cannot be read. *out is always set. Returns 0 when
 * the address came from the file, 1 for the default. dns_nameserver reads the file named by the
 * environment variable PP_RESOLV_CONF, else /etc/resolv.conf, and takes the port from PP_DNS_PORT
 * when set (test hooks: a fake server on 127.0.0.1 needs no privileged port); a PP_DNS_PORT that
 * is not 1-65535 returns -1 (with *out as for port 53). */
int dns_nameserver(struct sockaddr_storage *out);
int dns_nameserver_in(const char *path, struct sockaddr_storage *out);
/* Set the port of an IPv4 or IPv6 address. */
void dns_set_port(struct sockaddr_storage *sa, uint16_t port);
#endif
