/*
 * The admin interface: HTTP/1.1 on a local address, off the peer port.
 *   GET /health    liveness and the essentials (JSON)
 *   GET /metrics   Prometheus text format (docs/OPERATIONS.md lists them)
 *   GET /peers     the peer table (JSON; ?format=text: a table)
 *   GET /map       the map: peers and edges with their state (JSON;
 *                  ?format=dot: Graphviz, confirmed solid, phantom dashed)
 *   GET /bans      the ban list (JSON; ?format=text: a table)
 *   POST /ban?target=ID|IP|CIDR&seconds=N&reason=TEXT, POST /unban?target=..
 * One thread serves one request at a time, each with a 2 s deadline and an
 * 8 KB request limit: it is for an operator and a scraper, not the world.
 * It reads the node's atomic counters and the lock-free map; the peer
 * table comes from the node actor through its mailbox (mm_node_peer_list).
 */
#ifndef MM_ADMIN_H
#define MM_ADMIN_H

#include <stdint.h>

#include "node.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mm_admin mm_admin_t;

/* Listen on host:port (port 0: any; *bound gets it) and serve until
 * mm_admin_stop. 0 or -errno. */
int mm_admin_start(mm_node_t *node, const char *host, uint16_t port, uint16_t *bound,
    mm_admin_t **out);
void mm_admin_stop(mm_admin_t *a);

#ifdef __cplusplus
}
#endif
#endif
