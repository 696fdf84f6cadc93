/* hub.c - hub mode (stub while the signalling core lands). */
#include "hub.h"
#include "peerpigeon.h"

const char *hub_init(void) { return NULL; }
void hub_free(void) {}
void hub_tick(void) {}
void hub_on_connect(struct conn *c) { (void)c; }
int hub_on_handshake(struct conn *c, const char *head, size_t len) { (void)c; (void)head; (void)len; return -1; }
void hub_on_open(struct conn *c) { (void)c; }
void hub_on_message(struct conn *c, const char *msg, size_t len) { (void)c; (void)msg; (void)len; }
void hub_on_close(struct conn *c, void *link) { (void)c; (void)link; }
uint32_t hub_links_total(void) { return 0; }
uint32_t hub_links_connected(void) { return 0; }
void hub_write_bootstrap(struct json_writer *w) { json_write_raw(w, "[]", 2); }
void hub_local_announced(struct peer *p) { (void)p; }
void hub_local_left(struct peer *p, const char *net, const char *reason) { (void)p; (void)net; (void)reason; }
void hub_peer_is_hub(struct peer *p) { (void)p; }
void hub_relay_signal(struct conn *from, const char *type, size_t type_len, const char *from_id,
                      const char *target, const char *net, size_t net_len,
                      const struct json_val *data, const struct json_val *root)
{ (void)from; (void)type; (void)type_len; (void)from_id; (void)target; (void)net; (void)net_len; (void)data; (void)root; }
int hub_handle(struct conn *from, const char *type, size_t type_len, const struct json_val *root)
{ (void)from; (void)type; (void)type_len; (void)root; return 0; }
